"""IMI's published layout of 2-AFC trials and its response rows (Zimmermann, Klein &
Brendel, NeurIPS 2023: the IMI data set and its experiment code, brendel-group/imi).

Trials (what IMI's web experiment loads, one folder per task = one participant's HIT)::

    OUT/task_<k>/index.json                  {"task_name": "<OUT name>/task_<k>",
                                              "n_reference_images": 9, "n_trials": n,
                                              "catch_trial_idxs": [positions of catch trials]}
    OUT/task_<k>/trials/trial_<p>/queries/max.png, queries/min.png
    OUT/task_<k>/trials/trial_<p>/references/max_0.png … max_8.png, min_0.png … min_8.png
    OUT/structure.json                       IMI's task structure (below)

Trials and positions count from 1. IMI's experiment shows references `max_8` / `min_8`
first, then the others in a shuffled order, so the most extreme reference (shown first
here too) is written as `*_8`, the next as `*_7`, and so on; it puts the minimal
references on the left, the maximal ones on the right, and shuffles which query is
shown first itself. Images are written as RGB PNGs, resized as IMI's stimuli were
(shorter side to 256/224 of the size, then the centre `size` × `size`; size 0 keeps
them as stored). `structure.json` has IMI's shape (`{"tasks": [{"index": k, "trials":
[{"mode", "queries", "references"}], "raw_trials", "raw_catch_trials"}]}`) with paths
in IMI's stimulus layout (`stimuli/<model>/<layer>/channel_<unit>/natural_images/
batch_<b>`; catch trials `catch/<model>/<layer>/channel_<unit>/natural_images`), so
IMI's analysis code reads the model, layer and unit of every trial from it.

Responses: the per-trial rows IMI's analysis builds from its experiment's records (the
jsPsych trial data of `2afc-image-confidence-response` with the worker and task), as a
CSV with a header. Columns read (others are ignored):

- participant: `participant_id` (or `worker_id`);
- the trial: `task_number` (or `task_id` ending in `-<k>`) and `corrected_trial_index`
  (the trial's 0-based place among the task's trials);
- the answer: `choice` (`b`: the maximal query, IMI's `correct_query_choice`; `a`: the
  minimal one) and/or `correct` (true/false); both given must agree;
- optional: `confidence` (1–3), `rt` (milliseconds), `catch_trial` and `is_demo`
  (true/false; demo rows are practice and skipped), `model`, `layer`, `channel` (checked
  against the trial when present).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from catalogue.errors import InputError, NotFound

if TYPE_CHECKING:  # the trials as the catalogue reads them; the format needs no database
    from catalogue.query.twoafc import Trial

#: IMI's reference numbering: the experiment reads `*_8` down to `*_0`.
MAX_REFERENCES = 9
STIMULUS_SIZE = 224
_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f"}


# ---------------------------------------------------------------- trials out


def reference_files(end: str, n: int) -> list[str]:
    """File names of `n` references in the order shown: `max_8.png`, `max_7.png`, …"""
    return [f"{end}_{MAX_REFERENCES - 1 - i}.png" for i in range(n)]


def stimulus(image: Image.Image, size: int = STIMULUS_SIZE) -> Image.Image:
    """IMI's stimulus transform: shorter side to size·256/224, the centre size × size, RGB."""
    image = image.convert("RGB")
    if size <= 0:
        return image
    scale = round(size * 256 / 224) / min(image.size)
    resized = image.resize(
        (max(size, round(image.width * scale)), max(size, round(image.height * scale))),
        Image.Resampling.BILINEAR,
    )
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return resized.crop((left, top, left + size, top + size))


def _stimulus_path(trial: Trial) -> str:
    if trial.catch:
        return f"catch/{trial.model}/{trial.layer}/channel_{trial.unit}/natural_images"
    return f"stimuli/{trial.model}/{trial.layer}/channel_{trial.unit}/natural_images/batch_{trial.batch}"


def structure(trials: Sequence[Trial], study: str) -> dict[str, Any]:
    """IMI's task structure of the trials (task and position order)."""
    tasks: dict[int, dict[str, Any]] = {}
    for t in trials:
        task = tasks.setdefault(
            t.task, {"index": t.task, "trials": [], "raw_trials": [], "raw_catch_trials": []}
        )
        path = _stimulus_path(t)
        entry = {
            "mode": "catch_trial" if t.catch else "natural",
            "queries": path,
            "references": path,
        }
        task["trials"].append(entry)
        task["raw_catch_trials" if t.catch else "raw_trials"].append(entry)
    return {"study": study, "tasks": [tasks[k] for k in sorted(tasks)]}


ImageLoader = Callable[[str | None, int], Image.Image]


def write_layout(
    out: Path,
    trials: Sequence[Trial],
    study: str,
    load: ImageLoader,
    *,
    size: int = STIMULUS_SIZE,
    responses: Sequence[dict[str, Any]] = (),
) -> int:
    """Write the trials in IMI's layout into the new folder `out`, with `responses` (IMI's
    response rows) as `responses.csv` when there are any; the number of images.

    Everything is written into a sibling folder first and renamed at the end, so a
    failure (a missing image, a full disk) leaves no `out` behind.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not an empty folder; give a new folder.")
    n_refs = {len(t.max_references) for t in trials} | {len(t.min_references) for t in trials}
    if max(n_refs, default=0) > MAX_REFERENCES:
        raise InputError(f"IMI's layout numbers at most {MAX_REFERENCES} references per side.")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    n_images = 0
    try:
        for task in sorted({t.task for t in trials}):
            mine = [t for t in trials if t.task == task]
            folder = partial / f"task_{task}"
            for t in mine:
                n_images += _write_trial(folder / "trials" / f"trial_{t.position}", t, load, size)
            index = {
                "task_name": f"{out.name}/task_{task}",
                "n_reference_images": len(mine[0].max_references),
                "n_trials": len(mine),
                "catch_trial_idxs": [t.position for t in mine if t.catch],
            }
            (folder / "index.json").write_text(json.dumps(index, indent=1))
        (partial / "structure.json").write_text(json.dumps(structure(trials, study), indent=1))
        if responses:
            write_responses(partial / "responses.csv", responses)
        if out.exists():
            out.rmdir()
        partial.rename(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return n_images


def _write_trial(folder: Path, trial: Trial, load: ImageLoader, size: int) -> int:
    (folder / "queries").mkdir(parents=True)
    (folder / "references").mkdir()
    files = [
        (folder / "queries" / "max.png", trial.max_query),
        (folder / "queries" / "min.png", trial.min_query),
    ]
    for end, refs in (("max", trial.max_references), ("min", trial.min_references)):
        names = reference_files(end, len(refs))
        files += [(folder / "references" / n, e) for n, e in zip(names, refs, strict=True)]
    for path, exemplar in files:
        stimulus(load(exemplar.image_key, exemplar.image_index), size).save(path)
    return len(files)


# ---------------------------------------------------------------- responses in


@dataclass(frozen=True)
class ImiResponse:
    """One response row of IMI's format, checked for its own content."""

    line: int
    participant: str
    task: int
    position: int  # 1-based: corrected_trial_index + 1
    chose_max: bool
    confidence: int | None
    rt_ms: float | None
    catch_trial: bool | None
    unit: tuple[str, str, int] | None  # (model, layer, channel) when the file names it


def _bool(value: str, column: str, line: int) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InputError(f"line {line}: {column} {value!r} is not true or false")


def _int(value: str, column: str, line: int) -> int:
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"line {line}: {column} {value!r} is not a number") from None
    if not number.is_integer():
        raise InputError(f"line {line}: {column} {value!r} is not a whole number")
    return int(number)


def _task(row: dict[str, str], line: int) -> int:
    if (row.get("task_number") or "").strip():
        return _int(row["task_number"], "task_number", line)
    task_id = (row.get("task_id") or "").strip()
    tail = task_id.rsplit("-", 1)[-1]
    if not tail.isdigit():
        raise InputError(
            f"line {line}: no task_number, and task_id {task_id!r} does not end in -<number>"
        )
    return int(tail)


def _answer(row: dict[str, str], line: int) -> bool:
    choice = (row.get("choice") or "").strip().lower()
    correct = (row.get("correct") or "").strip()
    if choice and choice not in ("a", "b"):
        raise InputError(
            f"line {line}: choice {row['choice']!r} is not a (the minimal query) or b (the maximal one)"
        )
    if not choice and not correct:
        raise InputError(f"line {line}: no answer (choice or correct is empty)")
    by_choice = choice == "b" if choice else None
    by_correct = _bool(correct, "correct", line) if correct else None
    if by_choice is not None and by_correct is not None and by_choice != by_correct:
        raise InputError(f"line {line}: choice {choice!r} and correct {correct!r} disagree")
    return by_choice if by_choice is not None else bool(by_correct)


def _optional(row: dict[str, str], line: int) -> tuple[int | None, float | None, bool | None]:
    confidence = rt = catch = None
    if (row.get("confidence") or "").strip():
        confidence = _int(row["confidence"], "confidence", line)
        if confidence not in (1, 2, 3):
            raise InputError(f"line {line}: confidence {confidence} is not 1, 2 or 3")
    if (row.get("rt") or "").strip():
        try:
            rt = float(row["rt"])
        except ValueError:
            raise InputError(
                f"line {line}: rt {row['rt']!r} is not a number of milliseconds"
            ) from None
        if not rt >= 0:
            raise InputError(f"line {line}: rt {row['rt']!r} is not a time (milliseconds ≥ 0)")
    if (row.get("catch_trial") or "").strip():
        catch = _bool(row["catch_trial"], "catch_trial", line)
    return confidence, rt, catch


def _unit(row: dict[str, str], line: int) -> tuple[str, str, int] | None:
    names = [(row.get(c) or "").strip() for c in ("model", "layer", "channel")]
    if not any(names):
        return None
    if not all(names):
        raise InputError(f"line {line}: give model, layer and channel together, or none of them")
    return names[0], names[1], _int(names[2], "channel", line)


def _parse_row(row: dict[str, str], line: int) -> ImiResponse | None:
    if (row.get("is_demo") or "").strip() and _bool(row["is_demo"], "is_demo", line):
        return None
    participant = (row.get("participant_id") or row.get("worker_id") or "").strip()
    if not participant:
        raise InputError(f"line {line}: no participant (participant_id or worker_id)")
    index = (row.get("corrected_trial_index") or "").strip()
    if not index:
        raise InputError(f"line {line}: no corrected_trial_index")
    position = _int(index, "corrected_trial_index", line) + 1
    if position < 1:
        raise InputError(f"line {line}: corrected_trial_index {index} is negative")
    confidence, rt, catch = _optional(row, line)
    return ImiResponse(
        line,
        participant,
        _task(row, line),
        position,
        _answer(row, line),
        confidence,
        rt,
        catch,
        _unit(row, line),
    )


REQUIRED = ("corrected_trial_index",)


def parse_responses(path: Path) -> tuple[list[ImiResponse], list[str]]:
    """The responses of an IMI response CSV, and the problems of the lines that are not
    (each 'line N: …'); a file without the needed columns is refused at once."""
    if not path.is_file():
        raise NotFound(f"no response file {path}.")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            _check_header(header, path)
            rows: list[ImiResponse] = []
            problems: list[str] = []
            for line, row in enumerate(reader, start=2):
                try:
                    parsed = _parse_row({k: v or "" for k, v in row.items() if k is not None}, line)
                except InputError as exc:
                    problems.append(str(exc))
                    continue
                if parsed is not None:
                    rows.append(parsed)
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text (CSV) file.") from None
    except csv.Error as exc:
        raise InputError(f"{path} is not a readable CSV file ({exc}).") from None
    return rows, problems


def _check_header(header: Sequence[str], path: Path) -> None:
    missing = []
    if not {"participant_id", "worker_id"} & set(header):
        missing.append("participant_id (or worker_id)")
    if not {"task_number", "task_id"} & set(header):
        missing.append("task_number (or task_id)")
    missing += [c for c in REQUIRED if c not in header]
    if not {"choice", "correct"} & set(header):
        missing.append("choice or correct")
    if missing:
        raise InputError(
            f"{path} lacks the column(s) {', '.join(missing)} of IMI's response rows, so "
            "nothing imported; its header is: "
            + (", ".join(h or "(unnamed)" for h in header) or "(none)")
            + "."
        )


def write_responses(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Response rows in IMI's format (the columns `parse_responses` reads)."""
    columns = [
        "participant_id",
        "task_number",
        "corrected_trial_index",
        "choice",
        "correct",
        "confidence",
        "rt",
        "catch_trial",
        "is_demo",
        "model",
        "layer",
        "channel",
    ]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
