"""Exceptions for bad input and unusable environments.

Every error a user can cause derives from `UnitcatError` and carries a one-line
message that says what is wrong and what to do; the CLI prints that line and
exits non-zero instead of showing a traceback.
"""

from __future__ import annotations


class UnitcatError(Exception):
    """Base class for errors that the CLI reports as one clear line."""

    exit_code: int = 2


class ConfigError(UnitcatError):
    """A setting (environment variable, path, option) is unusable."""


class DatabaseUnavailable(UnitcatError):
    """The database server cannot be reached or started."""

    exit_code = 3


class SchemaOutOfDate(UnitcatError):
    """The database schema is not at the revision this code expects."""

    exit_code = 3


class InputError(UnitcatError):
    """User-supplied data (images, labels, activations, files) is invalid."""


class NotFound(UnitcatError):
    """A named model, layer, dataset, run or unit does not exist."""


class ReadOnlyViolation(UnitcatError):
    """A statement given to the read-only query console tried to write."""


class ConsoleBusy(UnitcatError):
    """Every connection the query console may use is running a query; try again soon."""

    exit_code = 5


class RunLost(UnitcatError):
    """A run's own database session ended before its results were written (the server
    stopped or restarted, the connection dropped): nothing was written."""

    exit_code = 3


class DiskFull(UnitcatError):
    """A file system has no room for what a command must write next."""

    exit_code = 4


class ClusterError(UnitcatError):
    """The Ray cluster cannot be reached, or its workers failed past their retries."""

    exit_code = 6
