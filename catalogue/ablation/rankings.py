"""Class-ablation curves (Bau et al. 2020): which units to remove first for a class.

For a class c the layer's units are ranked by a score for c, and the top k are
removed together for k = 1, 2, 4, 8, … (and finally every unit). Rankings:

- ``ablation``: the single-unit ablation effect on c (most harmful first): what
  Bau et al. rank by;
- ``class_mean``: the unit's mean activation over the images of c;
- ``ccmas``: class-conditional mean activity selectivity for c,
  (mu_c - mu_notc) / (mu_c + mu_notc) (Morcos et al. 2018), NaN last;
- ``precision``: the share of c among the unit's 60 (``TOP_K_PRECISION``) most active images, ties at
  the cut-off shared out in proportion as in the catalogue's ``precision``
  (Zhou et al. 2015);
- ``random``: a seeded random order, the control.

The selectivity rankings use the stored per-image values (a conv unit's spatial
maximum or mean, as extracted) over the images its scoring run scores (by
default the correctly classified ones), the same values the catalogue's
measures come from. Ties go to the higher class-conditional mean, then to the
lower unit index, so every ranking is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from catalogue.errors import InputError
from catalogue.measures import TOP_K_PRECISION

RANKINGS = ("ablation", "class_mean", "ccmas", "precision", "random")
TOP_K = TOP_K_PRECISION


def curve_ks(n_units: int, max_k: int | None = None) -> list[int]:
    """1, 2, 4, … up to ``max_k`` (default every unit), ending with ``max_k`` itself."""
    limit = n_units if max_k is None else min(int(max_k), n_units)
    if limit < 1:
        return []
    ks = [1]
    while ks[-1] * 2 <= limit:
        ks.append(ks[-1] * 2)
    if ks[-1] != limit:
        ks.append(limit)
    return ks


@dataclass(frozen=True)
class ClassScores:
    """Per unit and class (U, C): mean activation, CCMAS and top-60 share."""

    class_mean: np.ndarray
    ccmas: np.ndarray
    precision: np.ndarray


def class_scores(values: np.ndarray, labels: np.ndarray, n_classes: int) -> ClassScores:
    """Selectivity of every unit for every class, from (N, U) values and (N,) labels."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n_images, n_units = values.shape
    sizes = np.bincount(labels, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_units, n_classes))
    if n_images:
        order = np.argsort(labels, kind="stable")
        present = np.flatnonzero(sizes)
        starts = np.concatenate([[0], np.cumsum(sizes[present])[:-1]]).astype(np.int64)
        sums[:, present] = np.add.reduceat(values[order], starts, axis=0).T
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_in = np.where(sizes > 0, sums / np.maximum(sizes, 1), np.nan)
        n_out = n_images - sizes
        mean_out = np.where(
            n_out > 0, (sums.sum(axis=1, keepdims=True) - sums) / np.maximum(n_out, 1), np.nan
        )
        denominator = mean_in + mean_out
        ccmas = np.where(denominator > 0, (mean_in - mean_out) / denominator, np.nan)
    return ClassScores(mean_in, ccmas, top_share(values, labels, n_classes))


def concatenate_scores(parts: Sequence[ClassScores]) -> ClassScores:
    """Scores of consecutive unit blocks as one layer's."""
    return ClassScores(
        np.concatenate([p.class_mean for p in parts]),
        np.concatenate([p.ccmas for p in parts]),
        np.concatenate([p.precision for p in parts]),
    )


def top_share(values: np.ndarray, labels: np.ndarray, n_classes: int, k: int = TOP_K) -> np.ndarray:
    """(U, C): each class's share of each unit's ``k`` most active images; the images tied at
    the cut-off share the remaining places in proportion (their expected count)."""
    values = np.asarray(values)
    n_images, n_units = values.shape
    out = np.zeros((n_units, n_classes))
    k = min(k, n_images)
    if k == 0:
        return out
    cut = np.partition(values, n_images - k, axis=0)[n_images - k]
    above = values > cut
    tied = values == cut
    counts_above = _class_counts(above, labels, n_classes)
    counts_tied = _class_counts(tied, labels, n_classes)
    slots = k - counts_above.sum(axis=1, keepdims=True)
    n_tied = counts_tied.sum(axis=1, keepdims=True)
    return (counts_above + slots * counts_tied / np.maximum(n_tied, 1)) / k


def _class_counts(selected: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    rows, units = np.nonzero(selected)
    flat = units * n_classes + labels[rows]
    return np.bincount(flat, minlength=selected.shape[1] * n_classes).reshape(-1, n_classes)


def rank_units(
    ranking: str,
    class_index: int,
    *,
    scores: ClassScores,
    ablation_change: np.ndarray | None,
    seed: int = 0,
) -> np.ndarray:
    """Unit indices in the order ``ranking`` removes them for ``class_index``."""
    mean = scores.class_mean[:, class_index]
    n_units = mean.shape[0]
    if ranking == "random":
        return np.random.default_rng([seed, class_index]).permutation(n_units)
    if ranking == "ablation":
        if ablation_change is None:
            raise InputError("the ablation ranking needs single-unit ablation results.")
        primary = -ablation_change[:, class_index]
    elif ranking == "class_mean":
        primary = mean
    elif ranking == "ccmas":
        primary = scores.ccmas[:, class_index]
    elif ranking == "precision":
        primary = scores.precision[:, class_index]
    else:
        raise InputError(f"unknown ranking {ranking!r}; choose from {', '.join(RANKINGS)}.")
    primary = np.where(np.isnan(primary), -np.inf, primary)
    secondary = np.where(np.isnan(mean), -np.inf, mean)
    return np.lexsort((np.arange(n_units), -secondary, -primary))


@dataclass(frozen=True)
class CurveRequest:
    """One point of a class-ablation curve: remove ``units`` (the top ``k`` by ``ranking``)."""

    class_index: int
    ranking: str
    k: int
    units: tuple[int, ...]


def curve_requests(
    classes: Iterable[int],
    rankings: Sequence[str],
    ks: Sequence[int],
    *,
    scores: ClassScores,
    ablation_change: np.ndarray | None,
    seed: int = 0,
) -> list[CurveRequest]:
    """Every (class, ranking, k) point; k = 0 (nothing removed) is added by the caller."""
    out = []
    for c in classes:
        for ranking in rankings:
            order = rank_units(
                ranking, int(c), scores=scores, ablation_change=ablation_change, seed=seed
            )
            out += [
                CurveRequest(int(c), ranking, int(k), tuple(int(u) for u in order[:k])) for k in ks
            ]
    return out


def unique_unit_sets(requests: Sequence[CurveRequest]) -> tuple[list[tuple[int, ...]], list[int]]:
    """The distinct unit sets (as sorted tuples) and, per request, the index of its set: many
    requests remove the same units (every ranking at k = all units, say)."""
    index: dict[tuple[int, ...], int] = {}
    which = []
    for request in requests:
        key = tuple(sorted(request.units))
        which.append(index.setdefault(key, len(index)))
    return list(index), which


def check_rankings(rankings: Sequence[str]) -> list[str]:
    unknown = [r for r in rankings if r not in RANKINGS]
    if unknown:
        raise InputError(
            f"unknown ranking {', '.join(unknown)}; choose from {', '.join(RANKINGS)}."
        )
    return list(dict.fromkeys(rankings))
