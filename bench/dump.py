"""Benchmark of `unitcat export` and `unitcat import` on the million-unit catalogue of bench/db.py.

Builds (or reuses, with `--home`) the generated catalogue of `bench/db.py` — 100 models ×
10 layers × 1,000 units = 1,000,000 scored units, 2,500,000 dissection rows, 3,000 ratings —
then

- exports it (`catalogue.share.export_catalogue`, no images: the generated catalogue has
  none) and times it against reading every score once with a plain binary COPY through
  psycopg (the baseline a hand-written export would start from);
- imports the dump into a new, empty database on the same server
  (`catalogue.share.import_dump`) and times it against writing the same scores with the
  project's writer (`write_unit_metrics` in one scoring run per model, as a pipeline
  writes them);
- checks that the imported catalogue answers as the source does (`layer_detectors`, the
  headline count, `dissection_summary`, `rating_summary`), failing if not;
- imports the same dump again (nothing new: only the checks and the look-ups);
- measures PostgreSQL's own floor for the rows the import writes most of: the same rows of
  `unit`, `unit_metrics` and `dissection`, taken from the source by binary COPY and written
  by binary COPY into bare copies of those tables (no index, constraint or trigger) in one
  transaction, then into copies with the tables' indexes — what no import into these
  tables on this server can go below.

Rates are unit rows per second: `unit_metrics` rows over the whole export or import
(every table, identity and results included). The target is ≥ 200,000 each way on a
2-core machine.

    .venv/bin/python bench/dump.py                 # 1,000,000 units (a few GB of disk)
    .venv/bin/python bench/dump.py --units 20000   # quick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import db as bench_db  # noqa: E402  (bench/db.py: the generated catalogue)

COMPARED = (
    "SELECT * FROM layer_detectors",
    "SELECT count(*) FROM misleading_detectors",
    "SELECT * FROM dissection_summary",
    "SELECT * FROM rating_summary",
)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


class Meter:
    """Wall time and the CPU time of this process and of the embedded server (its postmaster
    and every backend): on a shared machine the CPU seconds say what an idle one would take
    (at most client + server, at least the larger of the two, on two cores)."""

    def __init__(self, home: Path) -> None:
        self.pidfile = home / "postgres" / "postmaster.pid"

    def _server(self) -> float:
        import psutil

        main = psutil.Process(int(self.pidfile.read_text().split()[0]))
        reaped = main.cpu_times()  # backends that ended count in their parent's children_*
        total = reaped.children_user + reaped.children_system
        for process in [main, *main.children()]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def __enter__(self) -> Meter:
        self.wall, self.client = time.perf_counter(), time.process_time()
        self.server = self._server()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.client = time.process_time() - self.client
        self.server = self._server() - self.server

    def __str__(self) -> str:
        return f"{self.wall:.1f} s (CPU: client {self.client:.1f} s, server {self.server:.1f} s)"


def read_baseline(engine: Any) -> tuple[float, int]:
    """Seconds to read every `unit_metrics` row once by binary COPY through psycopg."""
    raw = engine.raw_connection()
    try:
        start = time.perf_counter()
        n = 0
        with raw.cursor() as cur, cur.copy("COPY unit_metrics TO STDOUT (FORMAT BINARY)") as copy:
            for _ in copy:
                n += 1
        return time.perf_counter() - start, n - 1  # the header arrives with the first row
    finally:
        raw.close()


#: the tables that hold a row per unit or more (in the generated catalogue: 4.5 rows per unit)
FLOOR_TABLES = ("unit", "unit_metrics", "dissection")


def copy_floor(source: Any, target: Any) -> tuple[dict[str, float], int]:
    """Seconds the target server takes to COPY the source's rows of `FLOOR_TABLES` (every
    stored column) into temporary copies, in one transaction (rolled back): `bare` copies
    (`LIKE`: columns only), then copies `with indexes` (their primary keys and indexes). The
    rows are read into memory first, so only the writing is timed; (seconds by variant,
    rows)."""
    data: dict[str, tuple[str, list[bytes]]] = {}
    rows = 0
    raw = source.raw_connection()
    try:
        with raw.cursor() as cur:
            for table in FLOOR_TABLES:
                columns = ", ".join(
                    f'"{name}"'
                    for (name,) in cur.execute(
                        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                        "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' "
                        "ORDER BY attnum",
                        (table,),
                    )
                )
                with cur.copy(f"COPY {table} ({columns}) TO STDOUT (FORMAT BINARY)") as copy:
                    data[table] = (columns, [bytes(block) for block in copy])
            for table in FLOOR_TABLES:
                rows += cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        raw.close()
    seconds: dict[str, float] = {}
    for variant, like in (("bare", ""), ("with indexes", " INCLUDING INDEXES INCLUDING DEFAULTS")):
        raw = target.raw_connection()
        try:
            with raw.cursor() as cur:
                for table in FLOOR_TABLES:
                    cur.execute(f"CREATE TEMP TABLE floor_{table} (LIKE {table}{like})")
                start = time.perf_counter()
                for table, (columns, blocks) in data.items():
                    with cur.copy(
                        f"COPY floor_{table} ({columns}) FROM STDIN (FORMAT BINARY)"
                    ) as copy:
                        for block in blocks:
                            copy.write(block)
                cur.execute("SELECT 1")  # the last COPY's rows are in
                seconds[variant] = time.perf_counter() - start
            raw.rollback()
        finally:
            raw.close()
    return seconds, rows


def write_baseline(engine: Any, models: int, layer_units: int) -> tuple[float, int]:
    """Seconds to write `models` models' scores with `write_unit_metrics`, one scoring run per
    model as a pipeline writes them (rolled back)."""
    import numpy as np
    from sqlalchemy import text

    from catalogue.db.identities import load_model_record
    from catalogue.db.results import write_unit_metrics

    rng = np.random.default_rng(1)
    rows = 0
    elapsed = 0.0
    with engine.connect() as conn:
        for i in range(models):
            record = load_model_record(conn, bench_db.model_name(i))
            conn.rollback()
            transaction = conn.begin()
            run_id = conn.execute(
                text(
                    "INSERT INTO run (kind, key, status, model_id) "
                    "VALUES ('score', :k, 'running', :m) RETURNING id"
                ),
                {"k": f"bench-dump-{i}", "m": record.id},
            ).scalar_one()
            scores = {
                name: bench_db.synthetic_scores(rng, layer_units, p / (len(bench_db.LAYERS) - 1))
                for p, (name, _) in enumerate(bench_db.LAYERS)
            }
            start = time.perf_counter()
            for name, _ in bench_db.LAYERS:
                write_unit_metrics(
                    conn, run_id, record.layer(name).unit_ids, scores[name], n_images=1
                )
            conn.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))  # the deferred cache refresh
            elapsed += time.perf_counter() - start
            rows += layer_units * len(bench_db.LAYERS)
            transaction.rollback()
    return elapsed, rows


def new_database(home: Path, name: str) -> str:
    """The owner's URL of a new, empty catalogue database on the embedded server."""
    import psycopg
    from sqlalchemy.engine import make_url

    from catalogue.db import roles, server

    socket = server.status(home / "postgres").socket_dir
    admin = server.superuser_url(socket)
    with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute(roles.database_sql())
    return roles.url_as(url, roles.OWNER_ROLE)


def answers(engine: Any) -> list[list[tuple]]:
    """What the compared queries return, ids aside, sorted."""
    from sqlalchemy import text

    out = []
    with engine.connect() as conn:
        for sql in COMPARED:
            result = conn.execute(text(sql))
            keep = [i for i, c in enumerate(result.keys()) if not c.endswith("_id")]
            rows = [
                tuple(round(row[i], 9) if isinstance(row[i], float) else row[i] for i in keep)
                for row in result
            ]
            out.append(sorted(rows, key=repr))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1_000_000, help="units in all (default 1e6)")
    parser.add_argument("--layer-units", type=int, default=1_000)
    parser.add_argument(
        "--writer-models", type=int, default=5, help="models in the writer baseline"
    )
    parser.add_argument("--home", type=Path, help="keep the server and catalogue here (reused)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_models = max(1, args.units // (len(bench_db.LAYERS) * args.layer_units))
    total = n_models * len(bench_db.LAYERS) * args.layer_units

    with tempfile.TemporaryDirectory(prefix="unitcat-bench-dump-") as tmp:
        home = args.home or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        os.environ["UNITCAT_HOME"] = str(home)
        os.environ.pop("DATABASE_URL", None)
        from sqlalchemy import create_engine, text

        from catalogue.config import normalise_database_url
        from catalogue.db import migrate, server

        url = normalise_database_url(server.start(home / "postgres"))
        engine = create_engine(url)
        target = None
        try:
            migrate.upgrade(engine)
            with engine.connect() as conn:
                have = conn.execute(text("SELECT count(*) FROM unit_metrics")).scalar_one()
            print(f"catalogue: {n_models} models × {len(bench_db.LAYERS)} layers × "
                  f"{args.layer_units:,} units = {total:,} units; {load()}", flush=True)  # fmt: skip
            if have != total:
                if have:
                    raise SystemExit(
                        f"{home} holds another catalogue ({have:,} rows); use a new --home"
                    )
                bench_db.report_build(
                    bench_db.build(engine, n_models, args.layer_units, 0, args.seed)
                )
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE"))
            target = run_both_ways(engine, home, total, args)
        finally:
            engine.dispose()
            if target is not None:
                target.dispose()
            server.stop(home / "postgres")


def run_both_ways(engine: Any, home: Path, total: int, args: argparse.Namespace) -> Any:
    """Baselines, export, import, the answers compared, import again; the target engine."""
    from sqlalchemy import create_engine, text

    from catalogue.db import migrate
    from catalogue.share.export import ExportOptions, export_catalogue
    from catalogue.share.importer import import_dump

    with Meter(home) as meter:
        seconds, rows = read_baseline(engine)
    read_rate = rows / seconds
    print(f"baseline: binary COPY read of unit_metrics: {rows:,} rows in {meter} = "
          f"{read_rate:,.0f} rows/s; {load()}", flush=True)  # fmt: skip
    with Meter(home) as meter:
        result = export_catalogue(
            engine, home / "dump", ExportOptions(images=False, overwrite=True)
        )
    rate = total / meter.wall
    all_rows = sum(result.rows.values())
    print(f"export: {all_rows:,} rows of {len(result.rows)} tables ({total:,} unit rows) in "
          f"{meter} = {rate:,.0f} unit rows/s ({all_rows / meter.wall:,.0f} rows/s in all), "
          f"{result.bytes / 1e6:,.0f} MB; {rate / read_rate:.2f}× the plain read; {load()}",
          flush=True)  # fmt: skip

    with Meter(home) as meter:
        seconds, rows = write_baseline(engine, min(args.writer_models, total), args.layer_units)
    write_rate = rows / seconds
    print(f"baseline: write_unit_metrics, one scoring run per model: {rows:,} rows in "
          f"{seconds:.1f} s of {meter} = {write_rate:,.0f} rows/s; {load()}", flush=True)  # fmt: skip
    target = create_engine(new_database(home, "unitcat_import"))
    migrate.upgrade(target)
    with Meter(home) as meter:
        imported = import_dump(target, home / "dump")
    rate = total / meter.wall
    written = sum(imported.rows.values())
    print(f"import: {written:,} result rows ({total:,} unit rows) in {meter} = {rate:,.0f} unit "
          f"rows/s ({written / meter.wall:,.0f} result rows/s); {rate / write_rate:.2f}× the "
          f"writer; {load()}", flush=True)  # fmt: skip
    with target.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    if answers(target) != answers(engine):
        raise SystemExit("the imported catalogue answers differently from the source")
    print("the imported catalogue answers as the source does (layer_detectors, the headline "
          "count, dissection_summary, rating_summary)")  # fmt: skip
    with Meter(home) as meter:
        again = import_dump(target, home / "dump")
    if again.changed:
        raise SystemExit("importing the same dump again changed the catalogue")
    print(f"import again: nothing new, {meter}; {load()}", flush=True)
    with Meter(home) as meter:
        floor, rows = copy_floor(engine, target)
    print(f"floor: {rows:,} rows of {', '.join(FLOOR_TABLES)} by plain binary COPY into bare "
          f"tables {floor['bare']:.1f} s = {total / floor['bare']:,.0f} unit rows/s, into "
          f"tables with their indexes {floor['with indexes']:.1f} s = "
          f"{total / floor['with indexes']:,.0f} unit rows/s (both in {meter}); {load()}",
          flush=True)  # fmt: skip
    return target


if __name__ == "__main__":
    main()
