"""Commands that are imported when they run, so that a command loads only what it needs.

The computing commands (extract, score, dissect …) import torch, torchvision and
h5py, which take seconds and most of a gigabyte to load; `unitcat query`, `runs`,
`db …` and `--help` need none of it. A `LazyGroup` knows its commands by name,
the "module:attribute" that defines each and the one line that `--help` lists
for it; it imports a command's module only when that command is looked up to
run (or to show its own `--help`). Listing a group's commands shows the
registered lines without importing anything.

A target is a Typer app (a command group, e.g. `unitcat db`), a module's
`register(app)` function (the module adds its commands to `app`), or a command
function.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any, ClassVar

import click
import typer
from typer.core import TyperGroup


@dataclass(frozen=True)
class LazyCommand:
    """Where a command is defined and the line `--help` lists for it (its docstring's first
    paragraph: tests/test_cli_light.py checks that the two agree)."""

    target: str
    help: str
    context_settings: Mapping[str, Any] = field(default_factory=dict)

    def load(self, name: str) -> click.Command:
        """Import the target and build its Click command, named `name`."""
        module_name, _, attribute = self.target.partition(":")
        found = getattr(importlib.import_module(module_name), attribute)
        if isinstance(found, typer.Typer):
            command: click.Command = typer.main.get_group(found)
        else:
            holder = typer.Typer()
            if attribute == "register":
                found(holder)
            else:
                holder.command(name, context_settings=dict(self.context_settings))(found)
            command = typer.main.get_group(holder).commands[name]
        command.name = name
        return command


class LazyGroup(TyperGroup):
    """A Typer group whose commands in `lazy` are imported on first use (`with_commands`)."""

    lazy: ClassVar[Mapping[str, LazyCommand]] = {}

    @classmethod
    def with_commands(cls, commands: Mapping[str, LazyCommand]) -> type[LazyGroup]:
        """A subclass that knows `commands` (Typer builds its groups from a class)."""
        return type(cls.__name__, (cls,), {"lazy": dict(commands)})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = [n for n in super().list_commands(ctx) if n not in self.lazy]
        return [*self.lazy, *eager]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        entry = self.lazy.get(cmd_name)
        if command is not None or entry is None:
            return command
        if self._listing:  # a stand-in that carries the listed line; never run
            return click.Command(cmd_name, help=entry.help, short_help=entry.help)
        command = entry.load(cmd_name)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Click's, with "did you mean" drawn from every command, loaded or not."""
        name = args[0]
        command = self.get_command(ctx, name)
        if command is None and not ctx.resilient_parsing:
            if name.startswith("-"):
                self.parse_args(ctx, args)
            message = f"No such command {name!r}."
            matches = get_close_matches(name, self.list_commands(ctx))
            if matches:
                message = f"{message[:-1]}. Did you mean {', '.join(map(repr, matches))}?"
            ctx.fail(message)
        return (name if command else None), command, args[1:]
