"""The `unitcat` application: assembles the command groups."""

from __future__ import annotations

import typer

from ingest.commands import ablate as ablate_commands
from ingest.commands import am as am_commands
from ingest.commands import baseline as baseline_commands
from ingest.commands import db as db_commands
from ingest.commands import demo as demo_commands
from ingest.commands import dissect as dissect_commands
from ingest.commands import extract as extract_commands
from ingest.commands import models as model_commands
from ingest.commands import paper as paper_commands
from ingest.commands import query as query_commands
from ingest.commands import ratings as ratings_commands
from ingest.commands import runs as runs_commands
from ingest.commands import score as score_commands
from ingest.commands import share as share_commands
from ingest.commands import ui as ui_commands
from ingest.console import run_reporting_errors

app = typer.Typer(
    name="unitcat",
    help="A PostgreSQL catalogue of the hidden units of image classifiers, scored with every selectivity measure.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ingest_app = typer.Typer(
    help="Compute things and write them to the catalogue: extract, score, dissect, am, ratings …",
    no_args_is_help=True,
)

app.add_typer(db_commands.app, name="db")
app.add_typer(ingest_app, name="ingest")
app.command("query", context_settings={"ignore_unknown_options": True})(query_commands.query)
app.add_typer(runs_commands.app, name="runs")
app.command("export")(share_commands.export)
app.command("import")(share_commands.import_)
app.command("demo")(demo_commands.demo)
app.command("ui")(ui_commands.ui)
# ingest commands are registered below, one line per module.
model_commands.register(ingest_app)
extract_commands.register(ingest_app)
score_commands.register(ingest_app)
am_commands.register(ingest_app)
ratings_commands.register(ingest_app)
dissect_commands.register(ingest_app)
paper_commands.register(ingest_app)
ablate_commands.register(ingest_app)
baseline_commands.register(ingest_app)


def main() -> None:
    run_reporting_errors(lambda: app(standalone_mode=True))


if __name__ == "__main__":
    main()
