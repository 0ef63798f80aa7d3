"""Ablate every unit of one layer, then the class curves, over a feed of the layer's output.

`ablate_layer` is the unit of work a pipeline (or a cluster task, one block of
configurations at a time: `evaluate` takes any masks) runs per layer:

1. the replacement value of every unit (0, or its mean over the images);
2. one pass: the baseline (no unit replaced) and each unit alone, counted per
   class (`catalogue.ablation.core.count_correct`);
3. for the class curves, the units ranked per class (`rankings`), and one more
   pass over the distinct unit sets of every (class, ranking, k).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from catalogue.ablation.core import (
    VALUES,
    LayerAblation,
    configuration_masks,
    count_correct,
    curve_accuracies,
    single_unit_masks,
)
from catalogue.ablation.feeds import FeedBatch, ImageFeed, StoreFeed, layer_means
from catalogue.ablation.rankings import (
    ClassScores,
    CurveRequest,
    curve_ks,
    curve_requests,
    unique_unit_sets,
)
from catalogue.errors import InputError

#: bytes of repeated layer output per forward of the rest of the network (intermediates
#: of the rest take a few times this)
DEFAULT_ROW_BUDGET = 32 << 20

#: progress(done, total) in configuration × image evaluations
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CurvePlan:
    """Which class-ablation curves to compute for a layer."""

    rankings: Sequence[str]
    classes: Sequence[int] | None = None  # None: every class with images
    max_k: int | None = None  # None: up to every unit
    seed: int = 0
    scores: ClassScores | None = None  # needed by class_mean, ccmas and precision


@dataclass(frozen=True)
class CurvePoint:
    class_index: int
    ranking: str
    k: int
    units: tuple[int, ...]
    class_accuracy: float
    other_accuracy: float


def max_rows_for(feed_shape: Sequence[int], budget: int = DEFAULT_ROW_BUDGET) -> int:
    """Rows of repeated layer output per forward for a per-image output of this shape."""
    per_row = 4 * int(np.prod(feed_shape))
    return max(1, budget // max(per_row, 1))


def evaluate(
    tail: nn.Module,
    feed: Iterable[FeedBatch],
    masks: torch.Tensor,
    replacement: torch.Tensor,
    n_classes: int,
    *,
    max_rows: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(K, C) correct counts of every configuration in ``masks`` over the whole feed."""
    total: torch.Tensor | None = None
    for batch in feed:
        rows = max_rows or max_rows_for(batch.value.shape[1:])
        counts = count_correct(
            tail,
            batch.value,
            batch.inputs,
            batch.labels,
            masks,
            replacement,
            n_classes,
            max_rows=rows,
        )
        total = counts if total is None else total + counts
        if on_batch is not None:
            on_batch(int(batch.value.shape[0]))
    if total is None:
        return np.zeros((int(masks.shape[0]), n_classes), dtype=np.int64)
    return total.cpu().numpy()


def ablate_layer(
    tail: nn.Module,
    feed: StoreFeed | ImageFeed,
    *,
    layer: str,
    kind: str,
    n_units: int,
    n_classes: int,
    value: str = "zero",
    curves: CurvePlan | None = None,
    max_rows: int | None = None,
    device: torch.device | str = "cpu",
    on_progress: Progress | None = None,
) -> tuple[LayerAblation, list[CurvePoint]]:
    """Single-unit ablation of every unit of ``layer`` and (``curves``) its class curves."""
    check_value(value)
    sizes = np.bincount(feed.labels, minlength=n_classes).astype(np.int64)
    replacement = layer_means(feed, n_units) if value == "mean" else np.zeros(n_units)
    fill = torch.as_tensor(replacement, dtype=torch.float32, device=device)

    singles = single_unit_masks(n_units, device)
    done = [0]
    total = (int(singles.shape[0]) + curve_size(curves, sizes, n_units)) * feed.n_images

    def advance(n_configs: int) -> Callable[[int], None]:
        def step(n_images: int) -> None:
            done[0] += n_configs * n_images
            if on_progress is not None:
                on_progress(min(done[0], total), total)

        return step

    counts = evaluate(
        tail,
        feed,
        singles,
        fill,
        n_classes,
        max_rows=max_rows,
        on_batch=advance(int(singles.shape[0])),
    )
    result = layer_ablation(layer, kind, value, sizes, replacement, counts)
    if curves is None:
        return result, []
    plan = plan_curves(curves, result)
    set_counts = evaluate(
        tail,
        feed,
        configuration_masks(n_units, plan.unit_sets, device),
        fill,
        n_classes,
        max_rows=max_rows,
        on_batch=advance(len(plan.unit_sets)),
    )
    if on_progress is not None:
        on_progress(total, total)
    return result, curve_points(result, curves, plan, set_counts)


# The phases of `ablate_layer`, for a caller that evaluates the configurations elsewhere
# (blocks of them as cluster tasks: `catalogue.ablation.blocks`) and must give the same result.


def check_value(value: str) -> None:
    if value not in VALUES:
        raise InputError(
            f"value must be one of {', '.join(VALUES)}, got {value!r}.", argument="value"
        )


def layer_ablation(
    layer: str,
    kind: str,
    value: str,
    sizes: np.ndarray,
    replacement: np.ndarray,
    counts: np.ndarray,
) -> LayerAblation:
    """The layer's `LayerAblation` from the (1 + U, C) counts of `single_unit_masks`."""
    return LayerAblation(
        layer=layer,
        kind=kind,
        value=value,
        class_sizes=sizes,
        baseline_correct=counts[0],
        correct=counts[1:],
        replacement=replacement,
    )


@dataclass(frozen=True)
class CurveWork:
    """The class curves' points to compute: the classes, every (class, ranking, k)
    request, and the distinct unit sets they remove (``which[i]``: request i's set)."""

    classes: list[int]
    requests: list[CurveRequest]
    unit_sets: list[tuple[int, ...]]
    which: list[int]


def plan_curves(curves: CurvePlan, result: LayerAblation) -> CurveWork:
    """What the curves of ``curves`` need evaluated, given the layer's single-unit ablation."""
    n_units, n_classes = result.n_units, int(result.class_sizes.size)
    classes = _curve_classes(curves, result.class_sizes)
    requests = curve_requests(
        classes,
        curves.rankings,
        curve_ks(n_units, curves.max_k),
        scores=curves.scores
        if curves.scores is not None
        else _no_scores(curves, n_units, n_classes),
        ablation_change=result.accuracy_change,
        seed=curves.seed,
    )
    unit_sets, which = unique_unit_sets(requests)
    return CurveWork(classes, requests, unit_sets, which)


def curve_points(
    result: LayerAblation, curves: CurvePlan, work: CurveWork, set_counts: np.ndarray
) -> list[CurvePoint]:
    """Every curve point: k = 0 (the baseline) and each request, from its unit set's counts."""
    sizes = result.class_sizes
    points = [
        CurvePoint(c, ranking, 0, (), *curve_accuracies(result.baseline_correct, sizes, c))
        for c in work.classes
        for ranking in curves.rankings
    ]
    points += [
        CurvePoint(
            r.class_index,
            r.ranking,
            r.k,
            r.units,
            *curve_accuracies(set_counts[work.which[i]], sizes, r.class_index),
        )
        for i, r in enumerate(work.requests)
    ]
    return points


def curve_size(curves: CurvePlan | None, sizes: np.ndarray, n_units: int) -> int:
    """An upper bound of the curve configurations (for progress)."""
    if curves is None:
        return 0
    return (
        len(_curve_classes(curves, sizes))
        * len(curves.rankings)
        * len(curve_ks(n_units, curves.max_k))
    )


def _curve_classes(curves: CurvePlan, sizes: np.ndarray) -> list[int]:
    present = [int(c) for c in np.flatnonzero(sizes > 0)]
    if curves.classes is None:
        return present
    bad = [c for c in curves.classes if not 0 <= int(c) < sizes.size]
    if bad:
        raise InputError(
            f"curves.classes {bad} are not class indices 0..{sizes.size - 1}.",
            argument="curves.classes",
        )
    return [int(c) for c in dict.fromkeys(curves.classes) if sizes[int(c)] > 0]


def _no_scores(curves: CurvePlan, n_units: int, n_classes: int) -> ClassScores:
    needs = [r for r in curves.rankings if r not in ("ablation", "random")]
    if needs:
        raise InputError(f"the {', '.join(needs)} ranking(s) need the layer's class scores.")
    empty = np.full((n_units, n_classes), np.nan)
    return ClassScores(empty, empty, empty)
