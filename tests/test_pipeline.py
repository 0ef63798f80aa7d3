"""Extraction and scoring into the catalogue, end to end on a real model, file and database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.data import load_digits
from catalogue.errors import InputError, NotFound
from catalogue.measures import UNIT_MEASURES
from catalogue.models import random_demo_model
from catalogue.pipeline.extract import extract_into_catalogue
from catalogue.pipeline.scoring import score_extraction
from catalogue.selectivity import score_units
from catalogue.store import ActivationStore
from tests.cli import unitcat

LAYERS = ["conv5", "fc6"]


@dataclass(frozen=True)
class Extracted:
    database: str  # the template database (tests/conftest.py: CATALOGUE_TEMPLATES)
    run_id: int


@pytest.fixture(scope="session")
def pipeline_extracted_template(
    database_template: Callable[..., tuple[str, int]], tmp_path_factory: pytest.TempPathFactory
) -> Extracted:
    """The random demo CNN's conv5 and fc6 extracted on 150 digits, once per session."""
    out = tmp_path_factory.mktemp("pipeline") / "acts.h5"

    def build(url: str) -> int:
        engine = create_engine(url, poolclass=NullPool)
        model = random_demo_model()
        data = load_digits("test", transform=model.transform)
        result = extract_into_catalogue(
            engine, model, data, LAYERS, limit=150, batch_size=64, out_path=out
        )
        engine.dispose()
        return result.run_id

    database, run_id = database_template(build)
    return Extracted(database, run_id)


@pytest.fixture
def extracted(engine: Engine, pipeline_extracted_template: Extracted) -> int:
    """The extraction run in the test's database (`engine`, a clone of the template)."""
    run_id = pipeline_extracted_template.run_id
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM run WHERE id = :r"), {"r": run_id}
        ).scalar_one()
    assert status == "done", "the test's database is not a clone of the extracted catalogue"
    return run_id


def _h5(engine: Engine, run_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT h5_path FROM run WHERE id = :r"), {"r": run_id}
        ).scalar_one()


def test_extraction_registers_model_dataset_and_a_done_run(engine: Engine, extracted: int) -> None:
    with engine.connect() as conn:
        run = conn.execute(text("SELECT * FROM run WHERE id = :r"), {"r": extracted}).one()
        layers = conn.execute(text("SELECT name, kind, n_units FROM layer ORDER BY position")).all()
        n_classes = conn.execute(text("SELECT count(*) FROM image_class")).scalar_one()
    assert run.status == "done"
    assert run.kind == "extract"
    assert run.stats["n_images"] == 150
    assert [tuple(r) for r in layers] == [("conv5", "conv", 32), ("fc6", "fc", 128)]
    assert n_classes == 10


def test_scores_in_the_catalogue_equal_a_direct_computation(engine: Engine, extracted: int) -> None:
    # 48-unit blocks: conv5 and fc6 both end in a partial block
    result = score_extraction(engine, extracted, all_images=True, block_units=48)
    with ActivationStore.open(_h5(engine, extracted)) as store:
        acts = store.read_units("fc6", 0, 128)
        labels = store.labels
    expected = score_units(acts, labels, 10)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT um.* FROM unit_metrics um JOIN unit u ON u.id = um.unit_id "
                "JOIN layer l ON l.id = u.layer_id WHERE l.name = 'fc6' AND um.run_id = :r "
                "ORDER BY u.unit_index"
            ),
            {"r": result.run_id},
        ).all()
    assert len(rows) == 128
    for m in UNIT_MEASURES:
        stored = np.array([getattr(r, m.name) for r in rows], dtype=object)
        want = expected[m.name]
        if m.kind == "float":
            got = np.array([np.nan if v is None else v for v in stored], dtype=float)
            np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True, err_msg=m.name)
        elif m.kind == "class":
            got = np.array([-1 if v is None else v for v in stored])
            np.testing.assert_array_equal(got, want, err_msg=m.name)
        else:
            np.testing.assert_array_equal(stored.astype(bool), want, err_msg=m.name)
    assert {r.n_images for r in rows} == {150}


def test_top_images_point_at_the_images_in_the_file(engine: Engine, extracted: int) -> None:
    result = score_extraction(engine, extracted, layers=["conv5"])  # correct images only
    with ActivationStore.open(_h5(engine, extracted)) as store:
        acts = store.read_units("conv5", 0, 32)
        correct = store.correct
        keys = store.image_keys
        labels = store.labels
    with engine.connect() as conn:
        tops = conn.execute(
            text(
                "SELECT u.unit_index, t.rank, t.image_index, t.image_key, t.class_index, t.activation "
                "FROM unit_top_image t JOIN unit u ON u.id = t.unit_id WHERE t.run_id = :r "
                "ORDER BY u.unit_index, t.rank"
            ),
            {"r": result.run_id},
        ).all()
    assert tops
    for t in tops:
        assert correct[t.image_index]  # only scored (correct) images can be top images
        assert t.activation == pytest.approx(float(acts[t.image_index, t.unit_index]))
        assert t.image_key == keys[t.image_index]
        assert t.class_index == labels[t.image_index]
    first = next(t for t in tops if t.unit_index == 0 and t.rank == 1)
    assert first.activation == pytest.approx(float(acts[correct, 0].max()))


def test_class_groups_are_scored_and_rescoring_replaces_rows(
    engine: Engine, extracted: int
) -> None:
    with ActivationStore.open(_h5(engine, extracted)) as store:
        keys = store.class_keys
    groups = {"round": [keys[i] for i in (0, 6, 8, 9)]}
    first = score_extraction(engine, extracted, layers=["fc6"], all_images=True, groups=groups)
    second = score_extraction(engine, extracted, layers=["fc6"], all_images=True, groups=groups)
    assert first.run_id == second.run_id
    with engine.connect() as conn:
        n_group_rows = conn.execute(text("SELECT count(*) FROM unit_group_metrics")).scalar_one()
        n_metrics = conn.execute(text("SELECT count(*) FROM unit_metrics")).scalar_one()
        members = conn.execute(text("SELECT count(*) FROM class_group_member")).scalar_one()
        shares = conn.execute(
            text("SELECT n_nonzero_in, n_nonzero_out FROM unit_group_metrics")
        ).all()
    assert (n_group_rows, n_metrics, members) == (128, 128, 4)
    assert all(0 <= a <= 1 and 0 <= b <= 1 for a, b in shares)


def test_an_unknown_layer_changes_nothing_in_the_catalogue(engine: Engine, tmp_path) -> None:
    model = random_demo_model()
    data = load_digits("test", transform=model.transform)
    with pytest.raises(NotFound, match="conv9"):
        extract_into_catalogue(engine, model, data, ["conv9"], out_path=tmp_path / "x.h5")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM model")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM run")).scalar_one() == 0
    assert not (tmp_path / "x.h5").exists()


def test_a_class_count_mismatch_changes_nothing(engine: Engine, tmp_path) -> None:
    model = random_demo_model(num_classes=7)
    data = load_digits("test", transform=model.transform)
    with pytest.raises(InputError, match="7 outputs but dataset"):
        extract_into_catalogue(engine, model, data, ["fc6"], out_path=tmp_path / "x.h5")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM model")).scalar_one() == 0


def test_scoring_refuses_unknown_layers_and_runs(engine: Engine, extracted: int) -> None:
    with pytest.raises(NotFound, match="no layer fc9"):
        score_extraction(engine, extracted, layers=["fc9"])
    with pytest.raises(NotFound, match="no run 999 "):
        score_extraction(engine, 999)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM run WHERE kind = 'score'")).scalar_one() == 0


def test_cli_reports_an_unknown_layer_in_one_line(database_url: str) -> None:
    result = unitcat(
        "ingest", "extract", "--model", "demo:random-does-not-exist", "--dataset", "digits",
        env={"DATABASE_URL": database_url},
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
