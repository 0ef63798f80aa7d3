"""Network dissection into the catalogue: probe set built from local data, labels in the views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text

from catalogue.errors import InputError
from catalogue.models import random_demo_model
from catalogue.pipeline.dissect import build_probe, dissect_into_catalogue


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probe") / "digits-probe"
    build_probe("digits", n_images=24, image_size=32, seed=3, out_dir=out)
    return out


def test_dissection_labels_reach_the_unit_catalogue(engine: Engine, probe_dir: Path) -> None:
    model = random_demo_model()
    result = dissect_into_catalogue(engine, model, probe_dir, ["conv4", "conv5"], top_n=3)
    layer = result.layers["conv5"]
    with engine.connect() as conn:
        n_rows = conn.execute(text("SELECT count(*) FROM dissection")).scalar_one()
        n_concepts = conn.execute(text("SELECT count(*) FROM concept")).scalar_one()
        best = conn.execute(
            text(
                "SELECT unit, best_concept, best_concept_category, best_iou, is_detector "
                "FROM unit_catalogue WHERE layer = 'conv5' ORDER BY unit"
            )
        ).all()
        summary = conn.execute(
            text(
                "SELECT n_units, n_detectors, n_unique_concepts FROM dissection_summary WHERE layer = 'conv5'"
            )
        ).one()
    assert n_rows == (32 + 32) * 3
    assert n_concepts == len(layer.concepts)
    assert len(best) == 32
    for row in best:
        u = row.unit
        assert row.best_iou == pytest.approx(float(layer.iou[u].max()))
        assert row.best_concept == layer.concepts[int(layer.top_concepts[u, 0])].name
        assert row.is_detector == bool(layer.iou[u].max() > 0.04)
    assert tuple(summary) == (32, layer.n_detectors, layer.n_unique_concepts)
    assert np.isfinite(layer.thresholds).all()


def test_dissecting_a_fully_connected_layer_is_refused(engine: Engine, probe_dir: Path) -> None:
    with pytest.raises(InputError, match="fc6 is not a conv layer"):
        dissect_into_catalogue(engine, random_demo_model(), probe_dir, ["conv5", "fc6"])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM run")).scalar_one() == 0


def test_a_missing_probe_directory_is_one_clear_error(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        dissect_into_catalogue(engine, random_demo_model(), tmp_path / "nope", ["conv5"])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM model")).scalar_one() == 0


def test_an_existing_probe_set_is_reused(probe_dir: Path) -> None:
    before = (probe_dir / "index.csv").stat().st_mtime_ns
    again = build_probe("digits", n_images=24, image_size=32, seed=3, out_dir=probe_dir)
    assert len(again) == 24
    assert (probe_dir / "index.csv").stat().st_mtime_ns == before
