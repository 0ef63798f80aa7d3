"""The Ray path (`--cluster`): the same HDF5 values and database rows as one process, resumes, retries.

One local Ray cluster of 2 CPUs serves the whole module (started by the
`ray_cluster` fixture, as ``--cluster local:2`` starts one); the CLI tests
join it by its address. Workers are killed with SIGKILL at a known point
(`tests.cluster_fixtures`: work that waits at a gate).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text

from catalogue.cluster import Cluster, UnitBlock, by_layer, connect, map_blocks, unit_blocks
from catalogue.cluster.extract import extract_on_cluster
from catalogue.data import ArrayImageDataset, load_digits
from catalogue.errors import InputError, NotFound
from catalogue.extraction import extract_activations
from catalogue.models import random_demo_model
from catalogue.pipeline.dissect import build_probe, dissect_into_catalogue
from catalogue.pipeline.extract import extract_into_catalogue
from catalogue.pipeline.scoring import score_extraction
from catalogue.store import ActivationStore
from catalogue.store.shards import shard_dir
from tests.cli import unitcat
from tests.cluster_fixtures import GatedDataset, GatedSums, gated_column_sums, kill_waiting_worker

REPO = Path(__file__).resolve().parents[1]
LAYERS = ["conv3", "conv5", "fc6", "fc8"]
N_IMAGES = 200
BATCH = 16
SHARD = 48  # 200 images → shards of 48 (a multiple of the batch): 5 shards, the last of 8
GROUPS = {"round": ["0", "6", "8", "9"], "straight": ["1", "4", "7"]}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Cluster]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_AUTH_MODE", "disabled")
        with connect("local:2") as cluster:
            yield cluster


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probe") / "digits-probe"
    build_probe("digits", n_images=40, image_size=32, seed=5, out_dir=out)
    return out


def _digits(model: Any) -> ArrayImageDataset:
    return load_digits("test", transform=model.transform)


def _datasets(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path) as h5:
        h5.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[...]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return out


def assert_same_store(got: Path, want: Path) -> None:
    """Every dataset of the two files, value for value, and the layers' attributes."""
    a, b = _datasets(got), _datasets(want)
    assert sorted(a) == sorted(b)
    assert "maps/conv5" in a
    for name in b:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    with ActivationStore.open(got) as g, ActivationStore.open(want) as w:
        assert g.params == w.params
        assert g.n_complete == w.n_complete == N_IMAGES
        assert g.layer_names == w.layer_names
        for name in w.layer_names:
            assert g.layer_info(name) == w.layer_info(name)


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-process extraction every sharded one must equal."""
    model = random_demo_model()
    path = tmp_path_factory.mktemp("reference") / "one.h5"
    extract_activations(
        model, _digits(model), LAYERS, path, limit=N_IMAGES, batch_size=BATCH, keep_maps=["conv5"]
    )
    return path


# ---------------------------------------------------------------- rows
RESULT_TABLES = ("unit_metrics", "unit_class_stats", "unit_group_metrics", "unit_top_image")
NATURAL = {
    "unit_group_metrics": ("JOIN class_group g ON g.id = t.group_id", "g.name AS group_name"),
    "dissection": (
        "JOIN concept c ON c.id = t.concept_id",
        "c.name AS concept, c.category AS concept_category",
    ),
}


def table_rows(engine: Engine, table: str) -> list[dict[str, Any]]:
    """Every row of a result table, its ids replaced by names (layer, unit, group, concept)."""
    join, names = NATURAL.get(table, ("", ""))
    sql = (
        f"SELECT l.name AS layer, u.unit_index{', ' + names if names else ''}, t.* FROM {table} t "
        f"JOIN unit u ON u.id = t.unit_id JOIN layer l ON l.id = u.layer_id {join}"
    )
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text(sql))]
    for row in rows:
        for key in ("run_id", "unit_id", "group_id", "concept_id"):
            row.pop(key, None)
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def assert_same_rows(got: list[dict[str, Any]], want: list[dict[str, Any]], what: str) -> None:
    assert len(got) == len(want) > 0, what
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys(), what
        for key, value in w.items():
            other = g[key]
            if isinstance(value, float) and math.isnan(value):
                assert isinstance(other, float) and math.isnan(other), (what, key, g)
            else:
                assert other == value, (what, key, g, w)


def _catalogue(
    engine: Engine, out: Path, probe: Path, cluster: Cluster | None
) -> tuple[int, int, int]:
    model = random_demo_model()
    extracted = extract_into_catalogue(
        engine, model, _digits(model), LAYERS, keep_maps=["conv5"], limit=N_IMAGES,
        batch_size=BATCH, out_path=out, cluster=cluster, shard_images=SHARD,
    )  # fmt: skip
    scored = score_extraction(
        engine, extracted.run_id, groups=GROUPS, block_units=24, cluster=cluster
    )
    dissected = dissect_into_catalogue(
        engine, model, probe, ["conv3", "conv5"], batch_size=8, top_n=3, cluster=cluster
    )
    return extracted.run_id, scored.run_id, dissected.run_id


@pytest.fixture
def second_engine(database_factory: Callable[..., str]) -> Iterator[Engine]:
    engine = create_engine(database_factory())
    yield engine
    engine.dispose()


def test_extract_score_and_dissect_on_the_cluster_equal_one_process(
    ray_cluster: Cluster,
    engine: Engine,
    second_engine: Engine,
    tmp_path: Path,
    probe_dir: Path,
    reference_store: Path,
) -> None:
    one = _catalogue(engine, tmp_path / "one.h5", probe_dir, None)
    ray = _catalogue(second_engine, tmp_path / "ray.h5", probe_dir, ray_cluster)

    assert_same_store(tmp_path / "one.h5", reference_store)
    assert_same_store(tmp_path / "ray.h5", reference_store)
    assert len(list(shard_dir(tmp_path / "ray.h5").glob("shard-*.h5"))) == 5
    with h5py.File(tmp_path / "ray.h5") as h5:
        assert h5["layers/fc6"].is_virtual  # the shards are read in place, not copied

    for table in (*RESULT_TABLES, "dissection"):
        want, got = table_rows(engine, table), table_rows(second_engine, table)
        assert_same_rows(got, want, table)
    for view in ("unit_catalogue", "layer_summary"):
        with engine.connect() as a, second_engine.connect() as b:
            want = [dict(r._mapping) for r in a.execute(text(f"SELECT * FROM {view}"))]
            got = [dict(r._mapping) for r in b.execute(text(f"SELECT * FROM {view}"))]
        key = lambda r: json.dumps(r, sort_keys=True, default=str)  # noqa: E731
        assert_same_rows(sorted(got, key=key), sorted(want, key=key), view)

    runs = "SELECT kind, params, stats FROM run WHERE id = ANY(:ids) ORDER BY id"
    with engine.connect() as a, second_engine.connect() as b:
        want = a.execute(text(runs), {"ids": list(one)}).all()
        got = b.execute(text(runs), {"ids": list(ray)}).all()
    assert [(r.kind, r.params) for r in got] == [(r.kind, r.params) for r in want]
    assert all(r.stats["cluster"] == "local:2" for r in got)
