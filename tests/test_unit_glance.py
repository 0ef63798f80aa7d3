"""A unit at a glance: the summary line's facts against the stored measures (plain SQL over
unit_metrics, dissection and image_class, never the code under test), what removing a unit
cost against a literal loop, and a conv unit's heat maps against the store's maps.

The UI test catalogue (tests/ui_fixtures.py) keeps conv5's 3 × 3 maps with each image's
activation in cell `image index % 9`, so the hot cell of every heat map is known.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.errors import InputError
from catalogue.measures import TOP_K_PRECISION
from catalogue.pipeline.unit_maps import RunNetwork, unit_top_maps
from catalogue.query.glance import ablation_cost, unit_glance
from tests.ablation_fixtures import Scored
from tests.ui_fixtures import CONV5_MAP, FC6_3, UICatalogue
from ui import thumbnails, unit_summary


@pytest.fixture(scope="module")
def glance_engine(catalogue: UICatalogue) -> Iterator[Engine]:
    engine = create_engine(catalogue.url, poolclass=NullPool)
    yield engine
    engine.dispose()


def _stored(engine: Engine, unit_id: int, run_id: int) -> dict[str, object]:
    """The unit's stored measures and class names, read with plain SQL."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT um.precision, pc.name AS precision_class, um.max_informedness, "
                "mc.name AS mi_class, um.false_alarm_rate, um.n_images "
                "FROM unit_metrics um JOIN run r ON r.id = um.run_id "
                "LEFT JOIN image_class pc ON pc.dataset_id = r.dataset_id "
                "  AND pc.class_index = um.precision_class "
                "LEFT JOIN image_class mc ON mc.dataset_id = r.dataset_id "
                "  AND mc.class_index = um.mi_class "
                "WHERE um.unit_id = :unit AND um.run_id = :run"
            ),
            {"unit": unit_id, "run": run_id},
        ).one()
        best = conn.execute(
            text(
                "SELECT c.name, d.iou, d.is_detector FROM dissection d "
                "JOIN concept c ON c.id = d.concept_id WHERE d.unit_id = :unit "
                "ORDER BY d.iou DESC LIMIT 1"
            ),
            {"unit": unit_id},
        ).one_or_none()
    return {**row._asdict(), "best": best}


@pytest.mark.parametrize(
    ("layer", "unit"), [("fc6", 3), ("conv5", 1), ("fc6", 4), ("fc6", 5), ("conv5", 2)]
)
def test_the_summary_line_states_the_stored_measures(
    glance_engine: Engine, catalogue: UICatalogue, layer: str, unit: int
) -> None:
    unit_id = catalogue.unit_ids[(layer, unit)]
    g = unit_glance(glance_engine, unit_id, catalogue.score_run)
    stored = _stored(glance_engine, unit_id, catalogue.score_run)
    assert g.precision == pytest.approx(stored["precision"])
    assert g.precision_class == stored["precision_class"]
    assert g.max_informedness == pytest.approx(stored["max_informedness"])
    assert g.mi_class == stored["mi_class"]
    assert g.false_alarm_rate == pytest.approx(stored["false_alarm_rate"])
    assert g.n_images == stored["n_images"] and not g.constant
    line = unit_summary.summary_text(g)
    assert (
        f"{stored['precision']:.1%} {stored['precision_class']} in its top {TOP_K_PRECISION}"
        in line
    )
    assert (
        f"max informedness {stored['max_informedness']:.3f} for {stored['mi_class']}, "
        f"false-alarm rate {stored['false_alarm_rate']:.1%}" in line
    )
    best = stored["best"]
    if best is None:
        assert "dissection not measured" in line
    else:
        detector = ", a detector" if best.is_detector else ""
        assert f"best concept {best.name} (IoU {best.iou:.3f}{detector})" in line
    assert "ablation not measured" in line  # the fixture's only ablation run failed


def test_the_summary_of_the_papers_misleading_unit_reads_its_designed_numbers(
    glance_engine: Engine, catalogue: UICatalogue
) -> None:
    """fc6.3 is built so that its measures are known in closed form (ui_fixtures)."""
    g = unit_glance(glance_engine, catalogue.unit_ids[("fc6", 3)], catalogue.score_run)
    line = unit_summary.summary_text(g)
    assert f"{FC6_3['precision']:.1%} monarch butterfly in its top 60" in line
    assert f"false-alarm rate {FC6_3['false_alarm_rate']:.1%}" in line
    assert line.startswith("77.6% monarch butterfly")


def test_a_dead_unit_is_summarised_as_constant_without_class_measures(
    glance_engine: Engine, catalogue: UICatalogue
) -> None:
    g = unit_glance(glance_engine, catalogue.unit_ids[("conv5", 5)], catalogue.score_run)
    assert g.constant and g.constant_value == 0.0
    line = unit_summary.summary_text(g)
    assert line.startswith("constant: all 2,880 scored activations equal 0")
    assert "precision" not in line and "informedness" not in line


def test_names_in_the_summary_cannot_become_markdown() -> None:
    assert unit_summary.escape("![a](http://x/y.png) *b*") == (r"\!\[a\]\(http\://x/y\.png\) \*b\*")


def _literal_worst(changes: pd.DataFrame) -> tuple[str, int, int]:
    """The class that lost most images (ties: lower class index), by a loop."""
    best = None
    for row in changes.itertuples():
        lost = round(-row.change * row.n_images)
        if best is None or lost > best[1] or (lost == best[1] and row.class_index < best[3]):
            best = (row.class_name, lost, row.n_images, row.class_index)
    assert best is not None
    return best[0], best[1], best[2]


@pytest.mark.parametrize(
    "changes",
    [
        [(0, "a", -0.2, 10), (1, "b", -0.1, 30), (2, "c", 0.0, 10)],  # b loses 3 > a's 2
        [(0, "a", -0.1, 20), (1, "b", -0.2, 10), (2, "c", 0.1, 10)],  # a tie of 2: a first
        [(3, "z", 0.0, 7), (4, "y", 0.0, 9)],  # nothing lost
        [(0, "only", -1.0, 5)],  # a single class
    ],
)
def test_the_ablation_cost_names_the_class_that_lost_most_images(
    changes: list[tuple[int, str, float, int]],
) -> None:
    frame = pd.DataFrame(changes, columns=["class_index", "class_name", "change", "n_images"])
    row = {"run_id": 9, "n_images": int(frame["n_images"].sum()), "replaced_by": "mean"}
    cost = ablation_cost(row, frame)
    name, lost, size = _literal_worst(frame)
    assert (cost.worst_class, cost.worst_images_lost, cost.worst_class_size) == (name, lost, size)
    assert (cost.min_class_size, cost.max_class_size) == (
        frame["n_images"].min(),
        frame["n_images"].max(),
    )
    clause = unit_summary.ablation_clause(cost)
    if lost <= 0:
        assert clause.startswith("removing it costs no class an image")
    else:
        assert f"at most {lost} image" in clause and f"{name}: {lost} of {size}" in clause
    unreadable = ablation_cost(row, None)  # the per-class file is gone: say so
    assert unreadable.worst_class is None
    assert "per-class cost not measured" in unit_summary.ablation_clause(unreadable)


def test_a_conv_units_heat_maps_are_the_stores_maps_of_its_top_images(
    glance_engine: Engine, catalogue: UICatalogue
) -> None:
    unit_id = catalogue.unit_ids[("conv5", 1)]
    maps = unit_top_maps(glance_engine, unit_id, catalogue.score_run, limit=12)
    assert maps.source == "store" and maps.reduce == "max"
    assert maps.maps.shape == (12, *CONV5_MAP)
    assert list(maps.top.ranks) == list(range(1, 13))
    # each map reduced as the extraction reduced it is the stored activation (float16 maps)
    np.testing.assert_allclose(maps.reduced(), maps.top.activations, rtol=1e-3)
    truth = catalogue.activations["conv5"][maps.top.image_index, 1]
    np.testing.assert_allclose(maps.top.activations, truth, rtol=1e-6)
    hot = maps.maps.reshape(12, -1).argmax(axis=1)
    assert list(hot) == list(maps.top.image_index % 9)


def test_a_fully_connected_unit_has_no_heat_maps(
    glance_engine: Engine, catalogue: UICatalogue
) -> None:
    with pytest.raises(InputError, match="fully connected"):
        unit_top_maps(glance_engine, catalogue.unit_ids[("fc6", 3)], catalogue.score_run)


def test_a_heat_overlay_is_yellow_where_the_map_is_highest_and_the_image_where_zero() -> None:
    base = np.full((6, 6, 3), 0.5, dtype=np.float32)
    heat = np.zeros((3, 3), dtype=np.float32)
    heat[0, 0] = 2.0
    out = thumbnails.heat_overlay(base, heat, vmax=2.0)
    assert out is not None and out.shape == (6, 6, 3)
    assert out[0, 0, 2] < out[0, 0, 1]  # yellow: red and green above blue
    np.testing.assert_array_equal(out[5, 5], [128, 128, 128])  # no heat: the image itself
    same = thumbnails.heat_overlay(base, heat, vmax=0.0)  # nothing fires: the image alone
    assert same is not None and (same == 128).all()


def test_small_thumbnails_are_enlarged_by_whole_pixels() -> None:
    import io

    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    pixels[0, 0] = 255
    encoded = thumbnails.encode(pixels, size=168)
    assert encoded is not None
    with Image.open(io.BytesIO(encoded)) as picture:
        assert picture.size == (168, 168)  # 21 × 8
        array = np.asarray(picture)
    assert (array[:21, :21] == 255).all() and (array[21:, 21:] == 0).all()


def test_heat_maps_without_stored_maps_come_from_the_runs_own_network(
    engine: Engine,
    scored: Scored,
    trained_checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An extraction that kept no maps: the run's network (loaded again by the catalogue
    from the run's record and its checkpoint, where `train-demo` leaves it) on the unit's
    top images; each map reduced as the run reduced it gives back the stored activation."""
    from catalogue.models.demo_cnn import checkpoint_path
    from catalogue.query.units import find_unit

    monkeypatch.setenv("UNITCAT_HOME", str(tmp_path / "home"))  # the session's home untouched
    home = checkpoint_path("digits")
    home.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(trained_checkpoint, home)

    unit_id = find_unit(engine, scored.model.name, "conv5", 3)
    maps = unit_top_maps(engine, unit_id, scored.score_run, limit=6)
    assert maps.source == "model" and maps.maps.shape[0] == 6
    assert maps.inputs is not None and maps.inputs.shape[0] == 6
    assert maps.inputs.min() >= 0.0 and maps.inputs.max() <= 1.0
    np.testing.assert_allclose(maps.reduced(), maps.top.activations, rtol=1e-4, atol=1e-5)
    given = unit_top_maps(
        engine,
        unit_id,
        scored.score_run,
        limit=6,
        network=RunNetwork(scored.model, scored.dataset),
    )
    np.testing.assert_allclose(given.maps, maps.maps, rtol=1e-5, atol=1e-6)
