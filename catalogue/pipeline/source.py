"""The finished extraction run that a later computation reads (scoring, ablation, baselines).

Each of them starts the same way, written once here: find the run, refuse it
unless it is done (saying why and what to do, never waiting for it), find its
model's and dataset's records and its activation file, open the file complete,
and check the layers asked for against the ones it holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from catalogue.db.identities import (
    DatasetRecord,
    ModelRecord,
    load_dataset_record_by_id,
    load_model_record_by_id,
)
from catalogue.db.runs import current_state, describe_owner, find_run
from catalogue.errors import InputError, NotFound
from catalogue.pipeline.lifecycle import RunSpec
from catalogue.store import ActivationStore


@dataclass(frozen=True)
class ExtractionSource:
    """A finished extraction run: its row, its model's and dataset's records, its file."""

    run: Any
    model: ModelRecord
    dataset: DatasetRecord
    path: Path

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.run.params or {})

    def run_spec(
        self, kind: str, params: dict[str, Any], what: str, *, h5_path: Path | None = None
    ) -> RunSpec:
        """A run computed from this extraction's activations (its parent), labelled
        ``<model>: <what>``; its file is the extraction's unless it writes its own."""
        return RunSpec(
            kind,
            params,
            label=f"{self.model.name}: {what}",
            model_id=self.run.model_id,
            dataset_id=self.run.dataset_id,
            parent_id=self.run.id,
            h5_path=str(h5_path or self.path),
        )

    @contextmanager
    def store(self) -> Iterator[ActivationStore]:
        """The run's activation file, refused unless complete."""
        with ActivationStore.open(self.path) as store:
            if not store.is_complete:
                raise InputError(
                    f"{self.path} is incomplete; resume extraction run {self.run.id} first."
                )
            yield store


def extraction_source(
    engine: Engine, extract_run: str | int, *, then: str = "score"
) -> ExtractionSource:
    """The extraction run by id or label, done, with its records and its file; ``then``: what
    is done with it (``score``, ``ablate`` …), for the message when it is not done."""
    with engine.connect() as conn:
        run = find_run(conn, extract_run, kind="extract")
        if run.status != "done":  # a finished run being re-run still has its finished file
            raise _not_done(run, current_state(conn, run), then)
        model = load_model_record_by_id(conn, run.model_id)
        dataset = load_dataset_record_by_id(conn, run.dataset_id)
    path = Path(run.h5_path or "")
    if not path.is_file():
        raise NotFound(f"the activation file of run {run.id} is missing: {path}.")
    return ExtractionSource(run, model, dataset, path)


def _not_done(run: Any, state: str, then: str) -> InputError:
    """Why an extraction run cannot be used yet, and what to do; never a reason to wait."""
    who = describe_owner(run)
    if state == "running":
        return InputError(
            f"extraction run {run.id} is still running ({who}); {then} it when it is done "
            "(the list of runs shows its status).",
            fix="the list of runs",
            command="`unitcat runs`",
        )
    if state == "interrupted":
        gone = f" ({who}, now gone)" if run.owner_pid is not None else ""
        what = f"extraction run {run.id} was interrupted{gone}"
    else:
        what = f"extraction run {run.id} failed ({run.error or 'no message'})"
    return InputError(
        f"{what}; run the same extraction again to resume it, then {then}.",
        fix="run the same extraction again",
        command="re-run the same `unitcat ingest extract` command",
    )


def check_layers(store: ActivationStore, names: Sequence[str], run_id: int) -> list[str]:
    """``names`` (each once), refused with the layers the run has if one is not among them."""
    unknown = [n for n in names if n not in store.layer_names]
    if unknown:
        raise NotFound(
            f"run {run_id} has no layer {', '.join(unknown)}; it has "
            f"{', '.join(store.layer_names)}.",
            argument="layers",
        )
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise InputError(
            f"layers names {', '.join(repeated)} more than once; give each layer once.",
            argument="layers",
        )
    return list(names)
