"""The scale benchmarks at tiny sizes: they must work (not be fast) before anyone runs them big.

`bench/paper_scale.py` builds the paper's catalogue at a sliver of its size and runs every
stage; the scores it wrote for a few units of every layer must equal `score_units` on the
same generated columns (computed here again, independently of the bench's own check).
`bench/gpu.py --tiny --device cpu` runs every section without a GPU.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text

from catalogue.config import normalise_database_url
from catalogue.db import server
from catalogue.measures import UNIT_MEASURES
from catalogue.selectivity import score_units

ROOT = Path(__file__).resolve().parents[1]


def _bench_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    return env


def _paper_data():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import paper_data
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return paper_data


def test_generated_columns_are_the_stored_ones_unit_by_unit() -> None:
    """`columns` of some units equals the same units cut from the whole layer, band seams
    and a narrow last chunk included."""
    data = _paper_data()
    shape = data.Shape(n_images=data.BAND + 37, n_classes=7, layers=(("a", 21), ("b", 3)))
    whole = data.columns(shape, 0)
    assert whole.shape == (data.BAND + 37, 21)
    some = np.array([20, 0, 16, 5])
    assert np.array_equal(data.columns(shape, 0, some), whole[:, some])
    zeros = float((whole == 0).mean())
    assert 0.7 < zeros < 0.9
    # the nudge: a unit is more often active on its preferred class
    y = data.labels(shape)
    prefers = data.preferred(shape, 0)
    on = np.mean([(whole[y == prefers[u], u] > 0).mean() for u in range(21)])
    off = np.mean([(whole[y != prefers[u], u] > 0).mean() for u in range(21)])
    assert on > off + 0.2


def test_paper_scale_at_a_tiny_size_writes_what_score_units_computes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "paper_scale.py"),
            "--fraction",
            "1/256",
            "--unit-scale",
            "1/64",
            "--check-units",
            "2",
            "--home",
            str(home),
            "--json",
            str(tmp_path / "figures.json"),
        ],
        capture_output=True,
        text=True,
        env=_bench_env(),
        check=False,
    )
    out = result.stdout + result.stderr
    fraction_home = home / "1-256"
    try:
        assert result.returncode == 0, out
        assert "2,818 images × 148 units × 1,000 classes" in out
        figures = json.loads((tmp_path / "figures.json").read_text())
        stages = {s["name"]: s for s in figures[0]["stages"]}
        assert list(stages) == [
            "store",
            "score",
            "chance",
            "check",
            "headline",
            "unit",
            "unit_page",
            "export",
        ]
        assert stages["store"]["rows"] == 2_818
        assert stages["store"]["disk_bytes"] > 0
        assert stages["score"]["rows"] >= 148 * (1 + 5 + 100)  # metrics, classes, top images
        assert stages["score"]["write_s"] > 0
        assert stages["chance"]["rows"] == 2 * 148
        assert "8 units equal score_units" in stages["check"]["note"]
        assert stages["unit_page"]["result"]["points"] == 2_818
        assert not stages["unit_page"]["result"]["errors"]
        for stage in stages.values():
            assert stage["rss_bytes"] > 0 and stage["wall_s"] > 0, stage

        data = _paper_data()
        shape = data.Shape.of(Fraction(1, 256), Fraction(1, 64))
        _compare_with_score_units(fraction_home, data, shape)
    finally:
        server.stop(fraction_home / "postgres")


def _compare_with_score_units(home: Path, data, shape) -> None:
    """Three units of every layer, read from `unit_metrics`, against `score_units`."""
    engine = create_engine(normalise_database_url(server.start(home / "postgres")))
    names = [m.name for m in UNIT_MEASURES]
    try:
        with engine.connect() as conn:
            for index, (node, width) in enumerate(shape.layers):
                units = sorted({0, width // 2, width - 1})
                expected = score_units(
                    data.columns(shape, index, np.array(units)), data.labels(shape), 1000
                )
                rows = conn.execute(
                    text(
                        f"SELECT u.unit_index, {', '.join('um.' + n for n in names)} "
                        "FROM unit_metrics um JOIN unit u ON u.id = um.unit_id "
                        "JOIN layer l ON l.id = u.layer_id "
                        "WHERE l.name = :layer AND u.unit_index = ANY(:units) "
                        "ORDER BY u.unit_index"
                    ),
                    {"layer": node, "units": units},
                ).all()
                assert [r[0] for r in rows] == units
                for i, row in enumerate(rows):
                    for j, name in enumerate(names):
                        stored, scored = row[j + 1], expected[name][i].item()
                        if stored is None:
                            assert scored == -1 or math.isnan(scored), (node, name)
                        else:
                            assert float(stored) == float(scored), (node, row[0], name)
    finally:
        engine.dispose()


def test_gpu_bench_runs_tiny_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gpu.py"),
            "--tiny",
            "--device",
            "cpu",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=_bench_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| section | measurement |" in result.stdout
    figures = json.loads(out.read_text())
    rows = figures["rows"]
    assert {r["section"] for r in rows} == {"extraction", "scoring", "dissection", "ablation"}
    measured = [r for r in rows if r["value"] is not None]
    assert len(measured) == 5  # two extractions, scoring, dissection, ablation
    assert all(r["value"] > 0 and r["baseline_value"] > 0 for r in measured)
    skipped = [r for r in rows if r["figure"] == "skipped"]
    assert [r["note"] for r in skipped] == ["no CUDA", "no CUDA"]
    assert "CPU" in figures["header"] and "tiny sizes" in figures["header"]
