"""A study's trials in IMI's layout (`catalogue.twoafc.imi`), for a lab's own platform,
with the answers collected so far as IMI's response rows (`responses.csv`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from sqlalchemy import Engine

from catalogue.errors import NotFound
from catalogue.query.files import attach_images
from catalogue.query.twoafc import Study, Trial, answers_for_export, study_trials
from catalogue.twoafc import imi


@dataclass(frozen=True)
class Exported:
    out: Path
    n_tasks: int
    n_trials: int
    n_images: int
    n_responses: int


def image_loader(engine: Engine, study: Study, trials: list[Trial]) -> imi.ImageLoader:
    """Open the trials' images (files, or arrays of a bundled dataset) by key; NotFound
    names the first images that cannot be found, before anything is written."""
    keys = sorted(
        {
            e.image_key or ""
            for t in trials
            for e in (t.max_query, t.min_query, *t.max_references, *t.min_references)
        }
    )
    found: dict[str, Any] = {}
    if study.score_run_id is not None:
        frame = attach_images(engine, study.score_run_id, pd.DataFrame({"image_key": keys}))
        found = {
            k: img
            for k, img in zip(frame["image_key"], frame["image"], strict=True)
            if isinstance(img, (str, Image.Image))  # a file, or a bundled array; NaN: none
        }
    missing = [k for k in keys if k not in found]
    if missing:
        raise NotFound(
            f"{len(missing)} image(s) of study {study.name!r} cannot be found, e.g. "
            f"{', '.join(repr(k) for k in missing[:3])}; the trials show the images of scoring "
            f"run {study.score_run_id}'s extraction: put its image folder back where it was "
            "extracted from."
        )

    def load(key: str | None, _index: int) -> Image.Image:
        image = found[key or ""]
        if isinstance(image, Image.Image):
            return image
        with Image.open(image) as opened:
            opened.load()
            return opened.copy()

    return load


def export_study(
    engine: Engine, study: Study, out: Path, *, size: int = imi.STIMULUS_SIZE
) -> Exported:
    trials = study_trials(engine, study.id)
    load = image_loader(engine, study, trials)
    rows = answers_for_export(engine, study.id)
    n_images = imi.write_layout(out, trials, study.name, load, size=size, responses=rows)
    return Exported(out, len({t.task for t in trials}), len(trials), n_images, len(rows))
