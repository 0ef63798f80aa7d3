"""Ablation in blocks of a layer's configurations: here, one after the other, or as Ray tasks.

Single-unit ablation evaluates 1 + U configurations of a layer (no unit
replaced, then each unit alone: `catalogue.ablation.single_unit_masks`); the
class curves one more per distinct unit set. Each is independent of the
others, so a block of them is one task (`map_blocks`): the worker loads the
model by its recipe (`ModelHandle`), builds the rest of the network after the
layer and the layer's feed (an fc layer's stored values, or the images through
the model's head) and returns the block's (K, C) correct counts
(`catalogue.ablation.evaluate`). The first block of a layer also counts the
baseline (mask row 0), so the baseline is computed once. The blocks come back
in order and are joined into the same counts the one-process
`catalogue.ablation.ablate_layer` computes, and the same phases
(`layer_ablation`, `plan_curves`, `curve_points`) turn them into the layer's
result. With ``cluster=None`` the blocks run here, one after the other.

The replacement value of each unit (0, or its mean over the images: one pass
over the feed) is one task per layer before the blocks.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from catalogue.ablation import (
    CurvePlan,
    CurvePoint,
    ImageFeed,
    LayerAblation,
    StoreFeed,
    configuration_masks,
    evaluate,
    layer_means,
    single_unit_masks,
)
from catalogue.ablation.driver import (
    check_value,
    curve_points,
    curve_size,
    layer_ablation,
    plan_curves,
)
from catalogue.ablation.feeds import layer_feed
from catalogue.cluster.handles import ModelHandle
from catalogue.cluster.session import Cluster
from catalogue.cluster.tasks import UnitBlock, map_blocks, unit_blocks
from catalogue.config import resolve_device
from catalogue.data import ImageDataset
from catalogue.errors import NotFound
from catalogue.models import prepared
from catalogue.store import ActivationStore

#: on_progress(done, total): configuration × image evaluations of the layer
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class AblateContext:
    """What every ablation task of a run shares (sent to the workers once per call).

    ``rows``/``labels``: the store rows ablated over and their classes; ``indices``: those
    images' dataset indices (for layers fed from the images); ``replacement``: per layer,
    each unit's replacement value; ``unit_sets``: per layer, the class curves' unit sets.
    """

    model: ModelHandle
    path: str
    rows: np.ndarray
    labels: np.ndarray
    n_classes: int
    kinds: Mapping[str, str]
    dataset: ImageDataset | None
    indices: np.ndarray | None
    use_store: bool
    batch_size: int
    workers: int
    device: str
    max_rows: int | None
    replacement: Mapping[str, np.ndarray] = field(default_factory=dict)
    unit_sets: Mapping[str, tuple[tuple[int, ...], ...]] = field(default_factory=dict)


@contextmanager
def _layer_work(
    context: AblateContext, layer: str
) -> Iterator[tuple[nn.Module, StoreFeed | ImageFeed, torch.device]]:
    """The rest of the network after ``layer``, its feed and the device, on this worker."""
    path = Path(context.path)
    if not path.is_file():
        raise NotFound(
            f"{path} is not readable on worker {socket.gethostname()}; keep activation files "
            "on a file system every node shares."
        )
    model = context.model.load()
    target = torch.device(resolve_device(context.device))
    with (
        ActivationStore.open(path) as store,
        prepared(model, device=target, channels_last=True) as ready,
        torch.inference_mode(),
    ):
        split = ready.split(layer)
        feed = layer_feed(
            ready,
            split,
            store,
            kind=context.kinds[layer],
            rows=context.rows,
            labels=context.labels,
            dataset=context.dataset,
            indices=context.indices,
            use_store=context.use_store,
            batch_size=context.batch_size,
            workers=context.workers,
            device=target,
        )
        yield split.tail, feed, target


def replacement_block(context: AblateContext, block: UnitBlock) -> np.ndarray:
    """(U,) each unit's mean over the images, for ``value="mean"`` (runs on a worker)."""
    with _layer_work(context, block.layer) as (_tail, feed, _target):
        return layer_means(feed, block.stop)


def _count(context: AblateContext, layer: str, masks: torch.Tensor) -> np.ndarray:
    with _layer_work(context, layer) as (tail, feed, target):
        fill = torch.as_tensor(context.replacement[layer], dtype=torch.float32, device=target)
        return evaluate(
            tail, feed, masks.to(target), fill, context.n_classes, max_rows=context.max_rows
        )


def ablate_block(context: AblateContext, block: UnitBlock) -> np.ndarray:
    """(K, C) correct counts with each unit ``block.start:block.stop`` replaced alone; the
    first block (start 0) begins with the baseline row, nothing replaced (runs on a worker)."""
    n_units = len(context.replacement[block.layer])
    first = 0 if block.start == 0 else 1 + block.start
    masks = single_unit_masks(n_units)[first : 1 + block.stop]
    return _count(context, block.layer, masks)


def curve_block(context: AblateContext, block: UnitBlock) -> np.ndarray:
    """(K, C) correct counts of the class curves' unit sets ``block.start:block.stop``."""
    n_units = len(context.replacement[block.layer])
    sets = context.unit_sets[block.layer][block.start : block.stop]
    return _count(context, block.layer, configuration_masks(n_units, sets))


def ablate_in_blocks(
    cluster: Cluster | None,
    context: AblateContext,
    layer: str,
    *,
    n_units: int,
    value: str = "zero",
    curves: CurvePlan | None = None,
    block_units: int | None = None,
    on_progress: Progress | None = None,
) -> tuple[LayerAblation, list[CurvePoint]]:
    """`catalogue.ablation.ablate_layer` of ``layer``, its configurations in blocks of
    ``block_units`` (default: the layer's units split evenly over the cluster's workers)."""
    check_value(value)
    size = block_units or -(-n_units // (cluster.slots if cluster is not None else 1))
    sizes = np.bincount(context.labels, minlength=context.n_classes).astype(np.int64)
    n_images = int(context.labels.size)
    total = (1 + n_units + curve_size(curves, sizes, n_units)) * n_images
    done = [0]

    def advance(block: UnitBlock, baseline: bool = False) -> None:
        done[0] += (block.n_units + (baseline and block.start == 0)) * n_images
        if on_progress is not None:
            on_progress(min(done[0], total), total)

    if value == "mean":
        (replacement,) = map_blocks(
            cluster, replacement_block, context, [UnitBlock(layer, 0, n_units)]
        )
    else:
        replacement = np.zeros(n_units)
    context = dataclasses.replace(context, replacement={layer: replacement})
    blocks = unit_blocks({layer: n_units}, size)
    counts = np.concatenate(
        map_blocks(
            cluster, ablate_block, context, blocks, on_block=lambda b: advance(b, baseline=True)
        )
    )
    result = layer_ablation(layer, context.kinds[layer], value, sizes, replacement, counts)
    if curves is None:
        return result, []
    work = plan_curves(curves, result)
    context = dataclasses.replace(context, unit_sets={layer: tuple(work.unit_sets)})
    set_blocks = unit_blocks({layer: len(work.unit_sets)}, size)
    set_counts = np.concatenate(
        [
            np.zeros((0, context.n_classes), dtype=np.int64),
            *map_blocks(cluster, curve_block, context, set_blocks, on_block=advance),
        ]
    )
    if on_progress is not None:
        on_progress(total, total)
    return result, curve_points(result, curves, work, set_counts)
