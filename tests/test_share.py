"""`unitcat export` / `unitcat import`: a catalogue as Parquet files and back.

Against real catalogues: `shared_catalogue` (trained, scored, dissected, ablated, with
baselines, AM panels and ratings, every pipeline the real one) and the UI test catalogue
(designed misleading units, image files, a failed run). A round trip gives every view
the same rows (ids aside); again changes nothing; DuckDB, pandas, Hugging Face
`datasets` and a Croissant reader read the files without unitcat.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.db.migrate import head_revision
from catalogue.db.schema import Base
from catalogue.measures import CRITERIA_BY_KEY, NOT_CONSTANT
from catalogue.share.columns import distinct, mapped
from catalogue.share.export import ExportOptions, export_catalogue
from catalogue.share.importer import import_dump
from catalogue.share.keys import content_keys, local_params, portable
from catalogue.share.manifest import FORMAT, FORMAT_VERSION, sha256_file
from catalogue.share.read import Selection
from catalogue.share.spec import DERIVED, TABLES
from tests.share_builders import SharedCatalogue, table_counts, view_rows
from tests.ui_fixtures import MISLEADING, UICatalogue

pytest_plugins = ("tests.share_fixtures",)


def _engine(url: str) -> Engine:
    return create_engine(url, poolclass=NullPool)


# ------------------------------------------------------------------------------ the format


def test_every_table_is_exported_or_rebuilt_from_the_exported_rows() -> None:
    exported = {t.table for t in TABLES}
    assert exported | set(DERIVED) == set(Base.metadata.tables)
    assert not exported & set(DERIVED)


def test_content_keys_follow_the_runs_a_run_names_not_their_ids() -> None:
    extract = {"kind": "extract", "params": {"model": "m"}, "model": "m", "checksum": "c1"}
    here = {1: extract, 2: {"kind": "score", "params": {"extract_run": 1, "layers": ["fc"]}}}
    there = {7: extract, 9: {"kind": "score", "params": {"extract_run": "7", "layers": ["fc"]}}}
    a, b = content_keys(here), content_keys(there)
    assert (a[1], a[2]) == (b[7], b[9]) and a[1] != a[2]
    other = {**here, 1: {**extract, "checksum": "c2"}}  # other weights: another extraction
    assert content_keys(other)[2] != a[2]
    assert portable({"extract_run": 1, "rows_from": None, "layers": ["fc"]}, a) == {
        "extract_run": a[1], "rows_from": None, "layers": ["fc"],
    }  # fmt: skip
    assert local_params({"extract_run": a[1], "model": "m"}, {a[1]: 42}, {"m": "n"}) == {
        "extract_run": 42, "model": "n",
    }  # fmt: skip


def test_distinct_keys_map_every_row_as_a_dictionary_lookup_would() -> None:
    first = pa.array(["x", "y", None, "x", "y", "x"])
    second = pa.array([1, 1, 2, None, 1, 1])
    inverse, tuples = distinct([first, second])
    pairs = list(zip(first.to_pylist(), second.to_pylist(), strict=True))
    assert [tuples[i] for i in inverse] == pairs
    assert len(tuples) == len(set(pairs))
    lookup = {("x", 1): 10, ("y", 1): 20}
    assert mapped([first, second], lookup.get).tolist() == [lookup.get(p, -1) for p in pairs]
    assert mapped([pa.array([], pa.string())], lookup.get).tolist() == []


def test_a_dump_describes_itself_with_checksums_counts_and_keys_not_ids(
    shared_catalogue: SharedCatalogue, shared_dump: Path
) -> None:
    manifest = json.loads((shared_dump / "manifest.json").read_text())
    assert (manifest["format"], manifest["format_version"]) == (FORMAT, FORMAT_VERSION)
    assert manifest["schema_revision"] == head_revision()
    engine = _engine(shared_catalogue.url)
    counts = table_counts(engine)
    engine.dispose()
    for table in TABLES:
        entry = manifest["files"][table.file]
        path = shared_dump / table.file
        assert entry["sha256"] == sha256_file(path) and entry["bytes"] == path.stat().st_size
        assert entry["rows"] == pq.ParquetFile(path).metadata.num_rows
        names = pq.read_schema(path).names
        ids = [n for n in names if n == "id" or n.endswith("_id")]
        assert ids == (["source_run_id"] if table.table == "run" else []), (table.table, names)
        if table.table not in ("participant", "concept"):  # the whole catalogue is exported
            assert entry["rows"] == counts[table.table], table.table
    for table in ("unit_metrics", "dissection", "unit_ablation", "chance_metrics", "rating",
                  "am_panel", "class_ablation_curve", "unit_group_metrics"):  # fmt: skip
        assert manifest["files"][f"{table}.parquet"]["rows"] > 0, table
    images = [n for n in manifest["files"] if n.startswith("images/")]
    assert {manifest["files"][n]["table"] for n in images} == {
        "images:image",
        "images:am_panel",
    }
    assert not (shared_dump.parent / "shared.partial").exists()


def test_two_writers_write_the_same_rows_as_one(
    shared_catalogue: SharedCatalogue,
    shared_dump: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    unitcat_home: Path,
) -> None:
    """The tables are written side by side, each connection in the export's one snapshot:
    one writer gives every table the same schema and the same rows (the dump was written by
    two). Rows are compared as a multiset: a table is read without ORDER BY, in the order
    the server's plan gives, which may change once autovacuum has analysed the tables."""
    import catalogue.share.export as export

    assert export.WRITERS == 2
    monkeypatch.setattr(export, "WRITERS", 1)
    monkeypatch.setenv("UNITCAT_HOME", str(unitcat_home))
    engine = _engine(shared_catalogue.url)
    try:
        alone = export_catalogue(engine, tmp_path / "one", ExportOptions(images=False))
    finally:
        engine.dispose()
    for table in TABLES:
        one, two = tmp_path / "one" / table.file, shared_dump / table.file
        assert pq.read_schema(one) == pq.read_schema(two), table.file
        rows = pq.read_table(one).to_pylist()
        assert sorted(rows, key=repr) == sorted(pq.read_table(two).to_pylist(), key=repr), (
            table.file
        )
    assert sum(alone.rows.values()) > 0


def test_a_writer_that_fails_stops_the_others_and_leaves_no_folder(
    shared_catalogue: SharedCatalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whichever writer fails, its error is the export's, the other writer stops at its
    next batch, and neither the dump nor its partial folder is left."""
    import catalogue.share.export as export

    real = export.write_table
    seen: list[str] = []

    def failing(snap, plan, table, folder, on_progress):  # type: ignore[no-untyped-def]
        seen.append(table.table)
        if table.table == "dissection":
            raise OSError("the disk answered: input/output error")
        return real(snap, plan, table, folder, on_progress)

    monkeypatch.setattr(export, "write_table", failing)
    engine = _engine(shared_catalogue.url)
    try:
        with pytest.raises(OSError, match="input/output error"):
            export_catalogue(engine, tmp_path / "dump", ExportOptions(images=False))
    finally:
        engine.dispose()
    assert "dissection" in seen and len(seen) < len(TABLES)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_croissant_describes_every_file_and_a_reader_loads_its_records(shared_dump: Path) -> None:
    mlc = pytest.importorskip("mlcroissant")
    document = json.loads((shared_dump / "croissant.json").read_text())
    files = {d["@id"]: d for d in document["distribution"]}
    manifest = json.loads((shared_dump / "manifest.json").read_text())
    for table in TABLES:
        assert files[table.file]["sha256"] == manifest["files"][table.file]["sha256"]
    dataset = mlc.Dataset(jsonld=shared_dump / "croissant.json")
    records = list(dataset.records(record_set="unit_metrics"))
    assert len(records) == manifest["files"]["unit_metrics.parquet"]["rows"]
    frame = pq.read_table(shared_dump / "unit_metrics.parquet").to_pandas()
    first = records[0]
    assert first["unit_metrics/unit"] == frame["unit"].iloc[0]
    assert first["unit_metrics/layer"].decode() == frame["layer"].iloc[0]


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("source", ["shared", "ui", "twoafc"])
def test_import_into_an_empty_catalogue_gives_every_view_the_same_rows_and_again_nothing(
    source: str,
    request: pytest.FixtureRequest,
    empty: Engine,
    tmp_path: Path,
) -> None:
    built = request.getfixturevalue(
        {"shared": "shared_catalogue", "ui": "catalogue", "twoafc": "twoafc_catalogue"}[source]
    )
    dump = request.getfixturevalue(f"{source}_dump")
    engine = _engine(built.url)
    expected = view_rows(engine)
    engine.dispose()
    result = import_dump(empty, dump)
    assert result.changed and not result.runs_present
    got = view_rows(empty)
    for view, rows in expected.items():
        assert got[view] == rows, view
    assert sum(len(rows) for rows in got.values()) > 0

    counts = table_counts(empty)
    again = import_dump(empty, dump)
    assert not again.changed
    assert sorted(again.runs_present) == sorted(result.runs_new)
    assert table_counts(empty) == counts
    assert view_rows(empty) == got

    # exported again, the catalogue gives the same files: the same keys in every catalogue
    out = tmp_path / "again"
    export_catalogue(empty, out)
    for table in TABLES:
        before = pq.read_table(dump / table.file).to_pylist()
        after = pq.read_table(out / table.file).to_pylist()
        for row in before + after:  # where it came from, where its PNG is here
            for column in ("imported_from", "source_run_id", "path"):
                row.pop(column, None)
        key = lambda row: json.dumps(row, sort_keys=True, default=str)  # noqa: E731
        assert sorted(map(key, after)) == sorted(map(key, before)), table.table


def test_imported_runs_keep_their_provenance_and_say_where_they_came_from(
    shared_catalogue: SharedCatalogue, shared_dump: Path, empty: Engine
) -> None:
    import_dump(empty, shared_dump)
    source = _engine(shared_catalogue.url)
    with source.connect() as conn:
        before = {
            (r.kind, r.label): r
            for r in conn.execute(text("SELECT id, kind, label, provenance FROM run"))
        }
        identity = conn.execute(
            text("SELECT system_identifier FROM pg_control_system()")
        ).scalar_one()
    source.dispose()
    with empty.connect() as conn:
        after = conn.execute(text("SELECT kind, label, provenance, imported_from FROM run")).all()
    assert len(after) == len(before)
    manifest = json.loads((shared_dump / "manifest.json").read_text())
    for row in after:
        original = before[(row.kind, row.label)]
        assert row.provenance == original.provenance and row.provenance["versions"]
        assert row.imported_from["run_id"] == original.id
        assert row.imported_from["source"] == manifest["source"]
        assert row.imported_from["dump"] == shared_dump.name
    assert identity  # the source catalogue is a real, separate database


def test_a_catalogue_that_has_the_model_and_some_runs_gets_only_what_it_lacks(
    shared_catalogue: SharedCatalogue, empty: Engine, tmp_path: Path
) -> None:
    source = _engine(shared_catalogue.url)
    part = export_catalogue(
        source,
        tmp_path / "part",
        ExportOptions(selection=Selection(runs=(shared_catalogue.score_run,))),
    )
    whole = export_catalogue(source, tmp_path / "whole", ExportOptions(images=False))
    expected = view_rows(source)
    source.dispose()
    # the part: the scoring run and the extraction it names, no other run
    assert part.rows["run"] == 2 and part.rows["model"] == 1
    assert part.rows["dissection"] == 0 and part.rows["am_panel"] == 0
    assert part.rows["rating"] == whole.rows["rating"] > 0  # ratings go with the model's units
    first = import_dump(empty, part.path)
    assert len(first.runs_new) == 2
    second = import_dump(empty, whole.path)
    assert second.models.present == [shared_catalogue.model] and len(second.runs_present) == 2
    with empty.connect() as conn:
        models = conn.execute(text("SELECT name, checksum FROM model ORDER BY name")).all()
        n_runs = conn.execute(text("SELECT count(*) FROM run")).scalar_one()
    assert [m.name for m in models].count(shared_catalogue.model) == 1
    assert n_runs == whole.rows["run"]
    got = view_rows(empty)
    for view, rows in expected.items():
        assert got[view] == rows, view


def test_a_run_this_catalogue_never_finished_is_replaced_by_the_finished_one(
    catalogue: UICatalogue, ui_dump: Path, empty: Engine
) -> None:
    import_dump(empty, ui_dump)
    with empty.begin() as conn:
        run_id = conn.execute(
            text("SELECT id FROM run WHERE kind = 'score' AND params->>'all_images' = 'true'")
        ).scalar_one()
        conn.execute(text("DELETE FROM unit_metrics WHERE run_id = :r"), {"r": run_id})
        conn.execute(text("UPDATE run SET status = 'failed' WHERE id = :r"), {"r": run_id})
    again = import_dump(empty, ui_dump)
    assert again.runs_replaced == [run_id]
    source = _engine(catalogue.url)
    expected = view_rows(source)
    source.dispose()
    assert view_rows(empty)["unit_catalogue"] == expected["unit_catalogue"]


# ------------------------------------------------------------------------------ without unitcat


def test_duckdb_and_pandas_give_the_headline_query_on_the_parquet_files(
    catalogue: UICatalogue, ui_dump: Path
) -> None:
    duckdb = pytest.importorskip("duckdb")
    where = f"{CRITERIA_BY_KEY['misleading'].sql()} AND {NOT_CONSTANT.sql()}"
    metrics = str(ui_dump / "unit_metrics.parquet")
    ((count,),) = duckdb.sql(f"SELECT count(*) FROM '{metrics}' WHERE {where}").fetchall()
    engine = _engine(catalogue.url)
    with engine.connect() as conn:
        expected = conn.execute(text("SELECT count(*) FROM misleading_detectors")).scalar_one()
    engine.dispose()
    assert count == expected == len(MISLEADING)
    # which units, named as the README's query names them: by the runs' own columns
    rows = duckdb.sql(
        f"SELECT m.layer, m.unit, r.params FROM '{metrics}' m "
        f"JOIN '{ui_dump / 'run.parquet'}' r ON r.run = m.run WHERE {where}"
    ).fetchall()
    named = {
        (layer, unit, "all" if json.loads(p)["all_images"] else "correct")
        for layer, unit, p in rows
    }
    assert named == MISLEADING

    frame = pq.read_table(metrics).to_pandas()
    chosen = frame[
        (frame.precision > 0.75)
        & (frame.false_alarm_rate > 0.9)
        & ~frame.constant.fillna(False).astype(bool)
    ]
    assert len(chosen) == count
    assert set(zip(chosen.layer, chosen.unit, strict=True)) == {
        (layer, unit) for layer, unit, _ in MISLEADING
    }


def test_image_columns_read_back_as_the_same_encoded_bytes(
    catalogue: UICatalogue, ui_dump: Path, tmp_path: Path
) -> None:
    files = sorted((ui_dump / "images").glob("image-*.parquet"))
    table = pq.read_table(files)
    assert table.num_rows > 0
    for row in table.to_pylist():
        assert row["image"]["bytes"] == (catalogue.image_root / row["image_key"]).read_bytes()
        assert row["image"]["path"] == row["image_key"]
    (panel,) = pq.read_table(ui_dump / "images" / "am_panel-00000.parquet").to_pylist()
    assert panel["image"]["bytes"] == catalogue.panel_path.read_bytes()
    assert (panel["layer"], panel["unit"]) == ("fc6", 3)

    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(
        "parquet", data_files=[str(f) for f in files], split="train", cache_dir=str(tmp_path / "hf")
    )
    assert isinstance(loaded.features["image"], datasets.Image)
    raw = loaded.cast_column("image", datasets.Image(decode=False))
    by_key = {r["image_key"]: r["image"]["bytes"] for r in raw}
    assert by_key == {r["image_key"]: r["image"]["bytes"] for r in table.to_pylist()}
    first = loaded[0]["image"]  # decoded by datasets: the same pixels as the file
    from PIL import Image

    with Image.open(catalogue.image_root / loaded[0]["image_key"]) as original:
        assert np.array_equal(np.asarray(first), np.asarray(original))


def test_imported_images_are_where_the_ui_finds_them(
    catalogue: UICatalogue,
    ui_dump: Path,
    empty: Engine,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from catalogue.config import get_settings
    from catalogue.query.files import artifact_path, attach_images

    monkeypatch.setenv("UNITCAT_HOME", str(tmp_path / "home"))
    import_dump(empty, ui_dump)
    assert (get_settings().artifacts_dir / "imported").is_dir()
    with empty.connect() as conn:
        score = conn.execute(
            text("SELECT id FROM run WHERE kind = 'score' AND params->>'all_images' = 'false'")
        ).scalar_one()
        keys = (
            conn.execute(
                text("SELECT image_key FROM unit_top_image WHERE run_id = :r AND rank = 1"),
                {"r": score},
            )
            .scalars()
            .all()
        )
        (path,) = conn.execute(text("SELECT path FROM am_panel")).scalars().all()
    import pandas as pd

    originals = {key: (catalogue.image_root / key).read_bytes() for key in keys}
    away = catalogue.image_root.with_name("images-away")
    catalogue.image_root.rename(away)  # as on another machine: the run's folder is not here
    try:
        frame = attach_images(empty, score, pd.DataFrame({"image_key": keys}))
    finally:
        away.rename(catalogue.image_root)
    for key, found in zip(keys, frame["path"], strict=True):
        assert found is not None and Path(found).read_bytes() == originals[key]
    assert Path(artifact_path(path)).read_bytes() == catalogue.panel_path.read_bytes()
    assert not Path(path).is_absolute()
