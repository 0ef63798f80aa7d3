"""Network dissection into the catalogue, and building a probe set from local data.

`dissect_into_catalogue` runs `catalogue.dissection.dissect` on conv layers of a
model over a Broden-format probe set — here, or in probe shards on a Ray
cluster — and writes, per unit, its top concepts with IoU, threshold and the
detector flag (IoU above `IOU_DETECTOR_THRESHOLD`) into `dissection`, with the
probe set's concepts in `concept`, in one transaction. `build_probe` makes a
probe set in Broden's format from the bundled datasets, since Broden itself
cannot be downloaded here (it is a probe set, not Broden).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from catalogue.cluster import Cluster, resolve_device_for
from catalogue.config import get_settings
from catalogue.data import ArrayImageDataset, load_digits, load_fashion_mnist
from catalogue.db.identities import register_concepts, register_model_info
from catalogue.db.results import write_dissection
from catalogue.dissection import LayerDissection, dissect
from catalogue.dissection.driver import DEFAULT_TOP_N
from catalogue.errors import InputError
from catalogue.measures import DISSECTION_QUANTILE, IOU_DETECTOR_THRESHOLD
from catalogue.models import LayerInfo, ModelInfo, list_layers
from catalogue.pipeline.defaults import DISSECT_BATCH_SIZE
from catalogue.pipeline.lifecycle import RunSpec, Step, run_step
from catalogue.probe import ProbeSet, make_probe

PROBE_SOURCES = ("fashion-mnist", "digits")


@dataclass
class DissectResult:
    run_id: int
    probe: str
    layers: dict[str, LayerDissection] = field(default_factory=dict)


def dissect_into_catalogue(
    engine: Engine,
    model: ModelInfo,
    probe_dir: str | Path,
    layers: Sequence[str],
    *,
    categories: Sequence[str] | None = None,
    split: str | None = None,
    limit: int | None = None,
    quantile: float = DISSECTION_QUANTILE,
    iou_threshold: float = IOU_DETECTOR_THRESHOLD,
    top_n: int = DEFAULT_TOP_N,
    batch_size: int = DISSECT_BATCH_SIZE,
    device: str = "auto",
    workers: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    reuse: bool = False,
    cluster: Cluster | None = None,
) -> DissectResult:
    """Dissect conv `layers` of `model` on the probe set in `probe_dir` and record the labels.

    With `reuse`, a finished dissection with the same parameters is returned
    (its run id, without per-layer results) instead of being computed again.
    With `cluster`, probe-image shards are Ray tasks; the rows are the same.
    """
    _check_options(batch_size, workers, quantile, iou_threshold, top_n)
    resolve_device_for(cluster, device)
    probe = _open_probe(probe_dir, categories=categories, split=split, limit=limit)
    infos = _conv_layers(model, layers)
    names = [i.name for i in infos]
    params = _params(model, probe, split=split, limit=limit) | {
        "quantile": quantile,
        "iou_threshold": iou_threshold,
        "top_n": top_n,
        "layers": names,
    }

    def compute(step: Step) -> dict[str, LayerDissection]:
        return dissect(
            model, names, probe, batch_size=batch_size, device=device, quantile=quantile,
            iou_threshold=iou_threshold, top_n=top_n, num_workers=workers,
            progress=step.progress, cluster=cluster,
        )  # fmt: skip

    with engine.begin() as conn:  # the run refers to the model's units
        record = register_model_info(conn, model, infos)

    def write(conn: Connection, run_id: int, results: dict[str, LayerDissection]) -> None:
        concepts = [(c.number, c.name, c.category) for c in probe.concepts]
        concept_ids = register_concepts(conn, _probe_name(probe), concepts)
        for name, result in results.items():
            write_dissection(conn, run_id, record.layer(name).unit_ids, result.rows(), concept_ids)

    label = f"{model.name} on probe {_probe_name(probe)}"
    step = run_step(
        engine,
        RunSpec("dissect", params, label=label, model_id=record.id),
        compute,
        write=write,
        stats=lambda results: _stats(results) | {"n_images": len(probe)},
        on_progress=on_progress,
        reuse=reuse,
        cluster=cluster,
    )
    return DissectResult(step.run_id, _probe_name(probe), step.value or {})


def _probe_name(probe: ProbeSet) -> str:
    return probe.directory.resolve().name


def _params(
    model: ModelInfo, probe: ProbeSet, *, split: str | None, limit: int | None
) -> dict[str, Any]:
    """The run's identity: the model's weights, the probe images (the labelling follows)."""
    return {
        "model": model.name,
        "checksum": model.checksum,
        "probe": str(probe.directory.resolve()),
        "categories": list(probe.categories),
        "split": split,
        "limit": limit,
    }


def _open_probe(
    probe_dir: str | Path,
    *,
    categories: Sequence[str] | None,
    split: str | None,
    limit: int | None,
) -> ProbeSet:
    """The probe set, refused now if it has no images for these options or misses a file."""
    probe = ProbeSet.open(probe_dir, categories=categories, split=split, limit=limit)
    if len(probe) == 0:
        raise InputError(
            f"the probe set {probe.directory} has no images for these options.",
            argument="probe_dir",
        )
    _check_probe(probe)
    return probe


def _conv_layers(model: ModelInfo, layers: Sequence[str]) -> list[LayerInfo]:
    if not layers:
        raise InputError("name the conv layers to dissect in layers.", argument="layers")
    infos = list_layers(model, layers=list(layers))
    not_conv = [i.name for i in infos if i.kind != "conv"]
    if not_conv:
        raise InputError(
            f"network dissection needs spatial maps; {', '.join(not_conv)} "
            f"{'is' if len(not_conv) == 1 else 'are'} not a conv layer.",
            argument="layers",
        )
    return infos


def _stats(results: dict[str, LayerDissection]) -> dict[str, Any]:
    return {
        name: {
            "n_units": r.n_units,
            "n_detectors": r.n_detectors,
            "n_unique_concepts": r.n_unique_concepts,
            "unique_by_category": r.unique_concepts_by_category(),
        }
        for name, r in results.items()
    }


def _check_options(
    batch_size: int, workers: int, quantile: float, iou_threshold: float, top_n: int
) -> None:
    checks = [
        (batch_size >= 1, "batch_size", f"must be at least 1, got {batch_size}."),
        (workers >= 0, "workers", f"must be 0 or more, got {workers}."),
        (
            0 < quantile < 1,
            "quantile",
            f"must be between 0 and 1 (e.g. {DISSECTION_QUANTILE}), got {quantile}.",
        ),
        (
            0 <= iou_threshold <= 1,
            "iou_threshold",
            f"must be between 0 and 1, got {iou_threshold}.",
        ),
        (top_n >= 1, "top_n", f"must be at least 1, got {top_n}."),
    ]
    for ok, argument, rule in checks:
        if not ok:
            raise InputError(f"{argument} {rule}", argument=argument)


def _check_probe(probe: ProbeSet) -> None:
    """The probe errors that can be found before a run is recorded: a missing image file, and
    an unreadable first image or mask (the rest are read during the run)."""
    missing = [key for key in probe.keys if not (probe.directory / "images" / key).is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise InputError(
            f"the probe set {probe.directory} lists images that are missing: "
            f"{', '.join(missing[:3])}{more}; restore them or remove their rows from index.csv."
        )
    probe[0]  # reads the first image and its masks; raises InputError naming the file


def probe_items(source: str, split: str = "test") -> Iterator[tuple[np.ndarray, str, str]]:
    """(grey image, class key, class name) of a bundled dataset, for `make_probe`."""
    if source not in PROBE_SOURCES:
        raise InputError(f"probe source must be one of {', '.join(PROBE_SOURCES)}, got {source!r}.")
    data: ArrayImageDataset = (
        load_fashion_mnist(split) if source == "fashion-mnist" else load_digits(split)
    )
    for i in range(len(data)):
        label = data.label(i)
        yield np.asarray(data.images[i]), data.class_keys[label], data.class_names[label]


def default_probe_dir(source: str, n_images: int, image_size: int, seed: int) -> Path:
    return get_settings().probes_dir / f"{source}-{n_images}x{image_size}-seed{seed}"


def build_probe(
    source: str = "fashion-mnist",
    *,
    n_images: int = 500,
    image_size: int = 64,
    seed: int = 0,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
) -> ProbeSet:
    """A probe set in Broden's format: scenes of `source` objects plus colour masks."""
    out = Path(out_dir) if out_dir else default_probe_dir(source, n_images, image_size, seed)
    if out.exists() and (out / "index.csv").exists() and not overwrite:
        return ProbeSet.open(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return make_probe(probe_items(source), out, n_images, image_size, seed, overwrite=True)
