"""What a page says must be what the catalogue holds: verdicts that name the class each
value is about, charts that export whatever their size, ablation figures with their
sample size and interval, baselines marked wherever units are listed.

Pure functions are checked against literal expectations; pages run with AppTest on
the UI test catalogue (tests/ui_fixtures.py) or on small real catalogues built here.
"""

from __future__ import annotations

from catalogue.measures import CRITERIA_BY_KEY
from catalogue.query.units import detector_verdicts
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
