"""The layer grid: a layer's units a page at a time, sorted by any measure, each with its
first top images and AM panel (catalogue.query.layer_grid), and its page (ui/app_pages/
layer.py) run with AppTest on the UI test catalogue (tests/ui_fixtures.py).

Expected orders and images come from plain SQL over unit_metrics and unit_top_image,
sorted here in Python, never from the code under test.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool
from streamlit.testing.v1 import AppTest

from catalogue.errors import InputError
from catalogue.query.layer_grid import GRID_SORTABLE, PAGE_SIZE, layer_grid, layer_runs
from tests.catalogue_builders import register_toy, write_scores
from tests.ui_fixtures import UICatalogue

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"


@pytest.fixture(scope="module")
def grid_engine(catalogue: UICatalogue) -> Iterator[Engine]:
    engine = create_engine(catalogue.url, poolclass=NullPool)
    yield engine
    engine.dispose()


def _metrics(engine: Engine, layer: str, run_id: int, measure: str) -> pd.DataFrame:
    """unit index and a measure of every unit of the layer in the run (plain SQL)."""
    return pd.read_sql_query(
        text(
            f"SELECT u.unit_index AS unit, um.{measure} AS value FROM unit_metrics um "
            "JOIN unit u ON u.id = um.unit_id JOIN layer l ON l.id = u.layer_id "
            "WHERE l.name = :layer AND um.run_id = :run"
        ),
        engine,
        params={"layer": layer, "run": run_id},
    )


def _literal_order(frame: pd.DataFrame, descending: bool) -> list[int]:
    """Units by value (missing last), ties by unit index: a sort written out by hand."""
    present = [(v, u) for u, v in zip(frame["unit"], frame["value"], strict=True) if pd.notna(v)]
    missing = sorted(
        int(u) for u, v in zip(frame["unit"], frame["value"], strict=True) if pd.isna(v)
    )
    ordered = sorted(present, key=lambda vu: ((-vu[0] if descending else vu[0]), vu[1]))
    return [int(u) for _, u in ordered] + missing


@pytest.mark.parametrize(
    ("layer", "measure", "descending"),
    [
        ("fc6", "precision", True),
        ("conv5", "false_alarm_rate", False),
        ("conv5", "frac_zero", True),  # the dead conv5.5 is all zeros
        ("conv5", "best_iou", True),  # five dissected units, one not: last
        ("fc6", "unit", False),
    ],
)
def test_pages_of_a_sorted_layer_are_the_literal_order_cut_into_pieces(
    grid_engine: Engine, catalogue: UICatalogue, layer: str, measure: str, descending: bool
) -> None:
    if measure == "best_iou":
        expected_frame = pd.read_sql_query(
            text(
                "SELECT u.unit_index AS unit, max(d.iou) AS value FROM unit u "
                "JOIN layer l ON l.id = u.layer_id LEFT JOIN dissection d ON d.unit_id = u.id "
                "WHERE l.name = :layer GROUP BY u.unit_index"
            ),
            grid_engine,
            params={"layer": layer},
        )
    elif measure == "unit":
        expected_frame = _metrics(grid_engine, layer, catalogue.score_run, "precision")
        expected_frame["value"] = expected_frame["unit"]
    else:
        expected_frame = _metrics(grid_engine, layer, catalogue.score_run, measure)
    expected = _literal_order(expected_frame, descending)
    pages = []
    for offset in range(0, len(expected) + 3, 3):
        page = layer_grid(
            grid_engine,
            "toynet",
            layer,
            catalogue.score_run,
            order_by=measure,
            descending=descending,
            offset=offset,
            limit=3,
        )
        assert page.total == len(expected)
        assert len(page.units) == min(3, max(0, len(expected) - offset))
        pages.append([int(u) for u in page.units["unit"]])
    assert [u for p in pages for u in p] == expected
    if measure not in ("unit", "best_iou"):
        got = dict(zip(page.units["unit"], page.units[measure], strict=True))
        truth = dict(zip(expected_frame["unit"], expected_frame["value"], strict=True))
        assert all(got[u] == pytest.approx(truth[u]) for u in got)


def test_a_grid_page_carries_its_units_first_top_images_and_newest_panel(
    grid_engine: Engine, catalogue: UICatalogue
) -> None:
    page = layer_grid(grid_engine, "toynet", "fc6", catalogue.score_run, limit=48, images=4)
    truth = pd.read_sql_query(
        text(
            "SELECT unit_id, rank, image_index, activation FROM unit_top_image "
            "WHERE run_id = :run AND rank <= 4 AND unit_id = ANY(:units) ORDER BY unit_id, rank"
        ),
        grid_engine,
        params={"run": catalogue.score_run, "units": [int(u) for u in page.units["unit_id"]]},
    )
    assert len(truth) == 4 * 8
    got = page.top_images[["unit_id", "rank", "image_index", "activation"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, truth, check_dtype=False)
    assert page.top_images["path"].notna().all()  # the fixture wrote every top image's file
    assert (page.top_images["path"].map(lambda p: Path(p).is_file())).all()
    panels = page.panels.set_index("unit_id")
    assert list(panels.index) == [catalogue.unit_ids[("fc6", 3)]]
    assert panels.loc[catalogue.unit_ids[("fc6", 3)], "file"] == str(catalogue.panel_path)
    # no scoring run: units listed by index, without top images
    unscored = layer_grid(grid_engine, "toynet", "fc6", None)
    assert unscored.total == 0 and unscored.top_images.empty


def test_the_grid_refuses_an_unknown_sort_and_lists_the_layers_runs(
    grid_engine: Engine, catalogue: UICatalogue
) -> None:
    with pytest.raises(InputError, match="cannot sort a layer's units by 'colour'"):
        layer_grid(grid_engine, "toynet", "fc6", catalogue.score_run, order_by="colour")
    with pytest.raises(InputError, match="limit >= 1"):
        layer_grid(grid_engine, "toynet", "fc6", catalogue.score_run, limit=0)
    assert "max_informedness" in GRID_SORTABLE and "best_iou" in GRID_SORTABLE
    assert set(layer_runs(grid_engine, "toynet", "fc6")["id"]) == {
        catalogue.score_run,
        catalogue.all_images_run,
    }
    assert list(layer_runs(grid_engine, "toynet", "conv5")["id"]) == [catalogue.score_run]


# ---------------------------------------------------------------------------- the page


@pytest.fixture
def app(catalogue: UICatalogue, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    monkeypatch.setenv("DATABASE_URL", catalogue.url)

    def run(**query: object) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        for name, value in query.items():
            at.query_params[name] = str(value)
        at.switch_page("app_pages/layer.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def _links(at: AppTest) -> list[tuple[str, dict[str, list[str]]]]:
    return [
        (link.proto.label, urllib.parse.parse_qs(link.proto.query_string))
        for link in at.get("page_link")
        if link.proto.label.startswith(("fc6.", "conv5."))
    ]


def test_the_grid_page_shows_a_tile_and_a_link_per_unit_in_the_chosen_order(
    app: Callable[..., AppTest], grid_engine: Engine, catalogue: UICatalogue
) -> None:
    at = app(model="toynet", layer="fc6", run_id=catalogue.score_run, sort="precision", desc=1)
    expected = _literal_order(_metrics(grid_engine, "fc6", catalogue.score_run, "precision"), True)
    links = _links(at)
    assert [label for label, _ in links] == [f"fc6.{u} ›" for u in expected]
    for (_label, query), unit in zip(links, expected, strict=True):
        assert query == {
            "model": ["toynet"],
            "layer": ["fc6"],
            "unit": [str(unit)],
            "run_id": [str(catalogue.score_run)],
        }
    assert len(at.image) == len(expected)  # one picture per tile: its top images
    assert "Units 1–8 of 8, by Top-60 precision (highest first" in at.caption[0].value
    # the AM-panel view: fc6.3's panel; the others fall back to their top images
    at.radio(key="grid_show").set_value("am").run()
    assert at.query_params["show"] == "am"
    assert len(at.image) == len(expected)


@pytest.fixture(scope="module")
def wide_layer(database_factory: Callable[..., str]) -> tuple[str, list[int]]:
    """A 110-unit layer scored with precisions that tie in pairs (no top images or files):
    (database URL, the units in order of precision, highest first, ties by index)."""
    url = database_factory()
    engine = create_engine(url, poolclass=NullPool)
    model, dataset = register_toy(engine, layers=(("conv1", "conv", 110),), model_name="wide")
    precision = np.array([(u // 2) % 37 / 40 for u in range(110)])
    write_scores(engine, model, dataset, "conv1", {"precision": precision})
    engine.dispose()
    frame = pd.DataFrame({"unit": range(110), "value": precision})
    return url, _literal_order(frame, True)


def test_the_grid_page_pages_through_a_big_layer(
    wide_layer: tuple[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, expected = wide_layer
    monkeypatch.setenv("DATABASE_URL", url)
    pages = -(-len(expected) // PAGE_SIZE)
    assert pages == 3
    seen: list[str] = []
    at = AppTest.from_file(str(APP), default_timeout=60)
    for name, value in {
        "model": "wide",
        "layer": "conv1",
        "sort": "precision",
        "desc": "1",
    }.items():
        at.query_params[name] = value
    at.switch_page("app_pages/layer.py").run()
    for number in range(1, pages + 1):
        if number > 1:
            at.number_input(key="grid_page").set_value(number).run()
            assert at.query_params["page"] == str(number)
        assert not at.exception, [e.value for e in at.exception]
        assert at.number_input(key="grid_page").max == pages
        first = (number - 1) * PAGE_SIZE + 1
        last = min(number * PAGE_SIZE, len(expected))
        assert f"Units {first}–{last} of {len(expected)}" in at.caption[0].value
        seen += [
            link.proto.label
            for link in at.get("page_link")
            if link.proto.label.startswith("conv1.")
        ]
    assert seen == [f"conv1.{u} ›" for u in expected]
    assert not at.image  # no top images stored: every tile says so
    assert "no readable top images" in [c.value for c in at.caption]
    # a link to page 3 opens page 3; a page beyond the last opens the last
    for asked, shown in ((3, 3), (9, 3)):
        again = AppTest.from_file(str(APP), default_timeout=60)
        for name, value in {"model": "wide", "layer": "conv1", "page": str(asked)}.items():
            again.query_params[name] = value
        again.switch_page("app_pages/layer.py").run()
        assert again.number_input(key="grid_page").value == shown
        labels = [
            link.proto.label
            for link in again.get("page_link")
            if link.proto.label.startswith("conv1.")
        ]
        assert labels == [f"conv1.{u} ›" for u in range(2 * PAGE_SIZE, 110)]
