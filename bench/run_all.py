"""Run every benchmark in turn (`make bench`); each prints ratios against its own baseline.

The figures are recorded in bench/README.md. Pass --quick for smaller sizes
(minutes instead of a quarter of an hour); the full sizes are the ones the
README's figures use.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL: list[list[str]] = [
    ["score.py"],
    ["extract.py", "--model", "alexnet", "--images", "256", "--batch-size", "64", "--repeats", "3"],
    ["dissect.py"],
    ["ui.py", "--repeats", "3"],
    ["db.py"],
    ["ablate.py"],
    ["cluster.py"],
    ["paper_scale.py", "--fraction", "1/8"],
    ["cli.py"],
]
QUICK: list[list[str]] = [
    ["score.py", "--n", "20000", "--no-projection"],
    ["extract.py", "--images", "1024", "--rows", "20000", "--units", "1024", "--repeats", "2"],
    ["dissect.py", "--images", "64"],
    ["ui.py", "--images", "100000", "--units", "16", "--repeats", "2"],
    ["db.py", "--quick"],
    ["ablate.py", "--images", "8", "--conv-units", "16", "--fc-units", "32", "--repeats", "1"],
    [
        "cluster.py",
        "--images",
        "256",
        "--probe-images",
        "32",
        "--ablate-units",
        "32",
        "--ablate-block",
        "8",
    ],
    ["paper_scale.py", "--fraction", "1/256", "--unit-scale", "1/64"],
    ["gpu.py", "--tiny", "--device", "cpu"],
    ["cli.py", "--repeat", "5"],
]


def with_gpu(commands: list[list[str]]) -> list[list[str]]:
    """`bench/gpu.py` at its full sizes where a GPU is visible (it is for a GPU's minutes)."""
    import torch

    return [*commands, ["gpu.py"]] if torch.cuda.is_available() else commands


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    failed = []
    for command in QUICK if args.quick else with_gpu(FULL):
        print(f"\n=== bench/{' '.join(command)}", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(HERE / command[0]), *command[1:]], check=False)
        print(
            f"=== {command[0]}: {time.perf_counter() - started:.0f} s, exit {result.returncode}",
            flush=True,
        )
        if result.returncode:
            failed.append(command[0])
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
