"""The importance and baseline sections of the Unit, Layers and Measures pages (AppTest),
against a real catalogue: a briefly trained demo CNN, extracted, scored, ablated, with its
chance and random-weights baselines. Expected values come from plain SQL and the ablation
run's HDF5 file, not from the read API under test."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
from scipy.stats import binomtest
from sqlalchemy import Engine, text
from streamlit.testing.v1 import AppTest

from catalogue.measures import CRITERIA_BY_KEY
from catalogue.pipeline.ablate import CurveOptions, ablate_into_catalogue
from catalogue.pipeline.baseline import chance_baseline, random_weights_baseline
from tests.ablation_fixtures import Scored
from tests.test_ui_pages import APP, TIMEOUT


def _datasets(at: AppTest) -> list[pd.DataFrame]:
    out = []
    for element in at.get("vega_lite_chart"):
        out += [
            pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in element.proto.datasets
        ]
    return out


def _with(frames: list[pd.DataFrame], *columns: str) -> list[pd.DataFrame]:
    return [f for f in frames if set(columns) <= set(f.columns)]


def test_importance_sections_show_what_the_catalogue_holds(
    engine: Engine, database_url: str, scored: Scored, monkeypatch: pytest.MonkeyPatch
) -> None:
    ablated = ablate_into_catalogue(
        engine,
        scored.extract_run,
        ["conv5", "fc6"],
        images=40,
        curves=CurveOptions(classes=[0, 1], max_k=4),
        model=scored.model,
        dataset=scored.dataset,
    )
    chance_baseline(engine, scored.score_run, repeats=2)
    random_weights_baseline(engine, scored.extract_run, model=scored.model, dissect=False)
    monkeypatch.setenv("DATABASE_URL", database_url)

    def run(page: str, **query: object) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        for name, value in query.items():
            at.query_params[name] = str(value)
        at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    with engine.connect() as conn:
        unit = conn.execute(
            text(
                "SELECT unit_id, unit, accuracy_change, most_hurt_class, most_hurt_change "
                "FROM unit_importance "
                "WHERE layer = 'fc6' ORDER BY accuracy_change, unit LIMIT 1"
            )
        ).one()
        unablated = conn.execute(
            text(
                "SELECT u.id FROM unit u JOIN layer l ON l.id = u.layer_id "
                "JOIN model m ON m.id = l.model_id "
                "WHERE m.name = 'demo:digits' AND l.name = 'conv4' AND u.unit_index = 0"
            )
        ).scalar_one()
        baselines = pd.read_sql_query(text("SELECT * FROM layer_baselines"), conn)
        curve = pd.read_sql_query(
            text(
                "SELECT ranking, k, class_accuracy, other_accuracy FROM class_ablation_curve c "
                "JOIN layer l ON l.id = c.layer_id WHERE l.name = 'conv5' AND class_index = 0"
            ),
            conn,
        )
        correlations = pd.read_sql_query(
            text("SELECT * FROM selectivity_vs_importance WHERE layer = 'conv5'"), conn
        )

    # Unit page: the overall change, the most hurt class, every class's change sorted
    at = run("app_pages/unit.py", unit_id=unit.unit_id)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Overall accuracy change"] == f"{unit.accuracy_change:+.3f}"
    with h5py.File(ablated.path) as h5:
        change = h5["layers/fc6/accuracy_change"][unit.unit]
        names = [n.decode() for n in h5["classes/names"][...]]
        sizes = h5["layers/fc6/class_sizes"][...]
    # the most hurt class with its number of images and an interval, not a bare metric
    (hurt_line,) = [m.value for m in at.markdown if "Most hurt class" in m.value]
    if unit.most_hurt_change < 0:
        n = int(sizes[names.index(unit.most_hurt_class)])
        k = round(-unit.most_hurt_change * n)
        assert hurt_line.startswith(
            f"**Most hurt class:** {unit.most_hurt_class}, {unit.most_hurt_change:+.3f}: "
            f"{k} of its {n:,} images"
        ), hurt_line
        low, high = binomtest(k, n).proportion_ci(method="wilson")
        assert f"interval {low:.2f}–{high:.2f}" in hurt_line
    else:
        assert "none — no class lost an image" in hurt_line
    (bars,) = _with(_datasets(at), "class_name", "change")
    order = np.lexsort((np.arange(change.size), change))
    assert bars["class_name"].tolist() == [names[i] for i in order]
    np.testing.assert_allclose(bars["change"], change[order], rtol=1e-6)
    at = run("app_pages/unit.py", unit_id=unablated)
    assert any("has not been ablated" in i.value for i in at.info)
    # a constant unit: no most-hurt class, no +0.000 as if it were a finding
    with engine.begin() as conn:
        marked = conn.execute(
            text("UPDATE unit_metrics SET constant = true WHERE unit_id = :u AND run_id = :r"),
            {"u": unit.unit_id, "r": scored.score_run},
        )
        assert marked.rowcount == 1
    st.cache_data.clear()  # the page's reads are cached for the process
    at = run("app_pages/unit.py", unit_id=unit.unit_id)
    assert any("is constant over the scoring run's images" in i.value for i in at.info)
    assert not [m for m in at.markdown if "Most hurt class" in m.value]
    assert "Most hurt class" not in {m.label for m in at.metric}
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE unit_metrics SET constant = false WHERE unit_id = :u AND run_id = :r"),
            {"u": unit.unit_id, "r": scored.score_run},
        )
    st.cache_data.clear()

    # Layers page: the trained run by default (its random-weights baseline is newer), then
    # trained / random / chance per criterion, and the curves of class 0
    at = run("app_pages/layers.py")
    picker = at.selectbox(key="score_run")
    assert picker.value == scored.score_run
    names = list(picker.options)  # as shown
    assert sum("baseline of #" in n for n in names) == 1
    assert "images of #" in next(n for n in names if "baseline of #" in n)
    subheaders = [s.value for s in at.subheader]
    assert "Trained vs random weights vs chance" in subheaders
    assert "Class-ablation curves" in subheaders
    panels = _with(_datasets(at), "source", "n", "criterion")
    assert len(panels) == baselines["criterion"].nunique()
    shown = pd.concat(panels).set_index(["layer", "criterion", "source"])["n"]
    for r in baselines.itertuples():
        label = CRITERIA_BY_KEY[r.criterion].label
        assert shown[(r.layer, label, "trained")] == r.trained
        assert shown[(r.layer, label, "random weights")] == r.random
        if pd.isna(r.chance_mean):  # no chance count for the dissection IoU: no bar
            assert (r.layer, label, "chance") not in shown.index
        else:
            assert shown[(r.layer, label, "chance")] == pytest.approx(r.chance_mean)
    (points,) = _with(_datasets(at), "ranking", "k", "which", "accuracy")
    want = pd.concat(
        [
            curve.assign(which="this class", accuracy=curve["class_accuracy"]),
            curve.assign(which="other classes", accuracy=curve["other_accuracy"]),
        ]
    )
    key = ["ranking", "k", "which"]
    merged = points.merge(want[[*key, "accuracy"]], on=key, suffixes=("", "_sql"))
    assert len(merged) == len(points) == len(want)
    np.testing.assert_allclose(merged["accuracy"], merged["accuracy_sql"])

    # Measures page, one layer: each measure's Spearman with the drop on its class
    at = run("app_pages/measures.py", run_id=scored.score_run)
    at.selectbox(key="corr_layer").select("conv5").run()
    assert not at.exception
    (importance,) = _with(_datasets(at), "measure", "against", "spearman")
    mine = importance[importance["against"] == "drop on its class"]
    assert len(mine) == len(correlations)
    np.testing.assert_allclose(
        np.sort(mine["spearman"].dropna()), np.sort(correlations["spearman_class_drop"].dropna())
    )


def test_the_most_hurt_line_gives_n_and_a_wilson_interval() -> None:
    """Two images of ten, a class that lost nothing (a tie at 0), and a lost class of one
    image; the interval is scipy's Wilson interval."""
    from ui.importance import most_hurt_line, wilson

    changes = pd.DataFrame({"class_name": ["a", "b", "c"], "n_images": [10, 7, 1]})
    line = most_hurt_line({"most_hurt_class": "a", "most_hurt_change": -0.2}, changes)
    low, high = binomtest(2, 10).proportion_ci(method="wilson")
    assert line == (
        f"**Most hurt class:** a, -0.200: 2 of its 10 images (net), share lost 95 % interval "
        f"{low:.2f}–{high:.2f} (Wilson)."
    )
    assert "none" in most_hurt_line({"most_hurt_class": "b", "most_hurt_change": 0.0}, changes)
    assert "none" in most_hurt_line({"most_hurt_class": None, "most_hurt_change": None}, changes)
    assert "1 of its 1 images" in most_hurt_line(
        {"most_hurt_class": "c", "most_hurt_change": -1.0}, changes
    )
    for k, n in ((0, 5), (3, 3), (2, 10), (17, 40)):
        expected = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson(k, n) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_the_class_ablation_curve_labels_every_k_and_draws_its_two_lines_apart() -> None:
    """The axis is labelled at k = 0, 1, 2, 4 (a symlog scale's own ticks skip 1 and 2), and
    the legend's symbols are lines with different dashes for "this class" and "other
    classes" (its default circles drew both alike); the SVG holds both dash patterns."""
    from ui.figures import to_svg
    from ui.importance_plots import curve_chart, curve_frame

    curves = pd.DataFrame(
        {
            "ranking": ["precision"] * 4,
            "k": [0, 1, 2, 4],
            "class_accuracy": [0.9, 0.5, 0.3, 0.1],
            "other_accuracy": [0.9, 0.9, 0.88, 0.8],
        }
    )
    chart = curve_chart(curve_frame(curves))
    spec = chart.to_dict()
    assert spec["encoding"]["x"]["axis"]["values"] == [0, 1, 2, 4]
    dash = spec["encoding"]["strokeDash"]
    assert dash["legend"]["symbolType"] == "stroke"
    assert dash["scale"]["domain"] == ["this class", "other classes"]
    solid, dashed = dash["scale"]["range"]
    assert solid != dashed
    svg = to_svg(chart).decode()
    assert 'stroke-dasharray="6,4"' in svg
    for k in ("1", "2", "4"):
        assert f">{k}</text>" in svg
