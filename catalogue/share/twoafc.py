"""The 2-AFC study in an import: studies merged by name, their trials, tasks and answers.

A study of the dump whose name this catalogue does not use is added with its trials; one
with the same name, parameters (its scoring run's key included, turned into the run's id
here) and number of tasks is the same study, whose trials are found by (task, position):
only the tasks dealt and the answers the catalogue lacks are added, so importing a dump
twice changes nothing. A study of that name with other parameters is refused in one line
that names the way out (`--rename-study`). Everything is written on the import's one
connection, inside its one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, insert, text

from catalogue.db.bulk import copy_rows
from catalogue.db.twoafc import find_study
from catalogue.db.twoafc_schema import TwoAFCStudy
from catalogue.errors import InputError
from catalogue.share.columns import mapped
from catalogue.share.keys import local_params
from catalogue.share.load import Dump
from catalogue.share.spec import BY_NAME, DumpTable

#: unit ids of (model, layer, unit) columns; the last argument names the file in errors
UnitIds = Callable[[Any, Any, Any, str], np.ndarray]


@dataclass
class Studies:
    """The import's view of the catalogue: run ids by content key, participant ids by code."""

    conn: Connection
    dump: Dump
    runs: Mapping[str, int]
    participants: Mapping[str, int]
    unit_ids: UnitIds
    rename: Mapping[str, str]

    def run(self) -> dict[str, int]:
        """Merge the dump's studies; rows written per table."""
        ids, new = self._studies()
        rows = {"twoafc_study": len(new), "twoafc_trial": self._trials(ids, new)}
        trials = self._trial_ids(ids)
        rows["twoafc_assignment"] = self._assignments(ids)
        rows["twoafc_response"] = self._responses(trials)
        return rows

    def _studies(self) -> tuple[dict[str, int], set[str]]:
        studies = self.dump.read(BY_NAME["twoafc_study"]).to_pylist()
        unknown = set(self.rename) - {s["study"] for s in studies}
        if unknown:
            names = ", ".join(s["study"] for s in studies) or "none"
            raise InputError(
                f"--rename-study names {', '.join(sorted(unknown))}, which the dump has no "
                f"2-AFC study of; its studies: {names}."
            )
        ids: dict[str, int] = {}
        new: set[str] = set()
        for row in studies:
            name = self.rename.get(row["study"], row["study"])
            params = local_params(json.loads(row["params"] or "{}"), self.runs, {})
            found = find_study(self.conn, name)
            if found is None:
                ids[row["study"]] = self._insert_study(name, row, params)
                new.add(row["study"])
            elif found.params != params or found.n_tasks != row["n_tasks"]:
                raise InputError(
                    f"the catalogue has a 2-AFC study named {name!r} with other parameters than "
                    f"the dump's; import it under another name with --rename-study "
                    f"{row['study']}={name}-imported."
                )
            else:
                ids[row["study"]] = int(found.id)
        return ids, new

    def _insert_study(self, name: str, row: Mapping[str, Any], params: dict[str, Any]) -> int:
        score_run = self.runs.get(row["score_run"]) if row["score_run"] else None
        return int(
            self.conn.execute(
                insert(TwoAFCStudy)
                .values(
                    name=name,
                    score_run_id=score_run,
                    params=params,
                    n_tasks=row["n_tasks"],
                    created_at=row["created_at"],
                )
                .returning(TwoAFCStudy.id)
            ).scalar_one()
        )

    def _trials(self, ids: Mapping[str, int], new: set[str]) -> int:
        """The trials of the studies new here (a study found here has them already)."""
        table = BY_NAME["twoafc_trial"]
        trials = self._read(table, "study", new)
        if not trials.num_rows:
            return 0
        units = self.unit_ids(trials["model"], trials["layer"], trials["unit"], table.file)
        columns = [(dump, db) for dump, db in table.columns() if db is not None]
        rows = (
            (ids[row["study"]], int(units[i]), *(row[dump] for dump, _ in columns))
            for i, row in enumerate(trials.to_pylist())
        )
        names = ("study_id", "unit_id", *(db for _, db in columns))
        return copy_rows(self.conn, "twoafc_trial", names, rows)

    def _trial_ids(self, ids: Mapping[str, int]) -> dict[tuple[str, int, int], int]:
        """(dump study, task, position) -> trial id here."""
        by_id = {v: k for k, v in ids.items()}
        found = self.conn.execute(
            text("SELECT id, study_id, task, position FROM twoafc_trial WHERE study_id = ANY(:s)"),
            {"s": list(by_id)},
        ).all()
        return {(by_id[s], int(t), int(p)): int(i) for i, s, t, p in found}

    def _assignments(self, ids: Mapping[str, int]) -> int:
        table = BY_NAME["twoafc_assignment"]
        rows = self._read(table, "study", set(ids)).to_pylist()
        people = self._people([r["participant"] for r in rows], table)
        have = set(
            self.conn.execute(
                text(
                    "SELECT study_id, participant_id FROM twoafc_assignment "
                    "WHERE study_id = ANY(:s)"
                ),
                {"s": list(ids.values())},
            ).all()
        )
        out = [
            (ids[r["study"]], person, r["task"], r["created_at"])
            for r, person in zip(rows, people, strict=True)
            if (ids[r["study"]], person) not in have
        ]
        columns = ("study_id", "participant_id", "task", "created_at")
        return copy_rows(self.conn, "twoafc_assignment", columns, out)

    def _responses(self, trials: Mapping[tuple[str, int, int], int]) -> int:
        table = BY_NAME["twoafc_response"]
        rows = self._read(table, "study", {s for s, _, _ in trials}).to_pylist()
        people = self._people([r["participant"] for r in rows], table)
        have = set(
            self.conn.execute(
                text(
                    "SELECT trial_id, participant_id FROM twoafc_response WHERE trial_id = ANY(:t)"
                ),
                {"t": list(trials.values())},
            ).all()
        )
        out = []
        for row, person in zip(rows, people, strict=True):
            trial = trials.get((row["study"], row["task"], row["position"]))
            if trial is None:
                raise InputError(
                    f"{table.file} answers trial {row['position']} of task {row['task']} of "
                    f"study {row['study']!r}, which the study does not have; the dump is damaged: "
                    "export it again."
                )
            if (trial, person) not in have:
                out.append(
                    (trial, person, row["chose_max"], row["confidence"], row["rt_ms"],
                     row["source"], row["created_at"])
                )  # fmt: skip
        columns = (
            "trial_id", "participant_id", "chose_max", "confidence", "rt_ms", "source",
            "created_at",
        )  # fmt: skip
        return copy_rows(self.conn, "twoafc_response", columns, out)

    def _read(self, table: DumpTable, column: str, keep: set[str]) -> pa.Table:
        rows = self.dump.read(table)
        return rows.filter(pa.array([v in keep for v in rows[column].to_pylist()], pa.bool_()))

    def _people(self, codes: list[str], table: DumpTable) -> list[int]:
        ids = mapped([pa.array(codes, pa.string())], lambda k: self.participants.get(k[0]))
        if (ids < 0).any():
            raise InputError(
                f"{table.file} names a participant the dump does not describe; the dump is "
                "damaged: export it again."
            )
        return [int(i) for i in ids]
