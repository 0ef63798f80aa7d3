"""The Streamlit pages, run with AppTest against a real catalogue (tests/ui_fixtures.py:
an HDF5 store scored by the real scoring pipeline, plus dissection, AM and ratings rows).

Each test sets DATABASE_URL to the module's catalogue and runs the real app
script (ui/app.py) on one page, then reads what the page shows. Expected values
come from the fixture's design (worked out from docs/DESIGN.md's definitions) or from
plain SQL over the tables, never from the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from streamlit.testing.v1 import AppTest

from tests.ui_fixtures import (
    CONSENSUS,
    CONV5_1,
    DETECTORS,
    FC6_3,
    LOCALIST,
    MISLEADING,
    UICatalogue,
)

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
TIMEOUT = 60


@pytest.fixture
def app(catalogue: UICatalogue, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """Run the app on a page (path relative to ui/), with query parameters."""
    monkeypatch.setenv("DATABASE_URL", catalogue.url)

    def run(page: str | None = None, **query: object) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        for name, value in query.items():
            at.query_params[name] = str(value)
        if page is not None:  # url paths equal the file names, so no first run is needed
            at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def _texts(at: AppTest) -> str:
    parts = (
        [m.value for m in at.markdown] + [t.value for t in at.title] + [h.value for h in at.header]
    )
    parts += [s.value for s in at.subheader] + [c.value for c in at.caption]
    parts += (
        [i.value for i in at.info] + [e.value for e in at.error] + [w.value for w in at.warning]
    )
    return "\n".join(str(p) for p in parts)


def _table(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page that has `column` (display tables carry no keys)."""
    for element in at.dataframe:
        frame = element.value
        if column in frame.columns:
            return frame
    raise AssertionError(f"no table with a {column!r} column on the page")


def _charts(at: AppTest) -> list[list[pd.DataFrame]]:
    """The data sets of every Altair chart on the page, decoded from their Arrow bytes."""
    out = []
    for element in at.get("vega_lite_chart"):
        out.append(
            [pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in element.proto.datasets]
        )
    return out


def _unit_values(catalogue: UICatalogue, *measures: str) -> pd.DataFrame:
    """Measures straight from unit_metrics (plain SQL, not the read API under test)."""
    engine = create_engine(catalogue.url, poolclass=NullPool)
    columns = ", ".join(f"um.{m}" for m in measures)
    frame = pd.read_sql_query(
        text(
            f"SELECT l.name AS layer, u.unit_index AS unit, um.run_id, {columns} "
            "FROM unit_metrics um JOIN unit u ON u.id = um.unit_id "
            "JOIN layer l ON l.id = u.layer_id ORDER BY l.position, u.unit_index, um.run_id"
        ),
        engine,
    )
    engine.dispose()
    return frame


# ------------------------------------------------------------------------------- search


def test_search_presets_return_exactly_the_planted_units(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app("app_pages/search.py", preset="misleading")  # a preset can come in the URL
    planted = {
        "misleading": MISLEADING,
        "localist": LOCALIST,
        "dissection": DETECTORS,
        "interpretable": CONSENSUS,
    }
    for preset, expected in planted.items():
        if preset != "misleading":
            at.selectbox(key="preset").set_value(preset).run()
        frame = at.dataframe[0].value
        assert catalogue.rows(frame) == expected, preset
        assert len(frame) == len(expected), preset  # one row per unit and scoring run
        n = len(expected)
        assert f"{n} unit{'s' if n != 1 else ''} match" in _texts(at)
    # the misleading preset agrees with the definition applied to the stored values
    values = _unit_values(catalogue, "precision", "false_alarm_rate")
    literal = values[(values["precision"] > 0.75) & (values["false_alarm_rate"] > 0.9)]
    assert catalogue.rows(literal) == MISLEADING


def test_search_filters_sorting_and_download(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app()
    # ranges (inclusive) on two measures within one layer, against a literal filter
    at.multiselect(key="range_measures").set_value(["precision", "max_informedness"]).run()
    at.number_input(key="min_precision").set_value(0.3).run()
    at.number_input(key="max_max_informedness").set_value(0.8).run()
    at.multiselect(key="layers").set_value(["fc6"]).run()
    shown = at.dataframe[0].value
    values = _unit_values(catalogue, "precision", "max_informedness")
    literal = values[
        (values["layer"] == "fc6")
        & (values["precision"] >= 0.3)
        & (values["max_informedness"] <= 0.8)
    ]
    # fc6.3 (.765 and .689) and, in the all-images run, the bus unit (60 of 80 buses: .75)
    assert catalogue.rows(literal) == {("fc6", 3, "correct"), ("fc6", 3, "all"), ("fc6", 4, "all")}
    assert catalogue.rows(shown) == catalogue.rows(literal)
    at.multiselect(key="range_measures").set_value([]).run()
    at.multiselect(key="layers").set_value([]).run()

    at.selectbox(key="class_name").set_value("tabby cat").run()
    at.selectbox(key="class_measure").set_value("localist_class").run()
    assert catalogue.rows(at.dataframe[0].value) == LOCALIST
    at.selectbox(key="class_measure").set_value(None).run()
    at.selectbox(key="class_name").set_value(None).run()

    at.selectbox(key="order_by").set_value("false_alarm_rate").run()
    far = at.dataframe[0].value["false_alarm_rate"].to_numpy(dtype=float)
    stored = _unit_values(catalogue, "false_alarm_rate", "constant")
    live_max = stored.loc[~stored["constant"], "false_alarm_rate"].max()
    assert far[0] == pytest.approx(live_max)
    assert live_max > 0.9
    assert np.all(np.diff(far[~np.isnan(far)]) <= 0)
    # the dead conv5.5 (false alarms 1 - 72/2,880 = .975, the highest) is left out
    assert stored["false_alarm_rate"].max() == pytest.approx(1 - 72 / 2880)
    assert live_max < 1 - 72 / 2880

    at.number_input(key="limit").set_value(10).run()
    assert len(at.dataframe[0].value) == 10
    assert "21 units match (showing the first 10)" in _texts(at)
    assert "1 constant unit left out" in _texts(at)
    assert at.get("download_button")[0].proto.label == "Download all 21 as CSV"
    at.toggle(key="include_constant").set_value(True).run()
    assert "22 units match (showing the first 10)" in _texts(at)
    assert at.dataframe[0].value["false_alarm_rate"].iloc[0] == pytest.approx(1 - 72 / 2880)
    assert at.dataframe[0].value["constant"].iloc[0]


def test_search_treats_hostile_text_as_a_value(catalogue: UICatalogue) -> None:
    from catalogue.query.search import UnitFilter, search_units

    engine = create_engine(catalogue.url, poolclass=NullPool)
    flt = UnitFilter(class_name="x' OR 1=1 --", models=("toynet'; DROP TABLE unit; --",))
    assert search_units(engine, flt).total == 0
    everything = search_units(engine, UnitFilter(include_constant=True))
    assert everything.total == 6 + 8 + 8 and everything.n_constant_left_out == 0
    live = search_units(engine, UnitFilter())
    assert live.total == 6 + 8 + 8 - 1 and live.n_constant_left_out == 1  # conv5.5 is dead
    engine.dispose()


# --------------------------------------------------------------------------------- unit


def test_unit_page_shows_measures_figure_and_details(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    unit_id = catalogue.unit_ids[("fc6", 3)]
    at = app("app_pages/unit.py", unit_id=unit_id, run_id=catalogue.score_run)
    assert "toynet · fc6 · unit 3" in _texts(at)
    measures = _table(at, "Measure").set_index("Measure")
    assert measures.loc["Top-60 precision", "Value"] == f"{FC6_3['precision']:.3f}" == "0.776"
    assert measures.loc["Top-60 precision", "Class"] == "monarch butterfly"
    assert measures.loc["Top-60 precision", "Threshold"] == "1.000"
    far = measures.loc["False-alarm rate at MI, FP/(TP+FP)"]
    assert (far["Value"], far["Class"], far["Threshold"]) == ("0.902", "monarch butterfly", "1.000")
    # the textbook false-positive rate beside it: 660 of the 2,808 other images
    fpr = measures.loc["False-positive rate at MI, 1 − specificity"]
    assert (fpr["Value"], fpr["Class"]) == (f"{660 / 2808:.3f}", "monarch butterfly")
    assert measures.loc["Max informedness", "Value"] == f"{FC6_3['max_informedness']:.3f}"
    # Figure 3: every scored image (correct ones only), monarchs highlighted
    scored = catalogue.scored("fc6", 3)
    monarch = catalogue.labels[catalogue.correct] == 0
    points, lines = _charts(at)[0]
    assert len(points) == scored.size == 2880  # small enough to show every image
    np.testing.assert_allclose(np.sort(points["activation"]), np.sort(scored), rtol=1e-6)
    highlighted = points[points["group"] == "monarch butterfly"]
    np.testing.assert_allclose(
        np.sort(highlighted["activation"]), np.sort(scored[monarch]), rtol=1e-6
    )
    assert dict(zip(lines["line"], lines["value"], strict=True)) == pytest.approx(
        {"best-informedness threshold for 'monarch butterfly'": 1.0, "top-60 cut-off": 1.0}
    )
    hist_class, hist_all = (c[0] for c in _charts(at)[1:3])
    assert hist_class["count"].sum() == monarch.sum() == 72
    assert hist_all["count"].sum() == np.count_nonzero(scored) == 46 + 26 + 660
    text_ = _texts(at)
    assert "2,880 scored images (the correctly classified images of 3,200 stored)" in text_
    assert "72 of 72 'monarch butterfly' images; all 2,808 images of other classes" in text_
    assert "72 images; 0.0% have activation 0." in text_
    assert f"{scored.size - 732:,} ({1 - 732 / 2880:.1%}) are 0" in text_
    # details: the top 100 images with thumbnails in two parts (ranks 1-60 and 61-100)
    top = _table(at, "image_key")
    best = np.sort(scored)[::-1][: len(top)]
    assert len(top) == 100
    np.testing.assert_allclose(top["activation"].to_numpy(), best, rtol=1e-6)
    # 46 monarchs above everything, then 686 images (26 monarchs) tied at 1.0, listed by index
    tied = np.flatnonzero(scored == 1.0)[: 100 - 46]
    monarchs = 46 + int(np.sum(monarch[tied]))
    assert int((top["class_name"] == "monarch butterfly").sum()) == monarchs
    first60, last40, panel = at.image
    assert len(first60.value) == 60 and len(last40.value) == 40  # every file is readable
    assert first60.captions[0] == f"#1 monarch butterfly ({best[0]:.3g})"
    assert last40.captions[0].startswith("#61 ")
    assert "Ranks 1–60: the images top-60 precision counts" in text_
    assert "Ranks 61–100: with the first 60, the top 100" in text_
    assert "Images tie at the rank-60 cut-off (activation 1)" in text_
    assert panel.captions == [f"toy-am (run {catalogue.am_run})"]
    # every one of the 40 classes in the per-class table, counted from the activations
    stats = _table(at, "informedness_threshold")
    assert len(stats) == 40 and sorted(stats["class_index"]) == list(range(40))
    assert stats["class_name"].iloc[0] == "monarch butterfly"
    assert stats["informedness"].iloc[0] == pytest.approx(FC6_3["max_informedness"])
    labels = catalogue.labels[catalogue.correct]
    np.testing.assert_array_equal(
        stats.sort_values("class_index")["n_images"], np.bincount(labels, minlength=40)
    )
    assert stats.set_index("class_name").loc["monarch butterfly", "in_top100"] == monarchs
    # the verdicts say what a reader can check: criterion, threshold, value, pass or fail
    assert (
        ":green[:material/check_circle:] Top-60 precision > 0.75 (Zhou et al. 2015) — "
        "**passes**: precision = 0.776 > 0.75 — monarch butterfly"
    ) in text_
    assert ":orange[:material/warning:] **False-alarm rate** FP/(TP+FP) = 0.902" in text_
    assert "660 of the 732 images at or above its max-informedness threshold (1)" in text_
    assert "1 − specificity = 0.235 (660 of the 2,808 images of other classes)" in text_
    assert "Nobody has rated" in text_
    # the class groups as the run used them (a redefined group is a new version)
    groups = _table(at, "group_version")
    assert groups[["group_name", "group_version"]].values.tolist() == [["bus", 1]]


def test_unit_page_switches_runs_and_shows_ratings_and_dissection(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    unit_id = catalogue.unit_ids[("fc6", 3)]
    at = app("app_pages/unit.py", unit_id=unit_id)
    # without run_id: the newest run (all images), whose jitter plot has every stored image
    assert "3,200 scored images (all images of 3,200 stored)" in _texts(at)
    at.selectbox(key=f"unit_run_{unit_id}").set_value(catalogue.score_run).run()
    assert at.query_params["run_id"] == str(catalogue.score_run)
    assert "2,880 scored images (the correctly classified" in _texts(at)

    at.query_params.clear()
    at.query_params["unit_id"] = str(catalogue.unit_ids[("conv5", 0)])
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ratings"] == "5"
    assert metrics["Consensus (≥ 80%)"] == "yes"
    assert "Most given name: **sky**" in _texts(at)

    at.query_params["unit_id"] = str(catalogue.unit_ids[("conv5", 2)])
    at.run()
    dissection = _table(at, "concept")
    assert dissection["concept"].iloc[0] == "sky"
    assert dissection["iou"].iloc[0] == pytest.approx(0.08)
    assert (
        ":green[:material/check_circle:] Dissection IoU > 0.04 (Bau, Zhou et al. 2017) — "
        "**passes**: best_iou = 0.08 > 0.04 — sky"
    ) in _texts(at)


def test_unit_page_unknown_unit_says_so_and_offers_a_picker(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app("app_pages/unit.py", unit_id=999999)
    assert "no unit id 999999" in _texts(at)
    at.query_params.clear()
    at.run()
    at.selectbox(key="pick_layer").set_value("fc6").run()
    at.number_input(key="pick_unit").set_value(5).run()
    at.button(key="pick_open").click().run()
    unit_id = catalogue.unit_ids[("fc6", 5)]
    assert (at.query_params["model"], at.query_params["layer"], at.query_params["unit"]) == (
        "toynet",
        "fc6",
        "5",
    )
    assert "toynet · fc6 · unit 5" in _texts(at)
    # the all-images run: its 8 misclassified tabbies (at 0) make the unit not localist
    assert ":red[:material/cancel:] Localist (Bowers et al. 2014) — **fails**: localist = no" in (
        _texts(at)
    )
    at.selectbox(key=f"unit_run_{unit_id}").set_value(catalogue.score_run).run()
    assert (
        ":green[:material/check_circle:] Localist (Bowers et al. 2014) — **passes**: "
        "localist = yes — tabby cat"
    ) in _texts(at)


def test_unit_page_of_a_constant_unit_says_so_first_and_gives_no_verdicts(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    unit_id = catalogue.unit_ids[("conv5", 5)]  # dead: 0 on every image
    at = app("app_pages/unit.py", unit_id=unit_id, run_id=catalogue.score_run)
    assert at.warning, "no banner"
    banner = at.warning[0].value
    assert banner.startswith("**Constant unit: every one of its 2,880 scored activations")
    assert "no verdicts are given" in banner
    ordered = _in_page_order(at)
    first = next(i for i, t in enumerate(ordered) if "Constant unit" in t)
    assert first < ordered.index("**Is it an object detector?**")
    assert first == 2  # after the title and the unit's name, before the run and everything
    text_ = _texts(at)
    assert "No verdicts for a constant unit" in text_
    assert "Every scored image has the same activation: there is nothing to plot." in text_
    assert ":material/check_circle:" not in text_ and ":material/cancel:" not in text_
    assert "False-alarm rate** FP/(TP+FP)" not in text_


def test_unit_page_verdicts_of_a_unit_that_fails_precision(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    """A noise unit: every verdict names the rule, the unit's value and fails; no green."""
    values = _unit_values(catalogue, "precision", "ccmas", "false_alarm_rate", "detector_bar")
    row = values[
        (values["run_id"] == catalogue.score_run)
        & (values["layer"] == "fc6")
        & (values["unit"] == 0)
    ].iloc[0]
    assert row["precision"] < 0.75
    at = app(
        "app_pages/unit.py", unit_id=catalogue.unit_ids[("fc6", 0)], run_id=catalogue.score_run
    )
    text_ = _texts(at)
    assert (
        ":red[:material/cancel:] Top-60 precision > 0.75 (Zhou et al. 2015) — **fails**: "
        f"precision = {row['precision']:.3f}".rstrip("0")
        + ", not > 0.75"
    ) in text_
    assert f"detector_bar = {row['detector_bar']:.3f}".rstrip("0") + ", not > 0.5" in text_
    assert ":green[" not in text_
    far = f"**False-alarm rate** FP/(TP+FP) = {row['false_alarm_rate']:.3f}".rstrip("0")
    assert far in text_
    mark = ":orange[:material/warning:]" if row["false_alarm_rate"] > 0.5 else ":gray["
    assert f"{mark}" in text_.split(far)[0].splitlines()[-1]


def test_unit_page_highlights_the_class_of_the_measure_the_user_came_from(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    engine = create_engine(catalogue.url, poolclass=NullPool)
    frame = pd.read_sql_query(
        text(
            "SELECT unit_id, precision_class, mi_class FROM unit_metrics "
            "WHERE run_id = :r AND precision_class <> mi_class ORDER BY unit_id LIMIT 1"
        ),
        engine,
        params={"r": catalogue.score_run},
    )
    engine.dispose()
    unit_id, precision_class, mi_class = (int(v) for v in frame.iloc[0])
    for query, expected in (
        ({}, mi_class),
        ({"preset": "precision"}, precision_class),
        ({"preset": "misleading"}, precision_class),
        ({"highlight": "precision"}, precision_class),
        ({"highlight": "max_informedness"}, mi_class),
    ):
        at = app("app_pages/unit.py", unit_id=unit_id, run_id=catalogue.score_run, **query)
        (box,) = [b for b in at.selectbox if b.key.startswith(f"highlight_{unit_id}_")]
        assert box.value == expected, query
        points, lines = _charts(at)[0]
        name = catalogue_class_name(expected)
        assert set(points.loc[points["group"] != "other classes", "class_name"]) == {name}
        assert f"best-informedness threshold for '{name}'" in set(lines["line"])
    # both lines are drawn after (above) the points, the dashed MI line last
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["point", "rule", "rule"]
    assert spec["layer"][2]["mark"]["strokeWidth"] > 2


def _in_page_order(at: AppTest) -> list[str]:
    """The text of every element of the main area, in the order the page shows them."""
    out: list[str] = []

    def walk(node: object) -> None:
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for key in sorted(children):
                walk(children[key])
            return
        value = getattr(node, "value", None)
        if isinstance(value, str):
            out.append(value)

    walk(at.main)
    return out


def catalogue_class_name(index: int) -> str:
    from tests.ui_fixtures import CLASS_NAMES

    return CLASS_NAMES[index]


# ------------------------------------------------------------------------------- layers


def test_layers_page_counts_detectors_per_criterion(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app("app_pages/layers.py", run_id=catalogue.score_run)
    table = _table(at, "n_units").set_index("layer")
    assert table.loc["conv5", "n_units"] == 6 and table.loc["fc6", "n_units"] == 8
    values = _unit_values(catalogue, "precision", "ccmas", "localist", "max_informedness")
    values = values[values["run_id"] == catalogue.score_run]

    def literal(mask: pd.Series) -> dict[str, int]:
        return {layer: int(mask[values["layer"] == layer].sum()) for layer in ("conv5", "fc6")}

    assert table["precision > 0.75"].to_dict() == literal(values["precision"] > 0.75)
    assert table["precision > 0.75"].to_dict() == {"conv5": 1, "fc6": 3}  # conv5.1; fc6.3, 4, 5
    assert table["localist"].to_dict() == literal(values["localist"]) == {"conv5": 0, "fc6": 1}
    assert table["IoU > 0.04"].to_dict() == {"conv5": 1, "fc6": 0}
    assert table["CCMAS > 0.9"].to_dict() == literal(values["ccmas"] > 0.9)
    misleading = table["precision > 0.75 & false alarms > 0.9"].to_dict()
    assert misleading == {"conv5": 1, "fc6": 1}
    for cut in (0.5, 0.7):
        at.slider(key="mi_cutoff").set_value(cut).run()
        table = _table(at, "n_units").set_index("layer")
        assert table[f"max informedness > {cut:g}"].to_dict() == literal(
            values["max_informedness"] > cut
        )
    assert table["max informedness > 0.7"].to_dict() == {"conv5": 1, "fc6": 3}
    assert len(_charts(at)) == 2


# ----------------------------------------------------------------------------- measures


def test_measures_page_heatmap_matches_a_literal_correlation(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app("app_pages/measures.py", run_id=catalogue.score_run)
    at.selectbox(key="corr_layer").set_value("fc6").run()
    table = _table(at, "spearman")
    row = table[(table["measure_a"] == "false_alarm_rate") & (table["measure_b"] == "precision")]
    values = _unit_values(catalogue, "false_alarm_rate", "precision")
    values = values[values["run_id"] == catalogue.score_run]
    fc6 = values[values["layer"] == "fc6"]
    assert row["pearson"].iloc[0] == pytest.approx(
        np.corrcoef(fc6["false_alarm_rate"], fc6["precision"])[0, 1]
    )
    heat = _charts(at)[0][0]
    cell = heat[(heat["a"] == "precision") & (heat["b"] == "false_alarm_rate")]
    assert cell["r"].iloc[0] == pytest.approx(row["pearson"].iloc[0])
    # pooled over all layers (computed in pandas), Spearman with average ranks, without
    # the dead conv5.5; then with it, after the switch
    at.selectbox(key="corr_layer").set_value("all layers").run()
    at.radio(key="corr_method").set_value("spearman").run()
    flags = _unit_values(catalogue, "constant")
    values = values.assign(constant=flags.loc[values.index, "constant"].to_numpy())
    for include in (False, True):
        if include:
            at.toggle(key="include_constant").set_value(True).run()
        table = _table(at, "spearman")
        row = table[
            (table["measure_a"] == "false_alarm_rate") & (table["measure_b"] == "precision")
        ]
        both = (values if include else values[~values["constant"]]).dropna()
        assert row["n"].iloc[0] == len(both) == 6 + 8 - (0 if include else 1)
        assert row["spearman"].iloc[0] == pytest.approx(
            np.corrcoef(both["false_alarm_rate"].rank(), both["precision"].rank())[0, 1]
        )
        scatter = _charts(at)[1][0]
        assert len(scatter) == len(both)  # the scatter plot follows the same switch
    assert len(_charts(at)) == 2  # heatmap and scatter


# --------------------------------------------------------------------------------- runs


def test_runs_page_lists_every_run_and_the_failure(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app("app_pages/runs.py")
    table = _table(at, "kind")
    assert sorted(table["kind"]) == ["ablate", "am", "dissect", "extract", "score", "score"]
    errors = " ".join(e.value for e in at.error)
    assert f"Run #{catalogue.failed_run} (ablate) failed" in errors
    assert "out of patience" in errors
    score = table[table["id"] == catalogue.score_run].iloc[0]
    # parameters and statistics as key/value lists, one per run (not a JSON line)
    lists = [
        e.value.set_index("key")["value"].to_dict()
        for e in at.dataframe
        if list(e.value.columns) == ["key", "value"]
    ]
    params = next(kv for kv in lists if kv.get("groups.bus") == "n002, n003, n004")
    assert params["all_images"] == "no"
    assert "params" not in table.columns and "stats" not in table.columns
    assert score["parent_id"] == catalogue.extract_run
    assert score["status"] == "done"


# ---------------------------------------------------------------------------------- sql


def _run_sql(at: AppTest, statement: str | None = None) -> AppTest:
    if statement is not None:
        at.text_area[0].input(statement)
    at.button[0].click().run()  # the form's submit button
    return at


def test_sql_page_runs_examples_and_refuses_writes(app: Callable[..., AppTest]) -> None:
    at = _run_sql(app("app_pages/sql.py"))  # the first example is the headline query
    frame = at.dataframe[0].value
    assert sorted(zip(frame["layer"], frame["unit"], strict=True)) == sorted(
        (layer, unit) for layer, unit, _run in MISLEADING
    )
    assert list(frame.columns) == [
        "open",  # a link to the unit: the result has model, layer and unit
        "model",
        "layer",
        "unit",
        "precision",
        "precision_class",
        "false_alarm_rate",
    ]
    assert set(frame["open"]) == {
        f"unit?model=toynet&layer={layer}&unit={unit}" for layer, unit, _run in MISLEADING
    }
    conv5 = frame[frame["layer"] == "conv5"].iloc[0]
    assert conv5["precision"] == pytest.approx(CONV5_1["precision"])
    assert conv5["false_alarm_rate"] == pytest.approx(CONV5_1["false_alarm_rate"])

    at = _run_sql(at, "DELETE FROM unit_metrics")
    assert len(at.error) == 1
    assert "refused: the query console is read-only" in at.error[0].value
    at = _run_sql(at, "SELECT count(*) AS n FROM unit_metrics")
    assert at.dataframe[0].value["n"].iloc[0] == 6 + 8 + 8  # nothing was deleted

    at = _run_sql(at, "SELECT * FROM no_such_view")
    assert "SQL error" in at.error[0].value

    at.selectbox(key="sql_example").set_value(
        "The bus group (school bus + trolleybus + minibus)"
    ).run()
    frame = _run_sql(at).dataframe[0].value
    assert len(frame) == 14  # every unit of the default scoring run has a bus row
    assert frame["max_informedness"].is_monotonic_decreasing


# ------------------------------------------------------------------- empty and broken


PAGES = [
    "app_pages/search.py",
    "app_pages/unit.py",
    "app_pages/layers.py",
    "app_pages/measures.py",
]


def test_empty_catalogue_is_friendly_on_every_page(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for page in [*PAGES, "app_pages/runs.py", "app_pages/sql.py"]:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        if page in PAGES:
            assert "Nothing here yet" in at.info[0].value and "unitcat ingest" in at.info[0].value
        elif page.endswith("runs.py"):
            assert "No runs yet" in at.info[0].value


def test_database_down_shows_one_error_box_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://nobody@/unitcat?host={tmp_path}")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "Cannot open the catalogue" in message
    assert "unitcat db start" in message and "DATABASE_URL" in message


# ------------------------------------------------------------ read API and chart builders


def test_view_tables_name_every_column_of_the_views(catalogue: UICatalogue) -> None:
    """The query package's Core tables must match the views (a renamed view column fails here)."""
    from sqlalchemy import inspect

    from catalogue.query import views

    engine = create_engine(catalogue.url, poolclass=NullPool)
    inspector = inspect(engine)
    for clause in (
        views.UNIT_CATALOGUE,
        views.LAYER_SUMMARY,
        views.MEASURE_CORRELATIONS,
        views.RATING_SUMMARY,
        views.DISSECTION_SUMMARY,
        *views.VIEWS,
    ):
        actual = {c["name"] for c in inspector.get_columns(clause.name)}
        assert set(clause.c.keys()) <= actual, clause.name
    actual = [c["name"] for c in inspector.get_columns("unit_catalogue")]
    assert list(views.UNIT_CATALOGUE.c.keys()) == actual
    engine.dispose()


def _literal_jitter_rows(values, labels, class_index, n_top, rest_rows) -> set[int]:
    """Rows a jitter plot must contain: every class image, the n_top most active others."""
    others = [i for i in range(len(values)) if labels[i] != class_index]
    others.sort(key=lambda i: -values[i])
    return {i for i in range(len(values)) if labels[i] == class_index} | set(others[:n_top])


def test_jitter_points_keep_every_class_image_and_the_top_others() -> None:
    from ui import plots

    rng = np.random.default_rng(3)
    n = 30_000
    labels = rng.integers(0, 50, n)
    values = np.where(rng.random(n) < 0.8, 0.0, rng.exponential(2.0, n)).astype(np.float32)
    data = plots.jitter_points(
        values, labels, 7, [f"c{i}" for i in range(50)], max_other=1000, n_top_other=100
    )
    rows = set(data.points["image"].tolist())
    assert len(rows) == len(data.points)  # no image twice
    must = _literal_jitter_rows(values, labels, 7, 100, None)
    assert must <= rows
    assert data.n_class == data.n_class_shown == int(np.sum(labels == 7))
    assert data.n_other == n - data.n_class and data.n_other_shown == 1000
    assert len(data.points) == data.n_class + 1000
    np.testing.assert_array_equal(data.points["activation"], values[data.points["image"]])
    assert set(data.points.loc[data.points["group"] == "c7", "image"]) == set(
        np.flatnonzero(labels == 7)
    )
    assert data.points["jitter"].between(0, 1).all()
    again = plots.jitter_points(
        values, labels, 7, [f"c{i}" for i in range(50)], max_other=1000, n_top_other=100
    )
    pd.testing.assert_frame_equal(data.points, again.points)  # fixed seed
    assert "the 100 most active and a random sample of 900" in data.caption()


def test_jitter_points_small_inputs_show_everything() -> None:
    from ui import plots

    values = np.array([0.0, 0.0, 1.0, 2.0, 2.0])
    labels = np.array([0, 1, 0, 1, 1])
    data = plots.jitter_points(values, labels, 1, ["a", "b"])
    assert sorted(data.points["image"]) == [0, 1, 2, 3, 4]
    assert not data.sampled
    assert data.points["group"].tolist()[-3:] == ["b", "b", "b"]  # the class is drawn last
    empty = plots.jitter_points(np.array([]), np.array([], dtype=int), 0, ["a"])
    assert empty.points.empty and empty.n_class == 0
    single = plots.jitter_points(np.zeros(4), np.zeros(4, dtype=int), 0, ["only"])
    assert single.n_other == 0 and len(single.points) == 4


def test_histogram_frame_counts_every_value() -> None:
    from ui import plots

    values = np.array([0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 4.0])
    frame = plots.histogram_frame(values, bins=4)
    assert frame["count"].tolist() == [4, 2, 0, 1]  # [0,1) [1,2) [2,3) [3,4]
    assert frame["start"].tolist() == [0.0, 1.0, 2.0, 3.0]
    nonzero = plots.histogram_frame(values, bins=4, drop_zeros=True)
    assert nonzero["count"].sum() == 4
    assert plots.histogram_frame(np.zeros(3), drop_zeros=True).empty
    assert plots.histogram_frame(np.ones(3))["count"].sum() == 3  # one distinct value
    assert plots.zero_share(values) == pytest.approx(3 / 7)


def test_correlation_matrix_is_symmetric_with_a_unit_diagonal() -> None:
    from catalogue.query.layers import pooled_correlations
    from ui import plots

    rng = np.random.default_rng(0)
    values = pd.DataFrame(
        {
            "precision": rng.random(40),
            "ccmas": rng.random(40),
            "max_informedness": np.r_[rng.random(39), np.nan],
        }
    )
    values["ccmas"] = values["precision"] * 0.5 + values["ccmas"] * 0.5
    pairs = pooled_correlations(values)
    assert len(pairs) == 3
    both = values[["ccmas", "max_informedness"]].dropna()
    row = pairs[(pairs["measure_a"] == "ccmas") & (pairs["measure_b"] == "max_informedness")]
    assert row["n"].iloc[0] == 39
    assert row["pearson"].iloc[0] == pytest.approx(
        np.corrcoef(both["ccmas"], both["max_informedness"])[0, 1]
    )
    matrix = plots.correlation_matrix(pairs, "spearman")
    assert len(matrix) == 9
    lookup = {(a, b): r for a, b, r in zip(matrix["a"], matrix["b"], matrix["r"], strict=True)}
    for a in ("precision", "ccmas", "max_informedness"):
        assert lookup[(a, a)] == 1.0
        for b in ("precision", "ccmas", "max_informedness"):
            assert lookup[(a, b)] == pytest.approx(lookup[(b, a)])
    plots.correlation_heatmap(matrix).to_dict()  # builds a valid spec


def test_measure_rows_pair_each_measure_with_its_class_and_threshold(
    catalogue: UICatalogue,
) -> None:
    from catalogue.query.units import unit_record
    from ui.display import measure_rows

    engine = create_engine(catalogue.url, poolclass=NullPool)
    record = unit_record(engine, catalogue.unit_ids[("fc6", 5)], catalogue.score_run)
    engine.dispose()
    rows = measure_rows(record).set_index("measure")
    assert rows.loc["localist", "value"] is True
    assert rows.loc["localist", "class"] == "tabby cat"
    tabby = catalogue.scored("fc6", 5)[catalogue.labels[catalogue.correct] == 5]
    assert rows.loc["max_informedness", "value"] == 1.0
    # J = 1 only at the lowest tabby activation (the only threshold with every tabby above)
    assert rows.loc["max_informedness", "threshold"] == pytest.approx(float(tabby.min()))
    assert pd.isna(rows.loc["frac_zero", "class"])
    assert "precision_class" not in rows.index  # classes are shown beside their measure


def test_bundled_dataset_images_are_read_by_key() -> None:
    """digits/fashion-mnist images are arrays in a package, found by the keys extraction stores."""
    from catalogue.data import load_digits
    from catalogue.query.files import bundled_image

    digits = load_digits("test")
    image = bundled_image("digits:test", "sklearn.datasets.load_digits", digits.key(3))
    assert np.array_equal(np.asarray(image), np.asarray(digits.load_image(3)))
    assert bundled_image("digits:test", None, "no-such-key") is None
    assert bundled_image("my-folder", "/nonexistent", "a.png") is None


def test_run_names_say_which_images_were_scored() -> None:
    from catalogue.query.runs import run_name

    scored = {"id": 3, "label": "toynet on toy", "params": {"all_images": True}}
    assert run_name(scored) == "#3 toynet on toy (all images)"
    labelled = {"id": 3, "label": "toynet on toy (all images)", "params": {"all_images": True}}
    assert run_name(labelled) == "#3 toynet on toy (all images)"  # said once
    bare = {"id": 4, "label": None, "model": "m", "dataset": "d", "params": {}}
    assert run_name(bare) == "#4 m on d"


# ------------------------------------------------------------------ clicks open the unit


def test_selecting_a_search_row_or_a_scatter_point_opens_the_unit(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    """A click arrives as the selection state of the table or chart (what the browser sends)."""
    at = app(preset="localist")
    at.session_state["search_results_0"] = {
        "selection": {"rows": [], "columns": [], "cells": [[0, "open"]]}
    }
    at.run()
    run = str(catalogue.score_run)
    assert at.query_params == {
        "model": "toynet",
        "layer": "fc6",
        "unit": "5",
        "run_id": run,
        "highlight": "localist",  # the Unit page highlights the class the preset names
    }
    assert "toynet · fc6 · unit 5" in _texts(at)

    at = app("app_pages/measures.py", run_id=catalogue.score_run)
    unit_id = catalogue.unit_ids[("conv5", 1)]
    point = {"unit_id": unit_id, "run_id": catalogue.score_run}
    at.session_state["scatter_0"] = {"selection": {"unit": [point]}}
    at.run()
    assert at.query_params == {
        "model": "toynet",
        "layer": "conv5",
        "unit": "1",
        "run_id": run,
        "highlight": "precision",  # the scatter's x measure
    }
    assert "toynet · conv5 · unit 1" in _texts(at)
