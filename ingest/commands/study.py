"""`unitcat ingest study …`: the 2-AFC study of natural exemplars (IMI's protocol).

`2afc` builds a study's trials from a scoring run, `export` writes them in IMI's layout
for a lab's own platform, `responses` imports answers collected there (IMI's response
rows), and `show` prints a study with its per-unit accuracy. Participants can also
answer on the Rate page (`unitcat ui --study`, link `/rate?protocol=2afc&study_name=…`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import Engine

from catalogue.db.engine import get_engine
from catalogue.db.migrate import ensure_current
from catalogue.errors import InputError
from catalogue.measures import TWOAFC_CATCH_PASS_SHARE
from catalogue.pipeline.twoafc.export import export_study
from catalogue.pipeline.twoafc.responses import import_responses
from catalogue.pipeline.twoafc.study import build_study, parse_unit_choice
from catalogue.query.twoafc import find_study, participant_checks, studies, unit_summaries
from catalogue.twoafc.design import N_REFERENCES, TASK_SIZE, DesignOptions
from catalogue.twoafc.imi import STIMULUS_SIZE
from ingest.console import console
from ingest.output import print_table

app = typer.Typer(
    help="The 2-AFC study (IMI's protocol): build trials, export them, import responses.",
    no_args_is_help=True,
)


def register(ingest: typer.Typer) -> None:
    ingest.add_typer(app, name="study")


@app.command("2afc")
def two_afc(
    score_run: int = typer.Argument(..., help="The scoring run whose exemplars the trials show."),
    units: list[str] = typer.Option(
        ...,
        "--units",
        help="A layer (every unit that is not constant) or layer:units, e.g. fc6:0-9,12; repeatable.",
    ),
    name: str | None = typer.Option(
        None, "--name", help="The study's name (default: 2afc-run<N>-seed<S>)."
    ),
    references: int = typer.Option(N_REFERENCES, "--references", help="Reference images per side."),
    batches: int = typer.Option(
        1, "--batches", help="Trials per unit, each with other images (scoring keeps enough for 2)."
    ),
    task_size: int = typer.Option(
        TASK_SIZE, "--task-size", help="Trials per task (one participant's share)."
    ),
    catch_trials: int | None = typer.Option(
        None, "--catch-trials", help="Catch trials per task (default: 1 per 8 trials)."
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seed of every random choice: the same seed gives the same trials."
    ),
) -> None:
    """Build a 2-AFC study's trials from a scoring run's most and least activating images."""
    choices = [parse_unit_choice(u) for u in units]
    options = DesignOptions(references, batches, task_size, catch_trials, seed)
    engine = get_engine()
    ensure_current(engine)
    built = build_study(
        engine, score_run, choices, name=name or f"2afc-run{score_run}-seed{seed}", options=options
    )
    study = built.study
    if built.reused:
        console.print(
            f"study {study.name!r} is built already (same parameters): nothing to do.",
            highlight=False,
        )
    else:
        note = (
            f"; {built.left_out_constant} constant unit(s) left out"
            if built.left_out_constant
            else ""
        )
        console.print(
            f"built 2-AFC study {study.name!r}: {built.n_trials} trials ({built.n_catch} catch trials) "
            f"of {built.n_units} units in {study.n_tasks} task(s){note}.",
            highlight=False,
        )
    console.print(
        f"Participants: `unitcat ui --study`, then /rate?protocol=2afc&study_name={study.name} ; "
        f"or `unitcat ingest study export {study.name} OUT` for IMI's layout.",
        highlight=False,
    )


@app.command("export")
def export(
    name: str = typer.Argument(..., help="The study."),
    out: Path = typer.Argument(..., help="A new folder for IMI's layout."),
    image_size: int = typer.Option(
        STIMULUS_SIZE,
        "--image-size",
        help="Images as IMI's stimuli: the centre N × N (0: as stored).",
    ),
) -> None:
    """Write a study's trials in IMI's layout (task_<k>/index.json, trials/trial_<p>/…), with the answers so far as responses.csv."""
    if image_size < 0:
        raise InputError(
            f"--image-size must be 0 (as stored) or a size in pixels; got {image_size}."
        )
    engine = get_engine()
    ensure_current(engine)
    done = export_study(engine, find_study(engine, name), out, size=image_size)
    answers = f" and {done.n_responses} answers (responses.csv)" if done.n_responses else ""
    console.print(
        f"wrote {done.n_tasks} task(s), {done.n_trials} trials, {done.n_images} images{answers} to {done.out}.",
        highlight=False,
    )


@app.command("responses")
def responses(
    name: str = typer.Argument(..., help="The study the responses answer."),
    file: Path = typer.Argument(
        ...,
        help="IMI's response rows as CSV (participant_id, task_number, corrected_trial_index, choice or correct …).",
    ),
) -> None:
    """Import responses collected elsewhere (all lines or none), then show the study."""
    engine = get_engine()
    ensure_current(engine)
    study = find_study(engine, name)
    done = import_responses(engine, study, file)
    console.print(
        f"imported {done.n_responses} responses by {done.n_participants} participant(s) to "
        f"{done.n_units} unit(s) from {file}.",
        highlight=False,
    )
    if done.failed_catch:
        console.print(
            f"{len(done.failed_catch)} participant(s) answered under {TWOAFC_CATCH_PASS_SHARE:.0%} "
            f"of their catch trials correctly; their answers are kept but not counted: "
            f"{', '.join(done.failed_catch)}.",
            highlight=False,
            style="yellow",
        )
    _show(engine, study.name)


@app.command("show")
def show(name: str | None = typer.Argument(None, help="A study (default: list them all).")) -> None:
    """List the studies, or show one with its participants and per-unit 2-AFC accuracy."""
    engine = get_engine()
    ensure_current(engine)
    if name is None:
        frame = studies(engine)
        if frame.empty:
            find_study(engine)  # raises the one line that says how to build one
        table = Table(header_style="bold")
        for col in frame.columns:
            table.add_column(col)
        for row in frame.itertuples(index=False):
            table.add_row(*(str(v) for v in row))
        print_table(table)
        return
    _show(engine, name)


def _show(engine: Engine, name: str) -> None:
    study = find_study(engine, name)
    checks = participant_checks(engine, study.id)
    passed = int(checks["passed"].sum()) if not checks.empty else 0
    console.print(
        f"study {study.name!r} (scoring run {study.score_run_id}, {study.n_tasks} task(s)): "
        f"{len(checks)} participant(s), {passed} pass the catch trials (≥ {TWOAFC_CATCH_PASS_SHARE:.0%}).",
        highlight=False,
    )
    units = unit_summaries(engine, study.id)
    if units.empty:
        return
    table = Table(
        title="Human 2-AFC accuracy per unit (all studies; 95% Wilson interval)",
        header_style="bold",
    )
    for col in (
        "model",
        "layer",
        "unit",
        "answers",
        "correct",
        "accuracy",
        "95% interval",
        "left out",
    ):
        table.add_column(col, justify="left" if col in ("model", "layer") else "right")
    for r in units.itertuples(index=False):
        interval = "–" if r.n_responses == 0 else f"{r.ci_low:.2f}–{r.ci_high:.2f}"
        accuracy = "–" if r.n_responses == 0 else f"{r.accuracy:.2f}"
        table.add_row(
            r.model,
            r.layer,
            str(r.unit),
            str(r.n_responses),
            str(r.n_correct),
            accuracy,
            interval,
            str(r.n_excluded),
        )
    print_table(table)
