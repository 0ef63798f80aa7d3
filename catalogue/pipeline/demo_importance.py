"""The demo's importance and baseline steps: ablation, chance and random weights.

After the demo has scored and dissected the trained CNN, these steps ask the two
questions the measures alone cannot answer: do the selective units matter
(single-unit ablation of one conv and one fc layer, with class-ablation curves
for a few classes; Morcos et al. 2018, Bau et al. 2020), and how many "detectors"
would a network with random weights, or chance, give (`layer_baselines`)? Every
step reuses a finished run with the same parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from catalogue.cluster import Cluster
from catalogue.measures import CRITERIA_BY_KEY
from catalogue.models import ModelInfo
from catalogue.pipeline.ablate import CurveOptions, ablate_into_catalogue
from catalogue.pipeline.baseline import chance_baseline, random_weights_baseline
from catalogue.pipeline.summary import Reporter
from catalogue.query.importance import importance_correlations, layer_baselines

#: one conv and one fc layer of the demo CNN (conv5 is also the dissected top conv layer)
ABLATE_LAYERS = ("conv5", "fc6")
#: class-ablation curves for the first classes only (each curve is many forward passes)
CURVE_CLASSES = 10
#: the selectivity measures whose correlation with importance the demo prints
SHOWN_MEASURES = ("precision", "ccmas", "max_informedness", "class_selectivity_index")


@dataclass(frozen=True)
class ImportanceSummary:
    ablate_run: int
    chance_run: int
    random_score_run: int
    baselines: pd.DataFrame
    correlations: pd.DataFrame


def run_importance_steps(
    engine: Engine,
    model: ModelInfo,
    extract_run: int,
    score_run: int,
    reporter: Reporter,
    *,
    ablate_images: int = 1000,
    chance_repeats: int = 10,
    layers: Sequence[str] = ABLATE_LAYERS,
    cluster: Cluster | None = None,
) -> ImportanceSummary:
    """Ablate ``layers``, run the chance and random-weights baselines, report both.

    With ``cluster``, the ablation and the random network's extraction, scoring and
    dissection run on Ray; the chance scoring runs here."""

    ablated = _ablate(engine, model, extract_run, reporter, layers, ablate_images, cluster)
    with reporter.step(f"chance: score against {chance_repeats} label permutations") as progress:
        chance = chance_baseline(
            engine, score_run, repeats=chance_repeats, on_progress=progress, reuse=True
        )
    reporter.note(f"run {chance.run_id}" + (" (reused)" if chance.reused else ""))
    with reporter.step(f"random weights: extract, score and dissect {model.name}@random-seed0"):
        random = random_weights_baseline(engine, extract_run, model=model, cluster=cluster)
    reporter.note(
        f"{random.model}: runs {random.extract_run}, {random.score_run}"
        + (f", {random.dissect_run}" if random.dissect_run else "")
    )
    baselines = layer_baselines(engine, score_run)
    correlations = importance_correlations(engine, ablated.run_id)
    reporter.note(baseline_lines(baselines))
    reporter.note(correlation_lines(correlations))
    return ImportanceSummary(
        ablated.run_id, chance.run_id, random.score_run, baselines, correlations
    )


def _ablate(
    engine: Engine,
    model: ModelInfo,
    extract_run: int,
    reporter: Reporter,
    layers: Sequence[str],
    n_images: int,
    cluster: Cluster | None,
) -> Any:
    """Single-unit ablation of ``layers``, with class curves for the first classes."""

    n_classes = model.n_outputs
    with reporter.step(
        f"ablate every unit of {', '.join(layers)} over {n_images:,} images "
        f"(+ class curves for {min(CURVE_CLASSES, n_classes)} classes)"
    ) as progress:
        done: dict[str, tuple[int, int]] = {}

        def on_ablate(layer: str, d: int, t: int) -> None:
            done[layer] = (d, t)
            progress(sum(x[0] for x in done.values()), sum(x[1] for x in done.values()))

        ablated = ablate_into_catalogue(
            engine,
            extract_run,
            list(layers),
            images=n_images,
            curves=CurveOptions(classes=list(range(min(CURVE_CLASSES, n_classes)))),
            model=model,
            on_progress=on_ablate,
            reuse=True,
            cluster=cluster,
        )
    reporter.note(
        f"run {ablated.run_id}: {ablated.n_images:,} images"
        + (" (reused)" if ablated.reused else "")
    )
    return ablated


def _number(value: object, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{float(value):.{digits}f}"


def baseline_lines(frame: pd.DataFrame) -> str:
    """Detectors per layer and criterion: trained / random weights / chance (mean ± sd)."""
    if frame.empty:
        return "no baselines"
    lines = ["detectors: trained / random weights / chance (mean ± sd over permutations)"]
    for layer, rows in frame.groupby("layer", sort=False):
        parts = []
        for row in rows.itertuples():
            chance = (
                "–"
                if row.chance_mean is None or np.isnan(row.chance_mean)
                else f"{row.chance_mean:.1f}±{0.0 if np.isnan(row.chance_sd) else row.chance_sd:.1f}"
            )
            label = CRITERIA_BY_KEY[row.criterion].key if row.criterion in CRITERIA_BY_KEY else ""
            parts.append(f"{label} {row.trained}/{_number(row.random)}/{chance}")
        lines.append(f"  {layer:<6} " + "  ".join(parts))
    return "\n".join(lines)


def correlation_lines(frame: pd.DataFrame, measures: Sequence[str] = SHOWN_MEASURES) -> str:
    """Spearman correlation of each selectivity measure with the accuracy drop on the unit's
    selective class (Morcos et al. 2018), per ablated layer."""
    if frame.empty:
        return "no selectivity-importance correlations"
    lines = ["Spearman(selectivity, accuracy drop on the unit's class) per ablated layer"]
    for layer, rows in frame.groupby("layer", sort=False):
        by = rows.set_index("measure")
        parts = [
            f"{m} {by.loc[m, 'spearman_class_drop']:+.2f}"
            if m in by.index and not np.isnan(by.loc[m, "spearman_class_drop"])
            else f"{m} –"
            for m in measures
        ]
        lines.append(f"  {layer:<6} " + "  ".join(parts))
    return "\n".join(lines)
