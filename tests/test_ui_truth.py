"""What a page says must be what the catalogue holds: verdicts that name the class each
value is about, charts that export whatever their size, ablation figures with their
sample size and interval, baselines marked wherever units are listed.

Pure functions are checked against literal expectations; pages run with AppTest on
the UI test catalogue (tests/ui_fixtures.py) or on small real catalogues built here.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.measures import CRITERIA_BY_KEY
from catalogue.query.units import detector_verdicts
from tests.ui_truth_fixtures import FC1_0, BigCatalogue, big_catalogue  # noqa: F401
from ui.display import verdict_line

MISLEADING = CRITERIA_BY_KEY["misleading"]


def _misleading_line(record: dict[str, object]) -> str:
    (verdict,) = detector_verdicts(record, (MISLEADING,))
    return verdict_line(verdict)


def test_the_misleading_verdict_names_both_classes_when_they_differ() -> None:
    """Precision is about the precision class, the false-alarm rate about the
    max-informedness class: a line that names one class beside both values says
    something false whenever the two differ."""
    record = {
        "precision": 0.85,
        "precision_class": "red dress",
        "false_alarm_rate": 0.94,
        "mi_class": "red coat",
    }
    line = _misleading_line(record)
    assert "precision = 0.85 > 0.75 for red dress (its precision class)" in line
    assert "false_alarm_rate = 0.94 > 0.9 for red coat (its max-informedness class)" in line
    assert not line.endswith("— red dress")
    assert "**holds: a doubtful detector**" in line


def test_the_misleading_verdict_names_one_class_once_when_both_agree() -> None:
    record = {
        "precision": 0.85,
        "precision_class": "monarch",
        "false_alarm_rate": 0.94,
        "mi_class": "monarch",
    }
    line = _misleading_line(record)
    assert line.endswith("precision = 0.85 > 0.75 and false_alarm_rate = 0.94 > 0.9 — monarch"), (
        line
    )
    assert line.count("monarch") == 1


def test_the_big_catalogue_holds_the_designed_misleading_unit(
    big_catalogue: BigCatalogue,  # noqa: F811
) -> None:
    """bignet.fc1.0 is the misleading unit tests/ui_truth_fixtures.py designs: its precision
    class (red dress) and max-informedness class (red coat) differ, with the stated values."""
    engine = create_engine(big_catalogue.url, poolclass=NullPool)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT precision, precision_class, mi_class, false_alarm_rate, max_informedness"
                " FROM misleading_detectors WHERE model = 'bignet' AND layer = 'fc1' AND unit = 0"
            )
        ).one()
    engine.dispose()
    assert row.precision_class == "red dress"
    assert row.mi_class == "red coat"
    assert abs(row.precision - FC1_0["precision"]) < 1e-6
    assert abs(row.false_alarm_rate - FC1_0["false_alarm_rate"]) < 1e-6
    assert abs(row.max_informedness - FC1_0["max_informedness"]) < 1e-6


def test_a_chart_of_more_than_5000_rows_exports_every_point() -> None:
    """Altair's default transformer refuses a chart of more than 5,000 rows (MaxRowsError);
    the exported spec and the SVG made from it hold every one of the 6,001 points."""
    import altair as alt
    import pandas as pd

    from ui.figures import export_rows, export_spec, to_svg

    frame = pd.DataFrame({"x": range(6001), "y": [i % 7 for i in range(6001)]})
    base = alt.Chart(frame).mark_point().encode(x="x:Q", y="y:Q")
    chart = alt.layer(base, alt.Chart(frame.head(3)).mark_rule().encode(y="y:Q"))
    assert export_rows(chart) == 6004
    spec = export_spec(chart)
    assert sorted(len(rows) for rows in spec["datasets"].values()) == [3, 6001]
    svg = to_svg(chart)
    assert svg.startswith(b"<svg")
    assert svg.count(b"<path") >= 6001


def test_the_headline_preset_labels_baseline_rows_and_keeps_the_false_alarm_column(
    big_catalogue: BigCatalogue,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The misleading preset finds bignet.fc1.0 and its random-weights baseline's fc1.1;
    the baseline's row says whose baseline it is, the trained row says nothing, and the
    grid shows the baseline label and then the preset's own criterion (precision,
    false-alarm rate) right after the unit's name."""
    from streamlit.testing.v1 import AppTest

    from tests.test_ui_pages import APP, TIMEOUT

    monkeypatch.setenv("DATABASE_URL", big_catalogue.url)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["preset"] = "misleading"
    at.switch_page("app_pages/search.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    frame = at.dataframe[0].value
    rows = {(r.model, r.layer, int(r.unit)): r.baseline for r in frame.itertuples()}
    assert rows[("bignet", "fc1", 0)] == ""
    assert rows[("bignet@random-seed0", "fc1", 1)] == f"baseline of #{big_catalogue.score_run}"
    columns = list(frame.columns)
    assert columns.index("baseline") == columns.index("unit") + 1
    assert columns.index("false_alarm_rate") < columns.index("max_informedness")
    assert columns.index("false_alarm_rate") <= columns.index("unit") + 4
