"""A catalogue with every kind of row a dump carries, and how to compare two catalogues.

`build_shared_catalogue`: a demo CNN trained briefly on digits (`trained_checkpoint`),
extracted and scored (with a class group), dissected on a small probe set, ablated with
class curves, its chance and random-weights baselines, AM panels, ratings with their
analysis — every pipeline the real one.

`view_rows`: every view's rows, ids aside, for comparing two catalogues: id columns
dropped, run ids inside parameters dropped, where an imported run came from
(`imported_from`, NULL in the catalogue it was made in) dropped, floats to 12 significant digits (averages
and correlations sum in the order the server meets the rows, which differs with the
ids), rows sorted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, text

from catalogue.db.views import VIEWS
from catalogue.share.keys import RUN_ID_PARAMS
from tests.twoafc_fixtures import TwoAFCCatalogue

TRAINED_LAYERS = ("conv4", "conv5", "fc6")


@dataclass
class AnsweredStudy:
    """A scored catalogue with a 2-AFC study answered by three participants."""

    url: str
    built: TwoAFCCatalogue
    study: str


@dataclass
class SharedCatalogue:
    url: str
    extract_run: int
    score_run: int
    dissect_run: int
    ablate_run: int
    chance_run: int
    random_score_run: int
    am_run: int
    model: str
    checksum: str
    n_images: int
    class_keys: list[str]


def build_shared_catalogue(
    engine: Engine, url: str, checkpoint: Path, folder: Path
) -> SharedCatalogue:
    from catalogue.data import resolve_dataset
    from catalogue.models import load_demo_checkpoint
    from catalogue.pipeline.ablate import CurveOptions, ablate_into_catalogue
    from catalogue.pipeline.am import am_into_catalogue
    from catalogue.pipeline.baseline import chance_baseline, random_weights_baseline
    from catalogue.pipeline.dissect import build_probe, dissect_into_catalogue
    from catalogue.pipeline.extract import extract_into_catalogue
    from catalogue.pipeline.ratings import analyse_ratings, import_ratings
    from catalogue.pipeline.scoring import score_extraction
    from catalogue.ratings import parse_ratings_csv

    model = load_demo_checkpoint(checkpoint)
    data = resolve_dataset("digits:test", transform=model.transform)
    extracted = extract_into_catalogue(engine, model, data, list(TRAINED_LAYERS))
    score = score_extraction(engine, extracted.run_id, groups={"round": ["0", "6", "8", "9"]})
    probe = build_probe("digits", n_images=8, image_size=32, seed=1, out_dir=folder / "probe")
    dissected = dissect_into_catalogue(engine, model, probe.directory, ["conv4", "conv5"])
    ablated = ablate_into_catalogue(
        engine,
        extracted.run_id,
        ["conv5", "fc6"],
        images=40,
        curves=CurveOptions(classes=[0, 1], max_k=3),
        model=model,
        dataset=data,
    )
    chance = chance_baseline(engine, score.run_id, repeats=2)
    random = random_weights_baseline(engine, extracted.run_id, model=model, dissect=False)
    am = am_into_catalogue(
        engine, model, "fc6", [0, 1], n_images=2, steps=4, lr=0.1, device="cpu", units_per_batch=2
    )
    csv = folder / "ratings.csv"
    lines = ["participant,model,layer,unit,answer,estimate,names"]
    for i, person in enumerate(("p1", "p2", "p3")):
        lines.append(f"{person},{model.name},fc6,0,yes,60-80,round;circle")
        lines.append(
            f"{person},{model.name},fc6,1,{'yes' if i else 'no'},{'20-40' if i else ''},{'line' if i else ''}"
        )
    csv.write_text("\n".join(lines) + "\n")
    import_ratings(engine, parse_ratings_csv(csv))
    analyse_ratings(engine)
    return SharedCatalogue(
        url=url,
        extract_run=extracted.run_id,
        score_run=score.run_id,
        dissect_run=dissected.run_id,
        ablate_run=ablated.run_id,
        chance_run=chance.run_id,
        random_score_run=random.score_run,
        am_run=am.run_id,
        model=model.name,
        checksum=str(model.checksum),
        n_images=len(data),
        class_keys=list(data.class_keys),
    )


# ------------------------------------------------------------------------------ comparing


def _is_id(column: str) -> bool:
    """Columns that differ between catalogues by design: ids, and an imported run's origin."""
    return column == "id" or column.endswith("_id") or column in ("baseline_of", "imported_from")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: v for k, v in value.items() if k not in RUN_ID_PARAMS}
        return json.dumps(kept, sort_keys=True, default=str)
    if isinstance(value, list | tuple):
        return json.dumps([_plain(v) for v in value], default=str)
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.12g}")
    if value is None or value is pd.NaT:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.item() if hasattr(value, "item") else value


def canonical(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    frame = frame[[c for c in frame.columns if not _is_id(c)]]
    rows = [tuple(_plain(v) for v in row) for row in frame.itertuples(index=False, name=None)]
    return sorted(rows, key=repr)


def view_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every view's rows, ids aside (see the module docstring)."""
    out = {}
    with engine.connect() as conn:
        for view in VIEWS:
            out[view] = canonical(pd.read_sql_query(text(f"SELECT * FROM {view}"), conn))
    return out


def table_counts(engine: Engine) -> dict[str, int]:
    from catalogue.db.schema import Base

    with engine.connect() as conn:
        return {
            name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            for name in Base.metadata.tables
        }
