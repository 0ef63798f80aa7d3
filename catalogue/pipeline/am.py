"""Activation-maximisation panels into the catalogue: validate, maximise, save, record.

The paper (Gale et al., sec. 3.2 and appendix 5) showed people a 10 × 10 panel
of 100 AM images per unit. Here `catalogue.am.maximise_units` makes the
images; this module ties them to units that the catalogue already knows (the
model must have been extracted, so a panel hangs off a registered unit and can
be compared with the unit's measures), saves one PNG per unit under
``$UNITCAT_HOME/artifacts/am/<database>/<model>/<layer>/unit-<i>-run<run>.png``
(``<database>``: which catalogue, as two may share one home) and writes
the `am_panel` rows of one recorded ``am`` run in one transaction at the end.

Two choices make a panel comparable with the unit's row in `unit_catalogue`:

- ``dataset_max`` is the unit's ``max_activation`` in the newest finished
  scoring run that scored it: the "most active dataset image" the AM images
  should beat;
- for conv units the objective (and the stored activation) reduces the channel
  map the way that scoring run's extraction did (spatial max by default,
  docs/DESIGN.md), unless ``reduce`` says otherwise; with no scoring run the
  default is the spatial max too.

The input format follows the model (`am_defaults`): the demo CNN takes grey
32 × 32 images repeated to three channels with its own mean and std,
torchvision models RGB at their crop size with ImageNet normalisation.

Everything that can be wrong with a request (an unregistered model, other
weights than the extracted ones, an unknown layer or unit, a bad option) is
checked before the run is recorded. Memory: the images of one call are held
at once (60 MB per unit at 100 images of 224²), so units go through
`maximise_units` ``units_per_batch`` at a time and each panel is written to
disk before the next call.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from catalogue.am import METHOD, maximise_units, save_panel
from catalogue.config import get_settings, resolve_device
from catalogue.db.engine import database_identity
from catalogue.db.identities import LayerRecord, ModelRecord, find_model
from catalogue.db.results import PanelRow, ScoreReference, score_reference, write_am_panels
from catalogue.errors import InputError, NotFound
from catalogue.models import IMAGENET_MEAN, IMAGENET_STD, ImageNetTransform, ModelInfo, demo_cnn
from catalogue.pipeline.defaults import (
    AM_LR,
    AM_MAX_IMAGES,
    AM_PANEL_SIDE,
    AM_STEPS,
    AM_UNITS_PER_BATCH,
)
from catalogue.pipeline.lifecycle import RunSpec, Step, run_step

PANEL_SIDE = AM_PANEL_SIDE  # the paper's panels: 10 × 10 images
MAX_IMAGES = AM_MAX_IMAGES
REDUCE_CHOICES = ("auto", "mean", "max")
DEFAULT_CONV_REDUCE = "max"  # the extraction default (docs/DESIGN.md: spatial maximum)

#: on_progress(unit-steps done, unit-steps in all); one unit-step = one Adam step of one unit's images
AMProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class AMDefaults:
    """How a model wants its AM images: side, colour channels, and normalisation."""

    image_size: int
    channels: int  # 1 = grey, 3 = RGB
    input_channels: int  # what the network takes (grey is repeated to 3 for the demo CNN)
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def normalise(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.mean, self.std


def am_defaults(model: ModelInfo) -> AMDefaults:
    """The model's input format, read from its transform (the one extraction used).

    The demo CNN's `DemoTransform` makes grey images with one mean and std and
    repeats them to 3 channels; torchvision's weight transforms carry ``mean``
    and ``std`` per channel; `ImageNetTransform` (random or file weights,
    TorchScript) uses ImageNet's. Anything else is taken to be an ImageNet model.
    """
    side = int(model.input_size[0])
    transform = model.transform
    if isinstance(transform, demo_cnn.DemoTransform):
        mean, std = float(transform.mean), float(transform.std)
        return AMDefaults(side, 1, 3, (mean,) * 3, (std,) * 3)
    if isinstance(transform, ImageNetTransform):
        return AMDefaults(side, 3, 3, IMAGENET_MEAN, IMAGENET_STD)
    mean_attr, std_attr = getattr(transform, "mean", None), getattr(transform, "std", None)
    if mean_attr is not None and std_attr is not None and len(mean_attr) == len(std_attr) == 3:
        return AMDefaults(
            side, 3, 3, tuple(float(v) for v in mean_attr), tuple(float(v) for v in std_attr)
        )
    return AMDefaults(side, 3, 3, IMAGENET_MEAN, IMAGENET_STD)


def parse_units(text: str | None) -> list[int] | None:
    """``"0,1,5"``, ``"0-9"`` or a mix (``"0-3,7"``) → unit indices in the order given; None for all.

    Raises InputError for anything else, a descending range or a repeated unit.
    """
    if text is None or not text.strip():
        return None
    units: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if match is None:
            raise InputError(
                f"units {text!r}: {part!r} is not a unit index or a range like 0-9; "
                "write e.g. 0,1,5 or 0-9.",
                argument="units",
            )
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise InputError(
                f"units {text!r}: the range {part} runs backwards; write {last}-{first}.",
                argument="units",
            )
        units.extend(range(first, last + 1))
    seen: set[int] = set()
    for unit in units:
        if unit in seen:
            raise InputError(
                f"units {text!r} names unit {unit} twice; give each unit once.", argument="units"
            )
        seen.add(unit)
    return units


def panel_grid(n_images: int) -> tuple[int, int]:
    """Rows and columns of a panel: 10 × 10 for the paper's 100 images, square-ish below."""
    cols = min(PANEL_SIDE, math.ceil(math.sqrt(n_images)))
    return math.ceil(n_images / cols), cols


def panel_relative_path(model: str, layer: str, unit: int, run_id: int, database: str) -> Path:
    """The panel file relative to the artifacts folder (names made safe for any file system).

    `database` (`catalogue.db.engine.database_identity`) keeps two catalogues that
    share one UNITCAT_HOME apart: both may have a run 1.
    """
    name = f"unit-{unit}-run{run_id}.png"
    return Path("am") / _slug(database) / _slug(model) / _slug(layer) / name


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:80] or "x"


@dataclass(frozen=True)
class PanelResult:
    """One unit's panel: where it is, and how hard its images drive the unit."""

    unit: int
    unit_id: int
    path: Path  # absolute
    activations: np.ndarray  # one value per image, as stored in am_panel.activations
    dataset_max: float | None

    @property
    def ratio(self) -> float | None:
        """Mean AM activation over the unit's maximum on the dataset images (None without a positive maximum)."""
        if self.dataset_max is None or self.dataset_max <= 0:
            return None
        return float(self.activations.mean()) / self.dataset_max


@dataclass(frozen=True)
class AMRunResult:
    run_id: int
    model: str
    layer: str
    device: str
    reduce: str | None
    score_run_id: int | None
    panels: list[PanelResult]
    #: made by another process while this one waited for the run (no panels here)
    reused: bool = False


@dataclass(frozen=True)
class AMPlan:
    """A checked AM request: what `run_am` will do, resolved against the catalogue.

    ``params`` are the run's parameters (its identity: the same plan again
    replaces the run's panels); device and batching only change speed, so they
    are kept out of them.
    """

    model: ModelInfo
    model_id: int
    layer: str
    kind: str
    units: list[int]
    unit_ids: list[int]
    defaults: AMDefaults
    image_size: int
    n_images: int
    steps: int
    lr: float
    seed: int
    reduce: str | None  # conv units only
    device: str
    units_per_batch: int
    reference: ScoreReference | None
    params: dict[str, Any]


def plan_am(
    engine: Engine,
    model: ModelInfo,
    layer: str,
    units: Sequence[int] | None = None,
    *,
    n_images: int = MAX_IMAGES,
    steps: int = AM_STEPS,
    image_size: int | None = None,
    lr: float = AM_LR,
    seed: int = 0,
    reduce: str = "auto",
    device: str | None = "auto",
    units_per_batch: int = AM_UNITS_PER_BATCH,
) -> AMPlan:
    """Check an AM request against the catalogue without running anything.

    Args:
        engine: the catalogue.
        model: the loaded model; it must be in the catalogue under ``model.name``
            with the same weights (checksum) as when it was extracted.
        layer: a registered layer of the model (a feature-extraction node name).
        units: unit indices of the layer; None for all of them.
        n_images: images per unit, 1–100 (a panel is at most 10 × 10).
        steps, lr, seed: the optimisation (see `catalogue.am.maximise_units`).
        image_size: image side; default the model's input size.
        reduce: conv units: ``auto`` (the scoring run's extraction reduction,
            else ``max``), ``mean`` or ``max`` over the channel map.
        device: ``auto``, ``cpu`` or ``cuda`` (None: UNITCAT_DEVICE).
        units_per_batch: units optimised together in one batch of
            ``units_per_batch × n_images`` images; memory grows with it.

    Raises:
        NotFound: the model is not in the catalogue, or the layer or a unit is unknown.
        InputError: other weights than the catalogue's, or a bad option.
        ConfigError: ``cuda`` asked for without a GPU.
    """
    _check_options(n_images, steps, lr, seed, reduce, units_per_batch, image_size)
    device_name = resolve_device(device)
    defaults = am_defaults(model)
    side = image_size if image_size is not None else defaults.image_size
    with engine.connect() as conn:
        record = _registered_model(conn, model)
        layer_record = _registered_layer(record, layer)
        chosen = _check_units(layer_record, units)
        unit_ids = [int(layer_record.unit_ids[u]) for u in chosen]
        reference = score_reference(conn, unit_ids)
    conv_reduce: str | None = None
    if layer_record.kind == "conv":
        conv_reduce = reduce if reduce != "auto" else _reference_reduce(reference)
    optimisation = {"n_images": n_images, "steps": steps, "image_size": side, "lr": lr}
    return AMPlan(
        model=model, model_id=record.id, layer=layer, kind=layer_record.kind, units=chosen,
        unit_ids=unit_ids, defaults=defaults, image_size=side, n_images=n_images, steps=steps,
        lr=lr, seed=seed, reduce=conv_reduce, device=device_name,
        units_per_batch=units_per_batch, reference=reference,
        params=_params(model, layer, chosen, defaults, conv_reduce, seed, optimisation),
    )  # fmt: skip


def _params(
    model: ModelInfo,
    layer: str,
    units: list[int],
    defaults: AMDefaults,
    reduce: str | None,
    seed: int,
    optimisation: dict[str, Any],
) -> dict[str, Any]:
    """The run's identity: the weights, the units, the objective and the optimisation."""
    return {
        "model": model.name,
        "checksum": model.checksum,
        "layer": layer,
        "units": units,
        "method": METHOD,
        **optimisation,
        "seed": seed,
        "reduce": reduce,
        "channels": defaults.channels,
        "input_channels": defaults.input_channels,
        "normalise": {"mean": list(defaults.mean), "std": list(defaults.std)},
    }


@dataclass
class _Panels:
    """The panels made so far: their results, the optimiser's parameters per unit, and the
    files written beside their final names (moved into place by the run's transaction)."""

    results: list[PanelResult] = field(default_factory=list)
    params: dict[int, dict[str, Any]] = field(default_factory=dict)
    staged: list[tuple[Path, Path]] = field(default_factory=list)


def run_am(engine: Engine, plan: AMPlan, on_progress: AMProgress | None = None) -> AMRunResult:
    """Make, save and record the panels of a plan in one recorded ``am`` run.

    Re-running the same plan replaces the run's panels (the same files and a
    fresh set of `am_panel` rows); a failure leaves the catalogue as it was.
    PNGs are written next to their final names and moved into place inside
    the transaction that writes the rows.
    """
    artifacts = get_settings().artifacts_dir
    database = database_identity(engine)
    panels = _Panels()
    reference = plan.reference
    try:
        step = run_step(
            engine,
            RunSpec(
                "am",
                plan.params,
                label=f"AM {plan.model.name} {plan.layer}",
                model_id=plan.model_id,
                parent_id=reference.run_id if reference else None,
            ),
            lambda step: _make_panels(plan, step, panels, artifacts, database),
            write=lambda conn, run_id, made: _write_panels(conn, run_id, made, artifacts),
            stats=lambda made: _stats(plan, made),
            on_progress=on_progress,
        )
    finally:
        for partial, _ in panels.staged:
            partial.unlink(missing_ok=True)
    return AMRunResult(
        run_id=step.run_id, model=plan.model.name, layer=plan.layer, device=plan.device,
        reduce=plan.reduce, score_run_id=reference.run_id if reference else None,
        panels=panels.results if step.value is not None else [], reused=step.reused,
    )  # fmt: skip


def _make_panels(
    plan: AMPlan, step: Step, panels: _Panels, artifacts: Path, database: str
) -> _Panels:
    """Maximise the plan's units ``units_per_batch`` at a time; each panel to a staged file."""
    rows, cols = panel_grid(plan.n_images)
    total = len(plan.units) * plan.steps
    for start in range(0, len(plan.units), plan.units_per_batch):
        step.check_alive()
        chunk = plan.units[start : start + plan.units_per_batch]

        def progress(done: int, of: int, start: int = start, width: int = len(chunk)) -> None:
            if of > 0:
                step.progress(start * plan.steps + done * width * plan.steps // of, total)

        result = maximise_units(
            plan.model, plan.layer, chunk, n_images=plan.n_images, steps=plan.steps,
            image_size=plan.image_size, lr=plan.lr, seed=plan.seed, device=plan.device,
            normalise=plan.defaults.normalise,
            channels=plan.defaults.channels,  # type: ignore[arg-type]
            input_channels=plan.defaults.input_channels,
            reduce=plan.reduce or "mean",  # type: ignore[arg-type]
            batch_size=len(chunk) * plan.n_images, on_progress=progress,
        )  # fmt: skip
        for position, unit in enumerate(chunk):
            final = artifacts / panel_relative_path(
                plan.model.name, plan.layer, unit, step.run_id, database
            )
            partial = final.with_name(f".{final.name}.partial")
            save_panel(result.images[position], partial, rows=rows, cols=cols)
            panels.staged.append((partial, final))
            unit_id = plan.unit_ids[start + position]
            panels.params[unit_id] = result.params
            panels.results.append(
                PanelResult(
                    unit=unit,
                    unit_id=unit_id,
                    path=final,
                    activations=result.activations[position].astype(np.float64),
                    dataset_max=plan.reference.max_activation.get(unit_id)
                    if plan.reference
                    else None,
                )
            )
        del result
    return panels


def _write_panels(conn: Connection, run_id: int, panels: _Panels, artifacts: Path) -> None:
    write_am_panels(
        conn,
        run_id,
        (
            PanelRow(
                unit_id=p.unit_id,
                method=METHOD,
                params={**panels.params[p.unit_id], "unit": p.unit},
                path=str(p.path.relative_to(artifacts)),
                activations=p.activations.tolist(),
                dataset_max=p.dataset_max,
            )
            for p in panels.results
        ),
    )
    for partial, final in panels.staged:
        os.replace(partial, final)


def _stats(plan: AMPlan, panels: _Panels) -> dict[str, Any]:
    ratios = [r for r in (p.ratio for p in panels.results) if r is not None]
    reference = plan.reference
    return {
        "n_panels": len(panels.results),
        "device": plan.device,
        "units_per_batch": plan.units_per_batch,
        "score_run": reference.run_id if reference else None,
        "mean_activation": float(np.mean([p.activations.mean() for p in panels.results])),
        "mean_ratio_to_dataset_max": float(np.mean(ratios)) if ratios else None,
    }


def am_into_catalogue(
    engine: Engine,
    model: ModelInfo,
    layer: str,
    units: Sequence[int] | None = None,
    *,
    on_progress: AMProgress | None = None,
    **options: Any,
) -> AMRunResult:
    """`plan_am` then `run_am`: the panels of ``units`` (default: all) of ``layer``, recorded."""
    return run_am(engine, plan_am(engine, model, layer, units, **options), on_progress)


def _check_options(
    n_images: int,
    steps: int,
    lr: float,
    seed: int,
    reduce: str,
    units_per_batch: int,
    image_size: int | None,
) -> None:
    checks = [
        (
            1 <= n_images <= MAX_IMAGES,
            "n_images",
            f"must be 1–{MAX_IMAGES} (a panel holds at most {PANEL_SIDE} × {PANEL_SIDE} "
            f"images), got {n_images}.",
        ),
        (steps >= 1, "steps", f"must be at least 1, got {steps}."),
        (lr > 0, "lr", f"must be positive, got {lr}."),
        (seed >= 0, "seed", f"must be 0 or more, got {seed}."),
        (
            reduce in REDUCE_CHOICES,
            "reduce",
            f"must be one of {', '.join(REDUCE_CHOICES)}, got {reduce!r}.",
        ),
        (units_per_batch >= 1, "units_per_batch", f"must be at least 1, got {units_per_batch}."),
        (
            image_size is None or image_size >= 2,
            "image_size",
            f"must be at least 2 pixels, got {image_size}.",
        ),
    ]
    for ok, argument, rule in checks:
        if not ok:
            raise InputError(f"{argument} {rule}", argument=argument)


def _registered_model(conn: Connection, model: ModelInfo) -> ModelRecord:
    record = find_model(conn, model.name)
    if record is None:
        raise NotFound(
            f"model {model.name!r} is not in the catalogue; extract it first, so that its "
            "units are registered.",
            fix="extract it",
            command=f"run `unitcat ingest extract --model {model.name} --dataset …`",
        )
    if record.checksum and model.checksum and record.checksum != model.checksum:
        raise InputError(
            f"model {model.name!r} was extracted with other weights (checksum "
            f"{record.checksum[:12]}, these are {model.checksum[:12]}); pass the model with the "
            "weights it was extracted with.",
            fix="pass the model with the weights it was extracted with",
            command="pass the same --weights / --weights-file as for the extraction",
        )
    return record


def _registered_layer(record: ModelRecord, layer: str) -> LayerRecord:
    if layer not in record.layers:
        known = ", ".join(record.layers) or "none"
        raise NotFound(
            f"model {record.name!r} has no layer {layer!r} in the catalogue (registered: "
            f"{known}); extract it first.",
            fix="extract it first",
            command=f"extract it first with `unitcat ingest extract --model {record.name} "
            f"--layers {layer} …`",
        )
    return record.layers[layer]


def _check_units(layer: LayerRecord, units: Sequence[int] | None) -> list[int]:
    if units is None:
        return list(range(layer.n_units))
    chosen = [int(u) for u in units]
    if not chosen:
        raise InputError(
            "no units given; give some (e.g. 0,1,5 or 0-9) or none for all.", argument="units"
        )
    if len(set(chosen)) != len(chosen):
        raise InputError(f"units repeat in {chosen}; give each unit once.", argument="units")
    bad = [u for u in chosen if not 0 <= u < layer.n_units]
    if bad:
        raise NotFound(
            f"layer {layer.name!r} has units 0–{layer.n_units - 1}; there is no unit {bad[0]}.",
            argument="units",
        )
    return chosen


def _reference_reduce(reference: ScoreReference | None) -> str:
    if reference is not None and reference.reduce in ("mean", "max"):
        return reference.reduce
    return DEFAULT_CONV_REDUCE
