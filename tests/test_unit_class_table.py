"""`unit_class_table`, the Unit page's per-class table, against the way it was first built:
a frame per step (the scorer's class statistics merged onto every class, ranks turned
nullable, top-image classes tallied with `value_counts`, a stable sort) — on ties, zeros, a
dead unit, one class, a class without images, no images at all, and top images whose
class is unknown or out of range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalogue.measures import TOP_K_PRECISION, TOP_N_CLASSES
from catalogue.query.files import UnitActivations
from catalogue.query.units import CLASS_TABLE_COLUMNS, unit_class_table
from catalogue.selectivity import score_layer


def _frame_by_frame(acts: UnitActivations, top_images: pd.DataFrame | None) -> pd.DataFrame:
    n_classes = len(acts.class_names)
    counts = np.bincount(acts.labels, minlength=n_classes)[:n_classes]
    frame = pd.DataFrame(
        {
            "class_index": np.arange(n_classes, dtype=np.int64),
            "class_name": list(acts.class_names),
            "n_images": counts.astype(np.int64),
        }
    )
    if acts.values.size:
        layer = score_layer(
            acts.values[:, None], acts.labels, n_classes, n_top_classes=n_classes, n_top_images=1
        )
        stats = pd.DataFrame(layer.class_stats).drop(columns="unit")
        frame = frame.merge(stats, on="class_index", how="left")
    for name in CLASS_TABLE_COLUMNS:
        if name not in frame:
            frame[name] = np.nan
    for rank in ("rank_by_informedness", "rank_by_mean"):
        frame[rank] = frame[rank].where(frame[rank] > 0).astype("Int64")
    top = top_images if top_images is not None else pd.DataFrame(columns=["rank", "class_index"])
    for column, k in (("in_top60", TOP_K_PRECISION), ("in_top100", TOP_N_CLASSES)):
        tally = top.loc[top["rank"] <= k, "class_index"].value_counts()
        frame[column] = frame["class_index"].map(tally).fillna(0).astype(np.int64)
    order = frame.sort_values(
        ["rank_by_informedness", "class_index"], na_position="last", kind="stable"
    )
    return order[list(CLASS_TABLE_COLUMNS)].reset_index(drop=True)


def _acts(values: np.ndarray, labels: np.ndarray, n_classes: int) -> UnitActivations:
    return UnitActivations(
        values=np.asarray(values, dtype=np.float32),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=[f"class {c}" for c in range(n_classes)],
        all_images=False,
        n_stored=len(values),
        source=Path("unit.h5"),
    )


def _top(acts: UnitActivations, extra: list[tuple[int, float]] = ()) -> pd.DataFrame:
    """The unit's 120 highest images as `unit_top_image` ranks them (ties by lower index),
    plus `extra` (rank, class) rows."""
    order = np.lexsort((np.arange(acts.values.size), -acts.values))[:120]
    rows = [(r + 1, float(acts.labels[i])) for r, i in enumerate(order)] + list(extra)
    return pd.DataFrame(rows, columns=["rank", "class_index"])


rng = np.random.default_rng(7)
CASES = {
    "ties and zeros": (
        np.round(np.maximum(rng.normal(size=400), 0), 1),
        rng.integers(0, 6, 400),
        6,
    ),
    "a dead unit": (np.zeros(300), rng.integers(0, 4, 300), 4),
    "one class": (rng.random(50), np.zeros(50, dtype=np.int64), 1),
    "a class without images": (rng.random(200), rng.choice([0, 1, 2, 4], 200), 5),
    "no images": (np.zeros(0), np.zeros(0, dtype=np.int64), 3),
    "many classes, few images": (rng.random(30), rng.integers(0, 40, 30), 40),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("with_top", [False, True])
def test_the_class_table_is_what_the_frame_by_frame_table_was(case: str, with_top: bool) -> None:
    values, labels, n_classes = CASES[case]
    acts = _acts(values, labels, n_classes)
    top = _top(acts, [(5, np.nan), (7, float(n_classes + 3)), (61, 0.0)]) if with_top else None
    expected = _frame_by_frame(acts, top)
    got = unit_class_table(acts, top)
    pd.testing.assert_frame_equal(got, expected)
    assert int(got["n_images"].sum()) == values.size
    if with_top and values.size:
        # literally: the top 60's classes, counted one by one
        first = top[(top["rank"] <= 60) & top["class_index"].between(0, n_classes - 1)]
        for c in range(n_classes):
            n = sum(1 for x in first["class_index"] if x == c)
            assert int(got.loc[got["class_index"] == c, "in_top60"].iloc[0]) == n
