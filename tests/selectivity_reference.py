"""A slow, literal implementation of docs/DESIGN.md's measures, for the tests only.

Straight from the definitions: loops over every class and every distinct
threshold, exact rational arithmetic (`Fraction`), and for the expected-value
tie rules an enumeration of every way to fill the remaining top-k slots from
the tied images (or, when there are too many ways, the closed form: linear
shares for counts, the hypergeometric probability for "class present").
Nothing here is shared with `catalogue.selectivity`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from itertools import combinations

NAN = float("nan")
ENUMERATION_LIMIT = 200


def _f(x: Fraction | float | None) -> float:
    return NAN if x is None else float(x)


def tie_split(a: Sequence[float], k: int) -> tuple[list[int], list[int], int]:
    """(images strictly above the k-th value, images at it, free slots r)."""
    k = min(k, len(a))
    cut = sorted(a, reverse=True)[k - 1]
    above = [i for i, v in enumerate(a) if v > cut]
    tied = [i for i, v in enumerate(a) if v == cut]
    return above, tied, k - len(above)


def expected_over_ties(
    a: Sequence[float],
    k: int,
    value: Callable[[list[int]], Fraction],
    closed_form: Callable[[list[int], list[int], int], Fraction],
    enumerate_limit: int = ENUMERATION_LIMIT,
) -> Fraction:
    """E[value(top-k set)] when the tied images at the cut-off come in random order."""
    above, tied, r = tie_split(a, k)
    if math.comb(len(tied), r) <= enumerate_limit:
        choices = list(combinations(tied, r))
        return sum((value(above + list(c)) for c in choices), Fraction(0)) / len(choices)
    return closed_form(above, tied, r)


def class_count_expectation(
    a: Sequence[float], y: Sequence[int], k: int, members: set[int], limit: int = ENUMERATION_LIMIT
) -> Fraction:
    """Expected number of images with label in `members` among the top k."""

    def value(chosen: list[int]) -> Fraction:
        return Fraction(sum(1 for i in chosen if y[i] in members))

    def closed(above: list[int], tied: list[int], r: int) -> Fraction:
        n_tied = sum(1 for i in tied if y[i] in members)
        return value(above) + Fraction(r * n_tied, len(tied))

    return expected_over_ties(a, k, value, closed, limit)


def distinct_class_expectation(
    a: Sequence[float],
    y: Sequence[int],
    k: int,
    counts: Callable[[int], bool] = lambda i: True,
    limit: int = ENUMERATION_LIMIT,
) -> Fraction:
    """Expected number of distinct classes among the top k images that pass `counts`."""

    def value(chosen: list[int]) -> Fraction:
        return Fraction(len({y[i] for i in chosen if counts(i)}))

    def closed(above: list[int], tied: list[int], r: int) -> Fraction:
        have = {y[i] for i in above if counts(i)}
        total = Fraction(len(have))
        m = len(tied)
        for c in {y[i] for i in tied if counts(i)} - have:
            h = sum(1 for i in tied if y[i] == c and counts(i))
            total += 1 - Fraction(math.comb(m - h, r), math.comb(m, r))
        return total

    return expected_over_ties(a, k, value, closed, limit)


def best_informedness(
    a: Sequence[float], positive: Sequence[bool]
) -> tuple[Fraction, float, int, int] | None:
    """Max over thresholds of TPR - FPR (highest threshold on ties): (J, t, TP, FP)."""
    n = len(a)
    n_pos = sum(positive)
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    best = None
    for t in sorted(set(a), reverse=True):
        tp = sum(1 for v, p in zip(a, positive, strict=True) if v >= t and p)
        fp = sum(1 for v, p in zip(a, positive, strict=True) if v >= t and not p)
        j = Fraction(tp, n_pos) - Fraction(fp, n_neg)
        if best is None or j > best[0]:
            best = (j, t, tp, fp)
    return best


def _ccmas(mu_in: Fraction | None, mu_out: Fraction | None) -> float:
    if mu_in is None or mu_out is None or mu_in + mu_out <= 0:
        return NAN
    return float((mu_in - mu_out) / (mu_in + mu_out))


def _mean(values: list[float]) -> Fraction | None:
    return sum(map(Fraction, values), Fraction(0)) / len(values) if values else None


def reference_unit(
    a: Sequence[float],
    y: Sequence[int],
    n_classes: int,
    *,
    top_k: int = 60,
    top_n_classes: int = 100,
    precision_target: float = 0.95,
    csi_top_n: int = 100,
    csi_threshold: float = 1.0,
) -> dict[str, object]:
    """Every column of docs/DESIGN.md's unit_metrics for one unit."""
    a = [float(v) for v in a]
    y = [int(c) for c in y]
    n = len(a)
    present = sorted(set(y))
    size = {c: y.count(c) for c in present}
    out: dict[str, object] = {}

    # localist
    out["localist"], out["localist_class"] = False, -1
    for c in present:
        inside = [v for v, lab in zip(a, y, strict=True) if lab == c]
        outside = [v for v, lab in zip(a, y, strict=True) if lab != c]
        if min(inside) > max(outside, default=-math.inf):
            out["localist"], out["localist_class"] = True, c
            break

    # precision among the top k
    k = min(top_k, n)
    shares = [class_count_expectation(a, y, k, {c}) / k for c in range(n_classes)]
    best = max(shares)
    out["precision"] = float(best)
    out["precision_class"] = shares.index(best)
    out["top60_threshold"] = sorted(a, reverse=True)[k - 1]
    out["classes_in_top100"] = float(distinct_class_expectation(a, y, top_n_classes))

    # CCMAS
    means = {c: _mean([v for v, lab in zip(a, y, strict=True) if lab == c]) for c in present}
    top_mean = max(means.values())
    c = min(c for c in present if means[c] == top_mean)
    ccmas = _ccmas(means[c], _mean([v for v, lab in zip(a, y, strict=True) if lab != c]))
    out["ccmas"] = ccmas
    out["ccmas_class"] = -1 if math.isnan(ccmas) else c

    # recall at 100% precision
    top = max(a)
    top_classes = {lab for v, lab in zip(a, y, strict=True) if v == top}
    if len(top_classes) > 1:
        out["recall_at_p100"] = 0.0
    else:
        (c,) = top_classes
        others = max((v for v, lab in zip(a, y, strict=True) if lab != c), default=-math.inf)
        above = sum(1 for v, lab in zip(a, y, strict=True) if lab == c and v > others)
        out["recall_at_p100"] = above / size[c]

    # recall at 95% precision
    target = Fraction(precision_target)
    best_recall = Fraction(0)
    for c in present:
        for t in set(a):
            tp = sum(1 for v, lab in zip(a, y, strict=True) if v >= t and lab == c)
            sel = sum(1 for v in a if v >= t)
            if Fraction(tp, sel) >= target:
                best_recall = max(best_recall, Fraction(tp, size[c]))
    out["recall_at_p95"] = float(best_recall)

    # maximum informedness: lowest class first, then highest threshold
    mi = None
    for c in present:
        res = best_informedness(a, [lab == c for lab in y])
        if res is not None and (mi is None or res[0] > mi[0]):
            mi = (res[0], res[1], res[2], res[3], c)
    if mi is None:
        out.update(
            max_informedness=NAN,
            mi_class=-1,
            mi_threshold=NAN,
            recall_at_mi=NAN,
            specificity_at_mi=NAN,
            false_alarm_rate=NAN,
        )
    else:
        j, t, tp, fp, c = mi
        out.update(
            max_informedness=float(j),
            mi_class=c,
            mi_threshold=t,
            recall_at_mi=tp / size[c],
            specificity_at_mi=(n - size[c] - fp) / (n - size[c]),
            false_alarm_rate=fp / (tp + fp),
        )

    # Gale et al.'s minimal bar: best min(hit rate, precision), lowest class on ties
    bar, bar_class = Fraction(-1), -1
    for c in present:
        for t in set(a):
            tp = sum(1 for v, lab in zip(a, y, strict=True) if v >= t and lab == c)
            sel = sum(1 for v in a if v >= t)
            value = min(Fraction(tp, size[c]), Fraction(tp, sel))
            if value > bar or (value == bar and c < bar_class):
                bar, bar_class = value, c
    out["detector_bar"] = float(bar)
    out["detector_bar_class"] = bar_class
    out["constant"] = len(set(a)) == 1

    out["frac_zero"] = sum(1 for v in a if v == 0) / n
    out["mean_activation"] = float(_mean(a))
    out["max_activation"] = top
    out["class_selectivity_index"] = reference_csi(a, y, csi_top_n, csi_threshold)
    return out


def reference_csi(a: Sequence[float], y: Sequence[int], top_n: int, threshold: float) -> float:
    """Rafegas et al. (2020): (N - M) / (N - 1) over the N most active images."""
    a_max = max(a)
    n = min(top_n, len(a))
    if a_max <= 0:
        return 0.0
    if threshold >= 1:
        m = distinct_class_expectation(a, y, n, counts=lambda i: a[i] > 0)
    else:
        order = sorted(range(len(a)), key=lambda i: (-a[i], i))[:n]
        weight: dict[int, Fraction] = {}
        for i in order:
            weight[y[i]] = weight.get(y[i], Fraction(0)) + Fraction(max(a[i], 0)) / Fraction(a_max)
        total = sum(weight.values())
        freqs = sorted((w / total for w in weight.values()), reverse=True)
        cum, m = Fraction(0), 0
        for f in freqs:
            cum += f
            m += 1
            if cum >= Fraction(threshold):
                break
    if n == 1:
        return 1.0
    return float((n - m) / Fraction(n - 1))


def reference_group(
    a: Sequence[float], y: Sequence[int], members: set[int], top_k: int = 60
) -> dict[str, float]:
    """The paper's Tables 4–6 columns for class group `members` against the rest."""
    a = [float(v) for v in a]
    inside = [v for v, lab in zip(a, y, strict=True) if lab in members]
    outside = [v for v, lab in zip(a, y, strict=True) if lab not in members]
    mu_in, mu_out = _mean(inside), _mean(outside)
    k = min(top_k, len(a))
    res = best_informedness(a, [lab in members for lab in y])
    return {
        "n_nonzero_in": sum(v > 0 for v in inside) / len(inside) if inside else NAN,
        "n_nonzero_out": sum(v > 0 for v in outside) / len(outside) if outside else NAN,
        "mu_in": _f(mu_in),
        "mu_out": _f(mu_out),
        "precision": float(class_count_expectation(a, y, k, members) / k),
        "ccmas": _ccmas(mu_in, mu_out),
        "max_informedness": NAN if res is None else float(res[0]),
        "mi_threshold": NAN if res is None else res[1],
    }


def reference_class_stats(
    a: Sequence[float], y: Sequence[int], n_classes: int
) -> dict[int, dict[str, float]]:
    """Per present class: mean, share with a > 0, best informedness and its threshold."""
    a = [float(v) for v in a]
    present = sorted(set(y))
    out = {}
    for c in present:
        values = [v for v, lab in zip(a, y, strict=True) if lab == c]
        res = best_informedness(a, [lab == c for lab in y]) if len(present) > 1 else None
        out[c] = {
            "mean_activation": float(_mean(values)),
            "frac_nonzero": sum(v > 0 for v in values) / len(values),
            "informedness": NAN if res is None else float(res[0]),
            "informedness_threshold": NAN if res is None else res[1],
        }
    return out


def reference_top_images(a: Sequence[float], n: int) -> list[int]:
    return sorted(range(len(a)), key=lambda i: (-a[i], i))[:n]
