"""The paper's scale end to end: 721,536 images × 9,448 units × 1,000 classes through every stage.

Builds, in a temporary UNITCAT_HOME with its own embedded PostgreSQL, the catalogue of
the paper's analysis at `--fraction` of its images (`bench/paper_data.py`): random-weights
AlexNet registered with conv5 (256 units), fc6 and fc7 (4,096 each) and fc8 (1,000), a
1,000-class dataset, and an activation store of that shape written through the project's
own store writer (seeded ReLU-like activations, about 80 % zeros, each unit nudged
towards a class, as `bench/score.py` generates them). Then it runs, each stage in its own
process:

- ``store``: registration and the store (27 GB of float32 at fraction 1, compressed);
- ``score``: ``unitcat ingest score`` (every measure, per-class statistics, top images);
- ``chance``: ``unitcat ingest baseline --chance`` with 2 label permutations;
- ``check``: the catalogue's scores of a few units of every layer against `score_units`
  on the same generated columns (the run fails if any differs);
- ``headline``: the headline query (``catalogue.query.report.HEADLINE_SQL``), its
  count and first 100 rows;
- ``unit``: one unit (fc6.1199) through `catalogue.query` (`find_unit`, `unit_record`);
- ``unit_page``: the Unit page's script for that unit (AppTest, caches cleared), whose
  jitter plot stands for every scored image;
- ``export``: ``unitcat export --no-images`` of the catalogue (the generated images
  exist only as activations, so there are no image files to carry).

and prints one table per fraction: wall seconds, CPU seconds, peak resident memory of the
stage's process (the PostgreSQL server's own memory is not in it), disk written, rows
written and, for the stages that write to the database, the rate of the transaction
that wrote them (from `pg_stat_activity`: its start to its commit, the deferred
summaries included). With several fractions it also prints how each stage grew. The
temporary home (store and database) is deleted at the end unless ``--home`` is given.

    .venv/bin/python bench/paper_scale.py --fraction 1/8            # ≈ 1.7 GB of disk
    .venv/bin/python bench/paper_scale.py --fraction 1/2,1          # the growth from 1/2 to 1
    .venv/bin/python bench/paper_scale.py --fraction 1/256 --unit-scale 1/64   # tiny (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# the repository's packages first: this folder's ui.py (a benchmark) is not the ui package
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != HERE), str(HERE)]

from paper_data import PAPER_CLASSES, Shape  # noqa: E402

#: store bytes per raw byte, measured on the generated activations (lzf): for the disk check
STORE_RATIO = 0.6
DB_BYTES_PER_UNIT = 200_000
TARGET_RSS = 8 << 30
TARGET_GROWTH = 2.2
TARGET_ROWS_PER_S = 100_000


@dataclass
class Stage:
    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    rss_bytes: int = 0
    disk_bytes: int = 0
    rows: int = 0
    write_s: float | None = None
    note: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0


# ------------------------------------------------------------------------ processes


def run_process(name: str, command: list[str], env: dict[str, str], log: Path) -> Stage:
    """Run `command` to its end; its wall and CPU seconds, peak RSS and ``RESULT`` line."""
    with log.open("w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stage = Stage(
        name,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        rss_bytes=usage.ru_maxrss * 1024,
        exit_code=process.returncode,
    )
    text = log.read_text(errors="replace")
    for line in reversed(text.splitlines()):
        if line.startswith("RESULT "):
            stage.result = json.loads(line[len("RESULT ") :])
            break
    if process.returncode:
        tail = "\n".join(text.strip().splitlines()[-5:])
        stage.note = f"exit {process.returncode}: {tail}"
    return stage


class WriteWatcher:
    """Polls `pg_stat_activity` while a stage runs: every transaction that ran a COPY, from its
    start until it is no longer seen (commit, with its deferred triggers, included)."""

    def __init__(self, engine: Any, interval: float = 0.05) -> None:
        self.engine, self.interval = engine, interval
        self.seen: dict[tuple[int, Any], list[Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> WriteWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        from sqlalchemy import text

        query = text(
            "SELECT pid, xact_start, clock_timestamp(), query FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "AND xact_start IS NOT NULL"
        )
        with self.engine.connect() as conn:
            while not self._stop.is_set():
                for pid, start, now, sql in conn.execute(query).all():
                    key = (pid, start)
                    if key in self.seen:
                        self.seen[key][1] = now
                    elif sql.lstrip().upper().startswith("COPY"):
                        self.seen[key] = [start, now]
                conn.rollback()
                time.sleep(self.interval)

    @property
    def seconds(self) -> float | None:
        """Seconds of the writing transactions (to within the polling interval)."""
        if not self.seen:
            return None
        return sum((end - start).total_seconds() for start, end in self.seen.values())


# ------------------------------------------------------------------------ one fraction


def result_rows(engine: Any) -> int:
    """Rows in every result table (what a run's transaction writes)."""
    from sqlalchemy import text

    from catalogue.db.schema import RUN_RESULT_TABLES

    with engine.connect() as conn:
        return sum(
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in RUN_RESULT_TABLES
        )


def database_bytes(engine: Any) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check_disk(home: Path, shape: Shape) -> str:
    """Refuse a run that would fill the disk; the estimate it is based on."""
    need = int(shape.raw_bytes * STORE_RATIO + shape.n_units * DB_BYTES_PER_UNIT) + (1 << 30)
    free = shutil.disk_usage(home).free
    text = f"needs about {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free in {home}"
    if free < need:
        raise SystemExit(f"not enough disk for fraction {shape.n_images:,} images: {text}.")
    return text


class FractionRun:
    """Runs the stages of one fraction in a home of its own and collects their figures."""

    def __init__(self, args: argparse.Namespace, fraction: Fraction, home: Path) -> None:
        self.args, self.fraction, self.home = args, fraction, home
        self.shape = Shape.of(
            fraction, Fraction(args.unit_scale), n_classes=args.classes, seed=args.seed
        )
        self.env = {**os.environ, "UNITCAT_HOME": str(home), "PYTHONPATH": _pythonpath()}
        self.env.pop("DATABASE_URL", None)
        self.stages: list[Stage] = []
        self.ids: dict[str, int] = {}

    def shape_args(self) -> list[str]:
        return [
            *("--fraction", str(self.fraction), "--unit-scale", str(self.args.unit_scale)),
            *("--classes", str(self.args.classes), "--seed", str(self.args.seed)),
        ]

    def bench_stage(self, name: str, *extra: str) -> list[str]:
        return [sys.executable, str(HERE / "paper_stages.py"), name, *self.shape_args(), *extra]

    def cli(self, *words: str) -> list[str]:
        return [sys.executable, "-m", "ingest.cli", *words]

    def run(self, engine: Any) -> None:
        print(f"  disk: {check_disk(self.home, self.shape)}", flush=True)
        self.stage(engine, "store", self.bench_stage("store"))
        self.ids["extract"] = int(self.stages[-1].result["extract_run"])
        block = ["--block-units", str(self.args.block_units)]
        self.stage(engine, "score", self.cli("ingest", "score", str(self.ids["extract"]), *block))
        self.ids["score"] = _newest_run(engine, "score")
        chance = ["--chance", "--repeats", str(self.args.repeats)]
        self.stage(
            engine, "chance", self.cli("ingest", "baseline", str(self.ids["score"]), *chance)
        )
        check = ["--check-units", str(self.args.check_units)]
        self.stage(engine, "check", self.bench_stage("check", *check))
        for name in ("headline", "unit", "unit_page"):
            self.stage(engine, name, self.bench_stage(name))
        out = self.home / "export"
        self.stage(engine, "export", self.cli("export", str(out), "--no-images"), folder=out)

    def stage(self, engine: Any, name: str, command: list[str], folder: Path | None = None) -> None:
        rows, size = result_rows(engine), database_bytes(engine)
        print(f"  {name} …", end=" ", flush=True)
        with WriteWatcher(engine) as watcher:
            stage = run_process(name, command, self.env, self.home / f"{name}.log")
        stage.rows = result_rows(engine) - rows
        stage.disk_bytes = database_bytes(engine) - size
        stage.write_s = watcher.seconds if stage.rows else None
        if folder is not None and folder.exists():
            stage.disk_bytes += folder_bytes(folder)
        describe(stage, self.shape)
        self.stages.append(stage)
        print(f"{stage.wall_s:.1f} s", flush=True)
        if stage.exit_code:
            raise SystemExit(f"stage {name} failed ({stage.note}); log: {self.home / name}.log")


def _pythonpath() -> str:
    return os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])


def _newest_run(engine: Any, kind: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(
            text("SELECT max(id) FROM run WHERE kind = :k AND status = 'done'"), {"k": kind}
        ).scalar_one()


def describe(stage: Stage, shape: Shape) -> None:
    """The stage's own figures as a note (and its store's bytes as its disk)."""
    r = stage.result
    if stage.name == "store" and r:
        stage.disk_bytes += int(r["bytes"])
        stage.rows = int(r["rows"])
        raw = shape.raw_bytes
        stage.note = (
            f"{raw / 1e9:.2f} GB raw, file {r['bytes'] / raw:.0%} of it; generating "
            f"{r['generate_s']:.0f} s, store writer {r['store_s']:.0f} s "
            f"({raw / 1e6 / max(r['store_s'], 1e-9):.0f} MB/s raw)"
        )
    elif stage.name == "headline" and r:
        stage.note = (
            f"{r['count']:,} units; count(*) {r['count_s'] * 1e3:.1f} ms (cold "
            f"{r['count_cold_s'] * 1e3:.0f} ms), first 100 rows {r['first100_s'] * 1e3:.1f} ms"
        )
    elif stage.name == "unit" and r:
        stage.note = f"{r['unit']}: {r['warm_s'] * 1e3:.1f} ms (cold {r['cold_s'] * 1e3:.0f} ms)"
    elif stage.name == "unit_page" and r:
        stage.note = (
            f"{r['unit']}, {r['points']:,} points: page {r['cold_s']:.2f} s cold (caches "
            f"cleared), column read {r['read_s']:.2f} s"
            + (f"; ERRORS {r['errors']}" if r["errors"] else "")
        )
        if r["errors"]:
            stage.exit_code = 1
    elif stage.name == "check" and r:
        bad = r["problems"]
        stage.note = f"{r['units']} units equal score_units" if not bad else f"DIFFERENT: {bad[:3]}"
        if bad:
            stage.exit_code = 1


# ------------------------------------------------------------------------ the tables


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def table(fraction: Fraction, shape: Shape, stages: list[Stage], load: str) -> str:
    lines = [
        f"\nfraction {fraction}: {shape.n_images:,} images × {shape.n_units:,} units × "
        f"{shape.n_classes:,} classes; {load}",
        "| stage | seconds | CPU s | peak RSS | disk | rows written | rows/s (writing) | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in stages:
        rate = f"{s.rows / s.write_s:,.0f} ({s.write_s:.1f} s)" if s.write_s else ""
        rss = _size(s.rss_bytes) + (" **over 8 GB**" if s.rss_bytes > TARGET_RSS else "")
        lines.append(
            f"| {s.name} | {s.wall_s:.1f} | {s.cpu_s:.1f} | {rss} | {_size(s.disk_bytes)} | "
            f"{s.rows:,} | {rate} | {s.note} |"
        )
    return "\n".join(lines)


def growth(done: dict[Fraction, list[Stage]]) -> str:
    """time(f) ÷ time(f/2) for every stage measured at both (target ≤ 2.2)."""
    lines = []
    for f in sorted(done):
        if f / 2 not in done:
            continue
        before = {s.name: s for s in done[f / 2]}
        lines.append(f"\ngrowth from {f / 2} to {f} (wall; CPU), target ≤ {TARGET_GROWTH}:")
        for s in done[f]:
            b = before.get(s.name)
            if b is None or not b.wall_s or not s.wall_s:
                continue
            ratio = s.wall_s / b.wall_s
            cpu = s.cpu_s / b.cpu_s if b.cpu_s else float("nan")
            flag = "" if ratio <= TARGET_GROWTH else "  over"
            lines.append(f"  {s.name:10s} {ratio:5.2f}; {cpu:5.2f}{flag}")
    return "\n".join(lines)


def load_text() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (5 min {five:.2f})"


def run_fraction(args: argparse.Namespace, fraction: Fraction) -> tuple[Shape, list[Stage], str]:
    from sqlalchemy import create_engine

    if args.work_dir is not None:  # a folder for the run's files, made if it is not there
        Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="unitcat-paper-scale-", dir=args.work_dir) as tmp:
        home = (args.home / str(fraction).replace("/", "-")) if args.home else Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        os.environ["UNITCAT_HOME"] = str(home)
        os.environ.pop("DATABASE_URL", None)
        from catalogue.config import normalise_database_url
        from catalogue.db import migrate, server

        runner = FractionRun(args, fraction, home)
        print(f"fraction {fraction}: {runner.shape.n_images:,} images; {load_text()}", flush=True)
        engine = create_engine(normalise_database_url(server.start(home / "postgres")))
        try:
            migrate.upgrade(engine)
            load_before = load_text()
            runner.run(engine)
            load = f"{load_before} at the start, {load_text()} at the end"
        finally:
            engine.dispose()
            server.stop(home / "postgres")
        return runner.shape, runner.stages, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", default="1", help="comma-separated, e.g. 1/8,1/4 (default 1)")
    parser.add_argument("--unit-scale", default="1", help="layer widths × this (tests: 1/64)")
    parser.add_argument("--classes", type=int, default=PAPER_CLASSES)
    parser.add_argument("--repeats", type=int, default=2, help="label permutations (chance)")
    parser.add_argument("--block-units", type=int, default=256, help="ingest score --block-units")
    parser.add_argument("--check-units", type=int, default=3, help="units checked per layer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--home", type=Path, help="keep each fraction's catalogue under this")
    parser.add_argument("--work-dir", type=Path, help="where the temporary homes go")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    fractions = [Fraction(f.strip()) for f in args.fraction.split(",")]
    done: dict[Fraction, list[Stage]] = {}
    report: list[dict[str, Any]] = []
    for fraction in fractions:
        shape, stages, load = run_fraction(args, fraction)
        done[fraction] = stages
        print(table(fraction, shape, stages, load), flush=True)
        report.append(
            {
                "fraction": str(fraction),
                "shape": asdict(shape),
                "load": load,
                "stages": [asdict(s) for s in stages],
            }
        )
    print(growth(done))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
