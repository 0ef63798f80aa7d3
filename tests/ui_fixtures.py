"""A small real catalogue for the UI tests, built the way users build one: an HDF5
activation store written with `catalogue.store`, an extraction run that points at it,
and scoring runs made by `catalogue.pipeline.scoring.score_extraction` (the real
scorer). Dissection, an AM panel, ratings and a failed run are added as rows, since
their pipelines need probe sets and models the UI tests do not.

40 classes × 80 images; every 10th image is misclassified, so the default scoring run
(correct images only) scores 72 images per class, 2,880 in all. Most units are ReLU'd
noise; some are designed so that the measures put them in the paper's categories
(the numbers follow from docs/DESIGN.md's definitions, worked out below):

- fc6.3, the paper's fc6.1199: 46 monarch images far above everything, the other 26 at
  1.0 together with 660 images of other classes; the rest 0. Top-60 precision =
  (46 + 14·26/686)/60 = .776 (ties at the cut-off shared out); the best informedness is
  at threshold 1.0: 1 − 660/2,808 = .765, where the false-alarm rate is 660/732 = .902.
  A "detector" by precision that fires mostly for other classes.
- conv5.1: the same for ladybirds with 48 above, 24 tied with 700 others at 2.0:
  precision (48 + 12·24/724)/60 = .807, false-alarm rate 700/772 = .907.
- fc6.4: a clean school-bus detector (60 of 72 buses above all else): precision 1,
  false-alarm rate 0 — a precision detector that is not misleading.
- fc6.5: localist for tabby cat (all tabbies above every other image).
- conv5.5: dead (always 0).
Misclassified images are 0 on the designed units, so the all-images run (fc6 only)
scores fc6.3 as misleading again but fc6.5 as not localist (its 8 misclassified
tabbies sit at 0).

Rows besides scoring: conv5.2 is a dissection detector (sky, IoU .08; conv5.4 .03);
conv5.0 has 5 of 5 "yes" ratings (consensus), fc6.7 2 of 5; fc6.3 has an AM panel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.pool import NullPool

from catalogue.db import schema
from catalogue.db.identities import (
    LayerSpec,
    register_concepts,
    register_dataset,
    register_model,
)
from catalogue.db.runs import recorded_run
from catalogue.pipeline.scoring import score_extraction
from catalogue.store import ActivationStore
from catalogue.store import LayerSpec as StoreLayer

CLASS_NAMES = (
    "monarch butterfly",
    "ladybird",
    "school bus",
    "trolleybus",
    "minibus",
    "tabby cat",
    "goldfish",
    "daisy",
    "teapot",
    "volcano",
    "pizza",
    "castle",
    *(f"object {i}" for i in range(12, 40)),
)
N_CLASSES = len(CLASS_NAMES)
PER_CLASS = 80
N_IMAGES = PER_CLASS * N_CLASSES
LAYERS = (("conv5", "conv", 6), ("fc6", "fc", 8))
MONARCH, LADYBIRD, SCHOOL_BUS, TABBY = 0, 1, 2, 5
BUS = ("n002", "n003", "n004")

#: (layer, unit, scoring run name) of the rows each search preset must return
MISLEADING = {("conv5", 1, "correct"), ("fc6", 3, "correct"), ("fc6", 3, "all")}
LOCALIST = {("fc6", 5, "correct")}
DETECTORS = {("conv5", 2, "correct")}
CONSENSUS = {("conv5", 0, "correct")}
#: the designed units' measures in the default run (see the module docstring)
FC6_3 = {
    "precision": (46 + 14 * 26 / 686) / 60,
    "false_alarm_rate": 660 / 732,
    "max_informedness": 1 - 660 / 2808,
    "mi_threshold": 1.0,
    "top60_threshold": 1.0,
}
CONV5_1 = {"precision": (48 + 12 * 24 / 724) / 60, "false_alarm_rate": 700 / 772}


@dataclass
class UICatalogue:
    url: str
    score_run: int
    all_images_run: int
    extract_run: int
    failed_run: int
    am_run: int
    h5_path: Path
    image_root: Path
    panel_path: Path
    unit_ids: dict[tuple[str, int], int]
    activations: dict[str, np.ndarray]  # layer → N × U, every stored image
    labels: np.ndarray
    correct: np.ndarray
    run_names: dict[int, str] = field(default_factory=dict)

    def scored(self, layer: str, unit: int, *, all_images: bool = False) -> np.ndarray:
        values = self.activations[layer][:, unit]
        return values if all_images else values[self.correct]

    def rows(self, frame: object) -> set[tuple[str, int, str]]:
        """(layer, unit, run name) of the rows of a result table."""
        return {
            (layer, int(unit), self.run_names[int(run)])
            for layer, unit, run in zip(frame["layer"], frame["unit"], frame["run_id"], strict=True)  # type: ignore[index]
        }


def _design(
    rng: np.random.Generator, labels: np.ndarray, correct: np.ndarray
) -> dict[str, np.ndarray]:
    n = labels.size
    out = {
        name: np.maximum(rng.normal(0.0, 1.0, size=(n, units)), 0.0).astype(np.float32)
        for name, _kind, units in LAYERS
    }
    conv5, fc6 = out["conv5"], out["fc6"]
    conv5[:, 5] = 0.0

    def tie_block(values: np.ndarray, cls: int, n_high: int, n_others: int, level: float) -> None:
        values[:] = 0.0
        own = np.flatnonzero(correct & (labels == cls))
        values[own[:n_high]] = rng.uniform(8.0, 10.0, n_high)
        values[own[n_high:]] = level
        others = np.flatnonzero(correct & (labels != cls))
        values[rng.choice(others, n_others, replace=False)] = level

    tie_block(fc6[:, 3], MONARCH, 46, 660, 1.0)
    tie_block(conv5[:, 1], LADYBIRD, 48, 700, 2.0)

    bus = fc6[:, 4]
    bus[:] = np.where(rng.random(n) < 0.1, rng.uniform(0.0, 2.0, n), 0.0)
    own = np.flatnonzero(correct & (labels == SCHOOL_BUS))
    bus[own] = 0.0
    bus[own[:60]] = rng.uniform(6.0, 9.0, 60)

    tabby = fc6[:, 5]
    tabby[:] = rng.uniform(0.0, 5.0, n)
    tabby[labels == TABBY] = rng.uniform(6.0, 10.0, int(np.sum(labels == TABBY)))

    for values in (fc6[:, 3], conv5[:, 1], bus, tabby):
        values[~correct] = 0.0
    return out


def _write_images(root: Path, keys: list[str], labels: np.ndarray) -> None:
    palette = np.random.default_rng(7).integers(0, 256, size=(len(CLASS_NAMES), 3))
    for key, label in zip(keys, labels.tolist(), strict=True):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.broadcast_to(palette[label].astype(np.uint8), (12, 12, 3))
        Image.fromarray(np.ascontiguousarray(pixels)).save(path)


def build_ui_catalogue(engine: Engine, url: str, folder: Path, *, seed: int = 0) -> UICatalogue:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    predictions = labels.copy()
    predictions[::10] = (labels[::10] + 1) % N_CLASSES  # every 10th image misclassified
    correct = predictions == labels
    keys = [f"n{c:03d}/img_{i:05d}.png" for i, c in enumerate(labels.tolist())]
    activations = _design(rng, labels, correct)
    class_keys = [f"n{i:03d}" for i in range(N_CLASSES)]

    image_root = folder / "images"
    h5_path = folder / "toynet.h5"
    with ActivationStore.create(
        h5_path,
        [StoreLayer(n, u, kind=k, position=i) for i, (n, k, u) in enumerate(LAYERS)],
        class_keys=class_keys,
        class_names=CLASS_NAMES,
        params={"model": "toynet"},
        chunk_rows=512,
    ) as store:
        store.append(activations, labels=labels, predictions=predictions, image_keys=keys)
        store.finish()

    with engine.begin() as conn:
        model = register_model(
            conn,
            name="toynet",
            architecture="toy-cnn",
            weights="random",
            checksum="ui-fixture",
            layers=[LayerSpec(n, k, u, i) for i, (n, k, u) in enumerate(LAYERS)],
        )
        dataset = register_dataset(
            conn,
            name="toy-imagenet",
            kind="ImageFolderDataset",
            source=str(image_root),
            class_keys=class_keys,
            class_names=list(CLASS_NAMES),
        )
    unit_ids = {
        (layer, int(i)): int(uid)
        for layer, record in model.layers.items()
        for i, uid in enumerate(record.unit_ids)
    }
    with recorded_run(
        engine,
        "extract",
        {"model": "toynet", "dataset": "toy-imagenet", "dataset_source": str(image_root)},
        label="toynet on toy-imagenet",
        model_id=model.id,
        dataset_id=dataset.id,
        h5_path=str(h5_path),
    ) as extract:
        pass

    score = score_extraction(engine, extract.id, groups={"bus": list(BUS)})
    score_all = score_extraction(engine, extract.id, layers=["fc6"], all_images=True)

    with engine.connect() as conn:  # thumbnails: only the top images need files
        shown = (
            conn.execute(text("SELECT DISTINCT image_index FROM unit_top_image")).scalars().all()
        )
    _write_images(image_root, [keys[i] for i in shown], labels[shown])

    with engine.begin() as conn:
        concepts = register_concepts(
            conn, "toy-probe", [(1, "sky", "scene"), (2, "grass", "material"), (3, "red", "color")]
        )
    ious = {0: (0.01, 0.005), 1: (0.02, 0.01), 2: (0.08, 0.02), 3: (0.015, 0.01), 4: (0.03, 0.02)}

    def write_dissection(conn: object, run_id: int) -> None:
        rows = []
        for u, (best, second) in ious.items():
            best_concept = concepts[1] if u == 2 else concepts[2]
            for rank, (concept, iou) in enumerate(((best_concept, best), (concepts[3], second)), 1):
                rows.append(
                    {
                        "run_id": run_id,
                        "unit_id": unit_ids[("conv5", u)],
                        "concept_id": concept,
                        "rank": rank,
                        "iou": iou,
                        "threshold": 1.5,
                        "is_detector": iou > 0.04,
                    }
                )
        conn.execute(insert(schema.Dissection.__table__), rows)  # type: ignore[attr-defined]

    with recorded_run(
        engine, "dissect", {"probe": "toy-probe", "layers": ["conv5"]}, model_id=model.id
    ) as dissect:
        dissect.complete(write_dissection)

    panel_path = folder / "am" / "fc6_3.png"
    panel_path.parent.mkdir(parents=True, exist_ok=True)
    panel = np.zeros((32, 96, 3), dtype=np.uint8)
    panel[:, :, 0] = np.linspace(0, 255, 96, dtype=np.uint8)[None, :]
    Image.fromarray(panel).save(panel_path)

    def write_am(conn: object, run_id: int) -> None:
        conn.execute(  # type: ignore[attr-defined]
            insert(schema.AMPanel.__table__),
            [
                {
                    "run_id": run_id,
                    "unit_id": unit_ids[("fc6", 3)],
                    "method": "toy-am",
                    "params": {"steps": 1},
                    "path": str(panel_path),
                    "activations": [12.0, 15.0, 18.0],
                    "dataset_max": 10.0,
                }
            ],
        )

    with recorded_run(engine, "am", {"layers": ["fc6"], "units": [3]}, model_id=model.id) as am:
        am.complete(write_am)

    with engine.begin() as conn:
        table = schema.Participant.__table__
        participants = (
            conn.execute(
                insert(table).returning(table.c.id),
                [{"code": f"p{i:02d}", "list_index": 0} for i in range(5)],
            )
            .scalars()
            .all()
        )
        ratings = []
        for i, pid in enumerate(participants):
            ratings.append(
                {
                    "participant_id": pid,
                    "unit_id": unit_ids[("conv5", 0)],
                    "answer": True,
                    "estimate": "60-80",
                    "names": ["sky", "cloud"] if i < 3 else ["sky"],
                    "source": "import",
                }
            )
            yes = i < 2
            ratings.append(
                {
                    "participant_id": pid,
                    "unit_id": unit_ids[("fc6", 7)],
                    "answer": yes,
                    "estimate": "0-20" if yes else None,
                    "names": ["dog"] if yes else [],
                    "source": "import",
                }
            )
        conn.execute(insert(schema.Rating.__table__), ratings)

    failed_id = -1
    try:
        with recorded_run(engine, "ablate", {"layers": ["fc6"]}, model_id=model.id) as ablate:
            failed_id = ablate.id
            raise RuntimeError("toy ablation failed: out of patience")
    except RuntimeError:
        pass

    return UICatalogue(
        url=url,
        score_run=score.run_id,
        all_images_run=score_all.run_id,
        extract_run=extract.id,
        failed_run=failed_id,
        am_run=am.id,
        h5_path=h5_path,
        image_root=image_root,
        panel_path=panel_path,
        unit_ids=unit_ids,
        activations=activations,
        labels=labels,
        correct=correct,
        run_names={score.run_id: "correct", score_all.run_id: "all"},
    )


@pytest.fixture(scope="module")
def catalogue(
    database_factory: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> UICatalogue:
    """The UI test catalogue in a fresh database, built once per test module."""
    url = database_factory()
    engine = create_engine(url, poolclass=NullPool)
    built = build_ui_catalogue(engine, url, tmp_path_factory.mktemp("ui-catalogue"))
    engine.dispose()
    return built
