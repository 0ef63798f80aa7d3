"""Extraction overhead and activation-store column reads, each against a baseline in the same run.

1. Extraction: `extract_activations` (feature extractor on the requested
   nodes, spatial max, HDF5 writes) against a bare loop — the same DataLoader
   over the same images and the same model's plain forward, nothing stored.
   Target: extraction images/s ≥ 0.87 × bare (overhead ≤ 15 %).
2. Store reads: one unit's column and a 256-unit block of a 100,000 × 4,096
   float32 layer (post-ReLU-like data: half zeros), against reading the whole
   layer. Target: one column < 0.5 s.

    .venv/bin/python bench/extract.py [--model demo|alexnet|…] [--images 4096] [--threads 1]
                                      [--rows 100000] [--units 4096]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from catalogue.config import resolve_device
from catalogue.data import ArrayImageDataset, collate_samples
from catalogue.extraction import extract_activations
from catalogue.models import default_layers, load_model, prepared, random_demo_model
from catalogue.store import ActivationStore, LayerSpec


def synthetic_images(n: int, size: int, n_classes: int, transform) -> ArrayImageDataset:
    rng = np.random.default_rng(0)
    return ArrayImageDataset(
        rng.integers(0, 256, (n, size, size), dtype=np.uint8),
        np.arange(n) % n_classes,
        [f"img{i:06d}" for i in range(n)],
        name="synthetic",
        class_keys=[str(c) for c in range(n_classes)],
        class_names=[str(c) for c in range(n_classes)],
        transform=transform,
    )


def bare_forward(model, dataset, batch_size: int, workers: int, device: str) -> float:
    """Images/s of the plain model over the same loader: the floor extraction is measured against."""
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_samples,
        pin_memory=device == "cuda",
    )
    # on the device, channels-last and in eval mode, as extraction runs it
    with prepared(model, device=device, channels_last=True) as ready, torch.inference_mode():
        started = time.perf_counter()
        for batch in loader:
            images = batch.images.to(device, non_blocking=True).contiguous(
                memory_format=torch.channels_last
            )
            logits = ready.module(images)
            logits.argmax(1).cpu()
        return len(dataset) / (time.perf_counter() - started)


def bench_extraction(args: argparse.Namespace, workdir: Path) -> None:
    device = resolve_device(args.device)
    if args.model == "demo":
        model = random_demo_model()
    else:
        model = load_model(args.model, num_classes=10, input_size=args.input_size)
    dataset = synthetic_images(args.images, model.input_size[0], model.n_outputs, model.transform)
    layers = default_layers(model)
    print(
        f"model {model.name}, {args.images} images {model.input_size}, layers {layers}, device {device}"
    )
    bare_forward(model, synthetic_images(args.batch_size * 2, model.input_size[0], 10, model.transform),
                 args.batch_size, args.workers, device)  # fmt: skip
    bare_rates, extract_rates, loop_rates = [], [], []
    for rep in range(args.repeats):
        bare_rates.append(bare_forward(model, dataset, args.batch_size, args.workers, device))
        out = workdir / f"extract{rep}.h5"
        started = time.perf_counter()
        summary = extract_activations(
            model,
            dataset,
            layers,
            out,
            batch_size=args.batch_size,
            workers=args.workers,
            device=device,
        )
        extract_rates.append(args.images / (time.perf_counter() - started))
        loop_rates.append(summary.images_per_second)
        out.unlink()
    bare, extract, loop = max(bare_rates), max(extract_rates), max(loop_rates)
    pairs = sorted(e / b for e, b in zip(extract_rates, bare_rates, strict=True))
    print(f"  bare forward loop    : {bare:8.1f} images/s (best of {args.repeats})")
    print(
        f"  extract_activations  : {extract:8.1f} images/s (incl. setup: tracing, shape probe, new file)"
    )
    print(f"  extraction loop only : {loop:8.1f} images/s")
    print(
        f"  ratio extraction / bare = {extract / bare:.3f}  (overhead {100 * (1 - extract / bare):.1f} %)"
    )
    print(f"  ratio loop only / bare  = {loop / bare:.3f}")
    print(
        f"  per-pair ratios extraction / bare (each pair back to back): {', '.join(f'{r:.2f}' for r in pairs)}"
    )
    print(f"  median per-pair ratio = {pairs[len(pairs) // 2]:.3f}")


def bench_reads(args: argparse.Namespace, workdir: Path) -> None:
    path = workdir / "wide.h5"
    rows, units = args.rows, args.units
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    with ActivationStore.create(
        path, [LayerSpec("fc6", units, kind="fc", output_shape=(units,))], class_keys=["a", "b"]
    ) as store:
        block = 4096
        for start in range(0, rows, block):
            n = min(block, rows - start)
            acts = np.maximum(rng.standard_normal((n, units), dtype=np.float32), 0)
            store.append(
                {"fc6": acts}, labels=np.zeros(n, int), predictions=np.zeros(n, int),
                image_keys=[f"k{i}" for i in range(start, start + n)],
            )  # fmt: skip
        store.finish()
    write_s = time.perf_counter() - started
    size_mb = path.stat().st_size / 2**20
    print(f"\nstore: {rows:,} × {units:,} float32 written in {write_s:.1f} s, file {size_mb:,.0f} MiB "
          f"({size_mb / (rows * units * 4 / 2**20):.0%} of raw)")  # fmt: skip
    with ActivationStore.open(path) as store:
        timings = {}
        for label, lo, hi in (
            ("one unit", 1000, 1001),
            ("256-unit block", 512, 768),
            ("whole layer", 0, units),
        ):
            best = float("inf")
            for _ in range(args.repeats if label != "whole layer" else 1):
                started = time.perf_counter()
                data = store.read_units("fc6", lo, hi)
                best = min(best, time.perf_counter() - started)
            assert data.shape == (rows, hi - lo)
            timings[label] = best
        mask = store.correct
        started = time.perf_counter()
        store.read_units("fc6", 7, 8, rows=mask)
        masked = time.perf_counter() - started
    whole = timings["whole layer"]
    for label, seconds in timings.items():
        print(f"  {label:15s}: {seconds:7.3f} s  ({seconds / whole:.4f} × whole layer)")
    print(f"  one unit, row mask: {masked:6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="demo", help="demo (random weights) or a torchvision name"
    )
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--units", type=int, default=4096)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument("--skip-extraction", action="store_true")
    parser.add_argument("--skip-reads", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="unitcat-bench-") as tmp:
        if not args.skip_extraction:
            bench_extraction(args, Path(tmp))
        if not args.skip_reads:
            bench_reads(args, Path(tmp))


if __name__ == "__main__":
    main()
