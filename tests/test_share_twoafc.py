"""The 2-AFC study in a dump: studies, trials, tasks dealt and answers keyed by study name,
(task, position) and participant code; each unit's least activating images; the images
the trials show inside the dump; merged by name on import (the round trip of every view is
`test_share.py`'s, with the `twoafc` source)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.errors import InputError
from catalogue.share.export import ExportOptions, export_catalogue
from catalogue.share.importer import ImportOptions, import_dump
from catalogue.share.read import Selection
from tests.share_builders import AnsweredStudy, table_counts

pytest_plugins = ("tests.share_fixtures",)

TWOAFC_TABLES = ("twoafc_study", "twoafc_trial", "twoafc_assignment", "twoafc_response")


def _scalar(engine: Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_the_study_and_the_least_activating_images_are_in_the_dump_by_key(
    twoafc_catalogue: AnsweredStudy, twoafc_dump: Path
) -> None:
    engine = create_engine(twoafc_catalogue.url, poolclass=NullPool)
    counts = table_counts(engine)
    with engine.connect() as conn:
        trial_keys = set(
            conn.execute(
                text(
                    "SELECT DISTINCT k FROM twoafc_trial t, unnest(ARRAY[t.max_query_key, "
                    "t.min_query_key] || t.max_reference_keys || t.min_reference_keys) AS k"
                )
            ).scalars()
        )
        bottom_keys = set(
            conn.execute(
                text("SELECT DISTINCT image_key FROM unit_bottom_image WHERE rank <= 20")
            ).scalars()
        )
    engine.dispose()
    manifest = json.loads((twoafc_dump / "manifest.json").read_text())
    for table in (*TWOAFC_TABLES, "unit_bottom_image"):
        assert manifest["files"][f"{table}.parquet"]["rows"] == counts[table] > 0, table
    assert counts["twoafc_assignment"] == 3

    responses = pq.read_table(twoafc_dump / "twoafc_response.parquet")
    assert set(responses.column_names) == {
        "study", "task", "position", "participant", "chose_max", "confidence", "rt_ms",
        "source", "created_at",
    }  # fmt: skip
    assert set(responses["participant"].to_pylist()) == {"p0", "p1", "p2"}
    trials = pq.read_table(twoafc_dump / "twoafc_trial.parquet")
    assert {"study", "task", "position", "model", "layer", "unit"} <= set(trials.column_names)
    assert not [c for c in trials.column_names if c.endswith("_id") or c == "id"]
    (study,) = pq.read_table(twoafc_dump / "twoafc_study.parquet").to_pylist()
    run_keys = set(pq.read_table(twoafc_dump / "run.parquet")["run"].to_pylist())
    assert study["score_run"] in run_keys  # a content key, not an id
    assert json.loads(study["params"])["score_run"] == study["score_run"]

    images = pq.read_table(sorted((twoafc_dump / "images").glob("image-*.parquet"))).to_pylist()
    by_key = {row["image_key"]: row for row in images}
    assert len(by_key) == len(images)  # each image once
    assert trial_keys <= set(by_key) and bottom_keys <= set(by_key)
    root = twoafc_catalogue.built.image_root
    for key in trial_keys | bottom_keys:
        assert by_key[key]["image"]["bytes"] == (root / key).read_bytes()


def test_answers_merge_by_study_and_a_study_of_that_name_with_other_parameters_is_refused(
    twoafc_catalogue: AnsweredStudy, twoafc_dump: Path, empty: Engine
) -> None:
    import_dump(empty, twoafc_dump)
    n_responses = _scalar(empty, "SELECT count(*) FROM twoafc_response")
    # a participant's answer lost here: the next import adds it back and nothing else
    with empty.begin() as conn:
        conn.execute(text("DELETE FROM twoafc_response WHERE id = (SELECT min(id) FROM twoafc_response)"))  # fmt: skip
    again = import_dump(empty, twoafc_dump)
    assert again.rows["twoafc_response"] == 1 and again.rows["twoafc_trial"] == 0
    assert again.rows["twoafc_study"] == 0 and not again.runs_new
    assert _scalar(empty, "SELECT count(*) FROM twoafc_response") == n_responses

    # the same name for a study with other parameters: refused, nothing written
    with empty.begin() as conn:
        conn.execute(text("UPDATE twoafc_study SET params = params || '{\"seed\": 7}'"))
    before = table_counts(empty)
    with pytest.raises(InputError, match=r"--rename-study shared-2afc=shared-2afc-imported"):
        import_dump(empty, twoafc_dump)
    assert table_counts(empty) == before
    renamed = import_dump(
        empty, twoafc_dump, ImportOptions(rename_studies={"shared-2afc": "theirs"})
    )
    assert renamed.rows["twoafc_study"] == 1
    with empty.connect() as conn:
        per_study = dict(
            conn.execute(
                text(
                    "SELECT s.name, count(*) FROM twoafc_response r JOIN twoafc_trial t "
                    "ON t.id = r.trial_id JOIN twoafc_study s ON s.id = t.study_id GROUP BY 1"
                )
            ).all()
        )
    assert per_study == {"shared-2afc": n_responses, "theirs": n_responses}
    with pytest.raises(InputError, match="no 2-AFC study of"):
        import_dump(empty, twoafc_dump, ImportOptions(rename_studies={"nope": "x"}))


def test_a_study_goes_with_its_scoring_run_when_runs_are_chosen(
    twoafc_catalogue: AnsweredStudy, tmp_path: Path
) -> None:
    engine = create_engine(twoafc_catalogue.url, poolclass=NullPool)
    built = twoafc_catalogue.built
    with_study = export_catalogue(
        engine, tmp_path / "score", ExportOptions(selection=Selection(runs=(built.score_run,)))
    )
    without = export_catalogue(
        engine,
        tmp_path / "extract",
        ExportOptions(selection=Selection(runs=(built.extract_run,)), images=False),
    )
    engine.dispose()
    assert with_study.rows["twoafc_response"] > 0 and with_study.rows["participant"] == 3
    assert without.rows["twoafc_study"] == 0 and without.rows["twoafc_response"] == 0
    assert without.rows["participant"] == 0
