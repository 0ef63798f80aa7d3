"""`unitcat export OUT` and `unitcat import DUMP`: a catalogue as Parquet files, and back.

Kept light at import time: the library (pyarrow, ADBC) loads when a command runs.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ingest.console import console


def _pairs(values: list[str], option: str) -> dict[str, str]:
    from catalogue.errors import InputError

    out: dict[str, str] = {}
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old or not new:
            raise InputError(f"{option} takes OLD=NEW, got {value!r}.")
        out[old] = new
    return out


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e5 else f"{n / 1e3:,.1f} kB"


def export(
    out: Path = typer.Argument(..., help="The folder to write (it must not exist yet)."),
    model: list[str] = typer.Option(
        [], "--model", help="Export this model's runs (repeat for more). Default: everything."
    ),
    run: list[int] = typer.Option(
        [], "--run", help="Export this run (repeat for more), with the runs it refers to."
    ),
    images: bool = typer.Option(
        True, "--images/--no-images", help="Include top images and AM panels as PNG."
    ),
    images_per_unit: int = typer.Option(
        20,
        help="With --images: the images of each unit's top N ranks (every rank's key and "
        "activation is exported in any case).",
    ),
    overwrite: bool = typer.Option(False, help="Replace an earlier dump in OUT."),
) -> None:
    """Write the catalogue (or some models and runs) as Parquet files with manifest.json and
    croissant.json, readable by DuckDB, pandas and Hugging Face datasets."""
    from catalogue.db.engine import get_engine
    from catalogue.db.migrate import ensure_current
    from catalogue.share.export import ExportOptions, export_catalogue
    from catalogue.share.read import Selection

    engine = get_engine()
    ensure_current(engine)
    options = ExportOptions(
        selection=Selection(models=tuple(model), runs=tuple(run)),
        images=images,
        images_per_unit=images_per_unit,
        overwrite=overwrite,
    )
    with console.status("exporting …") as status:
        result = export_catalogue(
            engine,
            out,
            options,
            lambda table, rows: status.update(f"exporting {table}: {rows:,} rows"),
        )
    rows = result.rows
    console.print(
        f"exported {rows['model']} models, {rows['run']} runs, {rows['unit_metrics']:,} unit "
        f"scores, {result.n_images:,} images to {result.path} ({_size(result.bytes)}, "
        f"{result.seconds:.1f} s).",
        highlight=False,
    )


def import_(
    dump: Path = typer.Argument(..., help="A folder that `unitcat export` wrote."),
    rename: list[str] = typer.Option(
        [], "--rename", help="OLD=NEW: import the dump's model OLD as NEW (repeat for more)."
    ),
    rename_dataset: list[str] = typer.Option(
        [], "--rename-dataset", help="OLD=NEW: import the dump's dataset OLD as NEW."
    ),
    rename_study: list[str] = typer.Option(
        [], "--rename-study", help="OLD=NEW: import the dump's 2-AFC study OLD as NEW."
    ),
) -> None:
    """Merge a dump into this catalogue: every check before writing, then all of it in one
    transaction; what the catalogue has already is kept (importing again changes nothing)."""
    from catalogue.db.engine import get_engine
    from catalogue.db.migrate import ensure_current
    from catalogue.share.importer import ImportOptions, import_dump

    options = ImportOptions(
        rename=_pairs(rename, "--rename"),
        rename_datasets=_pairs(rename_dataset, "--rename-dataset"),
        rename_studies=_pairs(rename_study, "--rename-study"),
    )
    engine = get_engine()
    ensure_current(engine)
    with console.status("importing …") as status:
        result = import_dump(
            engine,
            dump,
            options,
            lambda table, rows: status.update(f"importing {table}: {rows:,} rows"),
        )
    if not result.changed:
        console.print(
            f"nothing new in {dump}: the catalogue has its {len(result.runs_present)} runs "
            f"already ({result.seconds:.1f} s).",
            highlight=False,
        )
        return
    merged = (
        f" (merged with the catalogue's {', '.join(result.models.present)})"
        if result.models.present
        else ""
    )
    console.print(
        f"imported {len(result.runs_new)} runs ({len(result.runs_present)} the catalogue had, "
        f"{len(result.runs_replaced)} it had not finished), {len(result.models.new)} new models"
        f"{merged}, {result.rows.get('unit_metrics', 0):,} unit scores, "
        f"{result.rows.get('rating', 0):,} ratings, "
        f"{result.rows.get('twoafc_response', 0):,} 2-AFC answers, {result.images:,} images from {dump} "
        f"({result.seconds:.1f} s).",
        highlight=False,
    )
