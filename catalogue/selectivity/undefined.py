"""Where a measure is undefined for a whole layer, not unit by unit.

CCMAS assumes that 0 means "silent" (see `catalogue.measures.CCMAS_UNDEFINED`). Whether
that holds is a property of the layer's activation function, not of one unit's sample:
a logit that happens to be positive on every scored image is still on a scale whose zero
is arbitrary. So "activations can be negative" is decided over the layer: one negative
scored activation in any unit of it makes CCMAS undefined, with that reason, for every
unit of it (and for every class group's CCMAS of those units).

The kernel marks the units with a negative activation of the block it scores;
`score_units` / `score_layer` apply the rule over all units they were given, and a
caller that scores a layer in several calls (blocks of units, Ray tasks, label
permutations) applies it again to the joined layer (`LayerScores.with_layer_rules`,
`ccmas_layer_rule`). The rule is idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from catalogue.measures import CCMAS_NEGATIVE, CCMAS_UNDEFINED

GroupMetrics = Mapping[str, Mapping[str, np.ndarray]]


def ccmas_layer_rule(
    metrics: Mapping[str, np.ndarray], group_metrics: GroupMetrics | None = None
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]] | None]:
    """`metrics` (and `group_metrics`) of one whole layer with CCMAS undefined for every
    unit, reason "activations can be negative", if any unit had a negative activation;
    else unchanged. Returns new dicts; the caller's arrays are not modified."""
    out = dict(metrics)
    groups = None if group_metrics is None else {g: dict(c) for g, c in group_metrics.items()}
    reasons = np.asarray(metrics[CCMAS_UNDEFINED.column])
    if not bool((reasons == CCMAS_NEGATIVE).any()):
        return out, groups
    n = reasons.shape[0]
    out[CCMAS_UNDEFINED.column] = np.full(n, CCMAS_NEGATIVE, dtype=np.int64)
    out[CCMAS_UNDEFINED.measure] = np.full(n, np.nan)
    out["ccmas_class"] = np.full(n, -1, dtype=np.int64)
    for columns in (groups or {}).values():
        if CCMAS_UNDEFINED.measure in columns:
            columns[CCMAS_UNDEFINED.measure] = np.full(n, np.nan)
    return out, groups
