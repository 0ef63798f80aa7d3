"""`unitcat import DUMP`: a dump merged into this catalogue, in one transaction or not at all.

1. Every check first (`catalogue.share.load.open_dump`): format, version, schema
   revision, checksums, Parquet footers. Nothing is written before they pass.
2. One transaction: the identity (models, layers, datasets, class groups, concepts,
   participants) merged by key; the runs in dependency order, each found by the key its
   parameters give in this catalogue (`catalogue.share.keys`); the results of the runs
   this catalogue lacks (or never finished) by binary COPY; ratings not given yet.
   A run the catalogue has finished keeps its rows, so importing the same dump twice
   changes nothing. Imported runs keep their provenance and record where they came
   from (`run.imported_from`).
   The 2-AFC studies follow (`catalogue.share.twoafc`): by name, with their trials,
   tasks dealt and answers.
3. Images (units' images, 2-AFC stimuli, AM panels) are staged beside their place under
   `UNITCAT_HOME/artifacts/imported/` and moved there just before the commit.

Killed at any point (`kill -9`), the server rolls the transaction back: the catalogue is
as it was, and at most a staging folder of image files is left, which the next import
ignores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, Engine

from catalogue.config import get_settings
from catalogue.db.bulk import binary_copy, copy_rows, table_types
from catalogue.db.migrate import ensure_current, head_revision
from catalogue.db.runs import run_key
from catalogue.errors import InputError
from catalogue.share import write
from catalogue.share.columns import column_values, distinct, mapped, python_list
from catalogue.share.images import (
    StagedFiles,
    panel_relative,
    top_image_relative,
)
from catalogue.share.keys import RUN_ID_PARAMS, local_params
from catalogue.share.load import Dump, open_dump
from catalogue.share.spec import BY_NAME, RESULTS, DumpTable
from catalogue.share.twoafc import Studies

#: (table, rows written so far)
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class ImportOptions:
    """Names to give the dump's models, datasets and 2-AFC studies here (`old -> new`)."""

    rename: Mapping[str, str] = field(default_factory=dict)
    rename_datasets: Mapping[str, str] = field(default_factory=dict)
    rename_studies: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ImportResult:
    folder: Path
    models: write.Merged = field(default_factory=write.Merged)
    datasets: write.Merged = field(default_factory=write.Merged)
    runs_new: list[int] = field(default_factory=list)
    runs_present: list[int] = field(default_factory=list)
    runs_replaced: list[int] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    images: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(
            self.models.new
            or self.datasets.new
            or self.runs_new
            or self.runs_replaced
            or any(self.rows.values())
        )


def import_dump(
    engine: Engine,
    folder: Path,
    options: ImportOptions | None = None,
    on_progress: Progress | None = None,
) -> ImportResult:
    """Merge the dump in `folder` into the catalogue of `engine` (see the module docstring)."""
    started = time.monotonic()
    dump = open_dump(Path(folder), head_revision())
    ensure_current(engine)
    staged = StagedFiles(get_settings().artifacts_dir)
    try:
        with engine.begin() as conn:
            result = _Import(conn, dump, options or ImportOptions(), staged, on_progress).run()
            staged.place()
    except BaseException:
        staged.undo()
        raise
    finally:
        staged.clean()
    result.images = len(staged.placed)
    result.seconds = time.monotonic() - started
    return result


# ------------------------------------------------------------------------------ the import


class _Import:
    def __init__(
        self,
        conn: Connection,
        dump: Dump,
        options: ImportOptions,
        staged: StagedFiles,
        on_progress: Progress | None,
    ) -> None:
        self.conn = conn
        self.dump = dump
        self.options = options
        self.staged = staged
        self.progress = on_progress or (lambda *_: None)
        self.result = ImportResult(dump.folder)
        self.model_names: dict[str, str] = {}  # dump name -> name here
        self.dataset_names: dict[str, str] = {}
        self.layers: dict[tuple[str, str], int] = {}  # (dump model, layer) -> layer id
        self.units: dict[int, np.ndarray] = {}  # layer id -> unit ids by index
        self.models: dict[str, int] = {}
        self.datasets: dict[str, int] = {}
        self.groups: dict[tuple[str, str, int], int] = {}  # (dump dataset, group, version)
        self.concepts: dict[tuple[str, str, str], int] = {}
        self.participants: dict[str, int] = {}
        self.runs: dict[str, int] = {}  # content key -> run id here
        self.run_dataset: dict[str, str | None] = {}  # content key -> dump dataset
        self.to_write: dict[str, int] = {}  # runs whose rows are written
        self.panel_paths: dict[tuple[str, str, str, int], str] = {}

    def run(self) -> ImportResult:
        write.lock_import(self.conn)
        self._models()
        self._datasets()
        self._concepts_and_participants()
        self._runs()
        self._panels()
        for table in RESULTS:
            self._results(table)
        self._ratings()
        self._studies()
        self._images()
        return self.result

    # -------------------------------------------------------------- identity

    def _models(self) -> None:
        models = self.dump.read(BY_NAME["model"]).to_pylist()
        unknown = set(self.options.rename) - {m["model"] for m in models}
        if unknown:
            raise InputError(
                f"--rename names {', '.join(sorted(unknown))}, which the dump has no model of; "
                f"its models are {', '.join(m['model'] for m in models)}."
            )
        for row in models:
            name = self.options.rename.get(row["model"], row["model"])
            model_id, new = write.merge_model(self.conn, row["model"], name, row)
            self.model_names[row["model"]] = name
            self.models[row["model"]] = model_id
            (self.result.models.new if new else self.result.models.present).append(name)
        here = {m: (self.models[m], self.model_names[m]) for m in self.models}
        self.layers = write.merge_layers(
            self.conn, here, self.dump.read(BY_NAME["layer"]).to_pylist()
        )
        self.units = write.unit_ids(self.conn, sorted(self.layers.values()))

    def _datasets(self) -> None:
        datasets = self.dump.read(BY_NAME["dataset"]).to_pylist()
        unknown = set(self.options.rename_datasets) - {d["dataset"] for d in datasets}
        if unknown:
            raise InputError(
                f"--rename-dataset names {', '.join(sorted(unknown))}, which the dump has no "
                f"dataset of; its datasets are {', '.join(d['dataset'] for d in datasets)}."
            )
        classes: dict[str, list[dict[str, Any]]] = {}
        for row in self.dump.read(BY_NAME["image_class"]).sort_by("class_index").to_pylist():
            classes.setdefault(row["dataset"], []).append(row)
        for row in datasets:
            name = self.options.rename_datasets.get(row["dataset"], row["dataset"])
            dataset_id, new = write.merge_dataset(
                self.conn, row["dataset"], name, row, classes.get(row["dataset"], [])
            )
            self.dataset_names[row["dataset"]] = name
            self.datasets[row["dataset"]] = dataset_id
            (self.result.datasets.new if new else self.result.datasets.present).append(name)
        for row in self.dump.read(BY_NAME["class_group"]).to_pylist():
            key = (row["dataset"], row["group"], row["version"])
            self.groups[key] = write.merge_group(self.conn, self.datasets[row["dataset"]], row)

    def _concepts_and_participants(self) -> None:
        self.concepts = write.merge_concepts(
            self.conn, self.dump.read(BY_NAME["concept"]).to_pylist()
        )
        self.participants = write.merge_participants(
            self.conn, self.dump.read(BY_NAME["participant"]).to_pylist()
        )

    # -------------------------------------------------------------- runs

    def _runs(self) -> None:
        rows = {r["run"]: r for r in self.dump.read(BY_NAME["run"]).to_pylist()}
        origin = {
            "dump": self.dump.folder.name,
            "exported_at": self.dump.manifest.data.get("created_at"),
            "source": self.dump.manifest.data.get("source"),
            "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        for key in _dependency_order(rows):
            row = rows[key]
            self.run_dataset[key] = row["dataset"]
            values = self._run_values(row, origin)
            local_key = run_key(row["kind"], values["params"])
            found = write.find_run(self.conn, row["kind"], local_key)
            if found is None:
                run_id = write.insert_run(
                    self.conn, {"kind": row["kind"], "key": local_key, **values}
                )
                self.result.runs_new.append(run_id)
                self.to_write[key] = run_id
            elif found.status != "done" and row["status"] == "done":
                run_id = found.id
                write.take_over_run(self.conn, run_id, local_key, values)
                self.result.runs_replaced.append(run_id)
                self.to_write[key] = run_id
            else:
                run_id = found.id
                self.result.runs_present.append(run_id)
            self.runs[key] = int(run_id)
        self.progress("run", len(rows))

    def _run_values(self, row: Mapping[str, Any], origin: Mapping[str, Any]) -> dict[str, Any]:
        renamed = {k: v for k, v in self.model_names.items() if k != v}
        previous = json.loads(row["imported_from"]) if row["imported_from"] else None
        return {
            "label": row["label"],
            "model_id": self.models.get(row["model"]) if row["model"] else None,
            "dataset_id": self.datasets.get(row["dataset"]) if row["dataset"] else None,
            "parent_id": self.runs.get(row["parent"]) if row["parent"] else None,
            "baseline_of": self.runs.get(row["baseline_of"]) if row["baseline_of"] else None,
            "params": local_params(json.loads(row["params"] or "{}"), self.runs, renamed),
            "stats": local_params(json.loads(row["stats"] or "{}"), self.runs, renamed),
            "status": row["status"],
            "started_at": row["started_at"],
            "finished_at": row["finished_at"],
            "duration_s": row["duration_s"],
            "code_version": row["code_version"],
            "h5_path": row["h5_path"],
            "error": row["error"],
            "owner_host": row["owner_host"],
            "owner_pid": row["owner_pid"],
            "owner_started_at": row["owner_started_at"],
            "provenance": json.loads(row["provenance"] or "{}"),
            "imported_from": {**origin, "run_id": row["source_run_id"], "previously": previous},
        }

    # -------------------------------------------------------------- results

    def _unit_ids(self, model: Any, layer: Any, unit: Any, what: str) -> np.ndarray:
        inverse, tuples = distinct([model, layer])
        unit_index = column_values(unit).astype(np.int64)
        out = np.empty(len(unit_index), dtype=np.int64)
        for j, key in enumerate(tuples):
            rows = inverse == j
            layer_id = self.layers.get(key)  # type: ignore[arg-type]
            ids = self.units.get(layer_id, np.zeros(0, dtype=np.int64)) if layer_id else None
            index = unit_index[rows]
            if ids is None or (index < 0).any() or (index >= len(ids)).any():
                raise InputError(
                    f"{what} of the dump names a unit of {key[0]}.{key[1]} that its model does not "
                    "have; the dump is damaged: export it again."
                )
            out[rows] = ids[index]
        return out

    def _ref_columns(self, table: DumpTable, batch: pa.Table) -> dict[str, Any]:
        """The id columns of a batch's references (the run column is done by the caller)."""
        out: dict[str, Any] = {}
        for column, ref in table.refs.items():
            if ref.kind == "unit":
                out[column] = self._unit_ids(
                    batch["model"], batch["layer"], batch["unit"], table.file
                )
            elif ref.kind == "layer":
                out[column] = mapped([batch["model"], batch["layer"]], self.layers.get)
            elif ref.kind == "concept":
                out[column] = mapped(
                    [batch["probe"], batch["category"], batch["concept"]], self.concepts.get
                )
            elif ref.kind == "group":
                out[column] = mapped(
                    [batch["run"], batch["group"], batch["group_version"]],
                    lambda k: self.groups.get((self.run_dataset.get(k[0]), k[1], k[2])),  # type: ignore[arg-type]
                )
            elif ref.kind == "run" and column != "run_id":
                ids = mapped([batch[ref.name]], lambda k: self.runs.get(k[0]))
                out[column] = np.ma.masked_array(ids, mask=ids < 0)
        for column, values in out.items():
            if not isinstance(values, np.ma.MaskedArray) and (values < 0).any():
                raise InputError(
                    f"{table.file} names a {table.refs[column].kind} the dump does not describe; "
                    "the dump is damaged: export it again."
                )
        return out

    def _results(self, table: DumpTable) -> None:
        incoming = self.dump.manifest.rows(table.table) if self.to_write else 0
        with write.bulk_load(self.conn, table.table, incoming):
            self._write_results(table)

    def _write_results(self, table: DumpTable) -> None:
        """The rows of the runs to write, in one COPY statement where the table has a binary
        layout (its statement triggers then run once), else a text COPY per batch."""
        written = 0
        with ExitStack() as stack:
            binary: Callable[[Mapping[str, Any]], int] | None = None
            for batch in self.dump.batches(table):
                columns = self._columns(table, batch)
                if columns is None:
                    continue
                names = list(columns)
                if binary is None and table_types(table.table, names) is not None:
                    binary = stack.enter_context(binary_copy(self.conn, table.table, names))
                if binary is not None:
                    written += binary({c: column_values(v) for c, v in columns.items()})
                else:
                    lists = [python_list(columns[c], len(columns["run_id"])) for c in names]
                    written += copy_rows(self.conn, table.table, names, zip(*lists, strict=True))
                self.progress(table.table, written)
        self.result.rows[table.table] = written

    def _columns(self, table: DumpTable, batch: pa.Table) -> dict[str, Any] | None:
        """A batch's rows of the runs to write as database columns (None: no such row)."""
        runs = mapped([batch["run"]], lambda k: self.to_write.get(k[0]))
        keep = runs >= 0
        if not keep.any():
            return None
        if not keep.all():
            batch, runs = batch.filter(pa.array(keep)), runs[keep]
        columns: dict[str, Any] = {"run_id": runs, **self._ref_columns(table, batch)}
        for dump_column, db_column in table.columns():
            if db_column is not None:  # None: a key column, replaced by its id above
                columns[db_column] = batch[dump_column]
        if table.table == "am_panel":
            columns["path"] = self._panel_paths(batch)
        return columns

    # -------------------------------------------------------------- AM panels, images

    def _panels(self) -> None:
        """Stage the AM panels of the runs to write; remember each one's path here."""
        for batch in self.dump.image_batches("am_panel"):
            for row in batch.to_pylist():
                if row["run"] not in self.to_write:
                    continue
                data = row["image"]["bytes"]
                relative = panel_relative(data)
                self.staged.add(relative, data)
                self.panel_paths[(row["run"], row["model"], row["layer"], row["unit"])] = str(
                    relative
                )

    def _panel_paths(self, batch: pa.Table) -> list[str]:
        keys = zip(*(batch[c].to_pylist() for c in ("run", "model", "layer", "unit")), strict=True)
        return [
            self.panel_paths.get(k, path)
            for k, path in zip(keys, batch["path"].to_pylist(), strict=True)
        ]

    def _studies(self) -> None:
        studies = Studies(
            self.conn, self.dump, self.runs, self.participants, self._unit_ids,
            self.options.rename_studies,
        )  # fmt: skip
        self.result.rows.update(studies.run())

    def _images(self) -> None:
        for batch in self.dump.image_batches("image"):
            for row in batch.to_pylist():
                dataset = self.dataset_names.get(row["dataset"], row["dataset"])
                relative = top_image_relative(dataset, row["image_key"])
                if relative is not None:
                    self.staged.add(
                        PurePosixPath("imported", "images") / relative, row["image"]["bytes"]
                    )

    # -------------------------------------------------------------- ratings

    def _ratings(self) -> None:
        table = BY_NAME["rating"]
        ratings = self.dump.read(table)
        written = 0
        if ratings.num_rows:
            unit = self._unit_ids(ratings["model"], ratings["layer"], ratings["unit"], table.file)
            people = mapped([ratings["participant"]], lambda k: self.participants.get(k[0]))
            am_runs = mapped([ratings["panel_run"]], lambda k: self.runs.get(k[0]))
            panels = write.panel_ids(self.conn, sorted(set(am_runs[am_runs >= 0].tolist())))
            rated = write.rated_pairs(self.conn, sorted(set(people.tolist())))
            rows = []
            for i, row in enumerate(ratings.to_pylist()):
                pair = (int(people[i]), int(unit[i]))
                if pair in rated:
                    continue
                rows.append(
                    (pair[0], pair[1], panels.get((int(am_runs[i]), pair[1])), row["answer"],
                     row["estimate"], row["names"], row["source"], row["created_at"])
                )  # fmt: skip
            written = copy_rows(
                self.conn,
                "rating",
                (
                    "participant_id",
                    "unit_id",
                    "panel_id",
                    "answer",
                    "estimate",
                    "names",
                    "source",
                    "created_at",
                ),
                rows,
            )
        self.result.rows["rating"] = written
        self._analysis()

    def _analysis(self) -> None:
        table = BY_NAME["unit_rating_analysis"]
        rows = self.dump.read(table)
        written = 0
        if rows.num_rows:
            unit = self._unit_ids(rows["model"], rows["layer"], rows["unit"], table.file)
            score = mapped([rows["score_run"]], lambda k: self.runs.get(k[0]))
            have = write.analysed_units(self.conn, unit.tolist())
            columns = [c for c, db in table.columns() if db is not None]
            out = []
            for i, row in enumerate(rows.to_pylist()):
                if int(unit[i]) in have:
                    continue
                out.append(
                    (
                        int(unit[i]),
                        None if score[i] < 0 else int(score[i]),
                        *(row[c] for c in columns),
                    )
                )
            written = copy_rows(
                self.conn, "unit_rating_analysis", ("unit_id", "score_run_id", *columns), out
            )
        self.result.rows["unit_rating_analysis"] = written


def _dependency_order(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Run keys with every run a run refers to before it."""
    order: list[str] = []
    seen: set[str] = set()

    def refs(row: Mapping[str, Any]) -> set[str]:
        out = {row["parent"], row["baseline_of"]}
        for values in (row["params"], row["stats"]):
            parsed = json.loads(values or "{}")
            out |= {parsed.get(name) for name in RUN_ID_PARAMS}
        return {r for r in out if isinstance(r, str) and r in rows and r != row["run"]}

    def visit(key: str) -> None:
        if key in seen:
            return
        seen.add(key)
        for ref in sorted(refs(rows[key])):
            visit(ref)
        order.append(key)

    for key in sorted(
        rows, key=lambda k: (rows[k]["started_at"] is None, rows[k]["started_at"], k)
    ):
        visit(key)
    return order
