"""The paper's setup in one call: AlexNet on ImageNet, conv5 to fc8, the bus and car groups.

Gale et al. scored conv5, fc6 and fc7 of AlexNet (and rated AM images of fc8)
over the correctly classified ImageNet images. In torchvision's AlexNet these
are feature-extraction nodes after each ReLU:

    conv5 = features.11, fc6 = classifier.2, fc7 = classifier.5, fc8 = classifier.6 (logits)

The class groups of the paper's appendix (bus: school bus, trolleybus, minibus;
car: 13 classes) are scored as groups; classes missing from the image folder
are left out of their group (a group with none left is skipped). With a Broden
directory, conv5 is dissected as in Network Dissection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from catalogue.cluster import Cluster
from catalogue.data import ImageDataset, resolve_dataset
from catalogue.groups import PAPER_GROUPS
from catalogue.models import ModelInfo, load_model
from catalogue.pipeline.dissect import dissect_into_catalogue
from catalogue.pipeline.extract import ExtractResult, extract_into_catalogue
from catalogue.pipeline.scoring import score_extraction
from catalogue.pipeline.summary import Reporter
from catalogue.query.report import RunReport, run_report

#: The paper's layer names and torchvision AlexNet's node names.
ALEXNET_LAYERS: dict[str, str] = {
    "conv5": "features.11",
    "fc6": "classifier.2",
    "fc7": "classifier.5",
    "fc8": "classifier.6",
}


@dataclass(frozen=True)
class PaperOptions:
    imagenet: Path
    broden: Path | None = None
    weights: str = "DEFAULT"
    weights_file: Path | None = None
    num_classes: int | None = None
    class_map: Path | None = None
    device: str = "auto"
    batch_size: int = 128
    workers: int = 4
    limit: int | None = None
    broden_categories: tuple[str, ...] | None = None


def present_groups(class_keys: list[str]) -> dict[str, list[str]]:
    """The paper's groups restricted to the classes the dataset has."""
    keys = set(class_keys)
    groups = {name: [k for k in members if k in keys] for name, members in PAPER_GROUPS.items()}
    return {name: members for name, members in groups.items() if members}


def run_paper(
    engine: Engine, options: PaperOptions, reporter: Reporter, cluster: Cluster | None = None
) -> RunReport:
    """Extract, score and (with Broden) dissect AlexNet; on Ray with `cluster`."""
    model = load_model(
        "alexnet",
        weights=options.weights,
        weights_file=options.weights_file,
        num_classes=options.num_classes,
    )
    data = resolve_dataset(
        str(options.imagenet),
        transform=model.transform,
        class_keys=model.class_keys,
        class_names=model.class_names,
        mapping_file=options.class_map,
    )
    reporter.note(
        "layers: " + ", ".join(f"{paper} = {node}" for paper, node in ALEXNET_LAYERS.items())
    )
    extracted = _extract(engine, options, model, data, reporter, cluster)
    groups = present_groups(list(data.class_keys))
    reporter.note(
        "class groups: "
        + (", ".join(f"{g} ({len(m)} classes)" for g, m in groups.items()) or "none present")
    )
    score_run = _score(engine, options, extracted, groups, reporter, cluster)
    if options.broden is not None:
        with reporter.step("dissect conv5 on Broden") as progress:
            dissected = dissect_into_catalogue(
                engine,
                model,
                options.broden,
                [ALEXNET_LAYERS["conv5"]],
                categories=options.broden_categories,
                device=options.device,
                workers=options.workers,
                on_progress=progress,
                reuse=True,
                cluster=cluster,
            )
        reporter.note(f"run {dissected.run_id}: conv5 dissected on {dissected.probe}")
    return run_report(engine, model.name, score_run)


def _extract(
    engine: Engine,
    options: PaperOptions,
    model: ModelInfo,
    data: ImageDataset,
    reporter: Reporter,
    cluster: Cluster | None,
) -> ExtractResult:
    with reporter.step(f"extract AlexNet over {len(data):,} images") as progress:
        extracted = extract_into_catalogue(
            engine,
            model,
            data,
            list(ALEXNET_LAYERS.values()),
            device=options.device,
            batch_size=options.batch_size,
            workers=options.workers,
            limit=options.limit,
            on_progress=progress,
            cluster=cluster,
        )
    summary = extracted.summary
    reporter.note(
        f"run {extracted.run_id}: {summary.n_images:,} images, top-1 accuracy {summary.accuracy:.1%}, "
        f"{summary.n_skipped} skipped"
    )
    return extracted


def _score(
    engine: Engine,
    options: PaperOptions,
    extracted: ExtractResult,
    groups: dict[str, list[str]],
    reporter: Reporter,
    cluster: Cluster | None,
) -> int:
    total_units = sum(layer.n_units for layer in extracted.summary.layers)
    with reporter.step("score every unit (correctly classified images only)") as progress:
        done: dict[str, int] = {}

        def on_score(layer: str, n: int, _total: int) -> None:
            done[layer] = n
            progress(sum(done.values()), total_units)

        scored = score_extraction(
            engine,
            extracted.run_id,
            groups=groups or None,
            device=options.device,
            on_progress=on_score,
            reuse=True,
            cluster=cluster,
        )
    reporter.note(
        f"run {scored.run_id}: {total_units:,} units over {scored.n_images:,} correct images"
    )
    return scored.run_id
