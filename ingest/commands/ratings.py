"""`unitcat ingest ratings FILE.csv` and `unitcat ingest analyse-ratings`: human ratings of AM
panels into the catalogue, and the paper's Table 1 from them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from catalogue.measures import RATING_CONSENSUS_SHARE
from catalogue.ratings import CSV_COLUMNS
from ingest.console import console
from ingest.options import open_catalogue

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from catalogue.wordnet import NameMatcher

WORDNET_HELP = (
    "Match names through WordNet hypernyms (--wordnet: required; --no-wordnet: plain words). "
    "Default: WordNet when installed, else words."
)
WORDNET_INSTALL = "apt-get install -y wordnet-base wordnet-sense-index (and pip install nltk)"
FALLBACK_NOTE = (
    "WordNet is not available, so names were matched by their words only: 'dogs' matches "
    "'dog' and 'sled dog' but not 'flat-coated retriever', so columns c–e may read low. "
    f"Install it ({WORDNET_INSTALL}) and run `unitcat ingest analyse-ratings` again."
)
NO_RATINGS = (
    "no ratings in the catalogue yet: import a CSV with `unitcat ingest ratings FILE.csv` "
    "or collect them on the Rate page (`unitcat ui`)."
)


def register(app: typer.Typer) -> None:
    app.command("ratings")(ratings)
    app.command("analyse-ratings")(analyse)


def ratings(
    file: Path = typer.Argument(
        ...,
        help=f"CSV with the header {','.join(CSV_COLUMNS)} (answer yes|no; estimate 0-20 … "
        "80-100; names ';'-separated, at most two; estimate and names only after yes).",
    ),
    wordnet: bool | None = typer.Option(None, "--wordnet/--no-wordnet", help=WORDNET_HELP),
) -> None:
    """Import a ratings CSV (all lines or none), then recompute the analysis and print Table 1."""
    from catalogue.pipeline.ratings import import_ratings
    from catalogue.ratings import parse_ratings_csv

    rows = parse_ratings_csv(file)
    engine = open_catalogue()
    matcher = _matcher(wordnet)
    summary = import_ratings(engine, rows, label=f"ratings CSV {file}")
    console.print(
        f"imported {_n(summary.n_ratings, 'rating')} by {_n(summary.n_participants, 'participant')} "
        f"of {_n(summary.n_units, 'unit')} from {file}.",
        highlight=False,
    )
    _analyse_and_report(engine, matcher)


def analyse(
    wordnet: bool | None = typer.Option(None, "--wordnet/--no-wordnet", help=WORDNET_HELP),
) -> None:
    """Recompute the name analysis of every rated unit (e.g. after installing WordNet) and print Table 1."""
    from catalogue.query.ratings import rating_counts

    engine = open_catalogue()
    if rating_counts(engine).n_ratings == 0:
        console.print(NO_RATINGS, highlight=False)
        return
    _analyse_and_report(engine, _matcher(wordnet))


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _matcher(wordnet: bool | None) -> NameMatcher:
    """The name matcher; without a choice, WordNet when it loads, else words (and we say so)."""
    from catalogue.wordnet import NameMatcher, wordnet_available

    if wordnet is None:
        wordnet = wordnet_available()
    return NameMatcher(use_wordnet=wordnet)


def _analyse_and_report(engine: Engine, matcher: NameMatcher) -> None:
    from catalogue.pipeline.ratings import analyse_ratings
    from catalogue.query.ratings import rating_counts

    n_units = analyse_ratings(engine, matcher=matcher)
    if n_units == 0:
        console.print(NO_RATINGS, highlight=False)
        return
    counts = rating_counts(engine)
    how = "WordNet hypernyms" if matcher.uses_wordnet else "plain words (no WordNet)"
    console.print(
        f"analysed {_n(n_units, 'rated unit')} ({_n(counts.n_ratings, 'rating')} by "
        f"{_n(counts.n_participants, 'participant')}); names matched by {how}.",
        highlight=False,
    )
    if not matcher.uses_wordnet:
        console.print(FALLBACK_NOTE, highlight=False, style="yellow")
    console.print(_table1(engine))


def share_text(value: float | None, se: float | None = None) -> str:
    """``21.7% (±1.1%)`` as in the paper; ``21.7%`` without an SE; ``–`` for no value."""
    if value is None:
        return "–"
    if se is None:
        return f"{value:.1%}"
    return f"{value:.1%} (±{se:.1%})"


def _table1(engine: Engine) -> Any:
    from rich.table import Table

    from catalogue.query.ratings import table1

    consensus = f"≥ {RATING_CONSENSUS_SHARE:.0%} 'yes'"
    table = Table(
        title="Table 1: are the AM images familiar objects? (Gale et al., sec. 3.2)",
        caption=f"c–e: over units with {consensus}; ± one standard error.",
        header_style="bold",
    )
    table.add_column("model")
    table.add_column("layer")
    table.add_column("units", justify="right")
    table.add_column("ratings", justify="right")
    table.add_column("(a) % 'yes'", justify="right")
    table.add_column(f"(b) % units {consensus}", justify="right")
    table.add_column("(c) humans ~ humans", justify="right")
    table.add_column("(d) ~ most active class", justify="right")
    table.add_column("(e) ~ CCMAS class", justify="right")
    for row in table1(engine):
        table.add_row(
            row.model,
            row.layer,
            f"{row.n_units:,}",
            f"{row.n_ratings:,}",
            share_text(row.share_yes, row.share_yes_se),
            share_text(row.share_consensus, row.share_consensus_se),
            share_text(row.human_agreement, row.human_agreement_se),
            share_text(row.match_most_active, row.match_most_active_se),
            share_text(row.match_ccmas, row.match_ccmas_se),
        )
    return table
