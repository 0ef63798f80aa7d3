"""Scoring in blocks of units: here, or as Ray tasks, each reading its columns from the store.

Each block opens the run's store (on a Ray cluster: on a file system the
workers share), reads its block of units over the scored images and scores
it with `catalogue.selectivity.score_layer`; the blocks come back in order and
are joined into the per-layer scores (`catalogue.pipeline.scoring`). Without a
cluster the same blocks run here, one after the other (`map_blocks`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catalogue.cluster.session import Cluster
from catalogue.cluster.tasks import UnitBlock, by_layer, map_blocks, unit_blocks
from catalogue.errors import NotFound
from catalogue.selectivity import LayerScores, score_layer
from catalogue.store import ActivationStore


@dataclass(frozen=True)
class ScoreContext:
    """What every scoring task shares (sent to the workers once)."""

    path: str
    rows: np.ndarray
    labels: np.ndarray
    n_classes: int
    groups: Mapping[str, Sequence[int]]
    n_top_classes: int
    n_top_images: int
    device: str | None


def score_block(context: ScoreContext, block: UnitBlock) -> LayerScores:
    """Every measure for one block of units (runs on a worker)."""
    path = Path(context.path)
    if not path.is_file():
        raise NotFound(
            f"{path} is not readable on worker {socket.gethostname()}; keep activation files "
            "on a file system every node shares."
        )
    with ActivationStore.open(path) as store:
        values = store.read_units(block.layer, block.start, block.stop, rows=context.rows)
    return score_layer(
        values,
        context.labels,
        context.n_classes,
        groups=context.groups,
        n_top_classes=context.n_top_classes,
        n_top_images=context.n_top_images,
        device=context.device,
    )


def score_in_blocks(
    cluster: Cluster | None,
    context: ScoreContext,
    layer_units: Mapping[str, int],
    *,
    block_units: int,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, list[LayerScores]]:
    """Score every unit of ``layer_units`` in blocks of ``block_units``; per layer, the blocks' scores.

    ``on_progress(layer, units_done, units_total)`` as blocks come back.
    """
    blocks = unit_blocks(layer_units, block_units)
    done = dict.fromkeys(layer_units, 0)
    if on_progress is not None:
        for layer, units in layer_units.items():
            on_progress(layer, 0, units)

    def on_block(block: UnitBlock) -> None:
        done[block.layer] += block.n_units
        if on_progress is not None:
            on_progress(block.layer, done[block.layer], layer_units[block.layer])

    results = map_blocks(cluster, score_block, context, blocks, on_block=on_block)
    return by_layer(blocks, results)
