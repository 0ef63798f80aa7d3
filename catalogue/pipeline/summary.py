"""How a multi-step pipeline shows its progress; what it reports at the end is
`catalogue.query.report`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

Progress = Callable[[int, int], None]


class Reporter(Protocol):
    """How a multi-step pipeline shows its progress (the CLI draws rich progress bars)."""

    def step(self, title: str) -> AbstractContextManager[Progress]: ...

    def note(self, message: str) -> None: ...
