"""Single-unit ablation: the fast path against a forward hook and a full forward pass per unit.

The fast path (`catalogue.ablation`) runs only the part of the network after the
ablated layer (`catalogue.models.split_at`), on the layer's output computed once
for the images (an fc layer's comes from the activation store in the pipeline;
here the head computes it once, and that time is counted), with many units
ablated per forward (the batch repeated, a different unit replaced in each copy).
The plain loop registers a forward hook that zeroes one unit on the layer's
module and runs the whole network over the images, once per unit. Both count
every class's correct images per unit and the counts are compared (they must be
equal). Sizes: AlexNet-shaped networks (torchvision ``alexnet(weights=None)``,
seeded) at 224², a few images, the first ``--units`` units of each layer (both
paths are linear in the units).

    .venv/bin/python bench/ablate.py [--images 16] [--conv-units 32] [--fc-units 256] [--threads 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from catalogue.ablation import count_correct, single_unit_masks
from catalogue.models import load_model, prepared

#: AlexNet's conv3 (after ReLU, a middle conv layer) and fc6 (after ReLU)
LAYERS = {"conv3": "features.7", "fc6": "classifier.2"}


def plain_loop(module: torch.nn.Module, node: str, images, labels, units, n_classes) -> np.ndarray:
    """A hook that zeroes one unit, a full forward pass per unit: (1 + units, C) counts."""
    target = dict(module.named_modules())[node]
    rows = []
    for unit in [None, *units]:
        handle = None
        if unit is not None:

            def zero(_m, _i, out, unit=unit):
                out = out.clone()
                out[:, unit] = 0
                return out

            handle = target.register_forward_hook(zero)
        try:
            predicted = module(images).argmax(dim=1)
        finally:
            if handle is not None:
                handle.remove()
        hits = (predicted == labels).numpy()
        rows.append(np.bincount(labels.numpy()[hits], minlength=n_classes))
    return np.array(rows)


def fast_path(ready, node: str, images, labels, units, n_classes) -> np.ndarray:
    split = ready.split(node)
    value = ready.extractor(split.extract, with_logits=False)(images)
    masks = single_unit_masks(value[node].shape[1])[[0, *(u + 1 for u in units)]]
    counts = count_correct(
        split.tail,
        value[node],
        [value[i] for i in split.inputs],
        labels,
        masks,
        torch.zeros(value[node].shape[1]),
        n_classes,
        max_rows=4096,
    )
    return counts.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--conv-units", type=int, default=32)
    parser.add_argument("--fc-units", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="best of N for each timing")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model = load_model("alexnet")  # weights=None, seeded: the same network every run
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.images, 3, 224, 224, generator=generator)
    with prepared(model) as ready, torch.inference_mode():
        labels = model.module(images).argmax(dim=1)  # the network's own classes: accuracy 1
        labels[::2] = (labels[::2] + 1) % 1000  # half of them wrong
        print(
            f"alexnet (random weights, seed 0), {args.images} images 224², "
            f"torch threads {torch.get_num_threads()}"
        )
        for name, node in LAYERS.items():
            n_units = args.conv_units if name.startswith("conv") else args.fc_units
            units = list(range(n_units))
            timings = {}
            results = {}
            for label, run in (("fast", fast_path), ("loop", plain_loop)):
                best = float("inf")
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    target = ready if label == "fast" else model.module
                    results[label] = run(target, node, images, labels, units, 1000)
                    best = min(best, time.perf_counter() - started)
                timings[label] = best
            same = np.array_equal(results["fast"], results["loop"])
            print(
                f"{name} ({node}), {n_units} units: fast {timings['fast']:.2f} s, plain loop "
                f"{timings['loop']:.2f} s -> {timings['loop'] / timings['fast']:.1f}x "
                f"(counts equal: {same})"
            )


if __name__ == "__main__":
    main()
