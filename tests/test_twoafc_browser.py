"""The 2-AFC study in a real browser: `unitcat ui --study` on a scored catalogue, headless
Chromium answers three trials as a participant, and the answers are in the database."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.pipeline.twoafc.study import build_study
from catalogue.query.twoafc import find_study, study_trials
from catalogue.twoafc.design import DesignOptions
from tests.test_browser import (
    WAIT_MS,
    _check,
    _goto,
    _settle,
    _start_unitcat_ui,
    _stop,
    browser,  # noqa: F401  (the module's browser fixture)
    screenshots,  # noqa: F401
)
from tests.twoafc_fixtures import build_twoafc_catalogue


@pytest.mark.browser
def test_a_participant_answers_three_trials_in_study_mode(
    database_factory: Callable[..., str],
    tmp_path,
    browser: object,  # noqa: F811
) -> None:
    url = database_factory()
    engine = create_engine(url, poolclass=NullPool)
    c = build_twoafc_catalogue(engine, tmp_path)
    build_study(
        engine, c.score_run, [("conv5", None), ("fc6", [0, 1])], name="browser",
        options=DesignOptions(seed=5),
    )  # fmt: skip
    trials = study_trials(engine, find_study(engine, "browser").id)
    process, port, _log = _start_unitcat_ui(url, "--study")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1300})  # type: ignore[attr-defined]
        _goto(
            page,
            f"http://127.0.0.1:{port}/?protocol=2afc&study_name=browser",
            "Image study",
            "twoafc-start",
        )
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0
        page.get_by_label("Participant code").fill("p-chromium")
        page.get_by_role("button", name="Start").click()
        clicks = ("upper_3", "lower_2", "upper_1")
        for n, click in enumerate(clicks):
            page.get_by_text(f"Trial {n + 1} of {len(trials)}").wait_for(timeout=WAIT_MS)
            _settle(page)
            images = page.locator('[data-testid="stImage"] img')
            assert images.count() == 20  # 9 + 9 references and the two queries
            if n == 0:
                _check(page, "twoafc-trial")
                body = page.locator("body").inner_text()
                for word in ("afcnet", "conv5", "fc6", "class", "browser"):
                    assert word not in body, word
            page.locator(f".st-key-twoafc_{click} button").click()
        page.get_by_text(f"Trial {len(clicks) + 1} of {len(trials)}").wait_for(timeout=WAIT_MS)
        _check(page, "twoafc-after-three")
        page.close()
    finally:
        _stop(process)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.position, t.max_query_first, r.chose_max, r.confidence, r.rt_ms, r.source "
                "FROM twoafc_response r JOIN twoafc_trial t ON t.id = r.trial_id "
                "JOIN participant p ON p.id = r.participant_id WHERE p.code = 'p-chromium' "
                "ORDER BY t.position"
            )
        ).all()
    engine.dispose()
    shown_first = {t.position: t.max_query_first for t in trials if t.task == 1}
    assert [r.position for r in rows] == [1, 2, 3]
    for r, click in zip(rows, clicks, strict=True):
        upper = click.startswith("upper")
        assert r.chose_max == (upper == shown_first[r.position])
        assert r.confidence == int(click[-1])
        assert r.rt_ms is not None and r.rt_ms > 0 and r.source == "ui"
