"""Settings in one place: where the data lives, which database, which device.

Values come from the environment so that the CLI, the UI, the tests and the
benchmarks agree without passing flags around:

- ``DATABASE_URL``: a ``postgresql+psycopg://`` URL. Unset means the embedded
  PostgreSQL server kept under ``$UNITCAT_HOME/postgres``.
- ``UNITCAT_HOME``: data directory (default ``~/.local/share/unitcat``) holding
  the embedded database, activation files, checkpoints and artifacts.
- ``UNITCAT_DEVICE``: ``auto`` (default), ``cpu`` or ``cuda``.
- ``UNITCAT_READER_URL`` (optional, with DATABASE_URL): how user SQL connects as
  the reader role when DATABASE_URL's URL with the user ``unitcat_reader`` is not
  enough (a password, another role name). It must name DATABASE_URL's server and
  database: DATABASE_URL stays the one setting that selects a server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from catalogue.errors import ConfigError

DEFAULT_HOME = Path("~/.local/share/unitcat")
DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    device: str
    reader_url: str | None = None

    @property
    def postgres_dir(self) -> Path:
        return self.home / "postgres"

    @property
    def runs_dir(self) -> Path:
        """Where extraction runs write their HDF5 activation files."""
        return self.home / "runs"

    @property
    def checkpoints_dir(self) -> Path:
        return self.home / "checkpoints"

    @property
    def artifacts_dir(self) -> Path:
        """AM panels and other images the UI shows."""
        return self.home / "artifacts"

    @property
    def probes_dir(self) -> Path:
        return self.home / "probes"


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; called where needed)."""
    home = Path(os.environ.get("UNITCAT_HOME") or DEFAULT_HOME).expanduser().resolve()
    url = os.environ.get("DATABASE_URL") or None
    if url is not None:
        url = normalise_database_url(url)
    device = (os.environ.get("UNITCAT_DEVICE") or "auto").lower()
    if device not in DEVICE_CHOICES:
        raise ConfigError(
            f"UNITCAT_DEVICE={device!r} is not one of {', '.join(DEVICE_CHOICES)}; "
            "set it to auto, cpu or cuda."
        )
    reader = os.environ.get("UNITCAT_READER_URL") or None
    if reader is not None:
        reader = _reader_url(reader, url)
    return Settings(home=home, database_url=url, device=device, reader_url=reader)


def _reader_url(reader: str, database_url: str | None) -> str:
    if database_url is None:
        raise ConfigError(
            "UNITCAT_READER_URL is set but DATABASE_URL is not; set DATABASE_URL to the "
            "catalogue's server (or unset UNITCAT_READER_URL to use the embedded server)."
        )
    reader = normalise_database_url(reader)
    try:
        same = same_database(reader, database_url)
    except (ValueError, ArgumentError) as exc:
        raise ConfigError(f"UNITCAT_READER_URL is not a valid URL ({exc}); fix it.") from None
    if not same:
        raise ConfigError(
            "UNITCAT_READER_URL must name DATABASE_URL's server and database (only its user "
            "and password may differ); fix one of the two."
        )
    return reader


def same_database(a: str, b: str) -> bool:
    """Whether two URLs name the same server and database (they may differ in user and password)."""
    ua, ub = make_url(a), make_url(b)
    return (ua.host, ua.port, ua.database, dict(ua.query)) == (
        ub.host,
        ub.port,
        ub.database,
        dict(ub.query),
    )


def normalise_database_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` URLs and use the psycopg 3 driver; a URL
    that does not parse is a ConfigError (which never repeats the URL: it may hold a password)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return _parsed("postgresql+psycopg://" + url[len(prefix) :])
    if url.startswith("postgresql+psycopg://"):
        return _parsed(url)
    raise ConfigError(
        f"DATABASE_URL must be a PostgreSQL URL (postgresql+psycopg://user@host/db), got {url.split(':')[0]}://…"
    )


def _parsed(url: str) -> str:
    try:
        parsed = make_url(url)
        _ = parsed.port  # parsed lazily: a bad port or an unclosed [IPv6 address] fails here
    except (ValueError, ArgumentError) as exc:
        raise ConfigError(
            f"DATABASE_URL is not a valid database URL ({exc.__class__.__name__}); write it as "
            "postgresql://user:password@host:5432/database (an IPv6 host in brackets: [::1])."
        ) from exc
    return url


def resolve_device(requested: str | None = None, *, here: bool = True) -> str:
    """Map ``auto``/``cpu``/``cuda`` to the torch device string to use.

    With ``here=False`` (work that runs on a Ray cluster's workers) the choice is only
    checked and returned as it is: each worker resolves it on its own machine
    (`catalogue.cluster.Cluster.uses_gpus`), not by this machine's GPUs."""
    choice = (requested or get_settings().device).lower()
    if choice not in DEVICE_CHOICES:
        raise ConfigError(
            f"device {choice!r} is not one of {', '.join(DEVICE_CHOICES)}.", argument="device"
        )
    if not here:
        return choice
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device cuda was asked for, but no CUDA GPU is visible; use cpu or auto.",
            argument="device",
        )
    return choice
