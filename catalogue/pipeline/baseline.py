"""Baselines for "N detectors in this layer": the same network with random weights, and chance.

A count of "object detectors" means little alone: network dissection's IoU cut-off
of .04 is one "even random excitation can achieve". Two baselines answer how many
detectors there would be without learning, and without any relation to the labels:

- **random weights** (`random_weights_baseline`): the trained run's architecture
  with seeded random weights (`catalogue.models.random_weights`, named
  ``<model>@random-seed<N>``) is extracted over the same images, scored on the
  images the trained scoring run scored (the trained network's correct ones by
  default: the random network gets almost none right), and dissected with the
  trained model's newest dissection's settings where there is one. Each baseline
  run's ``baseline_of`` is the trained run it repeats.
- **chance** (`chance_baseline`): the trained activations scored against labels
  permuted among the scored images (so every class keeps its size), ``repeats``
  times, every measure of every unit into `chance_metrics`: each measure's chance
  distribution. Its ``baseline_of`` is the trained scoring run.

The view `layer_baselines` sets the trained, random and chance detector counts
of every criterion side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, select

from catalogue.cluster import Cluster
from catalogue.data import ImageDataset
from catalogue.db.ablation import latest_done_run, link_baseline, write_chance_metrics
from catalogue.db.registry import load_model_record_by_id
from catalogue.db.runs import done_run_id, find_run, recorded_run
from catalogue.db.schema import Model
from catalogue.errors import InputError, NotFound
from catalogue.models import INIT_SEED, ModelInfo, random_name, random_weights
from catalogue.pipeline.reload import check_same_weights, dataset_for_run, model_for_run
from catalogue.pipeline.summary import Progress
from catalogue.selectivity import score_units
from catalogue.store import ActivationStore

DEFAULT_REPEATS = 10


@dataclass(frozen=True)
class TrainedRuns:
    """The trained runs a baseline repeats: extraction, its newest scoring, the model's
    newest dissection (if any)."""

    extract: Any
    score: Any
    dissect: Any | None


def trained_runs(engine: Engine, run: str | int) -> TrainedRuns:
    """The trained extraction and scoring run from either one's id (a scoring run's parent is
    its extraction; an extraction's scoring run is its newest finished one)."""
    with engine.connect() as conn:
        row = find_run(conn, run)
        if row.kind == "score":
            score, extract = row, find_run(conn, row.parent_id, kind="extract")
        elif row.kind == "extract":
            extract = row
            score = latest_done_run(conn, "score", parent_id=row.id)
            if score is None:
                raise InputError(
                    f"extraction run {row.id} has not been scored; run `unitcat ingest score "
                    f"{row.id}` first (a baseline is compared with the trained scores)."
                )
        else:
            raise InputError(f"run {run} is a {row.kind} run; give an extraction or scoring run.")
        if extract.baseline_of is not None or score.baseline_of is not None:
            raise InputError(f"run {run} is itself a baseline; give the trained run.")
        if extract.status != "done" or score.status != "done":
            raise InputError(f"run {run} is not finished; finish it before its baselines.")
        dissect = latest_done_run(conn, "dissect", model_id=extract.model_id)
    return TrainedRuns(extract, score, dissect)


def scored_rows(store: ActivationStore, score_params: dict[str, Any]) -> np.ndarray:
    """Boolean mask of the store rows a scoring run with these parameters scored."""
    if score_params.get("all_images"):
        return np.ones(store.n_complete, dtype=bool)
    return store.correct.astype(bool)


# ------------------------------------------------------------------------ random weights


@dataclass
class RandomBaselineResult:
    model: str
    extract_run: int
    score_run: int
    dissect_run: int | None
    trained: TrainedRuns
    notes: list[str] = field(default_factory=list)


#: reporter(step title) -> progress callback of that step
StepReporter = Callable[[str], Progress]


def random_weights_baseline(
    engine: Engine,
    run: str | int,
    *,
    seed: int = INIT_SEED,
    name: str | None = None,
    model: ModelInfo | None = None,
    dataset: ImageDataset | str | None = None,
    device: str = "auto",
    batch_size: int = 64,
    workers: int = 0,
    dissect: bool = True,
    step: StepReporter | None = None,
    cluster: Cluster | None = None,
) -> RandomBaselineResult:
    """Extract, score (and dissect) the trained run's network with seeded random weights.

    With ``cluster`` the three steps run on Ray, the random network loaded on the workers
    by its recipe (`catalogue.models.loading.load_random_weights`)."""
    from catalogue.pipeline.dissect import dissect_into_catalogue
    from catalogue.pipeline.extract import extract_into_catalogue
    from catalogue.pipeline.scoring import TOP_IMAGES, score_extraction

    trained = trained_runs(engine, run)
    extract, score = trained.extract, trained.score
    params = dict(extract.params or {})
    with engine.connect() as conn:
        record = conn.execute(
            select(Model.name, Model.architecture).where(Model.id == extract.model_id)
        ).one()
    if model is not None:  # the caller's copy (a weights file …), named as the catalogue has it
        check_same_weights(model, params, extract.id)
        model = replace(model, name=record.name)
    else:
        store_classes = _store_classes(Path(extract.h5_path))
        model = model_for_run(
            name=record.name,
            architecture=record.architecture,
            weights=params.get("weights"),
            params=params,
            n_classes=len(store_classes[0]),
        )
    check_same_weights(model, params, extract.id)
    # named explicitly, so that its recipe (a Ray worker's copy) has the catalogue's name too
    random = random_weights(model, seed, name=name or random_name(model.name, seed))
    keys, names = _store_classes(Path(extract.h5_path))
    data = (
        dataset
        if isinstance(dataset, ImageDataset)
        else dataset_for_run(params, model, class_keys=keys, class_names=names, spec=dataset)
    )
    n_items = int(params.get("n_items") or len(data))
    progress = step or (lambda _title: None)
    extracted = extract_into_catalogue(
        engine,
        random,
        data,
        list(params.get("layers") or []) or None,
        reduce=str(params.get("reduce") or "max"),
        device=device,
        batch_size=batch_size,
        workers=workers,
        limit=n_items if n_items < len(data) else None,
        on_progress=progress(f"extract {random.name} over {n_items:,} images"),
        cluster=cluster,
    )
    score_params = dict(score.params or {})
    with ActivationStore.open(Path(extract.h5_path)) as trained_store:
        rows = scored_rows(trained_store, score_params)
        trained_keys = trained_store.image_keys
    with ActivationStore.open(extracted.summary.path) as random_store:
        if random_store.image_keys != trained_keys:
            raise InputError(
                f"the random-weights extraction of run {extract.id} holds other images than it; "
                "the images of the trained run have changed."
            )
    score_progress = progress(f"score {random.name}")
    scored = score_extraction(
        engine,
        extracted.run_id,
        layers=score_params.get("layers"),
        all_images=bool(score_params.get("all_images")),
        n_top_classes=int(score_params.get("n_top_classes", 5)),
        n_top_images=int(score_params.get("n_top_images", TOP_IMAGES)),
        rows=rows,
        rows_from=score.id,
        reuse=True,
        cluster=cluster,
        on_progress=(lambda _l, d, t: score_progress(d, t)) if score_progress else None,
    )
    dissected = None
    if dissect and trained.dissect is not None:
        d = dict(trained.dissect.params or {})
        probe = Path(str(d.get("probe", "")))
        if not probe.is_dir():
            raise NotFound(
                f"the probe set {probe} of dissection run {trained.dissect.id} is missing; "
                "rebuild it or run the baseline with --no-dissect."
            )
        dissected = dissect_into_catalogue(
            engine,
            random,
            probe,
            list(d.get("layers") or []),
            categories=d.get("categories"),
            split=d.get("split"),
            limit=d.get("limit"),
            quantile=float(d.get("quantile", 0.005)),
            iou_threshold=float(d.get("iou_threshold", 0.04)),
            top_n=int(d.get("top_n", 5)),
            device=device,
            on_progress=progress(f"dissect {random.name}"),
            reuse=True,
            cluster=cluster,
        )
    with engine.begin() as conn:
        link_baseline(conn, extracted.run_id, extract.id)
        link_baseline(conn, scored.run_id, score.id)
        if dissected is not None and trained.dissect is not None:
            link_baseline(conn, dissected.run_id, trained.dissect.id)
    return RandomBaselineResult(
        model=random.name,
        extract_run=extracted.run_id,
        score_run=scored.run_id,
        dissect_run=dissected.run_id if dissected is not None else None,
        trained=trained,
    )


def _store_classes(path: Path) -> tuple[list[str], list[str]]:
    if not path.is_file():
        raise NotFound(f"the activation file {path} is missing.")
    with ActivationStore.open(path) as store:
        return store.class_keys, store.class_names


# ------------------------------------------------------------------------------- chance


def permuted_labels(labels: np.ndarray, repeats: int, seed: int = 0) -> list[np.ndarray]:
    """``repeats`` random permutations of ``labels`` (every class keeps its size), seeded by
    (seed, repeat) so that each repeat is the same whatever the number of repeats."""
    labels = np.asarray(labels)
    return [
        labels[np.random.default_rng([seed, r]).permutation(labels.size)] for r in range(repeats)
    ]


@dataclass
class ChanceResult:
    run_id: int
    score_run: int
    repeats: int
    n_images: int
    layers: list[str]
    reused: bool = False


def chance_baseline(
    engine: Engine,
    run: str | int,
    *,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    layers: Sequence[str] | None = None,
    device: str | None = None,
    block_units: int = 256,
    on_progress: Progress | None = None,
    reuse: bool = False,
) -> ChanceResult:
    """Score the trained activations ``repeats`` times against permuted labels.

    ``on_progress(done, total)`` counts (unit block × repeat) scorings.
    """
    if repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {repeats}.")
    trained = trained_runs(engine, run)
    extract, score = trained.extract, trained.score
    score_params = dict(score.params or {})
    path = Path(extract.h5_path or "")
    if not path.is_file():
        raise NotFound(f"the activation file of run {extract.id} is missing: {path}.")
    with engine.connect() as conn:
        model = load_model_record_by_id(conn, extract.model_id)
    with ActivationStore.open(path) as store:
        names = list(layers or score_params.get("layers") or store.layer_names)
        unknown = [n for n in names if n not in store.layer_names]
        if unknown:
            raise NotFound(f"run {extract.id} has no layer {', '.join(unknown)}.")
        rows = scored_rows(store, score_params)
        labels = store.labels[rows]
        params = {"score_run": score.id, "repeats": repeats, "seed": seed, "layers": names}
        if reuse:
            with engine.connect() as conn:
                existing = done_run_id(conn, "chance", params)
            if existing is not None:
                return ChanceResult(existing, score.id, repeats, int(rows.sum()), names, True)
        permutations = permuted_labels(labels, repeats, seed)
        total = sum(-(-store.layer_shape(n)[1] // block_units) for n in names) * repeats
        done = 0
        with recorded_run(
            engine,
            "chance",
            params,
            label=f"{model.name}: chance ({repeats} label permutations)",
            model_id=extract.model_id,
            dataset_id=extract.dataset_id,
            parent_id=extract.id,
            h5_path=str(path),
            provenance={"seed": seed, "device": device},
        ) as chance_run:
            if chance_run.finished_elsewhere:  # another process ran it while this one waited
                return ChanceResult(chance_run.id, score.id, repeats, int(rows.sum()), names, True)
            results: dict[str, list[dict[str, np.ndarray]]] = {}
            for name in names:
                per_repeat: list[list[dict[str, np.ndarray]]] = [[] for _ in range(repeats)]
                for _start, _stop, block in store.iter_unit_blocks(name, block_units, rows=rows):
                    for r, permuted in enumerate(permutations):
                        per_repeat[r].append(
                            score_units(block, permuted, store.n_classes, device=device)
                        )
                        done += 1
                        if on_progress is not None:
                            on_progress(done, total)
                results[name] = [_join(parts) for parts in per_repeat]

            def write(conn: Connection, run_id: int) -> None:
                for name, repeats_metrics in results.items():
                    unit_ids = model.layer(name).unit_ids
                    for r, metrics in enumerate(repeats_metrics):
                        write_chance_metrics(conn, run_id, unit_ids, r, metrics, int(rows.sum()))
                link_baseline(conn, run_id, score.id)

            chance_run.complete(
                write, stats={"n_images": int(rows.sum()), "repeats": repeats, "layers": names}
            )
    return ChanceResult(chance_run.id, score.id, repeats, int(rows.sum()), names)


def _join(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
