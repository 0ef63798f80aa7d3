"""The Ray path on a small run: speed-up of 2 workers over 1, and its overhead over one process.

The same work three ways, in this run: in one process (the default path, one
torch thread, as a Ray worker has), on a local Ray cluster of 1 CPU
(``--cluster local:1``) and of 2 CPUs (``local:2``). The work: extraction of an
AlexNet-shaped network with random weights over synthetic images into HDF5
(image shards on the cluster), scoring every unit of its layers (unit blocks),
dissecting conv5 on a small probe set (probe shards) and ablating the first
``--ablate-units`` units of fc6, one at a time, over ``--ablate-images`` images
read from the store (blocks of ``--ablate-block`` units as tasks; in one process
the same configurations in one pass, as `catalogue.ablation.ablate_layer` runs
them). Printed per step:

- overhead = local:1 time ÷ one-process time (what the cluster path costs when
  it brings no parallelism: tasks, object store, shard files, the merge);
- speed-up = local:1 time ÷ local:2 time (target on an idle 2-core machine:
  well above 1; a shared, loaded machine shows less);

and the start-up of each cluster (``ray.init``, the workers importing torch
and loading the model from its recipe), which a command pays once. The cluster's workers use one thread each,
so the one-process path is timed with one torch thread too (``--threads``).

    .venv/bin/python bench/cluster.py [--images 1024] [--input-size 112] [--shard-images 128]
                                      [--probe-images 64] [--ablate-units 128]
                                      [--ablate-images 64] [--ablate-block 32]
                                      [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from catalogue.ablation import StoreFeed, evaluate, single_unit_masks
from catalogue.ablation.blocks import AblateContext, ablate_block
from catalogue.cluster import Cluster, UnitBlock, connect, map_blocks, unit_blocks
from catalogue.cluster.handles import ModelHandle
from catalogue.data import ArrayImageDataset
from catalogue.dissection import dissect
from catalogue.extraction import extract_activations
from catalogue.models import ModelInfo, load_model, prepared
from catalogue.pipeline.dissect import build_probe
from catalogue.pipeline.scoring import TOP_IMAGES
from catalogue.probe import ProbeSet
from catalogue.scoring import ScoreContext, score_in_blocks
from catalogue.selectivity import score_layer
from catalogue.store import ActivationStore

LAYERS = ["features.11", "classifier.2", "classifier.5"]  # conv5, fc6, fc7 of AlexNet
BLOCK_UNITS = 256
ABLATE_LAYER = "classifier.2"  # fc6: ablated from its stored values


def synthetic_images(n: int, transform: Any, n_classes: int = 1000) -> ArrayImageDataset:
    rng = np.random.default_rng(0)
    return ArrayImageDataset(
        rng.integers(0, 256, (n, 64, 64), dtype=np.uint8),
        np.arange(n) % n_classes,
        [f"img{i:06d}" for i in range(n)],
        name="synthetic",
        class_keys=[str(c) for c in range(n_classes)],
        class_names=[str(c) for c in range(n_classes)],
        transform=transform,
    )


def _warm(model: ModelHandle, _block: UnitBlock) -> int:
    """A worker's start-up, timed apart from the steps: import what they import, load the model."""

    model.load()  # kept by the worker for the steps (by its checksum)
    return os.getpid()


def score_here(path: Path, device: str) -> None:
    """The one-process scoring loop (as `catalogue.pipeline.scoring` runs it), every image."""
    with ActivationStore.open(path) as store:
        labels = store.labels
        for layer in store.layer_names:
            for _start, _stop, values in store.iter_unit_blocks(layer, BLOCK_UNITS):
                score_layer(values, labels, store.n_classes, device=device)


def score_there(cluster: Cluster, path: Path, device: str) -> None:
    with ActivationStore.open(path) as store:
        labels = store.labels
        context = ScoreContext(
            str(path),
            np.ones(len(labels), dtype=bool),
            labels,
            store.n_classes,
            {},
            5,
            TOP_IMAGES,
            device,
        )
        layers = {name: store.layer_shape(name)[1] for name in store.layer_names}
    score_in_blocks(cluster, context, layers, block_units=BLOCK_UNITS)


def ablate_here(model: ModelInfo, path: Path, args: argparse.Namespace) -> np.ndarray:
    """The one-process path: every configuration (nothing replaced, then each of the first
    ``--ablate-units`` units alone) in one pass over the stored fc6 values."""
    target = torch.device(args.device)
    with (
        ActivationStore.open(path) as store,
        prepared(model, device=target, channels_last=True) as ready,
        torch.inference_mode(),
    ):
        rows = np.arange(args.ablate_images)
        labels = store.labels[rows].astype(np.int64)
        n_units = store.layer_shape(ABLATE_LAYER)[1]
        feed = StoreFeed(
            store, ABLATE_LAYER, rows, labels, batch_size=args.batch_size, device=target
        )
        masks = single_unit_masks(n_units)[: 1 + args.ablate_units]
        return evaluate(
            ready.split(ABLATE_LAYER).tail, feed, masks, torch.zeros(n_units), store.n_classes
        )


def ablate_there(
    cluster: Cluster, model: ModelInfo, path: Path, args: argparse.Namespace
) -> np.ndarray:
    """The same configurations in blocks of ``--ablate-block`` units, as Ray tasks."""
    with ActivationStore.open(path) as store:
        rows = np.arange(args.ablate_images)
        labels = store.labels[rows].astype(np.int64)
        n_units, n_classes = store.layer_shape(ABLATE_LAYER)[1], store.n_classes
    context = AblateContext(
        ModelHandle.of(model), str(path), rows, labels, n_classes, {ABLATE_LAYER: "fc"},
        None, None, True, args.batch_size, 0, args.device, None,
        replacement={ABLATE_LAYER: np.zeros(n_units)},
    )  # fmt: skip
    blocks = unit_blocks({ABLATE_LAYER: args.ablate_units}, args.ablate_block)
    return np.concatenate(map_blocks(cluster, ablate_block, context, blocks))


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


#: each run's ablation counts, the one-process run's first
ablated: list[np.ndarray] = []


def run(
    args: argparse.Namespace, model: ModelInfo, cluster: Cluster | None, out: Path, probe: ProbeSet
) -> dict[str, float]:
    """Seconds of each step, one process (``cluster`` None) or on the cluster."""
    data = synthetic_images(args.images, model.transform)
    h5 = out / f"{cluster.spec.replace(':', '') if cluster else 'one'}.h5"
    common = {"batch_size": args.batch_size, "device": args.device}
    if cluster is None:
        steps = {
            "extract": lambda: extract_activations(model, data, LAYERS, h5, **common),
            "score": lambda: score_here(h5, args.device),
            "dissect": lambda: dissect(model, LAYERS[:1], probe, device=args.device),
            "ablate": lambda: ablated.append(ablate_here(model, h5, args)),
        }
    else:
        steps = {
            "extract": lambda: extract_activations(
                model, data, LAYERS, h5, cluster=cluster, shard_images=args.shard_images, **common
            ),
            "score": lambda: score_there(cluster, h5, args.device),
            "dissect": lambda: dissect(
                model, LAYERS[:1], probe, device=args.device, cluster=cluster
            ),
            "ablate": lambda: ablated.append(ablate_there(cluster, model, h5, args)),
        }
    seconds = {name: timed(step) for name, step in steps.items()}
    # the cluster's counts are the one process's (the check that the comparison is fair)
    np.testing.assert_array_equal(ablated[-1], ablated[0])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--input-size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--shard-images", type=int, default=128)
    parser.add_argument("--probe-images", type=int, default=64)
    parser.add_argument("--ablate-units", type=int, default=128)
    parser.add_argument("--ablate-images", type=int, default=64)
    parser.add_argument("--ablate-block", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, one-process path")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    args.ablate_images = min(args.ablate_images, args.images)  # rows of the extraction
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local cluster for this run only
    torch.set_num_threads(args.threads)
    print(
        f"load average {os.getloadavg()[0]:.1f}; AlexNet (random weights) {args.input_size}², "
        f"{args.images} images, batch {args.batch_size}, shards of {args.shard_images}; "
        f"scoring {', '.join(LAYERS)} in blocks of {BLOCK_UNITS}; dissecting {LAYERS[0]} on "
        f"{args.probe_images} probe images; ablating {args.ablate_units} units of fc6 over "
        f"{args.ablate_images} images in blocks of {args.ablate_block}; device {args.device}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="unitcat-bench-cluster-") as tmp:
        out = Path(tmp)
        probe = build_probe("digits", n_images=args.probe_images, image_size=64, out_dir=out / "p")
        model = load_model("alexnet", input_size=args.input_size)
        times: dict[str, dict[str, float]] = {"one process": run(args, model, None, out, probe)}
        startup: dict[str, float] = {}
        for n in (1, 2):
            spec = f"local:{n}"
            started = time.perf_counter()
            with connect(spec) as cluster:
                assert cluster is not None
                blocks = [UnitBlock("warm", i, i + 1) for i in range(n)]
                map_blocks(cluster, _warm, ModelHandle.of(model), blocks)
                startup[spec] = time.perf_counter() - started
                times[spec] = run(args, model, cluster, out, probe)
            print(f"{spec}: {times[spec]}  (start-up {startup[spec]:.1f} s)", flush=True)
    print(f"one process: {times['one process']}")
    print(f"\nload average now {os.getloadavg()[0]:.1f}")
    print(
        f"{'step':<10}{'one process':>13}{'local:1':>10}{'local:2':>10}"
        f"{'overhead (1 ÷ one)':>21}{'speed-up (1 ÷ 2)':>19}"
    )
    for step in ("extract", "score", "dissect", "ablate"):
        one, w1, w2 = (times[k][step] for k in ("one process", "local:1", "local:2"))
        print(f"{step:<10}{one:>12.2f}s{w1:>9.2f}s{w2:>9.2f}s{w1 / one:>21.2f}{w1 / w2:>19.2f}")
    total = {k: sum(v.values()) for k, v in times.items()}
    print(
        f"{'all':<10}{total['one process']:>12.2f}s{total['local:1']:>9.2f}s"
        f"{total['local:2']:>9.2f}s{total['local:1'] / total['one process']:>21.2f}"
        f"{total['local:1'] / total['local:2']:>19.2f}"
    )
    print(
        "start-up (ray.init, workers importing torch and loading the model): "
        f"local:1 {startup['local:1']:.1f} s, "
        f"local:2 {startup['local:2']:.1f} s"
    )


if __name__ == "__main__":
    main()
