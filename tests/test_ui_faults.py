"""Faults and run status in the UI (AppTest on the UI test catalogue): a unit id that no
integer column can hold, an interrupted run on the Runs page, an unexpected error as one box."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from streamlit.testing.v1 import AppTest

from catalogue.db.runs import run_key
from tests.ui_fixtures import UICatalogue

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
TIMEOUT = 60


def _all_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += (
        [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    )
    parts += [str(x.value) for x in at.exception]
    return "\n".join(str(p) for p in parts)


def test_a_unit_id_too_large_for_the_database_is_a_plain_not_found(
    catalogue: UICatalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", catalogue.url)
    for query in (
        {"unit_id": "99999999999999999999"},
        {"unit_id": str(catalogue.unit_ids[("fc6", 0)]), "run_id": "99999999999999999999"},
    ):
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        for name, value in query.items():
            at.query_params[name] = value
        at.switch_page("app_pages/unit.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error
        shown = _all_text(at)
        assert "no unit id" in shown and "99999999999999999999" in shown
        assert "SELECT" not in shown and "out of range" not in shown


def test_the_runs_page_shows_a_run_whose_owner_is_gone_as_interrupted(
    catalogue: UICatalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(catalogue.url, poolclass=NullPool)
    with engine.begin() as conn:
        run_id = conn.execute(
            text(
                "INSERT INTO run (kind, key, status, label, owner_host, owner_pid) "
                "VALUES ('extract', :k, 'running', 'killed extraction', 'elsewhere', 4242) "
                "RETURNING id"
            ),
            {"k": run_key("extract", {"killed": True})},
        ).scalar_one()
    try:
        monkeypatch.setenv("DATABASE_URL", catalogue.url)
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        at.switch_page("app_pages/runs.py").run()
        assert not at.exception
        assert any(f"Run #{run_id} (extract) was interrupted" in w.value for w in at.warning)
        table = at.dataframe[0].value
        assert table.loc[table["id"] == run_id, "status"].tolist() == ["interrupted"]
        owner = table.loc[table["id"] == run_id].iloc[0]
        assert (owner["owner_host"], owner["recorded_status"]) == ("elsewhere", "running")
        at.multiselect(key="run_statuses").set_value(["interrupted"]).run()
        assert at.dataframe[0].value["id"].tolist() == [run_id]
        assert at.query_params["status"] == "interrupted"  # the filter is in the URL …
        linked = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        linked.query_params["status"] = "interrupted"
        linked.switch_page("app_pages/runs.py").run()  # … so a link shows the same runs
        assert not linked.exception
        assert linked.multiselect(key="run_statuses").value == ["interrupted"]
        assert linked.dataframe[0].value["id"].tolist() == [run_id]
        titles = [e.label for e in linked.expander]
        assert titles == [f"Run #{run_id} · extract · interrupted · killed extraction"]
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM run WHERE id = :r"), {"r": run_id})
        engine.dispose()
