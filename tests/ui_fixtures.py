"""A small real catalogue for the UI tests: an HDF5 activation store written with the
store, the runs of the run contract (extract → score with parent_id), and every kind
of result the UI shows (metrics, per-class stats, a class group, top images with
readable image files, dissection, an AM panel, ratings, a failed run).

The measures are *planted* (chosen per unit, with the descriptive ones computed
from the activations), so that each search preset has a known answer:

- misleading (precision > .75 and false-alarm rate > .9): conv5.1 and fc6.3;
  conv5.3 sits on the boundary (precision exactly .75) and fc6.4 has a low
  false-alarm rate, so neither is returned;
- localist: fc6.5 (tabby cat: its images all above every other image);
- dissection detector (IoU > .04): conv5.2 (sky); conv5.4 has IoU .03;
- rating consensus (≥ 80% said "object"): conv5.0; fc6.7 has 2 of 5.
- conv5.5 is dead (always 0).

A second scoring run (all images, fc6 only, neutral scores) gives fc6 units two runs
and checks that the jitter plot uses each run's own rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import Engine, insert

from catalogue.db import schema
from catalogue.db.registry import (
    LayerSpec,
    register_class_groups,
    register_concepts,
    register_dataset,
    register_model,
)
from catalogue.db.results import write_top_images, write_unit_metrics
from catalogue.db.runs import recorded_run
from catalogue.store import ActivationStore
from catalogue.store import LayerSpec as StoreLayer
from tests.catalogue_builders import neutral_metrics

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
)
PER_CLASS = 40
N_IMAGES = PER_CLASS * len(CLASS_NAMES)
LAYERS = (("conv5", "conv", 6), ("fc6", "fc", 8))
MONARCH, TABBY = 0, 5
BUS = ("n02", "n03", "n04")

#: (layer, unit) → planted measures (others: neutral or computed from the activations).
PLANTED: dict[tuple[str, int], dict[str, float]] = {
    ("conv5", 1): {
        "precision": 0.80,
        "false_alarm_rate": 0.93,
        "precision_class": 1,
        "mi_class": 1,
    },
    ("conv5", 3): {"precision": 0.75, "false_alarm_rate": 0.95},
    ("fc6", 3): {
        "precision": 0.95,
        "false_alarm_rate": 0.97,
        "ccmas": 0.92,
        "max_informedness": 0.42,
        "recall_at_mi": 0.55,
        "specificity_at_mi": 0.87,
        "precision_class": MONARCH,
        "ccmas_class": MONARCH,
        "mi_class": MONARCH,
        "mi_threshold": 2.0,
    },
    ("fc6", 4): {"precision": 0.90, "false_alarm_rate": 0.50, "precision_class": 2},
    ("fc6", 5): {
        "localist": 1,
        "localist_class": TABBY,
        "precision": 1.0,
        "false_alarm_rate": 0.0,
        "max_informedness": 1.0,
        "recall_at_p100": 1.0,
        "recall_at_p95": 1.0,
        "precision_class": TABBY,
        "mi_class": TABBY,
        "ccmas_class": TABBY,
        "mi_threshold": 6.0,
    },
    ("fc6", 6): {"precision": 0.70, "false_alarm_rate": 0.99},
}
MISLEADING = {("conv5", 1), ("fc6", 3)}
LOCALIST = {("fc6", 5)}
DETECTORS = {("conv5", 2)}
CONSENSUS = {("conv5", 0)}


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
    metrics: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)

    def key_of(self, unit_id: int) -> tuple[str, int]:
        return next(k for k, v in self.unit_ids.items() if v == unit_id)

    def scored(self, layer: str, unit: int, *, all_images: bool = False) -> np.ndarray:
        values = self.activations[layer][:, unit]
        return values if all_images else values[self.correct]


def _activations(rng: np.random.Generator, labels: np.ndarray) -> dict[str, np.ndarray]:
    n = labels.size
    out: dict[str, np.ndarray] = {}
    for name, _kind, units in LAYERS:
        block = np.maximum(rng.normal(0.0, 1.0, size=(n, units)), 0.0)
        out[name] = block.astype(np.float32)
    conv5, fc6 = out["conv5"], out["fc6"]
    conv5[:, 5] = 0.0  # dead unit
    monarch = labels == MONARCH
    fc6[:, 3] = np.where(rng.random(n) < 0.85, 0.0, rng.uniform(0.0, 4.0, n))
    fc6[monarch, 3] = np.where(
        rng.random(monarch.sum()) < 0.2, 0.0, rng.uniform(0.0, 10.0, monarch.sum())
    )
    tabby = labels == TABBY
    fc6[:, 5] = rng.uniform(0.0, 5.0, n)
    fc6[tabby, 5] = rng.uniform(6.0, 10.0, tabby.sum())
    conv5[labels == 1, 1] += 3.0
    return out


def _descriptive(values: np.ndarray) -> dict[str, float]:
    order = np.sort(values)[::-1]
    return {
        "mean_activation": float(values.mean()),
        "max_activation": float(values.max()),
        "frac_zero": float(np.mean(values == 0)),
        "top60_threshold": float(order[min(59, order.size - 1)]),
    }


def _class_stats(values: np.ndarray, labels: np.ndarray, n_classes: int) -> list[dict[str, Any]]:
    """Per class: mean, share non-zero, and the best informedness over thresholds (literal)."""
    thresholds = np.unique(values)
    above = values[None, :] >= thresholds[:, None]
    rows = []
    for c in range(n_classes):
        inside = labels == c
        hit = above[:, inside].mean(axis=1)
        false = above[:, ~inside].mean(axis=1)
        j = hit - false
        best = int(np.flatnonzero(j == j.max())[-1])
        rows.append(
            {
                "class_index": c,
                "mean_activation": float(values[inside].mean()),
                "frac_nonzero": float(np.mean(values[inside] != 0)),
                "informedness": float(j[best]),
                "informedness_threshold": float(thresholds[best]),
            }
        )
    for rank, row in enumerate(
        sorted(rows, key=lambda r: (-r["informedness"], r["class_index"])), 1
    ):
        row["rank_by_informedness"] = rank
    for rank, row in enumerate(
        sorted(rows, key=lambda r: (-r["mean_activation"], r["class_index"])), 1
    ):
        row["rank_by_mean"] = rank
    return rows


def _write_images(root: Path, keys: list[str], labels: np.ndarray) -> None:
    palette = np.random.default_rng(7).integers(0, 256, size=(len(CLASS_NAMES), 3))
    for key, label in zip(keys, labels.tolist(), strict=True):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.broadcast_to(palette[label].astype(np.uint8), (12, 12, 3))
        Image.fromarray(np.ascontiguousarray(pixels)).save(path)


def build_ui_catalogue(engine: Engine, url: str, folder: Path, *, seed: int = 0) -> UICatalogue:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASS_NAMES)), PER_CLASS)
    predictions = labels.copy()
    predictions[::10] = (labels[::10] + 1) % len(CLASS_NAMES)  # every 10th image misclassified
    correct = predictions == labels
    keys = [f"n{c:02d}/img_{i:04d}.png" for i, c in enumerate(labels.tolist())]
    activations = _activations(rng, labels)

    image_root = folder / "images"
    h5_path = folder / "toynet.h5"
    class_keys = [f"n{i:02d}" for i in range(len(CLASS_NAMES))]
    with ActivationStore.create(
        h5_path,
        [StoreLayer(n, u, kind=k, position=i) for i, (n, k, u) in enumerate(LAYERS)],
        class_keys=class_keys,
        class_names=CLASS_NAMES,
        params={"model": "toynet"},
        chunk_rows=128,
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
            kind="folder",
            source=str(image_root),
            class_keys=class_keys,
            class_names=list(CLASS_NAMES),
        )
        group_ids = register_class_groups(conn, dataset, {"bus": list(BUS)})
    unit_ids = {
        (layer, int(i)): int(uid)
        for layer, record in model.layers.items()
        for i, uid in enumerate(record.unit_ids)
    }

    with recorded_run(
        engine,
        "extract",
        {"model": "toynet", "root": str(image_root)},
        label="toy-extract",
        model_id=model.id,
        dataset_id=dataset.id,
        h5_path=str(h5_path),
    ) as extract:
        pass

    metrics: dict[tuple[str, int], dict[str, Any]] = {}
    top_rows: set[int] = set()

    def write_scores(conn: Any, run_id: int) -> None:
        for layer, _kind, units in LAYERS:
            block = activations[layer][correct]
            scored_labels = labels[correct]
            m = neutral_metrics(units)
            rows_stats = []
            for u in range(units):
                values = block[:, u]
                for name, value in _descriptive(values).items():
                    m[name][u] = value
                m["precision"][u] = 0.1 + 0.05 * u
                m["false_alarm_rate"][u] = 0.6 + 0.02 * u
                m["max_informedness"][u] = 0.05 * (u + 1)
                m["ccmas"][u] = 0.1 * u
                m["classes_in_top100"][u] = 12.0 - u
                m["recall_at_p95"][u] = 0.01 * u
                m["class_selectivity_index"][u] = 0.05 * u
                m["mi_threshold"][u] = m["top60_threshold"][u] / 2
                for name, value in PLANTED.get((layer, u), {}).items():
                    m[name][u] = value
                if values.max() == 0:
                    m["ccmas"][u] = np.nan
                metrics[(layer, u)] = {name: m[name][u] for name in m}
                for row in _class_stats(values, scored_labels, len(CLASS_NAMES)):
                    rows_stats.append({"run_id": run_id, "unit_id": unit_ids[(layer, u)], **row})
            ids = model.layer(layer).unit_ids
            write_unit_metrics(conn, run_id, ids, m, n_images=int(correct.sum()))
            conn.execute(insert(schema.UnitClassStats.__table__), rows_stats)
            top = np.argsort(-block, axis=0, kind="stable")[:10].T  # U × 10 rows among scored
            scored_index = np.flatnonzero(correct)
            top_rows.update(scored_index[top].reshape(-1).tolist())
            write_top_images(
                conn,
                run_id,
                ids,
                scored_index[top],
                np.take_along_axis(block, top.T, axis=0).T,
                labels,
                keys,
            )
            group = np.isin(scored_labels, [2, 3, 4])
            conn.execute(
                insert(schema.UnitGroupMetrics.__table__),
                [
                    {
                        "run_id": run_id,
                        "unit_id": int(ids[u]),
                        "group_id": group_ids["bus"],
                        "n_nonzero_in": float(np.mean(block[group, u] > 0)),
                        "n_nonzero_out": float(np.mean(block[~group, u] > 0)),
                        "mu_in": float(block[group, u].mean()),
                        "mu_out": float(block[~group, u].mean()),
                        "precision": 0.25,
                        "ccmas": 0.1,
                        "max_informedness": 0.2 + 0.01 * u,
                        "mi_threshold": 1.0,
                    }
                    for u in range(units)
                ],
            )

    with recorded_run(
        engine,
        "score",
        {"layers": [n for n, _, _ in LAYERS], "all_images": False, "parent": extract.id},
        label="toy-score",
        model_id=model.id,
        dataset_id=dataset.id,
        parent_id=extract.id,
    ) as score:
        score.complete(write_scores)

    shown = sorted(top_rows)  # only the top images need files (thumbnails)
    _write_images(image_root, [keys[i] for i in shown], labels[shown])

    def write_all_images(conn: Any, run_id: int) -> None:
        units = model.layer("fc6").n_units
        m = neutral_metrics(units)
        for u in range(units):
            for name, value in _descriptive(activations["fc6"][:, u]).items():
                m[name][u] = value
        write_unit_metrics(conn, run_id, model.layer("fc6").unit_ids, m, n_images=N_IMAGES)

    with recorded_run(
        engine,
        "score",
        {"layers": ["fc6"], "all_images": True, "parent": extract.id},
        label="toy-score-all",
        model_id=model.id,
        dataset_id=dataset.id,
        parent_id=extract.id,
    ) as score_all:
        score_all.complete(write_all_images)

    with engine.begin() as conn:
        concepts = register_concepts(
            conn, "toy-probe", [(1, "sky", "scene"), (2, "grass", "material"), (3, "red", "color")]
        )
    ious = {
        0: (0.01, 0.005),
        1: (0.02, 0.01),
        2: (0.08, 0.02),
        3: (0.015, 0.01),
        4: (0.03, 0.02),
        5: (0.0, 0.0),
    }

    def write_dissection(conn: Any, run_id: int) -> None:
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
        conn.execute(insert(schema.Dissection.__table__), rows)

    with recorded_run(
        engine, "dissect", {"probe": "toy-probe", "layers": ["conv5"]}, model_id=model.id
    ) as dissect:
        dissect.complete(write_dissection)

    panel_path = folder / "am" / "fc6_3.png"
    panel_path.parent.mkdir(parents=True, exist_ok=True)
    panel = np.zeros((32, 96, 3), dtype=np.uint8)
    panel[:, :, 0] = np.linspace(0, 255, 96, dtype=np.uint8)[None, :]
    Image.fromarray(panel).save(panel_path)

    def write_am(conn: Any, run_id: int) -> None:
        conn.execute(
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
        participants = (
            conn.execute(
                insert(schema.Participant.__table__).returning(schema.Participant.__table__.c.id),
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
        score_run=score.id,
        all_images_run=score_all.id,
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
        metrics=metrics,
    )
