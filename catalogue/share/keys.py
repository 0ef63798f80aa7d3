"""Run keys that mean the same in every catalogue.

A run's key in the database (`catalogue.db.runs.run_key`) hashes its parameters, and a
scoring run's parameters name its extraction run by id (`extract_run: 12`), an id that
means nothing in another catalogue. The *content key* of a run hashes the same things
with every run id replaced by the content key of the run it names, together with the
model (name and weights checksum) and dataset it ran on:

    content_key(run) = sha256({kind, params with run ids -> content keys, model, dataset})

It is the same for the same command on the same inputs in any catalogue, and two runs of
one catalogue never share it (their parameters differ, or they name different runs).

On import the parameters get the importing catalogue's ids again (`local_params`), and
the run's database key is computed from them as `recorded_run` would: a command run later
in that catalogue with the same parameters finds the imported run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

#: Parameters (and stats entries) that hold the id of another run.
RUN_ID_PARAMS: tuple[str, ...] = ("extract_run", "score_run", "rows_from")


def replace_run_refs(values: Mapping[str, Any], replace: Callable[[Any], Any]) -> dict[str, Any]:
    """`values` (a run's params or stats) with each run reference passed through `replace`."""
    out = dict(values)
    for name in RUN_ID_PARAMS:
        if out.get(name) is not None:
            out[name] = replace(out[name])
    return out


def content_keys(runs: Mapping[int, Mapping[str, Any]]) -> dict[int, str]:
    """The content key of every run: `runs` maps run id -> {kind, params, model, checksum,
    dataset}. A reference to a run that is not in `runs` hashes as None."""
    keys: dict[int, str] = {}

    def key(run_id: int) -> str:
        if run_id not in keys:
            run = runs[run_id]
            params = replace_run_refs(run["params"] or {}, ref)
            content = {
                "kind": run["kind"],
                "params": params,
                "model": [run.get("model"), run.get("checksum")],
                "dataset": run.get("dataset"),
            }
            canonical = json.dumps(content, sort_keys=True, default=str)
            keys[run_id] = hashlib.sha256(canonical.encode()).hexdigest()
        return keys[run_id]

    def ref(value: Any) -> str | None:
        return key(int(value)) if _is_id(value) and int(value) in runs else None

    for run_id in sorted(runs):
        key(run_id)
    return keys


def _is_id(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit())


def portable(values: Mapping[str, Any], keys: Mapping[int, str]) -> dict[str, Any]:
    """Params or stats of the exporting catalogue with run ids replaced by content keys."""
    return replace_run_refs(values, lambda v: keys.get(int(v)) if _is_id(v) else None)


def local_params(
    values: Mapping[str, Any], ids: Mapping[str, int], renamed: Mapping[str, str]
) -> dict[str, Any]:
    """Params or stats of a dump with run keys replaced by the importing catalogue's ids and
    a renamed model's name replaced by its new name."""
    out = replace_run_refs(values, lambda v: ids.get(str(v)))
    if isinstance(out.get("model"), str) and out["model"] in renamed:
        out["model"] = renamed[out["model"]]
    return out
