"""What the commands share: option declarations, model loading, and flags for the library's words.

A command parses its options, calls one library function and reports. The
options several commands take are declared here once (``Annotated`` types, so
a command's signature names each in one line); the model options load a model
in one place (`load_model`); the catalogue is opened in one place
(`open_catalogue`).

The library names the arguments of its functions in its messages
(``batch_size must be at least 1, got 0.``) and carries the argument's name on
the error (`catalogue.errors.UnitcatError.argument`); `cli_message` writes it as
the command's flag (``--batch-size must be at least 1, got 0.``) and puts the
command that does what the message says in place of the library's words for it
(``fix`` → ``command``).

This module is imported by every command module when the CLI starts, so it
imports only typer and the standard library; torch, the database and the
pipelines are imported inside the functions that need them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from catalogue.models import ModelInfo

# ------------------------------------------------------------------ the library's words as flags

#: arguments of the library whose flag is not ``--`` + the name with dashes
FLAGS = {
    "n_images": "--images",
    "out_path": "--out",
    "probe_dir": "--probe",
    "layer_names": "--layers",
    "curves.max_k": "--curve-max-k",
    "curves.classes": "--curve-classes",
    "curves.rankings": "--curve-rankings",
}


def flag(argument: str) -> str:
    """The command-line flag of a library argument: ``batch_size`` → ``--batch-size``."""
    return FLAGS.get(argument) or "--" + argument.replace("_", "-").replace(".", "-")


def cli_message(exc: BaseException, message: str | None = None) -> str:
    """The error's one line as the CLI prints it: the argument it names written as its flag
    (its first mention), and the command-line words for what to do in place of the
    library's (`catalogue.errors.UnitcatError`)."""
    text = str(exc) if message is None else message
    argument = getattr(exc, "argument", None)
    if argument:
        mention = re.compile(rf"(?<![\w./-]){re.escape(argument)}(?![\w/])")
        text = mention.sub(flag(argument), text, count=1)
    fix, command = getattr(exc, "fix", None), getattr(exc, "command", None)
    if command and fix and fix in text:
        text = text.replace(fix, command, 1)
    elif command:
        text = f"{text.rstrip().rstrip('.')} ({command})."
    return text


# ------------------------------------------------------------------------- shared options

CLUSTER_HELP = (
    "Run on Ray: local:N (a Ray instance with N CPUs on this machine, for this command), "
    "auto (the cluster this machine joined with `ray start`), or the head's ADDRESS. "
    "Default: one process."
)
MODEL_PANEL = "Model"

ClusterSpec = Annotated[
    str | None, typer.Option("--cluster", help=CLUSTER_HELP, metavar="local:N|auto|ADDRESS")
]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")]
Workers = Annotated[int, typer.Option("--workers", help="Image-decoding worker processes.")]
DatasetSpec = Annotated[
    str,
    typer.Option(
        "--dataset",
        help="digits[:split], fashion-mnist[:split], or an image folder (one folder per class).",
    ),
]
RunDataset = Annotated[
    str | None,
    typer.Option(
        "--dataset", help="The run's images, when they cannot be found again by its dataset name."
    ),
]

ModelSpec = Annotated[
    str,
    typer.Option(
        "--model",
        help="torchvision name (alexnet …), demo[:dataset], or a model file.",
        rich_help_panel=MODEL_PANEL,
    ),
]
RunModel = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="The run's model, when it cannot be loaded again from the catalogue (a weights "
        "file, a checkpoint elsewhere, a TorchScript file).",
        rich_help_panel=MODEL_PANEL,
    ),
]
Weights = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="none (random), DEFAULT, or a weights enum name (the extraction's, for a model "
        "in the catalogue).",
        rich_help_panel=MODEL_PANEL,
    ),
]
WeightsFile = Annotated[
    Path | None,
    typer.Option(
        "--weights-file",
        help="Weights file instead of the torch hub cache.",
        rich_help_panel=MODEL_PANEL,
    ),
]
NumClasses = Annotated[
    int | None,
    typer.Option(
        "--num-classes",
        help="Output classes of a random or file model.",
        rich_help_panel=MODEL_PANEL,
    ),
]
WeightsSeed = Annotated[
    int,
    typer.Option(
        "--weights-seed",
        help="Seed of random weights (--weights none); the model is named <model>@random-seed<N>.",
        rich_help_panel=MODEL_PANEL,
    ),
]
Name = Annotated[
    str | None,
    typer.Option(
        "--name",
        help="Catalogue name of the model (default: its own, e.g. alexnet, resnet18@random-seed0).",
        rich_help_panel=MODEL_PANEL,
    ),
]


def load_model(
    model: str,
    *,
    weights: str | None = None,
    weights_file: Path | None = None,
    num_classes: int | None = None,
    seed: int = 0,
    name: str | None = None,
) -> ModelInfo:
    """The model the model options name (`catalogue.models.load_model`).

    Random weights are seeded (default 0) and the model is named by its seed
    (``resnet18@random-seed0``), so that ``--weights none`` means the same network in
    every command; ``--name`` registers (or finds) the model under another name."""
    from catalogue.models import load_model as load

    return load(
        model,
        weights=weights,
        weights_file=weights_file,
        num_classes=num_classes,
        seed=seed,
        name=name,
    )


def open_catalogue() -> Engine:
    """The catalogue's engine, its schema checked to be current (one line if it is not)."""
    from catalogue.db.engine import get_engine
    from catalogue.db.migrate import ensure_current

    engine = get_engine()
    ensure_current(engine)
    return engine


def split_names(text: str | None) -> list[str] | None:
    """``"conv5, fc6"`` → ``["conv5", "fc6"]``; nothing → None."""
    if not text:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_classes(text: str | None) -> list[int] | None:
    """``all`` (or nothing) → None; ``0,3,7`` or ``0-9`` → class indices."""
    from catalogue.errors import InputError

    if text is None or text.strip().lower() in ("", "all"):
        return None
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise InputError(
                f"--curve-classes takes class indices like 0,3,7 or 0-9, not {text!r}."
            )
        out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    return out
