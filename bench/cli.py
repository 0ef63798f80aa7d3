"""How quickly and in how much memory `unitcat` answers the commands that do not compute.

A catalogue is queried far more often than it is built, from a shell, twenty
queries in a row. This measures, in one run, three such commands as a user
starts them (the `unitcat` executable, stdout a pipe):

- `unitcat query "select 1"`,
- `unitcat runs` (a catalogue with a dozen recorded runs),
- `unitcat --help`,

against the floor of any Python client of the same database: `python -c` that
imports SQLAlchemy and psycopg and runs `SELECT 1` over one connection to the
same server. Each command runs `--repeat` times, the commands interleaved round
by round so that a change of the machine's load reaches all of them alike;
the figures are the median wall time and the median peak resident memory of
the process (its rusage from `os.wait4`). Targets: at most 2x the floor's time,
under 200 MB.

The benchmark has its own UNITCAT_HOME (a temporary folder, or `--home`): the
embedded server is started and the schema created once before timing, and the
server is stopped at the end. To measure other code, put it first on PYTHONPATH
(`PYTHONPATH=/path/to/checkout python bench/cli.py`): the commands import
`ingest` and `catalogue` from there.

    .venv/bin/python bench/cli.py                # 9 rounds
    .venv/bin/python bench/cli.py --repeat 5
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TIME_TARGET = 2.0  # x the floor's wall time
RSS_TARGET_MB = 200.0
N_RUNS = 12

FLOOR = (
    "import sys, sqlalchemy, psycopg\n"
    "engine = sqlalchemy.create_engine(sys.argv[1])\n"
    "with engine.connect() as conn:\n"
    "    conn.execute(sqlalchemy.text('SELECT 1')).scalar_one()\n"
)


@dataclass
class Sample:
    seconds: float
    peak_mb: float


def unitcat_command() -> list[str]:
    """The `unitcat` executable beside this Python, as a user runs it (else `-m ingest.cli`)."""
    script = Path(sys.executable).with_name("unitcat")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ingest.cli"]


def measure(argv: Sequence[str], env: Mapping[str, str]) -> Sample:
    """One run of `argv`: wall time and the child's peak RSS; a failure stops the benchmark."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=dict(env), stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed: {err.read().decode(errors='replace')}")
    return Sample(seconds, usage.ru_maxrss / 1024)  # Linux: kilobytes


#: A catalogue with `N_RUNS` recorded runs (the last one failed), as `unitcat runs` lists them;
#: run in a child so that this process stays small (a child's peak RSS counts what it
#: inherits from its parent before exec).
RECORD_RUNS = f"""
from catalogue.db.engine import get_engine
from catalogue.db.runs import recorded_run

engine = get_engine()
for i in range({N_RUNS}):
    try:
        with recorded_run(engine, ("extract", "score", "dissect")[i % 3], {{"bench": i}},
                          label=f"bench run {{i}}"):
            if i == {N_RUNS} - 1:
                raise RuntimeError("a failed run, to list its error")
    except RuntimeError:
        pass
"""


def median(samples: list[Sample]) -> Sample:
    return Sample(
        statistics.median(s.seconds for s in samples),
        statistics.median(s.peak_mb for s in samples),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9, help="rounds (default 9)")
    parser.add_argument("--home", type=Path, help="UNITCAT_HOME to use (default: a temporary one)")
    args = parser.parse_args(argv)

    home = args.home or Path(tempfile.mkdtemp(prefix="unitcat-bench-cli-"))
    os.environ["UNITCAT_HOME"] = str(home)
    for name in ("DATABASE_URL", "UNITCAT_READER_URL", "COLUMNS"):
        os.environ.pop(name, None)
    env = dict(os.environ)
    unitcat = unitcat_command()
    try:
        subprocess.run([*unitcat, "db", "upgrade"], env=env, check=True, capture_output=True)
        url = subprocess.run(
            [*unitcat, "db", "url"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        subprocess.run([sys.executable, "-c", RECORD_RUNS], env=env, check=True)
        commands = {
            "floor: import sqlalchemy, psycopg + SELECT 1": [sys.executable, "-c", FLOOR, url],
            'unitcat query "select 1"': [*unitcat, "query", "select 1"],
            "unitcat runs": [*unitcat, "runs"],
            "unitcat --help": [*unitcat, "--help"],
        }
        for command in commands.values():  # warm the file cache and the server
            measure(command, env)
        samples: dict[str, list[Sample]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, command in commands.items():
                samples[name].append(measure(command, env))
    finally:
        subprocess.run([*unitcat, "db", "stop"], env=env, capture_output=True)
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    report({name: median(s) for name, s in samples.items()}, args.repeat)
    return 0


def report(medians: Mapping[str, Sample], repeat: int) -> None:
    floor_name, *names = list(medians)
    floor = medians[floor_name]
    print(f"median of {repeat} runs; code from {_code_dir()}")
    print(f"{'command':<46} {'wall s':>7} {'x floor':>8} {'peak MB':>8} {'x floor':>8}")
    print(f"{floor_name:<46} {floor.seconds:>7.3f} {1:>8.2f} {floor.peak_mb:>8.1f} {1:>8.2f}")
    for name in names:
        m = medians[name]
        print(
            f"{name:<46} {m.seconds:>7.3f} {m.seconds / floor.seconds:>8.2f} "
            f"{m.peak_mb:>8.1f} {m.peak_mb / floor.peak_mb:>8.2f}"
        )
    worst_time = max(medians[n].seconds / floor.seconds for n in names)
    worst_rss = max(medians[n].peak_mb for n in names)
    print(
        f"targets: <= {TIME_TARGET:g}x the floor's time (worst {worst_time:.2f}x: "
        f"{'met' if worst_time <= TIME_TARGET else 'MISSED'}), < {RSS_TARGET_MB:g} MB "
        f"(worst {worst_rss:.0f} MB: {'met' if worst_rss < RSS_TARGET_MB else 'MISSED'})"
    )


def _code_dir() -> str:
    spec = importlib.util.find_spec("ingest")
    return str(Path(spec.origin).resolve().parent.parent) if spec and spec.origin else "?"


if __name__ == "__main__":
    sys.exit(main())
