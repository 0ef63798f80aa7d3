"""Exceptions for bad input and unusable environments.

Every error a user can cause derives from `UnitcatError` and carries a one-line
message that says what is wrong and what to do; the CLI prints that line and
exits non-zero instead of showing a traceback.

The library speaks Python: a message names the argument of the function that
was called (``batch_size must be at least 1, got 0.``) and says what to do in
words, never with a command-line flag or command, so that it reads right in a
notebook too. The error also carries that argument's name (``argument``) and,
where a command does what the message says to do, the command-line words for
it (``fix``: the message's words; ``command``: the CLI's); the CLI writes the
argument as its flag and puts the command in place of the fix when it prints
the line (`ingest.options.cli_message`).
"""

from __future__ import annotations


class UnitcatError(Exception):
    """Base class for errors that the CLI reports as one clear line.

    ``argument``: the Python name of the argument the message is about, as the message
    writes it (``batch_size``, ``curves.classes``). ``fix``: the words of the message
    that say what to do (``run the same extraction again``); ``command``: what the
    command line says instead (``re-run the same `unitcat ingest extract` command``),
    added in parentheses when there is no ``fix``.
    """

    exit_code: int = 2

    def __init__(
        self,
        message: str = "",
        *,
        argument: str | None = None,
        fix: str | None = None,
        command: str | None = None,
    ) -> None:
        super().__init__(message)
        self.argument = argument
        self.fix = fix
        self.command = command


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
