"""Network dissection IoU: `unit_concept_iou` against a per-unit, per-concept Python loop.

Size: 256 units, 30 concepts, 8 × 8 maps upsampled to 64 × 64 masks (a
conv5-like layer on a small probe set). The fast path runs both passes
(thresholds, then IoU) over all probe images; the loop baseline —
upsample each unit's map, threshold it, and count intersection and union
with each concept's mask with numpy — is timed on a subset of images and
extrapolated per image (its cost is linear in the images), using the fast
path's thresholds so that its counts can be checked against the fast
path's on the same subset.

    .venv/bin/python bench/dissect.py [--images 256] [--slow-images 4] [--device auto] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.nn import functional

from catalogue.config import resolve_device
from catalogue.dissection import unit_concept_iou
from catalogue.probe import ImageMasks


def make_data(n: int, units: int, concepts: int, h: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    maps = np.maximum(rng.normal(size=(n, units, h, h)), 0).astype(np.float32)
    coarse = rng.random((n, concepts, size // 4, size // 4))
    cover = rng.uniform(0.02, 0.4, size=(1, concepts, 1, 1))
    masks = np.repeat(np.repeat(coarse < cover, 4, axis=2), 4, axis=3)
    return maps, masks


def loop_counts(maps: np.ndarray, masks: np.ndarray, thresholds: np.ndarray):
    """The straightforward way: for each image, unit and concept, count pixels with numpy."""
    n, units = maps.shape[:2]
    k, size = masks.shape[1], masks.shape[2:]
    inter = np.zeros((units, k), dtype=np.int64)
    union = np.zeros((units, k), dtype=np.int64)
    for i in range(n):
        for u in range(units):
            up = functional.interpolate(
                torch.from_numpy(maps[i, u][None, None]),
                size=size,
                mode="bilinear",
                align_corners=False,
            )[0, 0].numpy()
            fire = up > thresholds[u]
            for c in range(k):
                inter[u, c] += np.count_nonzero(fire & masks[i, c])
                union[u, c] += np.count_nonzero(fire | masks[i, c])
    return inter, union


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--slow-images", type=int, default=4)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--concepts", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (the loop uses one)"
    )
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    maps, masks = make_data(args.images, args.units, args.concepts, 8, 64)
    print(
        f"{args.images} images, {args.units} units, {args.concepts} concepts, "
        f"8x8 maps -> 64x64 masks, device {device}, torch threads {torch.get_num_threads()}"
    )

    unit_concept_iou(maps[:8], masks[:8], device=device)  # warm-up
    t = time.perf_counter()
    fast = unit_concept_iou(maps, masks, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    fast_s = (time.perf_counter() - t) / args.images

    sparse = [ImageMasks(np.flatnonzero(m.any(axis=(1, 2))), m[m.any(axis=(1, 2))]) for m in masks]
    t = time.perf_counter()
    unit_concept_iou(maps, sparse, n_concepts=args.concepts, device=device)
    sparse_s = (time.perf_counter() - t) / args.images

    sub = slice(0, args.slow_images)
    t = time.perf_counter()
    inter, union = loop_counts(maps[sub], masks[sub], fast.thresholds)
    slow_s = (time.perf_counter() - t) / args.slow_images

    check = unit_concept_iou(maps[sub], masks[sub], thresholds=fast.thresholds, device=device)
    same = np.array_equal(check.intersection, inter) and np.array_equal(check.union, union)
    print(f"loop and unit_concept_iou counts identical on {args.slow_images} images: {same}")
    print(f"{'method':<46}{'ms / image':>12}{'speed-up':>10}")
    for label, seconds in (
        ("python loop (per unit, per concept; subset)", slow_s),
        ("unit_concept_iou, dense masks (2 passes)", fast_s),
        ("unit_concept_iou, ImageMasks (2 passes)", sparse_s),
    ):
        print(f"{label:<46}{seconds * 1e3:>12.2f}{slow_s / seconds:>10.1f}")
    if not same:
        raise SystemExit("the loop and unit_concept_iou disagree")


if __name__ == "__main__":
    main()
