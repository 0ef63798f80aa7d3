"""Progress and the closing report of multi-step commands (demo, paper).

The report is (1) the detector counts per layer, (2) the headline query and its
units, (3) where to browse them. It goes where stdout goes: tables on a terminal,
full-width tables in a file or a log (`ingest.output`), or with `--format
csv|tsv|json` the same rows for another program, while progress and notes go to
stderr.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from catalogue.measures import CRITERIA, FALSE_ALARM_ABOVE, PRECISION_ABOVE
from catalogue.query.report import HEADLINE_SQL, RunReport
from ingest.console import console, err_console, progress
from ingest.output import Column, OutputFormat, Rows, print_table, say, write_sections

if TYPE_CHECKING:
    from catalogue.pipeline.summary import Progress

#: The criteria counted per layer in table (1): those `layer_detectors` has a column for.
COUNTED = tuple(c for c in CRITERIA if c.count_column)


class RichReporter:
    """Progress bars on stderr; notes on stdout beside a table report, on stderr when stdout
    carries rows for another program."""

    def __init__(self, fmt: OutputFormat = OutputFormat.table) -> None:
        self.started = time.perf_counter()
        self.out = console if fmt is OutputFormat.table else err_console

    @contextmanager
    def step(self, title: str) -> Iterator[Progress]:
        with progress() as bar:
            task = bar.add_task(title, total=None, rate="")

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update
            bar.update(task, completed=bar.tasks[0].total or 1, total=bar.tasks[0].total or 1)

    def note(self, message: str) -> None:
        say(f"  [dim]{message}[/]", self.out, highlight=False)


def _f(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _count(value: int | None) -> str:
    return "—" if value is None else str(value)


#: Table (1): per layer, the units each criterion calls detectors (`layer_detectors`' names).
LAYER_COLUMNS: tuple[Column, ...] = (
    Column("layer", "layer"),
    Column("n_units", "units"),
    Column("n_constant", "constant"),
    *(Column(c.count_column, c.label, _count) for c in COUNTED if c.count_column),
    Column("median_max_informedness", "median max informedness", _f),
    Column("median_false_alarm_rate", "median false-alarm rate", _f),
)

#: A unit in the headline's tables (`unit_catalogue`'s names).
UNIT_COLUMNS: tuple[Column, ...] = (
    Column("layer", "layer"),
    Column("unit", "unit"),
    Column("precision", "precision", _f),
    Column("precision_class", "class"),
    Column("false_alarm_rate", "false-alarm rate", _f),
    Column("max_informedness", "max informedness", _f),
    Column("recall_at_mi", "hit rate at MI", _f),
)


def print_report(result: RunReport, seconds: float, fmt: OutputFormat = OutputFormat.table) -> None:
    """The closing report, as a table report or as rows in `fmt`."""
    layers = Rows(
        LAYER_COLUMNS,
        result.layers,
        title=f"(1) 'Object detectors' by each criterion — {result.model}",
    )
    misleading = Rows(UNIT_COLUMNS, result.misleading)
    worst = Rows(UNIT_COLUMNS, result.worst_precision_detectors)
    if fmt is not OutputFormat.table:
        write_sections(
            {
                "model": result.model,
                "layers": layers,
                "headline_sql": HEADLINE_SQL,
                "n_misleading": result.n_misleading,
                "misleading": misleading,
                "worst_precision_detectors": worst,
                "seconds": round(seconds, 1),
            },
            fmt,
        )
        return
    print_table(layers.table())
    say(
        "[dim]Constant units (every activation equal) are counted apart and left out of the "
        "other columns; — : the layer was not dissected.[/]"
    )
    say("\n[bold](2) The headline query[/]")
    say(HEADLINE_SQL, highlight=False)
    if result.misleading:
        print_table(misleading.table())
    say(
        f"{result.n_misleading} unit(s) pass the precision criterion while more than "
        f"{FALSE_ALARM_ABOVE.value:.0%} of the images above their best threshold belong to other classes."
        + (" (showing the first 10)" if result.n_misleading > 10 else ""),
        highlight=False,
    )
    if not result.misleading and result.worst_precision_detectors:
        say(
            f"The precision 'detectors' (> {PRECISION_ABOVE.value:g}) with the highest false-alarm rates:",
            highlight=False,
        )
        print_table(worst.table())
    say("\n[bold](3) Browse it[/]: make ui   (or: .venv/bin/unitcat ui)")
    say(
        f"[dim]finished in {seconds:.0f} s; psql: psql \"$(.venv/bin/unitcat db url | sed 's/+psycopg//')\"[/]"
    )
