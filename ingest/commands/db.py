"""`unitcat db …`: the database server and the schema."""

from __future__ import annotations

import sys

import typer

from catalogue.config import get_settings
from catalogue.db import migrate, server
from catalogue.db import roles as db_roles
from catalogue.db.engine import database_url, get_engine, reader_database_url, redacted
from ingest.console import console, fail

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
def url(
    reader: bool = typer.Option(
        False, "--reader", help="The SELECT-only reader's URL (what user SQL connects with)."
    ),
) -> None:
    """Print the database URL (starting the embedded server if needed), e.g. for psql or pandas."""
    typer.echo(reader_database_url() if reader else database_url())


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply the Alembic migrations up to REVISION (default: the newest)."""
    engine = get_engine()
    migrate.upgrade(engine, revision)
    console.print(f"schema at revision {migrate.current_revision(engine)}.")


@app.command(context_settings={"ignore_unknown_options": True})
def downgrade(
    revision: str = typer.Argument(..., help="Target revision, e.g. base or -1."),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Drop tables and columns that hold data without asking."
    ),
) -> None:
    """Revert the Alembic migrations down to REVISION.

    A downgrade that drops tables or columns says what (with their row counts)
    and asks first; without a terminal it needs --yes.
    """
    engine = get_engine()
    drops = migrate.downgrade_drops(engine, revision)
    if drops:
        what = f"downgrading to {revision} drops {drops.describe()}"
        if yes:
            console.print(f"{what}.", highlight=False)
        elif not sys.stdin.isatty():
            fail(f"refused: {what}. Add --yes to drop them.", 2)
        else:
            console.print(f"[bold]{what}.[/]", highlight=False)
            if not typer.confirm("Drop them?", default=False):
                fail("nothing was dropped.", 1)
    migrate.downgrade_catalogue(engine, revision)
    console.print(f"schema at revision {migrate.current_revision(engine) or 'base (empty)'}.")


@app.command()
def roles(
    print_sql: bool = typer.Option(
        False, "--print", help="Print the SQL for an administrator instead of running it."
    ),
    owner: str = typer.Option(db_roles.OWNER_ROLE, help="The owner role (ingest, migrations)."),
    reader: str = typer.Option(
        db_roles.READER_ROLE, help="The SELECT-only reader role (user SQL)."
    ),
) -> None:
    """Create the catalogue's owner and reader roles (the embedded server has them already).

    On a DATABASE_URL server this runs as DATABASE_URL's user, which must be a
    superuser; afterwards ingest connects as the owner and user SQL as the reader.
    """
    names = db_roles.Roles(owner=owner, reader=reader)
    if print_sql:
        typer.echo(db_roles.setup_sql(names), nl=False)
        return
    settings = get_settings()
    if not settings.database_url:
        if (owner, reader) != (db_roles.OWNER_ROLE, db_roles.READER_ROLE):
            fail(
                "the embedded server's roles are unitcat_owner and unitcat_reader; drop --owner/--reader."
            )
        server.start(settings.postgres_dir)
        socket_dir = server.status(settings.postgres_dir).socket_dir
        assert socket_dir is not None
        server.bootstrap(socket_dir, force=True)
        console.print(
            "embedded server: roles unitcat_owner (ingest) and unitcat_reader (user SQL) ready."
        )
        return
    db_roles.apply(get_engine(settings.database_url), names)
    owner_url = redacted(db_roles.url_as(settings.database_url, owner))
    console.print(
        f"roles {owner} (owner: ingest, migrations) and {reader} (user SQL, SELECT only) ready "
        f"in database {get_engine(settings.database_url).url.database}.\n"
        f"Ingest as the owner: DATABASE_URL={owner_url}\n"
        f"User SQL connects as {reader} on the same server; if the server asks for passwords, "
        f"set them (ALTER ROLE … PASSWORD) and put the reader's in ~/.pgpass or UNITCAT_READER_URL.",
        highlight=False,
    )
