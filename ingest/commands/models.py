"""`unitcat ingest layers` and `unitcat ingest train-demo`: model commands that need no database."""

from __future__ import annotations

from pathlib import Path

import typer

from ingest.console import console, progress
from ingest.options import NumClasses, Weights, WeightsFile
from ingest.output import print_table


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``ingest`` group."""
    app.command("layers")(layers)
    app.command("train-demo")(train_demo)


def layers(
    model: str = typer.Argument(
        ...,
        help="torchvision model name (alexnet, vgg16, resnet18 …), demo[:dataset], or a model file.",
    ),
    weights: Weights = None,
    weights_file: WeightsFile = None,
    num_classes: NumClasses = None,
    input_size: int | None = typer.Option(
        None, "--input-size", help="Square input side (default: the model's)."
    ),
) -> None:
    """List a model's layers (feature-extraction node names) with output shape and unit count."""
    from rich.table import Table

    from catalogue.models import default_layers, list_layers, load_model

    info = load_model(
        model,
        weights=weights,
        weights_file=weights_file,
        num_classes=num_classes,
        input_size=input_size,
    )
    infos = list_layers(info)
    chosen = set(default_layers(info, infos))
    table = Table(
        "#",
        "layer",
        "kind",
        "output shape",
        "units",
        "default",
        title=f"{info.name} ({info.weights})",
    )
    for layer in infos:
        table.add_row(
            str(layer.position),
            layer.name,
            layer.kind,
            " × ".join(str(s) for s in layer.output_shape),
            f"{layer.n_units:,}",
            "✓" if layer.name in chosen else "",
        )
    print_table(table)
    console.print(
        f"input {info.input_size[0]} × {info.input_size[1]}, {info.n_outputs} outputs, "
        f"weights checksum {info.checksum[:16]}; ✓ = extracted when no --layer is given.",
        highlight=False,
    )


def train_demo(
    dataset: str = typer.Option(
        "digits",
        "--dataset",
        help="digits (seconds), fashion-mnist or fashion-mnist-colours (100 classes; minutes).",
    ),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        help="Training epochs (default: digits 8, fashion-mnist and fashion-mnist-colours 2).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for initialisation and batch order."),
    threads: int = typer.Option(
        1, "--threads", help="CPU threads for training (0: torch's default)."
    ),
    fashion_mnist_dir: Path | None = typer.Option(
        None,
        "--fashion-mnist-dir",
        help="Folder with the Fashion-MNIST idx files (default: Debian's).",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Checkpoint file (default: $UNITCAT_HOME/checkpoints/demo-<dataset>.pt, which "
        "--model demo:<dataset> loads).",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace an existing checkpoint (runs extracted with it can then no longer load "
        "their model by themselves).",
    ),
) -> None:
    """Train the small AlexNet-shaped demo CNN on the CPU and save its checkpoint."""
    from catalogue.models import demo_cnn

    path = out if out is not None else demo_cnn.checkpoint_path(dataset)
    if path.exists() and not overwrite:
        from catalogue.errors import InputError

        raise InputError(
            f"the checkpoint {path} exists, and the runs extracted with it load their model "
            "from it to be ablated or given baselines; keep it and train into another file "
            "with --out FILE, or replace it with --overwrite."
        )
    with progress() as bar:
        task = bar.add_task(f"training demo CNN on {dataset}", total=None, rate="")

        def report(step: int, total: int, info: dict[str, float]) -> None:
            bar.update(
                task,
                completed=step,
                total=total,
                rate=f"epoch {info['epoch']:.0f} loss {info['loss']:.3f}",
            )

        result = demo_cnn.train_demo(
            dataset,
            epochs=epochs,
            seed=seed,
            threads=threads,
            out_path=out,
            fashion_mnist_dir=fashion_mnist_dir,
            on_progress=report,
        )
    console.print(
        f"test accuracy [bold]{result.test_accuracy:.1%}[/] on {result.n_test:,} {dataset} test images "
        f"after {result.epochs} epoch(s) on {result.n_train:,} ({result.seconds:.0f} s)",
        highlight=False,
    )
    use = f"--model demo:{dataset}" if out is None else f"--model {result.checkpoint}"
    console.print(f"checkpoint: {result.checkpoint}  (use it as: {use})", highlight=False)
