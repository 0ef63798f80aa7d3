"""The `unitcat` application: the command groups, each command imported when it runs.

Every command is registered by name with the module that defines it and the line
`--help` lists for it (`ingest.lazy`): `unitcat query`, `runs`, `db …` and
`--help` import neither torch, torchvision, h5py nor streamlit, which only the
commands that compute (or serve the UI) load.
"""

from __future__ import annotations

import typer

from ingest.console import run_reporting_errors
from ingest.lazy import LazyCommand, LazyGroup

#: `unitcat COMMAND`, in the order `unitcat --help` lists them (then `ingest`).
COMMANDS = {
    "query": LazyCommand(
        "ingest.commands.query:query",
        "Run one read-only SQL statement and print the result; statements that write are refused.",
        {"ignore_unknown_options": True},
    ),
    "runs": LazyCommand(
        "ingest.commands.runs:runs", "List the runs in the catalogue, newest first."
    ),
    "demo": LazyCommand(
        "ingest.commands.demo:demo",
        "Train the demo CNN, extract, score, dissect and make AM panels, then print the headline "
        "query.",
    ),
    "ui": LazyCommand(
        "ingest.commands.ui:ui",
        "Serve the catalogue's web UI (search, units, compare, layers, measures, runs, SQL) until "
        "Ctrl+C.",
    ),
    "db": LazyCommand("ingest.commands.db:app", "Start, stop and migrate the catalogue database."),
}

#: `unitcat ingest COMMAND`: a module's `register` adds its commands (one or two) to the group.
INGEST_COMMANDS = {
    "layers": LazyCommand(
        "ingest.commands.models:register",
        "List a model's layers (feature-extraction node names) with output shape and unit count.",
    ),
    "train-demo": LazyCommand(
        "ingest.commands.models:register",
        "Train the small AlexNet-shaped demo CNN on the CPU and save its checkpoint.",
    ),
    "extract": LazyCommand(
        "ingest.commands.extract:register",
        "Run MODEL over DATASET and store the activations of the chosen layers (resumable).",
    ),
    "score": LazyCommand(
        "ingest.commands.score:register",
        "Score every unit of RUN with every measure and write the results in one transaction.",
    ),
    "am": LazyCommand(
        "ingest.commands.am:register",
        "Generate AM panels for units of LAYER and record them for the Rate page (re-running "
        "replaces them).",
    ),
    "ratings": LazyCommand(
        "ingest.commands.ratings:register",
        "Import a ratings CSV (all lines or none), then recompute the analysis and print Table 1.",
    ),
    "analyse-ratings": LazyCommand(
        "ingest.commands.ratings:register",
        "Recompute the name analysis of every rated unit (e.g. after installing WordNet) and "
        "print Table 1.",
    ),
    "dissect": LazyCommand(
        "ingest.commands.dissect:register",
        "Label conv units with the probe-set concepts whose masks their activation maps overlap "
        "best.",
    ),
    "make-probe": LazyCommand(
        "ingest.commands.dissect:register",
        "Build a probe set in Broden's format: scenes of objects with object and colour masks.",
    ),
    "paper": LazyCommand(
        "ingest.commands.paper:register",
        "AlexNet conv5, fc6, fc7, fc8 over ImageNet: extract, score (correct images, bus and car "
        "groups), dissect.",
    ),
    "ablate": LazyCommand(
        "ingest.commands.ablate:register",
        "Replace each unit of LAYERS by 0 (or its mean), one at a time, and record every class's "
        "accuracy.",
    ),
    "baseline": LazyCommand(
        "ingest.commands.baseline:register",
        "Baselines of a trained run's detector counts: random weights (--random-weights) and "
        "chance (--chance).",
    ),
    "study": LazyCommand(
        "ingest.commands.study:register",
        "The 2-AFC study (IMI's protocol): build trials, export them, import responses.",
    ),
}

app = typer.Typer(
    name="unitcat",
    cls=LazyGroup.with_commands(COMMANDS),
    help="A PostgreSQL catalogue of the hidden units of image classifiers, scored with every selectivity measure.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ingest_app = typer.Typer(
    cls=LazyGroup.with_commands(INGEST_COMMANDS),
    help="Compute things and write them to the catalogue: extract, score, dissect, am, ratings …",
    no_args_is_help=True,
)
app.add_typer(ingest_app, name="ingest")


def main() -> None:
    run_reporting_errors(lambda: app(standalone_mode=True))


if __name__ == "__main__":
    main()
