"""The newcomer's path: a real catalogue built offline from data on this machine.

`make demo` (`unitcat demo`) trains the demo CNN (an AlexNet-shaped network,
`catalogue.models.demo_cnn`) on Fashion-MNIST in ten colours (100 classes,
`catalogue.data.fashion_colours`) — or on scikit-learn's digits where Debian's
`dataset-fashion-mnist` is missing — extracts its conv and fully connected
layers over the images it was trained on, scores every unit with every measure
over the correctly classified ones, builds a probe set and dissects the conv
layers, makes AM panels for a handful of units, ablates a conv and an fc layer
and runs the chance and random-weights baselines
(`catalogue.pipeline.demo_importance`), and reports the disagreement between
the measures. Every step reuses what an earlier run finished, so a
second `make demo` takes seconds.

Why the training images: the paper ran all ~1.3 M ILSVRC training images
through AlexNet and scored the 721,536 it classified correctly — about 700 per
class, so the top 60 of a unit is a small slice of any one class. The demo's
60,000 training images give 600 per class in the same way; its 10,000 test
images (100 per class) would make the top 60 most of a class. The held-out
split stays available: the checkpoint records the test accuracy, and
``DemoPlan(split="test")`` (``unitcat demo --split test``) scores it instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from sqlalchemy import Engine

from catalogue.cluster import Cluster
from catalogue.data import FASHION_MNIST_DIR, resolve_dataset
from catalogue.db.results import have_panels
from catalogue.errors import ConfigError
from catalogue.models import ModelInfo, demo_cnn, load_model
from catalogue.pipeline.am import am_into_catalogue
from catalogue.pipeline.defaults import AM_MAX_IMAGES
from catalogue.pipeline.demo_importance import run_importance_steps
from catalogue.pipeline.dissect import build_probe, dissect_into_catalogue
from catalogue.pipeline.extract import extract_into_catalogue
from catalogue.pipeline.scoring import score_extraction
from catalogue.pipeline.summary import Progress, Reporter
from catalogue.pipeline.twoafc.demo import build_demo_study
from catalogue.query.report import RunReport, run_report

DEMO_LAYERS = ("conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
DISSECT_LAYERS = ("conv3", "conv4", "conv5")
#: A handful of units for AM panels: the first units of the top conv layer and the outputs.
AM_UNITS = {"conv5": (0, 1, 2), "fc8": (0, 1, 2)}


#: The demo data set for each demo CNN; the probe set is built from its plain items.
PROBE_SOURCE = {"fashion-mnist-colours": "fashion-mnist"}
SPLITS = ("train", "test")


@dataclass(frozen=True)
class DemoPlan:
    """What the demo builds. ``threads``: torch CPU threads for every step. One, because
    this network is too small to gain from a second thread and on a shared machine
    OpenMP's waiting makes two far slower: measured at load 8 on the 2-core box, one
    thread extracted 6,000 images in 13 s (4.3 s CPU) against 39 s (15 s CPU) with two,
    and 16 AM steps of three conv5 units took 9.5 s against 26 s."""

    dataset: str
    split: str = "train"
    threads: int = 1
    probe_images: int = 300
    probe_size: int = 64
    am_images: int = AM_MAX_IMAGES
    am_steps: int = 128
    ablate_images: int = 1000
    chance_repeats: int = 10

    @property
    def model_spec(self) -> str:
        return f"demo:{self.dataset}"


def choose_dataset(requested: str = "auto") -> str:
    """Fashion-MNIST in colours when its files are installed, scikit-learn's digits otherwise."""
    if requested != "auto":
        if requested not in demo_cnn.DEMO_DATASETS:
            raise ConfigError(
                f"the demo runs on {' or '.join(demo_cnn.DEMO_DATASETS)}, not {requested!r}."
            )
        return requested
    installed = (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file()
    return "fashion-mnist-colours" if installed else "digits"


def trained_model(plan: DemoPlan, on_progress: Progress | None = None) -> tuple[ModelInfo, bool]:
    """The demo CNN for the plan's dataset, trained now unless a checkpoint exists."""
    path = demo_cnn.checkpoint_path(plan.dataset)
    trained = False
    if not path.is_file():
        demo_cnn.train_demo(
            plan.dataset,
            on_progress=(lambda step, total, _info: on_progress(step, total))
            if on_progress
            else None,
        )
        trained = True
    return load_model(plan.model_spec), trained


def run_demo(
    engine: Engine, plan: DemoPlan, reporter: Reporter, cluster: Cluster | None = None
) -> RunReport:
    """Build (or reuse) the whole demo catalogue and return its report.

    With `cluster`, extraction, scoring, dissection and ablation run on Ray
    (`catalogue.cluster`); the catalogue is the same.
    """
    if plan.split not in SPLITS:
        raise ConfigError(f"the demo scores the train or test split, not {plan.split!r}.")
    if plan.threads < 1:
        raise ConfigError(f"the demo needs at least one CPU thread, not {plan.threads}.")
    previous = torch.get_num_threads()
    torch.set_num_threads(plan.threads)
    try:
        return _run_demo(engine, plan, reporter, cluster)
    finally:
        torch.set_num_threads(previous)


def _run_demo(
    engine: Engine, plan: DemoPlan, reporter: Reporter, cluster: Cluster | None
) -> RunReport:
    with reporter.step(f"train the demo CNN on {plan.dataset}") as progress:
        model, trained = trained_model(plan, progress)
    accuracy = model.extra.get("test_accuracy")
    reporter.note(
        f"{'trained' if trained else 'reusing'} {model.name}"
        + (f" (test accuracy {accuracy:.1%})" if accuracy is not None else "")
    )
    extract_run, n_units = _extract(engine, plan, model, reporter, cluster)
    score_run = _score(engine, extract_run, n_units, reporter, cluster)
    _dissect(engine, plan, model, reporter, cluster)
    _am_panels(engine, plan, model, reporter)
    run_importance_steps(
        engine,
        model,
        extract_run,
        score_run,
        reporter,
        ablate_images=plan.ablate_images,
        chance_repeats=plan.chance_repeats,
        cluster=cluster,
    )
    build_demo_study(engine, score_run, reporter)  # trials only: no simulated answers
    return run_report(engine, model.name, score_run)


def _extract(
    engine: Engine, plan: DemoPlan, model: ModelInfo, reporter: Reporter, cluster: Cluster | None
) -> tuple[int, int]:
    """The demo layers over the plan's split; the run and its number of units."""

    data = resolve_dataset(f"{plan.dataset}:{plan.split}", transform=model.transform)
    title = f"extract {', '.join(DEMO_LAYERS)} over {len(data):,} {plan.split} images"
    with reporter.step(title) as progress:
        extracted = extract_into_catalogue(
            engine, model, data, list(DEMO_LAYERS), on_progress=progress, cluster=cluster
        )
    reporter.note(
        f"run {extracted.run_id}: {extracted.summary.n_images:,} {plan.split} images, "
        f"accuracy {extracted.summary.accuracy:.1%}"
    )
    return extracted.run_id, sum(model_layer_units(extracted))


def _score(
    engine: Engine, extract_run: int, n_units: int, reporter: Reporter, cluster: Cluster | None
) -> int:
    """Every unit with every measure over the correctly classified images."""

    title = "score every unit with every measure (correctly classified images)"
    with reporter.step(title) as progress:
        done_before: dict[str, int] = {}

        def score_progress(layer: str, done: int, _total: int) -> None:
            done_before[layer] = done
            progress(sum(done_before.values()), n_units)

        scored = score_extraction(
            engine, extract_run, on_progress=score_progress, reuse=True, cluster=cluster
        )
    reporter.note(
        f"run {scored.run_id}: {sum(scored.layers.values()):,} units over {scored.n_images:,} images"
        + (" (reused)" if scored.reused else "")
    )
    return scored.run_id


def _dissect(
    engine: Engine, plan: DemoPlan, model: ModelInfo, reporter: Reporter, cluster: Cluster | None
) -> None:
    """A probe set of the demo's objects, and the conv layers dissected on it."""

    with reporter.step(f"build a probe set of {plan.probe_images} scenes") as progress:
        probe = build_probe(
            PROBE_SOURCE.get(plan.dataset, plan.dataset),
            n_images=plan.probe_images,
            image_size=plan.probe_size,
        )
        progress(1, 1)
    with reporter.step(f"dissect {', '.join(DISSECT_LAYERS)}") as progress:
        dissected = dissect_into_catalogue(
            engine,
            model,
            probe.directory,
            list(DISSECT_LAYERS),
            on_progress=progress,
            reuse=True,
            cluster=cluster,
        )
    reporter.note(f"run {dissected.run_id}: probe set {probe.directory}")


def _am_panels(engine: Engine, plan: DemoPlan, model: ModelInfo, reporter: Reporter) -> None:
    """AM panels for a handful of units (kept when they exist)."""

    for layer, units in AM_UNITS.items():
        if panels_exist(engine, model.name, layer, units):
            reporter.note(f"reusing AM panels of {layer} units {', '.join(map(str, units))}")
            continue
        with reporter.step(f"AM panels for {layer} units {', '.join(map(str, units))}") as progress:
            am_into_catalogue(
                engine,
                model,
                layer,
                list(units),
                n_images=plan.am_images,
                steps=plan.am_steps,
                on_progress=progress,
            )


def model_layer_units(extracted: Any) -> list[int]:
    return [layer.n_units for layer in extracted.summary.layers]


def panels_exist(engine: Engine, model_name: str, layer: str, units: tuple[int, ...]) -> bool:
    """Whether every one of `units` of `layer` already has an AM panel."""
    with engine.connect() as conn:
        return have_panels(conn, model_name, layer, units)
