"""Progress and the closing report of multi-step commands (demo, paper)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.table import Table

from catalogue.measures import CRITERIA, FALSE_ALARM_ABOVE, PRECISION_ABOVE
from catalogue.pipeline.summary import Progress
from catalogue.query.report import HEADLINE_SQL, RunReport
from ingest.console import console, progress

#: The criteria counted per layer in table (1): those `layer_detectors` has a column for.
COUNTED = tuple(c for c in CRITERIA if c.count_column)


class RichReporter:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @contextmanager
    def step(self, title: str) -> Iterator[Progress]:
        with progress() as bar:
            task = bar.add_task(title, total=None, rate="")

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update
            bar.update(task, completed=bar.tasks[0].total or 1, total=bar.tasks[0].total or 1)

    def note(self, message: str) -> None:
        console.print(f"  [dim]{message}[/]", highlight=False)


def _f(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _units_table(rows: list[dict]) -> Table:
    table = Table(
        "layer",
        "unit",
        "precision",
        "class",
        "false-alarm rate",
        "max informedness",
        "hit rate at MI",
    )
    for r in rows:
        table.add_row(
            r["layer"],
            str(r["unit"]),
            _f(r["precision"]),
            r["precision_class"] or "",
            _f(r["false_alarm_rate"]),
            _f(r["max_informedness"]),
            _f(r["recall_at_mi"]),
        )
    return table


def print_report(result: RunReport, seconds: float) -> None:
    table = Table(
        "layer",
        "units",
        "constant",
        *(c.label for c in COUNTED),
        "median max informedness",
        "median false-alarm rate",
        title=f"(1) 'Object detectors' by each criterion — {result.model}",
    )
    for row in result.layers:
        table.add_row(
            row["layer"],
            str(row["n_units"]),
            str(row["n_constant"]),
            *("—" if row[c.count_column] is None else str(row[c.count_column]) for c in COUNTED),
            _f(row["median_max_informedness"]),
            _f(row["median_false_alarm_rate"]),
        )
    console.print(table)
    console.print(
        "[dim]Constant units (every activation equal) are counted apart and left out of the "
        "other columns; — : the layer was not dissected.[/]"
    )
    console.print("\n[bold](2) The headline query[/]")
    console.print(HEADLINE_SQL, highlight=False)
    if result.misleading:
        console.print(_units_table(result.misleading))
    console.print(
        f"{result.n_misleading} unit(s) pass the precision criterion while more than "
        f"{FALSE_ALARM_ABOVE.value:.0%} of the images above their best threshold belong to other classes."
        + (" (showing the first 10)" if result.n_misleading > 10 else ""),
        highlight=False,
    )
    if not result.misleading and result.worst_precision_detectors:
        console.print(
            f"The precision 'detectors' (> {PRECISION_ABOVE.value:g}) with the highest false-alarm rates:",
            highlight=False,
        )
        console.print(_units_table(result.worst_precision_detectors))
    console.print("\n[bold](3) Browse it[/]: make ui   (or: .venv/bin/unitcat ui)")
    console.print(
        f"[dim]finished in {seconds:.0f} s; psql: psql \"$(.venv/bin/unitcat db url | sed 's/+psycopg//')\"[/]"
    )
