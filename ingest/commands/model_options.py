"""Options every command that loads a model shares: the seed of random weights and a name.

Random weights are seeded (default 0) and the model is named by its seed
(``resnet18@random-seed0``), so that ``--weights none`` means the same network
in every command. ``--name`` registers (or finds) the model under another name,
for two networks that would otherwise share one (the catalogue refuses a name
that already stands for other weights, and points here).
"""

from __future__ import annotations

from typing import Any

import typer


def weights_seed_option() -> Any:
    return typer.Option(
        0,
        "--weights-seed",
        help="Seed of random weights (--weights none); the model is named <model>@random-seed<N>.",
    )


def name_option(what: str = "the model") -> Any:
    return typer.Option(
        None,
        "--name",
        help=f"Catalogue name of {what} (default: its own, e.g. alexnet, resnet18@random-seed0).",
    )
