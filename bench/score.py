"""Benchmark of the selectivity scorer against its floor and a plain per-unit scan.

Prints ratios measured in the same run, on seeded ReLU-like activations (about
80 % zeros, each unit nudged towards one class):

(a) `score_units` time ÷ time of one `torch.sort` of the same matrix along the
    images: the floor every scorer pays (target <= 3); also ÷ numpy's vectorised
    values-only sort, the fastest plain sort on a CPU (the scorer itself sorts with
    numpy on the CPU, and only above each unit's minimum);
(b) time of a plain per-unit numpy scan (sort, one-hot cumulative counts for
    every class, informedness at every tie-group end) ÷ `score_units` time
    (target >= 50); the scan runs on a few units and is extrapolated;

then a projection to the paper's scale (721,536 images × 9,216 units, 1,000
classes) from a measured slice of that many images, and the same on CUDA when a
GPU is visible. Timings are the minimum over --repeats interleaved runs, so that
other processes on the machine disturb the ratios as little as possible.

    .venv/bin/python bench/score.py                      # the full benchmark
    .venv/bin/python bench/score.py --n 20000 --units 64 --no-projection   # quick
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from catalogue.selectivity import score_units

PAPER_IMAGES, PAPER_UNITS, PAPER_CLASSES = 721_536, 9_216, 1_000


def make_activations(
    n: int, units: int, classes: int, zeros: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(N × U float32 activations with about `zeros` exact zeros, N labels)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    preferred = rng.integers(0, classes, units)
    z = rng.standard_normal((n, units), dtype=np.float32)
    z += 1.5 * (labels[:, None] == preferred[None, :])
    cut = np.quantile(z[:, : min(units, 8)], zeros)
    return np.maximum(z - cut, 0, dtype=np.float32), labels


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def sort_floor(acts: np.ndarray, device: str) -> Callable[[], object]:
    """One torch.sort of the matrix along the images, in its fastest layout (units × images)."""
    xt = torch.from_numpy(np.ascontiguousarray(acts.T)).to(device)

    def run() -> object:
        return torch.sort(xt, dim=1, stable=True)

    return run


def numpy_floor(acts: np.ndarray) -> Callable[[], object]:
    """numpy's vectorised values-only sort of the same rows, over torch's thread count."""
    rows = np.ascontiguousarray(acts.T)
    chunks = np.array_split(np.arange(rows.shape[0]), torch.get_num_threads())
    pool = ThreadPoolExecutor(len(chunks))

    def run() -> object:
        return list(pool.map(lambda c: np.sort(rows[c[0] : c[-1] + 1], axis=1), chunks))

    return run


def numpy_scan(acts: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """Max informedness per unit, the plain way: per unit a sort and N × C cumulative counts."""
    n = len(labels)
    out = np.empty(acts.shape[1])
    for u in range(acts.shape[1]):
        order = np.argsort(-acts[:, u], kind="stable")
        values, ys = acts[order, u], labels[order]
        cum = np.cumsum(ys[:, None] == np.arange(classes), axis=0)
        last = np.append(values[1:] != values[:-1], True)  # ends of tie groups
        hits = cum[last]
        selected = np.flatnonzero(last)[:, None] + 1
        n_c = cum[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            youden = hits / n_c - (selected - hits) / (n - n_c)
        out[u] = np.nanmax(youden)
    return out


def measure(
    acts: np.ndarray, labels: np.ndarray, classes: int, device: str, repeats: int
) -> dict[str, float]:
    """Best times (s) of the torch sort, numpy sort (CPU) and scoring, interleaved."""
    runs: dict[str, Callable[[], object]] = {"sort": sort_floor(acts, device)}
    if device == "cpu":
        runs["np_sort"] = numpy_floor(acts)
    runs["score"] = lambda: score_units(acts, labels, classes, device=device)
    runs["sort"]()  # warm-up (allocator, CUDA context)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            best[name] = min(best[name], timed(run, device))
    return best


def load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def report_device(args: argparse.Namespace, device: str) -> None:
    acts, labels = make_activations(args.n, args.units, args.classes, args.zeros, args.seed)
    zeros = float((acts == 0).mean())
    print(
        f"\n== {device}: N={args.n:,} images × U={args.units} units × C={args.classes} classes, "
        f"{zeros:.1%} zeros, torch threads {torch.get_num_threads()}, load {load()}"
    )
    t = measure(acts, labels, args.classes, device, args.repeats)
    t_score = t["score"]
    print(f"torch.sort along images (units × images, stable)  {t['sort']:8.3f} s")
    if "np_sort" in t:
        print(f"np.sort along images (values only, vectorised)    {t['np_sort']:8.3f} s")
    print(f"score_units (all 20 measures)                     {t_score:8.3f} s")
    print(f"(a) score_units / torch.sort {t_score / t['sort']:29.2f}   (target <= 3)")
    if "np_sort" in t:
        print(
            f"    score_units / np.sort {t_score / t['np_sort']:32.2f}   (the fastest plain sort)"
        )

    if device == "cpu":
        subset = min(args.scan_units, args.units)
        t_scan = timed(lambda: numpy_scan(acts[:, :subset], labels, args.classes), device)
        t_scan_all = t_scan * args.units / subset
        check = numpy_scan(acts[:, :2], labels, args.classes)
        got = score_units(acts[:, :2], labels, args.classes)["max_informedness"]
        assert np.allclose(check, got, rtol=0, atol=1e-12), (check, got)
        print(
            f"numpy per-unit scan: {subset} units in {t_scan:.2f} s, extrapolated to "
            f"{args.units} units: {t_scan_all:.1f} s (same max informedness)"
        )
        print(
            f"(b) numpy scan / score_units                      {t_scan_all / t_score:8.1f}   (target >= 50)"
        )

    if args.projection:
        slice_units = args.projection_units
        pa, pl = make_activations(PAPER_IMAGES, slice_units, PAPER_CLASSES, args.zeros, args.seed)
        p = measure(pa, pl, PAPER_CLASSES, device, 1)
        p_sort, p_score = p["sort"], p["score"]
        scale = PAPER_UNITS / slice_units
        print(
            f"paper scale ({PAPER_IMAGES:,} images × {PAPER_UNITS:,} units, {PAPER_CLASSES} classes): "
            f"{slice_units} units scored in {p_score:.2f} s (sort {p_sort:.2f} s, ratio "
            f"{p_score / p_sort:.2f}) → {p_score * scale / 60:.1f} min for all units on this {device}"
        )
    print(f"load at end {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="images")
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--zeros", type=float, default=0.8, help="share of exact zeros")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs (min is kept)")
    parser.add_argument("--scan-units", type=int, default=4, help="units the numpy scan times")
    parser.add_argument("--projection-units", type=int, default=32)
    parser.add_argument(
        "--no-projection", dest="projection", action="store_false", help="skip paper scale"
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"]
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices = ["cuda"] if args.device == "cuda" else ["cpu", "cuda"]
    for device in devices:
        report_device(args, device)


if __name__ == "__main__":
    main()
