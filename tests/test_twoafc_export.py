"""A 2-AFC study out in IMI's layout and its answers back in: the folders, files and
images IMI's experiment loads, the structure IMI's analysis reads, and a round trip of
the answers (exported as IMI's response rows, imported into an identical study)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.errors import InputError, NotFound
from catalogue.pipeline.twoafc.export import export_study
from catalogue.pipeline.twoafc.responses import import_responses
from catalogue.pipeline.twoafc.study import build_study, enrol, progress, record_response
from catalogue.query.twoafc import find_study, study_trials
from catalogue.twoafc.design import DesignOptions
from catalogue.twoafc.imi import stimulus
from tests.cli import unitcat
from tests.twoafc_fixtures import TwoAFCCatalogue, build_twoafc_catalogue

UNITS = [("conv5", [0, 1, 2]), ("fc6", [0, 1])]
OPTIONS = DesignOptions(task_size=3, catch_trials=1, seed=4)


@pytest.fixture(scope="module")
def afc(
    database_factory: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, TwoAFCCatalogue, str]]:
    url = database_factory()
    engine = create_engine(url, poolclass=NullPool)
    built = build_twoafc_catalogue(engine, tmp_path_factory.mktemp("afc"))
    build_study(engine, built.score_run, UNITS, name="out", options=OPTIONS)
    yield engine, built, url
    engine.dispose()


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _answer_some(engine: Engine) -> None:
    """Three people answer on the Rate page: all of their task's trials, then some."""
    study = find_study(engine, "out")
    for code, how_many in (("ana", None), ("ben", None), ("cy", 2)):
        who = enrol(engine, study, code)
        trials = progress(engine, who).trials[:how_many]
        for i, t in enumerate(trials):
            record_response(
                engine,
                who,
                t,
                chose_max=t.catch or i % 3 != 1,
                confidence=1 + i % 3,
                rt_ms=900.0 + i,
            )


def test_the_layout_is_imis_and_shows_the_trials_images(afc, tmp_path) -> None:
    engine, c, _ = afc
    study = find_study(engine, "out")
    out = tmp_path / "afc_natural"
    done = export_study(engine, study, out, size=0)
    trials = study_trials(engine, study.id)
    assert (done.n_tasks, done.n_trials, done.n_images) == (2, len(trials), 20 * len(trials))
    for task in (1, 2):
        mine = [t for t in trials if t.task == task]
        index = json.loads((out / f"task_{task}" / "index.json").read_text())
        assert index == {
            "task_name": f"afc_natural/task_{task}",
            "n_reference_images": 9,
            "n_trials": len(mine),
            "catch_trial_idxs": [t.position for t in mine if t.catch],
        }
        for t in mine:
            folder = out / f"task_{task}" / "trials" / f"trial_{t.position}"
            names = sorted(p.name for p in (folder / "references").iterdir())
            assert names == sorted(
                [f"max_{i}.png" for i in range(9)] + [f"min_{i}.png" for i in range(9)]
            )
            # IMI shows *_8 first: the most extreme reference, shown first here too
            for end in ("max", "min"):
                refs = getattr(t, f"{end}_references")
                for i, exemplar in enumerate(refs):
                    np.testing.assert_array_equal(
                        _pixels(folder / "references" / f"{end}_{8 - i}.png"),
                        _pixels(c.image_root / exemplar.image_key),
                    )
                query = getattr(t, f"{end}_query")
                np.testing.assert_array_equal(
                    _pixels(folder / "queries" / f"{end}.png"),
                    _pixels(c.image_root / query.image_key),
                )
    structure = json.loads((out / "structure.json").read_text())
    assert [task["index"] for task in structure["tasks"]] == [1, 2]
    for task in structure["tasks"]:  # read as IMI's analysis reads it (utils_data)
        for entry, t in zip(
            task["trials"], [t for t in trials if t.task == task["index"]], strict=True
        ):
            parts = entry["queries"].split("/")
            if entry["mode"] == "catch_trial":
                assert t.catch and (parts[-3], parts[-2]) == (t.layer, f"channel_{t.unit}")
            else:
                assert entry["mode"] == "natural" and not t.catch
                assert (parts[-5], parts[-4], parts[-3], parts[-1]) == (
                    "afcnet",
                    t.layer,
                    f"channel_{t.unit}",
                    f"batch_{t.batch}",
                )
        assert len(task["raw_catch_trials"]) == 1
    assert not (out / "responses.csv").exists()  # nobody has answered yet


def test_images_are_resized_as_imis_stimuli(afc, tmp_path) -> None:
    engine, _, _ = afc
    export_study(engine, find_study(engine, "out"), tmp_path / "sized", size=32)
    path = next((tmp_path / "sized").rglob("max_8.png"))
    assert Image.open(path).size == (32, 32)
    small = Image.new("RGB", (12, 8), (10, 20, 30))
    grown = stimulus(small, 224)
    assert grown.size == (224, 224) and grown.getpixel((0, 0)) == (10, 20, 30)


def test_answers_make_the_round_trip_through_imis_format(afc, tmp_path) -> None:
    engine, c, url = afc
    _answer_some(engine)
    out = tmp_path / "with_answers"
    result = unitcat(
        "ingest", "study", "export", "out", str(out), "--image-size", "0", env={"DATABASE_URL": url}
    )
    assert result.returncode == 0, result.stderr
    assert "responses.csv" in result.stdout
    # the same study again under another name: the same seed and units give the same trials
    build_study(engine, c.score_run, UNITS, name="again", options=OPTIONS)
    imported = import_responses(engine, find_study(engine, "again"), out / "responses.csv")
    query = text(
        "SELECT p.code, t.task, t.position, t.catch, t.unit_id, t.max_query, t.min_query, "
        "r.chose_max, r.confidence, r.rt_ms FROM twoafc_response r "
        "JOIN twoafc_trial t ON t.id = r.trial_id JOIN twoafc_study s ON s.id = t.study_id "
        "JOIN participant p ON p.id = r.participant_id WHERE s.name = :s ORDER BY 1, 2, 3"
    )
    checks = text(
        "SELECT participant, task, n_main, n_main_correct, n_catch, n_catch_correct, passed "
        "FROM twoafc_participant_check WHERE study = :s ORDER BY participant"
    )
    with engine.connect() as conn:
        first = conn.execute(query, {"s": "out"}).all()
        second = conn.execute(query, {"s": "again"}).all()
        assert (
            conn.execute(checks, {"s": "out"}).all() == conn.execute(checks, {"s": "again"}).all()
        )
    assert len(first) == imported.n_responses > 0
    assert first == second


def test_export_refuses_a_used_folder_and_leaves_nothing_when_an_image_is_missing(
    afc, tmp_path
) -> None:
    engine, c, _ = afc
    study = find_study(engine, "out")
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an empty folder"):
        export_study(engine, study, used)
    trial = study_trials(engine, study.id)[0]
    image = c.image_root / trial.max_query.image_key
    moved = image.with_suffix(".moved")
    image.rename(moved)
    try:
        with pytest.raises(NotFound, match="cannot be found"):
            export_study(engine, study, tmp_path / "partial")
    finally:
        moved.rename(image)
    assert not (tmp_path / "partial").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["used"]
