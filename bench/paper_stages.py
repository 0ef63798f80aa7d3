"""The stages of `bench/paper_scale.py` that are not `unitcat` commands, one per process.

    python bench/paper_stages.py STAGE --fraction F [--unit-scale S] [--classes C] [--seed N]

STAGE is one of `store` (register AlexNet and the dataset, write the activation store,
record the extraction run), `headline` (the headline query: its count and first 100
rows), `unit` (one unit through `catalogue.query`), `unit_page` (the Unit page's
script, run headless with Streamlit's AppTest, as `bench/ui.py` does) and `check` (the
catalogue's values of a few units of every layer against `score_units` on the same
generated columns). Each runs in its own process, so that the driver reads its peak
memory, and prints one last line ``RESULT {json}``. The catalogue is the one of
``UNITCAT_HOME`` (the driver's embedded server).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# the repository's packages first: this folder's ui.py (a benchmark) is not the ui package
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != HERE), str(HERE)]

import paper_data  # noqa: E402
from paper_data import Shape  # noqa: E402

#: warm repetitions of a query (the first, cold, call is reported apart)
REPEATS = 5


def _timed(fn: Callable[[], Any], repeats: int = REPEATS) -> dict[str, Any]:
    """The cold call's seconds, the median of `repeats` warm calls, and the last result."""
    started = time.perf_counter()
    result = fn()
    cold = time.perf_counter() - started
    warm = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        warm.append(time.perf_counter() - started)
    return {"cold_s": cold, "warm_s": statistics.median(warm), "result": result}


def _engine() -> Any:
    from catalogue.db.engine import get_engine

    return get_engine()


def stage_store(shape: Shape) -> dict[str, Any]:
    from catalogue.config import get_settings

    path = get_settings().runs_dir / f"paper-scale-{shape.n_images}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generating = paper_data.write_store(path, shape)
    writing = time.perf_counter() - started - generating
    ids = paper_data.register(_engine(), shape, path)
    return {
        **ids,
        "path": str(path),
        "bytes": path.stat().st_size,
        "rows": shape.n_images,
        "generate_s": generating,
        "store_s": writing,
    }


def stage_headline(shape: Shape) -> dict[str, Any]:
    from sqlalchemy import text

    from catalogue.query.report import HEADLINE_SQL

    engine = _engine()

    def count() -> int:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM ({HEADLINE_SQL}) AS h")).scalar_one()

    def first() -> int:
        with engine.connect() as conn:
            return len(conn.execute(text(f"{HEADLINE_SQL}\nLIMIT 100")).all())

    c, f = _timed(count), _timed(first)
    return {
        "count": c["result"],
        "rows": f["result"],
        "count_cold_s": c["cold_s"],
        "count_s": c["warm_s"],
        "first100_cold_s": f["cold_s"],
        "first100_s": f["warm_s"],
    }


def _fc6_unit(shape: Shape) -> tuple[str, int]:
    """fc6.1199 (the paper's Figure 3 unit), or the last fc6 unit of a narrower layer."""
    node, units = shape.layers[1]
    return node, min(1199, units - 1)


def stage_unit(shape: Shape) -> dict[str, Any]:
    from catalogue.query.units import find_unit, unit_record

    engine = _engine()
    layer, unit = _fc6_unit(shape)
    t = _timed(lambda: unit_record(engine, find_unit(engine, paper_data.MODEL, layer, unit)))
    return {"unit": f"{layer}.{unit}", "cold_s": t["cold_s"], "warm_s": t["warm_s"]}


def stage_unit_page(shape: Shape) -> dict[str, Any]:
    """The Unit page's script (queries, the HDF5 column read, per-class table, point
    selection, charts), cold: caches cleared before each timed run."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from catalogue.query.files import unit_activations
    from catalogue.query.units import find_unit, unit_record

    engine = _engine()
    layer, unit = _fc6_unit(shape)
    unit_id = find_unit(engine, paper_data.MODEL, layer, unit)
    run_id = int(unit_record(engine, unit_id)["run_id"])
    read = _timed(lambda: unit_activations(engine, unit_id, run_id), 2)
    at = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=1200)
    at.query_params["unit_id"] = str(unit_id)
    at.query_params["run_id"] = str(run_id)
    at.switch_page("app_pages/unit.py")
    started = time.perf_counter()
    at.run()  # imports and component discovery
    first = time.perf_counter() - started
    cold = []
    for _ in range(3):
        st.cache_data.clear()
        started = time.perf_counter()
        at.run()
        cold.append(time.perf_counter() - started)
    errors = [str(e.value) for e in (*at.exception, *at.error)]
    title = f"{paper_data.MODEL} · {layer} · unit {unit}"
    if title not in [h.value for h in at.header]:
        errors.append(f"the page shows no header {title!r}")
    charts = len(at.get("vega_lite_chart")) + len(at.get("arrow_vega_lite_chart"))
    return {
        "unit": f"{layer}.{unit}",
        "points": int(read["result"].values.size),
        "read_s": read["warm_s"],
        "first_s": first,
        "cold_s": statistics.median(cold),
        "charts": charts,
        "errors": errors,
    }


def _same(stored: Any, scored: Any) -> bool:
    """A catalogue value equals the scorer's: NULL where it gives NaN or class -1."""
    if stored is None:
        return scored == -1 or (isinstance(scored, float) and math.isnan(scored))
    return float(stored) == float(scored)


def check_units(engine: Any, shape: Shape, per_layer: int) -> list[str]:
    """Differences between the catalogue's scores of `per_layer` units of every layer and
    `score_units` on the same generated columns (the images the run scored: all of them)."""
    from sqlalchemy import text

    from catalogue.measures import UNIT_MEASURES
    from catalogue.selectivity import score_units

    y = paper_data.labels(shape)
    names = [m.name for m in UNIT_MEASURES]
    problems = []
    for index, (node, width) in enumerate(shape.layers):
        units = np.unique(np.linspace(0, width - 1, min(per_layer, width)).round().astype(int))
        expected = score_units(paper_data.columns(shape, index, units), y, shape.n_classes)
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT u.unit_index, {', '.join('um.' + n for n in names)} "
                    "FROM unit_metrics um JOIN unit u ON u.id = um.unit_id "
                    "JOIN layer l ON l.id = u.layer_id "
                    "WHERE l.name = :layer AND u.unit_index = ANY(:units) ORDER BY u.unit_index"
                ),
                {"layer": node, "units": units.tolist()},
            ).all()
        if [r[0] for r in rows] != units.tolist():
            problems.append(f"{node}: units {units.tolist()} scored {[r[0] for r in rows]}")
            continue
        for i, row in enumerate(rows):
            for j, name in enumerate(names):
                if not _same(row[j + 1], expected[name][i].item()):
                    problems.append(
                        f"{node}.{row[0]} {name}: catalogue {row[j + 1]}, "
                        f"score_units {expected[name][i].item()}"
                    )
    return problems


def stage_check(shape: Shape, per_layer: int) -> dict[str, Any]:
    problems = check_units(_engine(), shape, per_layer)
    return {"units": per_layer * len(shape.layers), "problems": problems}


def shape_from(args: argparse.Namespace) -> Shape:
    return Shape.of(
        Fraction(args.fraction), Fraction(args.unit_scale), n_classes=args.classes, seed=args.seed
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["store", "headline", "unit", "unit_page", "check"])
    parser.add_argument("--fraction", default="1")
    parser.add_argument("--unit-scale", default="1")
    parser.add_argument("--classes", type=int, default=paper_data.PAPER_CLASSES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-units", type=int, default=3)
    args = parser.parse_args()
    shape = shape_from(args)
    if args.stage == "check":
        result = stage_check(shape, args.check_units)
    else:
        result = globals()[f"stage_{args.stage}"](shape)
    print("RESULT " + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
