"""Baselines for "N detectors in this layer": the same network with random weights, and chance.

A count of "object detectors" means little alone: network dissection's IoU cut-off
(`IOU_DETECTOR_THRESHOLD`, .04) is one "even random excitation can achieve". Two baselines answer how many
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
from sqlalchemy import Connection, Engine

from catalogue.cluster import Cluster
from catalogue.data import ImageDataset
from catalogue.db.ablation import latest_done_run, link_baseline, write_chance_metrics
from catalogue.db.runs import find_run
from catalogue.errors import InputError, NotFound
from catalogue.measures import DISSECTION_QUANTILE, IOU_DETECTOR_THRESHOLD
from catalogue.models import INIT_SEED, ModelInfo, random_name, random_weights
from catalogue.pipeline.defaults import CHANCE_REPEATS, EXTRACT_BATCH_SIZE, SCORE_BLOCK_UNITS
from catalogue.pipeline.dissect import DEFAULT_TOP_N, dissect_into_catalogue
from catalogue.pipeline.extract import extract_into_catalogue
from catalogue.pipeline.lifecycle import Step, run_step
from catalogue.pipeline.reload import check_same_weights, dataset_for_run, recorded_model
from catalogue.pipeline.scoring import DEFAULT_TOP_CLASSES, TOP_IMAGES, score_extraction
from catalogue.pipeline.source import check_layers, extraction_source
from catalogue.pipeline.summary import Progress
from catalogue.query.models import model_identity
from catalogue.selectivity import ccmas_layer_rule, score_units
from catalogue.store import ActivationStore

DEFAULT_REPEATS = CHANCE_REPEATS


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
                    f"extraction run {row.id} has not been scored; score it first (a baseline "
                    "is compared with the trained scores).",
                    fix="score it",
                    command=f"run `unitcat ingest score {row.id}`",
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


@dataclass(frozen=True)
class RandomNetwork:
    """What a random-weights baseline runs: the random network, the trained run's images, the
    rows its scoring scored, and the probe set of its dissection (None: no dissection)."""

    trained: TrainedRuns
    model: ModelInfo
    data: ImageDataset
    rows: np.ndarray
    image_keys: list[str]
    probe: Path | None


def random_weights_baseline(
    engine: Engine,
    run: str | int,
    *,
    seed: int = INIT_SEED,
    name: str | None = None,
    model: ModelInfo | None = None,
    dataset: ImageDataset | str | None = None,
    device: str = "auto",
    batch_size: int = EXTRACT_BATCH_SIZE,
    workers: int = 0,
    dissect: bool = True,
    step: StepReporter | None = None,
    cluster: Cluster | None = None,
) -> RandomBaselineResult:
    """Extract, score (and dissect) the trained run's network with seeded random weights.

    Everything is checked before the first of these runs is recorded (the trained runs, the
    model's weights, the images, the probe set). With ``cluster`` the three steps run on
    Ray, the random network loaded on the workers by its recipe
    (`catalogue.models.loading.load_random_weights`)."""
    net = plan_random_network(engine, run, seed=seed, name=name, model=model, dataset=dataset)
    net = replace(net, probe=net.probe if dissect else None)
    progress = step or (lambda _title: None)
    extract_run = _extract_random(
        engine, net, progress, device=device, batch_size=batch_size, workers=workers,
        cluster=cluster,
    )  # fmt: skip
    score_run = _score_random(engine, net, extract_run, progress, cluster=cluster)
    dissect_run = _dissect_random(engine, net, progress, device=device, cluster=cluster)
    trained = net.trained
    with engine.begin() as conn:
        link_baseline(conn, extract_run, trained.extract.id)
        link_baseline(conn, score_run, trained.score.id)
        if dissect_run is not None and trained.dissect is not None:
            link_baseline(conn, dissect_run, trained.dissect.id)
    return RandomBaselineResult(net.model.name, extract_run, score_run, dissect_run, trained)


def plan_random_network(
    engine: Engine,
    run: str | int,
    *,
    seed: int = INIT_SEED,
    name: str | None = None,
    model: ModelInfo | None = None,
    dataset: ImageDataset | str | None = None,
) -> RandomNetwork:
    """Check a random-weights baseline of ``run`` and load what it runs; nothing is written."""
    trained = trained_runs(engine, run)
    extract = trained.extract
    params = dict(extract.params or {})
    keys, names = _store_classes(Path(extract.h5_path))
    if model is not None:  # the caller's copy (a weights file …), named as the catalogue has it
        check_same_weights(model, params, extract.id)
        model = replace(model, name=model_identity(engine, extract.model_id).name)
    else:
        model = recorded_model(engine, extract.model_id, params, len(keys))
    check_same_weights(model, params, extract.id)
    # named explicitly, so that its recipe (a Ray worker's copy) has the catalogue's name too
    random = random_weights(model, seed, name=name or random_name(model.name, seed))
    data = (
        dataset
        if isinstance(dataset, ImageDataset)
        else dataset_for_run(params, model, class_keys=keys, class_names=names, spec=dataset)
    )
    with ActivationStore.open(Path(extract.h5_path)) as store:
        rows, image_keys = scored_rows(store, dict(trained.score.params or {})), store.image_keys
    return RandomNetwork(trained, random, data, rows, image_keys, _probe_of(trained.dissect))


def _probe_of(dissect: Any | None) -> Path | None:
    """The probe set of the trained model's dissection (None without one), which must exist."""
    if dissect is None:
        return None
    probe = Path(str((dissect.params or {}).get("probe", "")))
    if not probe.is_dir():
        raise NotFound(
            f"the probe set {probe} of dissection run {dissect.id} is missing; rebuild it, or "
            "leave the dissection out (dissect=False).",
            fix="leave the dissection out (dissect=False)",
            command="run the baseline with --no-dissect",
        )
    return probe


def _extract_random(
    engine: Engine,
    net: RandomNetwork,
    progress: StepReporter,
    *,
    device: str,
    batch_size: int,
    workers: int,
    cluster: Cluster | None,
) -> int:
    """The random network over the trained run's images, as the trained run extracted them."""

    params = dict(net.trained.extract.params or {})
    n_items = int(params.get("n_items") or len(net.data))
    extracted = extract_into_catalogue(
        engine, net.model, net.data, list(params.get("layers") or []) or None,
        reduce=str(params.get("reduce") or "max"), device=device, batch_size=batch_size,
        workers=workers, limit=n_items if n_items < len(net.data) else None,
        on_progress=progress(f"extract {net.model.name} over {n_items:,} images"),
        cluster=cluster,
    )  # fmt: skip
    with ActivationStore.open(extracted.summary.path) as random_store:
        if random_store.image_keys != net.image_keys:
            raise InputError(
                f"the random-weights extraction of run {net.trained.extract.id} holds other "
                "images than it; the images of the trained run have changed."
            )
    return extracted.run_id


def _score_random(
    engine: Engine,
    net: RandomNetwork,
    extract_run: int,
    progress: StepReporter,
    *,
    cluster: Cluster | None,
) -> int:
    """The random network scored on the images the trained scoring run scored, as it did."""

    score = net.trained.score
    params = dict(score.params or {})
    report = progress(f"score {net.model.name}")
    scored = score_extraction(
        engine, extract_run, layers=params.get("layers"),
        all_images=bool(params.get("all_images")),
        n_top_classes=int(params.get("n_top_classes", DEFAULT_TOP_CLASSES)),
        n_top_images=int(params.get("n_top_images", TOP_IMAGES)), rows=net.rows,
        rows_from=score.id, reuse=True, cluster=cluster,
        on_progress=(lambda _l, d, t: report(d, t)) if report else None,
    )  # fmt: skip
    return scored.run_id


def _dissect_random(
    engine: Engine,
    net: RandomNetwork,
    progress: StepReporter,
    *,
    device: str,
    cluster: Cluster | None,
) -> int | None:
    """The random network dissected with the trained model's newest dissection's settings."""

    if net.probe is None or net.trained.dissect is None:
        return None
    d = dict(net.trained.dissect.params or {})
    dissected = dissect_into_catalogue(
        engine, net.model, net.probe, list(d.get("layers") or []),
        categories=d.get("categories"), split=d.get("split"), limit=d.get("limit"),
        quantile=float(d.get("quantile", DISSECTION_QUANTILE)),
        iou_threshold=float(d.get("iou_threshold", IOU_DETECTOR_THRESHOLD)),
        top_n=int(d.get("top_n", DEFAULT_TOP_N)), device=device,
        on_progress=progress(f"dissect {net.model.name}"), reuse=True, cluster=cluster,
    )  # fmt: skip
    return dissected.run_id


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
    block_units: int = SCORE_BLOCK_UNITS,
    on_progress: Progress | None = None,
    reuse: bool = False,
) -> ChanceResult:
    """Score the trained activations ``repeats`` times against permuted labels.

    ``on_progress(done, total)`` counts (unit block × repeat) scorings.
    """
    if repeats < 1:
        raise InputError(f"repeats must be at least 1, got {repeats}.", argument="repeats")
    if block_units < 1:
        raise InputError(
            f"block_units must be at least 1, got {block_units}.", argument="block_units"
        )
    trained = trained_runs(engine, run)
    score = trained.score
    source = extraction_source(engine, trained.extract.id, then="run its baselines")
    with source.store() as store:
        names = check_layers(
            store, list(layers or (score.params or {}).get("layers") or store.layer_names),
            source.run.id,
        )  # fmt: skip
        rows = scored_rows(store, dict(score.params or {}))
        sizes = {name: store.layer_shape(name)[1] for name in names}
        labels, n_classes = store.labels[rows], store.n_classes
    n_images = int(rows.sum())
    params = {"score_run": score.id, "repeats": repeats, "seed": seed, "layers": names}

    def compute(step: Step) -> dict[str, list[dict[str, np.ndarray]]]:
        permutations = permuted_labels(labels, repeats, seed)
        total = sum(-(-units // block_units) for units in sizes.values()) * repeats
        with ActivationStore.open(source.path) as store:
            return _chance_scores(
                store, names, rows, permutations, n_classes, device=device,
                block_units=block_units, progress=_counting(step.progress, total),
            )  # fmt: skip

    def write(conn: Connection, run_id: int, results: dict[str, Any]) -> None:
        for name, repeats_metrics in results.items():
            unit_ids = source.model.layer(name).unit_ids
            for r, metrics in enumerate(repeats_metrics):
                write_chance_metrics(conn, run_id, unit_ids, r, metrics, n_images)
        link_baseline(conn, run_id, score.id)

    step = run_step(
        engine,
        source.run_spec(
            "chance",
            params,
            f"chance ({repeats} label permutations)",
            provenance={"seed": seed, "device": device},
        ),
        compute,
        write=write,
        stats=lambda _r: {"n_images": n_images, "repeats": repeats, "layers": names},
        on_progress=on_progress,
        reuse=reuse,
    )
    return ChanceResult(step.run_id, score.id, repeats, n_images, names, step.reused)


def _counting(progress: Callable[[int, int], None], total: int) -> Callable[[], None]:
    """A step counter reporting ``(done, total)`` after each step."""
    done = [0]

    def advance() -> None:
        done[0] += 1
        progress(done[0], total)

    return advance


def _chance_scores(
    store: ActivationStore,
    names: Sequence[str],
    rows: np.ndarray,
    permutations: Sequence[np.ndarray],
    n_classes: int,
    *,
    device: str | None,
    block_units: int,
    progress: Callable[[], None],
) -> dict[str, list[dict[str, np.ndarray]]]:
    """Per layer and repeat, every measure of every unit against that repeat's labels."""
    results: dict[str, list[dict[str, np.ndarray]]] = {}
    for name in names:
        per_repeat: list[list[dict[str, np.ndarray]]] = [[] for _ in permutations]
        for _start, _stop, block in store.iter_unit_blocks(name, block_units, rows=rows):
            for r, permuted in enumerate(permutations):
                per_repeat[r].append(score_units(block, permuted, n_classes, device=device))
                progress()
        results[name] = [_join(parts) for parts in per_repeat]
    return results


def _join(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One layer's scores from its unit blocks, with the layer's rules applied."""
    return ccmas_layer_rule({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})[0]
