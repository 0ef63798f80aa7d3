"""The Ray path (`--cluster`): the same HDF5 values and database rows as one process, resumes, retries.

One local Ray cluster of 2 CPUs serves the whole module (started by the
`ray_cluster` fixture, as ``--cluster local:2`` starts one); the commands run
in this process join it, a second driver joins it by its address. The test
that kills a driver comes first, so that the workers it leaves serve the rest. Workers are killed with SIGKILL at a known point
(`tests.cluster_gates`: work that waits at a gate).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner

from catalogue.cluster import Cluster, by_layer, connect, map_blocks, run_tasks, unit_blocks
from catalogue.cluster.handles import ModelHandle
from catalogue.data import ArrayImageDataset, load_digits
from catalogue.errors import InputError
from catalogue.extraction import extract_activations
from catalogue.models import load_demo_checkpoint, random_demo_model, random_weights
from catalogue.models.demo_cnn import train_demo
from catalogue.pipeline.baseline import chance_baseline, random_weights_baseline
from catalogue.pipeline.dissect import build_probe
from catalogue.store import ActivationStore
from catalogue.store.shards import Shard, shard_dir
from ingest.options import cli_message
from tests.cluster_datasets import GatedDataset
from tests.cluster_gates import (
    GatedSums,
    gated_column_sums,
    kill_waiting_worker,
    loaded_checksum,
    wait_until_gone,
    waiting_pid,
)

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


def cli(*args: str, database_url: str) -> str:
    """Run a `unitcat` command in this process (it joins this process's Ray cluster); its output."""
    from ingest.cli import app

    result = CliRunner().invoke(app, list(args), env={"DATABASE_URL": database_url})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _catalogue(
    database_url: str, checkpoint: Path, out: Path, probe: Path, groups: Path, *cluster: str
) -> None:
    """Extract, score and dissect the test catalogue with the CLI (``cluster``: --cluster local:2)."""
    extracted = cli(
        "ingest", "extract", "--model", str(checkpoint), "--dataset", "digits:test",
        "--layers", ",".join(LAYERS), "--limit", str(N_IMAGES), "--batch-size", str(BATCH),
        "--keep-maps", "--out", str(out), "--shard-images", str(SHARD), *cluster,
        database_url=database_url,
    )  # fmt: skip
    run_id = extracted.split("run ", 1)[1].split(":", 1)[0]
    cli("ingest", "score", run_id, "--groups", str(groups), "--block-units", "24", *cluster,
        database_url=database_url)  # fmt: skip
    cli("ingest", "dissect", "--model", str(checkpoint), "--probe", str(probe), "--layers",
        "conv3,conv5", "--batch-size", "8", *cluster, database_url=database_url)  # fmt: skip


@pytest.fixture
def second_database(database_factory: Callable[..., str]) -> Iterator[tuple[str, Engine]]:
    url = database_factory()
    engine = create_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo checkpoint file (one quick epoch on 200 digits): a model the CLI loads by path."""
    out = tmp_path_factory.mktemp("checkpoint") / "demo.pt"
    return train_demo("digits", epochs=1, limit=200, out_path=out).checkpoint


# ---------------------------------------------------------------- resume and retry
KILLED_DRIVER = """
import sys
from pathlib import Path
from catalogue.cluster import connect
from catalogue.cluster.handles import ModelHandle
from catalogue.extraction import extract_activations
from catalogue.data import load_digits
from catalogue.models.demo_cnn import train_demo
from catalogue.models import load_demo_checkpoint, random_demo_model
from tests.cluster_datasets import GatedDataset

address, gate, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
model = random_demo_model()
data = GatedDataset(load_digits("test", transform=model.transform), gate, int(sys.argv[4]))
with connect(address) as cluster:
    extract_activations(model, data, {layers!r}, out, limit={n}, batch_size={batch},
                        keep_maps=["conv5"], shard_images={shard}, cluster=cluster)
"""


def _gated_digits(gate: Path, index: int) -> GatedDataset:
    model = random_demo_model()
    gate.mkdir(exist_ok=True)
    return GatedDataset(_digits(model), gate, index)


def _extract_gated(cluster: Cluster, data: GatedDataset, out: Path, **kwargs: Any) -> Any:
    return extract_activations(
        random_demo_model(), data, LAYERS, out, limit=N_IMAGES, batch_size=BATCH,
        keep_maps=["conv5"], shard_images=SHARD, cluster=cluster, **kwargs,
    )  # fmt: skip


def shard_states_once_released(out: Path) -> dict[str, tuple[str, int]]:
    """Each shard file's (state, images gone through), once the killed run's other worker
    has let go of its file."""
    deadline = time.monotonic() + 300
    while True:
        try:
            out_states = {}
            for p in sorted(shard_dir(out).glob("shard-*.h5")):
                start, stop = (int(part) for part in p.stem.split("-")[1:3])
                out_states[p.name] = Shard(0, start, stop, p).state()
            return out_states
        except InputError as exc:  # still open in a worker that Ray has not ended yet
            if "open in another process" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_killed_extraction_resumes_shard_by_shard(
    ray_cluster: Cluster, tmp_path: Path, reference_store: Path
) -> None:
    gate, out = tmp_path / "gate", tmp_path / "killed.h5"
    gate.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(KILLED_DRIVER).format(layers=LAYERS, n=N_IMAGES, batch=BATCH, shard=SHARD)
    )
    ray_cluster.close()  # the other driver's workers need this driver's CPUs
    # Image 150 lies in shard 3 (144:192), handed out only after two shards were finished.
    driver = subprocess.Popen(
        [sys.executable, str(script), ray_cluster.address, str(gate), str(out), "150"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    try:
        worker = waiting_pid(gate, driver)
        driver.send_signal(signal.SIGKILL)
        assert driver.wait() == -signal.SIGKILL
    finally:
        if driver.poll() is None:
            driver.kill()
    wait_until_gone(worker)  # Ray ends the workers of a driver that died

    assert not out.exists()  # the run's file is written only when every shard is complete
    shard_states = shard_states_once_released(out)
    states = {name: state for name, (state, _done) in shard_states.items()}
    complete = sorted(name for name, state in states.items() if state == "complete")
    assert len(complete) >= 2
    assert states["shard-0000000144-0000000192.h5"] != "complete"
    stamps = {name: (shard_dir(out) / name).stat().st_mtime_ns for name in complete}

    (gate / "open").touch()
    seen: list[int] = []
    summary = _extract_gated(
        ray_cluster, _gated_digits(gate, 150), out, on_progress=lambda d, _t: seen.append(d)
    )
    runtime = summary.runtime
    names = [f"shard-{s:010d}-{min(s + SHARD, N_IMAGES):010d}.h5" for s in range(0, 200, 48)]
    assert [names[i] for i in runtime["shards_reused"]] == complete
    partial = [i for i, name in enumerate(names) if states.get(name) == "partial"]
    assert runtime["shards_resumed"] == partial  # a file cut off before its first flush is redone
    redone = [i for i, name in enumerate(names) if name not in complete]
    assert 3 in redone
    for i in redone:
        assert (shard_dir(out) / names[i]).stat().st_mtime_ns > max(stamps.values())
    for name, stamp in stamps.items():  # finished shards are not written again
        assert (shard_dir(out) / name).stat().st_mtime_ns == stamp
    # the complete shards, and the bands of a shard the other worker was killed in
    finished = sum(done for state, done in shard_states.values() if state != "unreadable")
    assert seen[0] == finished  # progress starts at what the killed run finished
    assert seen[-1] == N_IMAGES
    assert summary.resumed_from == finished
    assert_same_store(out, reference_store)


def test_a_worker_killed_mid_shard_is_restarted_and_the_shard_redone(
    ray_cluster: Cluster, tmp_path: Path, reference_store: Path
) -> None:
    gate = tmp_path / "gate"
    data = _gated_digits(gate, 60)  # in shard 1 (48:96)
    killer = kill_waiting_worker(gate)
    summary = _extract_gated(ray_cluster, data, tmp_path / "retried.h5")
    killer.join()
    assert len(killer.killed) == 1  # type: ignore[attr-defined]
    assert summary.runtime["shards_retried"] == [1]
    assert summary.runtime["shards_reused"] == []
    assert_same_store(tmp_path / "retried.h5", reference_store)


def test_a_unit_block_whose_worker_is_killed_is_computed_again(
    ray_cluster: Cluster, tmp_path: Path
) -> None:
    matrix = np.random.default_rng(4).random((30, 11))
    blocks = unit_blocks({"fc": 11}, 3)  # 0:3, 3:6, 6:9, 9:11
    gate = tmp_path / "gate"
    gate.mkdir()
    killer = kill_waiting_worker(gate)
    results = map_blocks(ray_cluster, gated_column_sums, GatedSums(matrix, gate, blocks[2]), blocks)
    killer.join()
    (killed,) = killer.killed  # type: ignore[attr-defined]
    pids = [pid for pid, _ in results]
    assert pids[2] != killed  # the block came back from the restarted worker
    sums = by_layer(blocks, [s for _, s in results])["fc"]
    np.testing.assert_array_equal(np.concatenate(sums), matrix.sum(axis=0))
    # without a cluster the same function runs here, block by block, to the same result
    here = map_blocks(None, gated_column_sums, GatedSums(matrix, gate, blocks[2]), blocks)
    np.testing.assert_array_equal(np.concatenate([s for _, s in here]), matrix.sum(axis=0))


def _ablation_file(engine: Engine) -> Path:
    """The HDF5 file of the database's ablation run."""
    with engine.connect() as conn:
        return Path(
            conn.execute(text("SELECT h5_path FROM run WHERE kind = 'ablate'")).scalar_one()
        )


def test_extract_score_dissect_and_ablate_with_cluster_local_2_equal_one_process(
    ray_cluster: Cluster,
    database_url: str,
    engine: Engine,
    second_database: tuple[str, Engine],
    checkpoint: Path,
    tmp_path: Path,
    probe_dir: Path,
) -> None:
    groups = tmp_path / "groups.yaml"
    groups.write_text("".join(f"{g}: [{', '.join(keys)}]\n" for g, keys in GROUPS.items()))
    ray_url, ray_engine = second_database
    _catalogue(database_url, checkpoint, tmp_path / "one.h5", probe_dir, groups)
    _catalogue(ray_url, checkpoint, tmp_path / "ray.h5", probe_dir, groups, "--cluster", "local:2")

    assert_same_store(tmp_path / "ray.h5", tmp_path / "one.h5")
    assert len(list(shard_dir(tmp_path / "ray.h5").glob("shard-*.h5"))) == 5
    assert not shard_dir(tmp_path / "one.h5").exists()
    with h5py.File(tmp_path / "ray.h5") as h5:
        assert h5["layers/fc6"].is_virtual  # the shards are read in place, not copied

    for table in (*RESULT_TABLES, "dissection"):
        want, got = table_rows(engine, table), table_rows(ray_engine, table)
        assert_same_rows(got, want, table)
    for view in ("unit_catalogue", "layer_summary"):
        with engine.connect() as a, ray_engine.connect() as b:
            want = [dict(r._mapping) for r in a.execute(text(f"SELECT * FROM {view}"))]
            got = [dict(r._mapping) for r in b.execute(text(f"SELECT * FROM {view}"))]
        key = lambda r: json.dumps(r, sort_keys=True, default=str)  # noqa: E731
        assert_same_rows(sorted(got, key=key), sorted(want, key=key), view)

    runs = "SELECT kind, params, stats FROM run ORDER BY id"
    with engine.connect() as a, ray_engine.connect() as b:
        want, got = a.execute(text(runs)).all(), b.execute(text(runs)).all()
    assert [(r.kind, r.params) for r in got] == [(r.kind, r.params) for r in want]
    assert [r.kind for r in got] == ["extract", "score", "dissect"]
    assert all(r.stats["cluster"] == "local:2" for r in got)
    assert all("cluster" not in r.stats for r in want)

    # ablation: blocks of configurations as tasks (conv5 from the images on the workers, fc6
    # from the sharded store), mean replacement, class curves: the same matrix and rows
    ablate = ["--layers", "conv5,fc6", "--value", "mean", "--images", "100",
              "--curve-classes", "0-2", "--curve-max-k", "8", "--batch-size", "16",
              "--model", str(checkpoint)]  # fmt: skip
    cli("ingest", "ablate", "1", *ablate, database_url=database_url)
    want_h5 = _datasets(_ablation_file(engine))  # now: the other database's run has its path
    cli("ingest", "ablate", "1", *ablate, "--block-units", "10", "--cluster", "local:2",
        database_url=ray_url)  # fmt: skip
    got_h5 = _datasets(_ablation_file(ray_engine))
    assert sorted(got_h5) == sorted(want_h5)
    assert got_h5["layers/fc6/correct"].shape == (128, 10)
    for name, values in want_h5.items():
        np.testing.assert_array_equal(got_h5[name], values, err_msg=name)
    for table in ("unit_ablation", "unit_ablation_class"):
        assert_same_rows(table_rows(ray_engine, table), table_rows(engine, table), table)
    curves = (
        "SELECT l.name AS layer, c.class_index, c.ranking, c.k, c.units, c.class_accuracy, "
        "c.other_accuracy FROM class_ablation_curve c JOIN layer l ON l.id = c.layer_id "
        "ORDER BY 1, 2, 3, 4"
    )
    with engine.connect() as a, ray_engine.connect() as b:
        want_curves = [tuple(r) for r in a.execute(text(curves))]
        got_curves = [tuple(r) for r in b.execute(text(curves))]
        ablated = b.execute(text("SELECT params, stats FROM run WHERE kind = 'ablate'")).one()
    assert got_curves == want_curves and len(want_curves) > 30
    assert ablated.stats["cluster"] == "local:2"

    # random-weights baseline: the random network rebuilt on the workers from the trained
    # checkpoint's recipe and the seed; its extraction, scoring and dissection equal one process
    trained = load_demo_checkpoint(checkpoint)
    assert ModelHandle.of(random_weights(trained, 0)).module_ref is None  # by its recipe
    want_base = random_weights_baseline(engine, 1, model=trained, batch_size=BATCH)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("UNITCAT_HOME", str(tmp_path / "ray-home"))  # its own file, not the other's
        got_base = random_weights_baseline(
            ray_engine, 1, model=trained, batch_size=BATCH, cluster=ray_cluster
        )
    assert got_base.model == want_base.model == "demo:digits@random-seed0"
    assert got_base.dissect_run is not None
    with engine.connect() as a, ray_engine.connect() as b:
        base = "SELECT h5_path, stats FROM run WHERE id = :id"
        want_run = a.execute(text(base), {"id": want_base.extract_run}).one()
        got_run = b.execute(text(base), {"id": got_base.extract_run}).one()
        links = "SELECT id, kind, baseline_of FROM run ORDER BY id"
        assert b.execute(text(links)).all() == a.execute(text(links)).all()
    assert got_run.stats["cluster"] == "local:2" and "cluster" not in want_run.stats
    assert got_run.h5_path != want_run.h5_path and shard_dir(got_run.h5_path).is_dir()
    got_h5, want_h5 = _datasets(Path(got_run.h5_path)), _datasets(Path(want_run.h5_path))
    assert sorted(got_h5) == sorted(want_h5)
    for name, values in want_h5.items():
        np.testing.assert_array_equal(got_h5[name], values, err_msg=name)
    for table in (*RESULT_TABLES, "dissection"):
        assert_same_rows(table_rows(ray_engine, table), table_rows(engine, table), table)

    # the chance baseline reads the sharded store's unit blocks: the same rows
    chance_baseline(engine, 1, repeats=2, block_units=50)
    chance_baseline(ray_engine, 1, repeats=2, block_units=50)
    assert_same_rows(
        table_rows(ray_engine, "chance_metrics"), table_rows(engine, "chance_metrics"), "chance"
    )


def test_a_model_whose_weights_its_recipe_does_not_make_travels_whole(
    ray_cluster: Cluster,
) -> None:
    model = random_demo_model(num_classes=4, seed=7)
    seed8 = random_demo_model(num_classes=4, seed=8)
    other = dataclasses.replace(model, module=seed8.module, checksum=seed8.checksum)
    handle = ModelHandle.of(other)  # its recipe (seed 7) would load other weights
    assert handle.recipe is None and handle.module_ref is not None
    assert handle.load().checksum == seed8.checksum
    assert ModelHandle.of(model).module_ref is None  # by its recipe
    # a random-weights copy: by the trained model's recipe and the seed, loaded on the workers
    random = random_weights(model, 3)
    handle = ModelHandle.of(random)
    assert handle.module_ref is None and handle.recipe == random.recipe
    assert run_tasks(ray_cluster, loaded_checksum, handle, [0, 1]) == [random.checksum] * 2


# ---------------------------------------------------------------- the CLI
@pytest.mark.parametrize(
    "command",
    [
        ["ingest", "extract", "--model", "{checkpoint}", "--dataset", "digits:test"],
        ["ingest", "score", "1"],
        ["ingest", "dissect", "--model", "{checkpoint}", "--probe", ".", "--layers", "conv5"],
        ["ingest", "paper", "--imagenet", "."],
        ["demo"],
    ],
    ids=lambda c: c[1] if c[0] == "ingest" else c[0],
)
@pytest.mark.parametrize("spec", ["local:0", "local:two", " ", "headnode"])
def test_a_bad_cluster_spec_is_one_clear_error(
    command: list[str], spec: str, database_url: str, checkpoint: Path
) -> None:
    from ingest.cli import app

    args = [a.format(checkpoint=checkpoint) for a in command]
    result = CliRunner().invoke(app, [*args, "--cluster", spec])
    assert isinstance(result.exception, InputError), result.output
    assert "--cluster" in cli_message(result.exception)  # the line the CLI prints
