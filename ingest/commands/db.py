"""`unitcat db …`: the database server and the schema."""

from __future__ import annotations

import typer

from catalogue.config import get_settings
from catalogue.db import migrate, server
from catalogue.db.engine import database_url, get_engine, redacted
from ingest.console import console

app = typer.Typer(help="Start, stop and migrate the catalogue database.", no_args_is_help=True)


@app.command()
def start() -> None:
    """Start the embedded PostgreSQL server (or check DATABASE_URL's server) and print its URL."""
    url = database_url()
    get_engine(url)
    console.print(f"database ready: {redacted(url)}")


@app.command()
def stop() -> None:
    """Stop the embedded PostgreSQL server."""
    settings = get_settings()
    if settings.database_url:
        console.print("DATABASE_URL is set: unitcat does not manage that server.")
        raise typer.Exit(1)
    was_running = server.stop(settings.postgres_dir)
    console.print("stopped." if was_running else "the embedded server was not running.")


@app.command()
def status() -> None:
    """Say which database is used, whether it answers, and its schema revision."""
    settings = get_settings()
    if settings.database_url:
        console.print(f"server: DATABASE_URL = {redacted(settings.database_url)}")
        engine = get_engine(settings.database_url)
    else:
        st = server.status(settings.postgres_dir)
        state = "running" if st.running else ("stopped" if st.initialised else "not created")
        console.print(f"server: embedded PostgreSQL in {st.data_dir} ({state}, pid {st.pid})")
        if not st.running:
            raise typer.Exit(1)
        engine = get_engine(database_url(settings, start_embedded=False))
    current = migrate.current_revision(engine)
    head = migrate.head_revision()
    note = "up to date" if current == head else "run `unitcat db upgrade`"
    console.print(f"schema: revision {current or 'none'} (code expects {head}: {note})")


@app.command()
def url() -> None:
    """Print the database URL (starting the embedded server if needed), e.g. for psql or pandas."""
    typer.echo(database_url())


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply the Alembic migrations up to REVISION (default: the newest)."""
    engine = get_engine()
    migrate.upgrade(engine, revision)
    console.print(f"schema at revision {migrate.current_revision(engine)}.")


@app.command()
def downgrade(
    revision: str = typer.Argument(..., help="Target revision, e.g. base or -1."),
) -> None:
    """Revert the Alembic migrations down to REVISION."""
    engine = get_engine()
    migrate.downgrade(engine, revision)
    console.print(f"schema at revision {migrate.current_revision(engine) or 'base (empty)'}.")
