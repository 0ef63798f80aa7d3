"""The UI as a workbench, with AppTest on the real app and catalogue
(tests/ui_fixtures.py): state in the URL, unit permalinks and neighbours, related units,
the Compare page, readable tables, figure downloads, the SQL page's catalog.

Expected rows come from plain SQL over the tables or from the fixture's design.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from streamlit.testing.v1 import AppTest

from tests.markdown_text import as_read
from tests.ui_fixtures import FC6_3, UICatalogue

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
TIMEOUT = 60


@pytest.fixture
def app(catalogue: UICatalogue, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """Run the app on a page with query parameters (a list value repeats the parameter)."""
    monkeypatch.setenv("DATABASE_URL", catalogue.url)
    monkeypatch.delenv("UNITCAT_STUDY", raising=False)

    def run(page: str | None = None, **query: object) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        for name, value in query.items():
            at.query_params[name] = (
                [str(v) for v in value] if isinstance(value, list) else str(value)
            )
        if page is not None:
            at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def _texts(at: AppTest) -> str:
    """The page's text as a reader sees it (`as_read`)."""
    parts = [m.value for m in at.markdown] + [t.value for t in at.title]
    parts += [h.value for h in at.header] + [s.value for s in at.subheader]
    parts += [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [w.value for w in at.warning] + [e.value for e in at.error]
    return as_read("\n".join(str(p) for p in parts))


def _sql(catalogue: UICatalogue, statement: str) -> pd.DataFrame:
    engine = create_engine(catalogue.url, poolclass=NullPool)
    frame = pd.read_sql_query(text(statement), engine)
    engine.dispose()
    return frame


def _params(at: AppTest) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in at.query_params.items()}


def _specs(at: AppTest) -> list[dict]:
    return [json.loads(e.proto.spec) for e in at.get("vega_lite_chart")]


def _chart_data(at: AppTest) -> list[list[pd.DataFrame]]:
    """The data sets of every Altair chart on the page, decoded from their Arrow bytes."""
    return [
        [pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in e.proto.datasets]
        for e in at.get("vega_lite_chart")
    ]


# ---------------------------------------------------------------------------- search URL


def test_a_search_url_reproduces_filters_sort_and_limit(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    query = {
        "layer": ["fc6"],
        "filter": ["precision"],
        "min_precision": "0.3",
        "sort": "false_alarm_rate",
        "order": "asc",
        "limit": "10",
        "run": [str(catalogue.score_run)],
    }
    at = app("app_pages/search.py", **query)
    assert at.multiselect(key="layers").value == ["fc6"]
    assert at.multiselect(key="range_measures").value == ["precision"]
    assert at.number_input(key="min_precision").value == pytest.approx(0.3)
    assert at.selectbox(key="order_by").value == "false_alarm_rate"
    assert at.toggle(key="descending").value is False
    assert at.number_input(key="limit").value == 10
    frame = at.dataframe[0].value
    literal = _sql(
        catalogue,
        "SELECT u.unit_index AS unit, um.false_alarm_rate FROM unit_metrics um "
        "JOIN unit u ON u.id = um.unit_id JOIN layer l ON l.id = u.layer_id "
        f"WHERE l.name = 'fc6' AND um.run_id = {catalogue.score_run} AND um.precision >= 0.3 "
        "ORDER BY um.false_alarm_rate ASC NULLS LAST, u.unit_index",
    )
    assert frame["unit"].tolist() == literal["unit"].tolist()[:10]
    assert len(literal) > 1
    # the URL is what the page shows: the same parameters come back (defaults left out)
    assert _params(at) == {k: v if isinstance(v, list) else [v] for k, v in query.items()}
    assert "ignores" not in _texts(at)


def test_search_state_goes_into_the_url_as_it_changes(app: Callable[..., AppTest]) -> None:
    at = app()
    assert _params(at) == {}
    at.selectbox(key="preset").set_value("misleading").run()
    at.multiselect(key="layers").set_value(["conv5", "fc6"]).run()
    at.selectbox(key="class_name").set_value("ladybird").run()
    at.multiselect(key="range_measures").set_value(["ccmas"]).run()
    at.number_input(key="max_ccmas").set_value(0.95).run()
    assert _params(at) == {
        "preset": ["misleading"],
        "layer": ["conv5", "fc6"],
        "class": ["ladybird"],
        "filter": ["ccmas"],
        "max_ccmas": ["0.95"],
    }
    at.multiselect(key="range_measures").set_value([]).run()  # its bounds leave the URL too
    at.selectbox(key="class_name").set_value(None).run()
    assert _params(at) == {"preset": ["misleading"], "layer": ["conv5", "fc6"]}


def test_unknown_parameters_and_presets_say_so(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/search.py", preset="nosuch", colour="red", sort="bogus")
    notes = " ".join(w.value for w in at.warning)
    assert "`preset=nosuch` is not known here" in notes
    assert "`sort=bogus` is not known here" in notes
    assert "ignores the URL parameter `colour`" in notes
    assert at.selectbox(key="preset").value is None  # every unit, not silently a preset
    # every unit but the dead conv5.5 (constant units are left out unless switched on)
    assert "21 units match" in _texts(at)
    assert "1 constant unit left out" in _texts(at)

    at = app("app_pages/layers.py", mi="lots")
    assert "`mi=lots` is not understood" in " ".join(w.value for w in at.warning)


def test_search_table_reads_as_labels_blanks_and_whole_numbers(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    from ui import tables

    at = app("app_pages/search.py", preset="dissection")
    element = at.dataframe[0]
    frame = element.value
    assert frame.columns[:4].tolist() == ["open", "model", "layer", "unit"]
    config = json.loads(element.proto.columns)
    assert config["open"]["pinned"] is True and config["unit"]["pinned"] is True
    assert config["best_concept"]["label"] == "Best concept"
    assert config["rating_consensus"]["label"] == "Rated interpretable"
    assert config["classes_in_top100"]["label"] == "Classes in top 100"
    # the display values: blanks for missing, whole numbers without decimals
    assert tables.cell(None) == "" and tables.cell(float("nan")) == ""
    assert tables.cell(6.0, count=True) == "6" and tables.cell(0.77619) == "0.776"
    assert tables.cell(1.0) == "1.000"  # a share keeps its decimals
    assert tables.cell(True) == "yes" and tables.cell(np.int64(3)) == "3"
    styled = tables.readable(frame).to_html()
    assert ">None<" not in styled and ">nan<" not in styled and "6.000" not in styled


# ------------------------------------------------------------------------ unit permalink


def test_a_unit_permalink_opens_the_unit_and_highlights_a_class(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app(
        "app_pages/unit.py",
        model="toynet",
        layer="fc6",
        unit=3,
        run_id=catalogue.score_run,
        **{"class": "ladybird"},
    )
    assert "toynet · fc6 · unit 3" in _texts(at)
    points = next(d for data in _chart_data(at) for d in data if "group" in d.columns)
    assert set(points["group"]) == {"ladybird", "other classes"}
    ladybirds = catalogue.labels[catalogue.correct] == 1
    assert (points["group"] == "ladybird").sum() == ladybirds.sum() == 72
    assert at.query_params["class"] == "ladybird"

    # the internal id still works, and the address becomes the permalink
    at = app("app_pages/unit.py", unit_id=catalogue.unit_ids[("fc6", 3)])
    assert "toynet · fc6 · unit 3" in _texts(at)
    assert (at.query_params["model"], at.query_params["layer"], at.query_params["unit"]) == (
        "toynet",
        "fc6",
        "3",
    )
    assert "unit_id" not in at.query_params

    at = app("app_pages/unit.py", model="toynet", layer="fc6", unit=99)
    assert "no unit toynet.fc6.99" in _texts(at)


def test_previous_and_next_walk_the_layer(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app("app_pages/unit.py", model="toynet", layer="fc6", unit=6, run_id=catalogue.score_run)
    assert at.button(key="unit_previous").label == "‹ fc6.5"
    at.button(key="unit_next").click().run()
    assert "toynet · fc6 · unit 7" in _texts(at)
    assert at.query_params["unit"] == "7" and at.query_params["run_id"] == str(catalogue.score_run)
    assert at.button(key="unit_next").disabled  # fc6 has 8 units: 7 is the last
    at = app("app_pages/unit.py", model="toynet", layer="conv5", unit=0, same="ccmas_class")
    assert at.button(key="unit_previous").disabled
    at.button(key="unit_next").click().run()
    assert "toynet · conv5 · unit 1" in _texts(at)
    assert at.query_params["same"] == "ccmas_class"  # the related-units choice goes along


def test_the_class_to_highlight_is_part_of_the_unit_url(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    """?highlight= (the measure the user came from) is a known parameter of the
    Unit page's permalink, goes along to the previous and next unit, and a value that names
    no measure or preset says so."""
    run = catalogue.score_run
    classes = _sql(
        catalogue,
        "SELECT u.unit_index AS unit, um.precision_class, um.mi_class FROM unit_metrics um "
        "JOIN unit u ON u.id = um.unit_id JOIN layer l ON l.id = u.layer_id "
        f"WHERE l.name = 'fc6' AND um.run_id = {run} ORDER BY u.unit_index",
    ).set_index("unit")
    at = app(
        "app_pages/unit.py", model="toynet", layer="fc6", unit=6, run_id=run, highlight="precision"
    )
    assert "ignores" not in _texts(at) and "names no measure" not in _texts(at)
    (box,) = [b for b in at.selectbox if b.key.startswith("highlight_")]
    assert box.value == classes.loc[6, "precision_class"]
    at.button(key="unit_next").click().run()
    assert "toynet · fc6 · unit 7" in _texts(at)
    assert dict(at.query_params) == {
        "model": "toynet",
        "layer": "fc6",
        "unit": "7",
        "run_id": str(run),
        "highlight": "precision",
    }
    (box,) = [b for b in at.selectbox if b.key.startswith("highlight_")]
    assert box.value == classes.loc[7, "precision_class"]  # the new unit's precision class

    at = app(
        "app_pages/unit.py", model="toynet", layer="fc6", unit=6, run_id=run, highlight="bogus"
    )
    notes = " ".join(w.value for w in at.warning)
    assert "`highlight=bogus` names no measure or preset" in notes
    assert "ignores" not in notes
    (box,) = [b for b in at.selectbox if b.key.startswith("highlight_")]
    assert box.value == classes.loc[6, "mi_class"]


def test_the_constant_units_switch_lives_in_the_url(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    """The constant-units switch is a filter like the others: a link reproduces it."""
    at = app("app_pages/search.py", include_constant="true")
    assert at.toggle(key="include_constant").value is True
    assert "22 units match" in _texts(at) and "ignores" not in _texts(at)
    assert _params(at) == {"include_constant": ["true"]}
    at.toggle(key="include_constant").set_value(False).run()
    assert "21 units match" in _texts(at)
    assert _params(at) == {}  # off is the default: left out of the URL
    at.toggle(key="include_constant").set_value(True).run()
    assert _params(at) == {"include_constant": ["true"]}

    at = app("app_pages/search.py", include_constant="maybe")
    assert "`include_constant=maybe` is not understood" in " ".join(w.value for w in at.warning)
    assert at.toggle(key="include_constant").value is False

    for page in ("app_pages/layers.py", "app_pages/measures.py"):
        at = app(page, run_id=catalogue.score_run, include_constant="true")
        assert at.toggle(key="include_constant").value is True, page
        assert "1 constant unit included" in _texts(at), page
        assert "ignores" not in _texts(at), page
        assert _params(at)["include_constant"] == ["true"], page
        at = app(page, run_id=catalogue.score_run)
        assert at.toggle(key="include_constant").value is False, page
        assert "1 constant unit left out" in _texts(at), page
        assert "include_constant" not in at.query_params, page


def _related_tables(at: AppTest) -> list[pd.DataFrame]:
    return [e.value for e in at.dataframe if "open" in e.value.columns]


def test_units_of_the_same_class_and_concept_are_listed(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    run = catalogue.score_run
    at = app("app_pages/unit.py", model="toynet", layer="fc6", unit=3, run_id=run)
    expected = _sql(
        catalogue,
        "SELECT l.name AS layer, u.unit_index AS unit FROM unit_metrics um "
        "JOIN unit u ON u.id = um.unit_id JOIN layer l ON l.id = u.layer_id "
        f"WHERE um.run_id = {run} AND um.mi_class = 0 AND NOT (l.name = 'fc6' AND u.unit_index = 3) "
        "ORDER BY um.max_informedness DESC, l.position, u.unit_index",
    )
    (same_class,) = _related_tables(at)
    assert list(zip(same_class["layer"], same_class["unit"], strict=True)) == list(
        zip(expected["layer"], expected["unit"], strict=True)
    )
    assert "MI class is **monarch butterfly**" in _texts(at)
    assert "This unit was not dissected." in _texts(at)

    # by precision class instead, kept in the URL
    at.selectbox(key="related_class_measure").set_value("precision_class").run()
    assert at.query_params["same"] == "precision_class"

    # conv5.0's best concept is grass, as for conv5.1, 3 and 4 (IoU .02, .015, .03)
    at = app("app_pages/unit.py", model="toynet", layer="conv5", unit=0, run_id=run)
    concept = _related_tables(at)[-1]
    assert concept["unit"].tolist() == [4, 1, 3]
    assert concept["best_iou"].tolist() == pytest.approx([0.03, 0.02, 0.015])
    # a click on "open ›" opens that unit
    at.session_state["related_concept_0"] = {
        "selection": {"rows": [], "columns": [], "cells": [[0, "open"]]}
    }
    at.run()
    assert "toynet · conv5 · unit 4" in _texts(at)


# ------------------------------------------------------------------------------- compare


def test_compare_shows_two_units_side_by_side_on_one_scale(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    run = catalogue.score_run
    at = app("app_pages/compare.py", model="toynet", unit=["fc6.3", "conv5.1"], run_id=run)
    measures = next(e.value for e in at.dataframe if "Measure" in e.value.columns)
    assert measures.columns.tolist() == ["Measure", "fc6.3", "conv5.1"]
    row = measures.set_index("Measure").loc["Top-60 precision"]
    assert row["fc6.3"] == f"{FC6_3['precision']:.3f} (monarch butterfly)"
    assert row["conv5.1"].endswith("(ladybird)")
    specs = [s for s in _specs(at) if "layer" in s]
    assert len(specs) == 2
    domains = [
        layer["encoding"]["x"]["scale"]["domain"]
        for spec in specs
        for layer in spec["layer"]
        if "scale" in layer["encoding"].get("x", {})
    ]
    high = max(catalogue.scored("fc6", 3).max(), catalogue.scored("conv5", 1).max())
    assert len(domains) >= 2 and all(d == domains[0] for d in domains)
    assert domains[0] == pytest.approx([0.0, float(high)])
    assert len(at.image) >= 3  # top images of each, and fc6.3's AM panel

    # units of several models or by internal id; more than four are cut with a note
    ids = [catalogue.unit_ids[("fc6", u)] for u in range(5)]
    at = app("app_pages/compare.py", unit_id=ids)
    measures = next(e.value for e in at.dataframe if "Measure" in e.value.columns)
    assert measures.columns.tolist() == ["Measure", "fc6.0", "fc6.1", "fc6.2", "fc6.3"]
    assert "at most 4 units" in _texts(at)


def test_search_rows_ticked_open_compare(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app(preset="misleading")
    at.session_state["search_results_0"] = {
        "selection": {"rows": [0, 1], "columns": [], "cells": []}
    }
    at.run()
    at.button(key="compare").click().run()
    assert not at.exception
    assert "Compare units" in _texts(at)
    shown = at.dataframe[0].value
    assert shown.columns.tolist()[0] == "Measure" and len(shown.columns) == 3
    assert len(_params(at)["unit"]) == 2


# ---------------------------------------------------------------------- layers, runs, SQL


def test_layers_say_not_dissected_and_label_every_layer(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app("app_pages/layers.py", run_id=catalogue.score_run, show="share")
    assert "fc6: not dissected (no bar)" in _texts(at)
    bars = next(d for data in _chart_data(at) for d in data if "criterion" in d.columns)
    iou = bars[bars["criterion"] == "IoU > 0.04"]
    assert iou["layer"].tolist() == ["conv5"]  # no bar (not 0) for the undissected layer
    conv5 = bars[(bars["layer"] == "conv5") & (bars["criterion"] == "precision > 0.75")]
    assert conv5["share"].tolist() == pytest.approx([1 / 6])
    assert at.query_params["show"] == "share"
    boxes = next(s for s in _specs(at) if "facet" in s)
    assert boxes["resolve"]["axis"]["x"] == "independent"  # x labels under every panel


def test_figures_download_as_svg_and_png_with_every_layer_labelled() -> None:
    from ui import figures, plots

    summary = pd.DataFrame(
        [
            {"layer": layer, "layer_position": i, "measure": m, "n": 10, "mean": 0.5, "sd": 0.1}
            | {"min": 0.0, "q1": 0.25, "median": 0.5, "q3": 0.75, "max": 1.0}
            for i, layer in enumerate(["conv1", "conv2", "conv3", "fc6", "fc7", "fc8"])
            for m in ("precision", "ccmas", "max_informedness", "false_alarm_rate")
        ]
    )
    chart = plots.layer_box_chart(summary, ["conv1", "conv2", "conv3", "fc6", "fc7", "fc8"])
    svg = figures.to_svg(chart).decode()
    assert svg.startswith("<svg")
    for layer in ("conv1", "conv2", "conv3", "fc6", "fc7", "fc8"):
        assert svg.count(f">{layer}<") == 4, layer  # one axis label per measure panel
    png = figures.to_png(chart)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width > 400
    values = np.r_[np.zeros(50), np.linspace(0.1, 3, 50)]
    data = plots.jitter_points(values, np.repeat([0, 1], 50), 1, ["a", "b"])
    jitter = plots.jitter_chart(data, mi_threshold=1.0, top60_threshold=2.0)
    wide = figures.with_x_domain(jitter, (0.0, 10.0))
    assert wide.to_dict()["layer"][0]["encoding"]["x"]["scale"]["domain"] == [0.0, 10.0]
    assert b"<svg" in figures.to_svg(wide)
    assert figures.file_stem("unitcat-demo:fashion-mnist-conv5-3") == (
        "unitcat-demo-fashion-mnist-conv5-3"
    )


def test_runs_and_layers_tables_pin_their_key_columns(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app("app_pages/layers.py", run_id=catalogue.score_run)
    element = next(e for e in at.dataframe if "n_units" in e.value.columns)
    config = json.loads(element.proto.columns)
    assert config["layer"]["pinned"] is True

    at = app("app_pages/runs.py", kind=["score"])
    table = next(e.value for e in at.dataframe if "kind" in e.value.columns)
    assert sorted(table["kind"]) == ["score", "score"]
    assert at.multiselect(key="run_kinds").value == ["score"]


def test_sql_page_lists_views_with_their_columns_from_the_catalog(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    at = app("app_pages/sql.py")
    listing = _texts(at)
    columns = _sql(
        catalogue,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'layer_detectors' ORDER BY ordinal_position",
    )["column_name"].tolist()
    line = next(m for m in listing.splitlines() if m.startswith("- **layer_detectors**"))
    assert [part.split("`")[1] for part in line.split(": ", 1)[1].split(", ")] == columns
    assert "- **unit_catalogue**" in listing and "- **rating**" in listing

    # an edited example is no longer labelled as that example
    at.text_area[0].input("SELECT model, layer, unit FROM unit_catalogue WHERE unit = 3")
    at.button[0].click().run()
    assert at.selectbox(key="sql_example").value == "— your own query —"
    frame = at.dataframe[0].value
    assert set(frame["open"]) == {"unit?model=toynet&layer=conv5&unit=3"} | {
        "unit?model=toynet&layer=fc6&unit=3"
    }
    # the statement is in the URL, so a link runs it again
    statement = at.query_params["sql"]
    again = app("app_pages/sql.py", sql=statement)
    assert again.dataframe[0].value["unit"].tolist() == frame["unit"].tolist()


# ------------------------------------------------ consensus needs RATING_MIN_RATERS (last)


def test_consensus_is_stated_only_after_enough_raters(
    app: Callable[..., AppTest], catalogue: UICatalogue
) -> None:
    """One 'yes' is not a consensus: the Unit page says how many raters it needs, and the
    view leaves `rating_consensus` NULL until 5 people have rated the panel."""
    from catalogue.measures import RATING_MIN_RATERS

    assert RATING_MIN_RATERS == 5
    engine = create_engine(catalogue.url, poolclass=NullPool)
    unit_id = catalogue.unit_ids[("fc6", 6)]

    def rate(codes: list[str]) -> None:
        with engine.begin() as conn:
            for code in codes:
                pid = conn.execute(
                    text("INSERT INTO participant (code, list_index) VALUES (:c, 0) RETURNING id"),
                    {"c": code},
                ).scalar_one()
                conn.execute(
                    text(
                        "INSERT INTO rating (participant_id, unit_id, answer, estimate, names, "
                        "source) VALUES (:p, :u, true, '80-100', ARRAY['owl'], 'import')"
                    ),
                    {"p": pid, "u": unit_id},
                )

    def consensus() -> object:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT DISTINCT rating_consensus FROM unit_catalogue WHERE unit_id = :u"),
                {"u": unit_id},
            ).scalar_one()

    rate(["q1"])
    assert consensus() is None
    at = app("app_pages/unit.py", model="toynet", layer="fc6", unit=6)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ratings"] == "1" and metrics["Consensus (≥ 80%)"] == "needs 5 raters"
    rate(["q2", "q3", "q4"])
    assert consensus() is None  # four people all said yes: still too few
    rate(["q5"])
    assert consensus() is True
    import streamlit as st

    st.cache_data.clear()  # as "Refresh data" does: query results are kept for 60 s
    at = app("app_pages/unit.py", model="toynet", layer="fc6", unit=6)
    assert {m.label: m.value for m in at.metric}["Consensus (≥ 80%)"] == "yes"
    engine.dispose()
