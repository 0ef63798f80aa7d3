"""What a pipeline run reports: detector counts per layer and the headline query."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine, text

from catalogue.measures import PRECISION_DETECTOR

Progress = Callable[[int, int], None]


class Reporter(Protocol):
    """How a multi-step pipeline shows its progress (the CLI draws rich progress bars)."""

    def step(self, title: str) -> AbstractContextManager[Progress]: ...

    def note(self, message: str) -> None: ...


@dataclass
class RunReport:
    model: str
    layers: list[dict[str, Any]] = field(default_factory=list)
    misleading: list[dict[str, Any]] = field(default_factory=list)
    n_misleading: int = 0
    #: the precision "detectors" with the highest false-alarm rates (shown when none passes .9)
    worst_precision_detectors: list[dict[str, Any]] = field(default_factory=list)


def run_report(engine: Engine, model_name: str, score_run_id: int) -> RunReport:
    """The per-layer detector counts (the paper's Figure 2 in numbers) and the headline query."""
    with engine.connect() as conn:
        layers = (
            conn.execute(
                text(
                    "SELECT layer, n_units, n_precision, n_ccmas, n_localist, n_iou, n_misleading, "
                    "median_max_informedness, median_false_alarm_rate "
                    "FROM layer_detectors WHERE run_id = :r ORDER BY layer_position"
                ),
                {"r": score_run_id},
            )
            .mappings()
            .all()
        )
        misleading = (
            conn.execute(
                text(
                    "SELECT layer, unit, precision, precision_class, false_alarm_rate, max_informedness, "
                    "recall_at_mi FROM misleading_detectors WHERE run_id = :r "
                    "ORDER BY false_alarm_rate DESC, precision DESC LIMIT 10"
                ),
                {"r": score_run_id},
            )
            .mappings()
            .all()
        )
        n_misleading = conn.execute(
            text("SELECT count(*) FROM misleading_detectors WHERE run_id = :r"), {"r": score_run_id}
        ).scalar_one()
        worst = (
            conn.execute(
                text(
                    "SELECT layer, unit, precision, precision_class, false_alarm_rate, max_informedness, "
                    "recall_at_mi FROM unit_catalogue WHERE run_id = :r AND precision > :p "
                    "ORDER BY false_alarm_rate DESC NULLS LAST, precision DESC LIMIT 5"
                ),
                {"r": score_run_id, "p": PRECISION_DETECTOR},
            )
            .mappings()
            .all()
        )
    return RunReport(
        model=model_name,
        layers=[dict(r) for r in layers],
        misleading=[dict(r) for r in misleading],
        n_misleading=n_misleading,
        worst_precision_detectors=[dict(r) for r in worst],
    )
