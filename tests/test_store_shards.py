"""A run written in shards reads as the one-process store; the parts of the cut that can go wrong.

These run the shards here, one after the other (the cluster path runs the same
`extract_span` on Ray workers: tests/test_cluster.py).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from catalogue.cluster.handles import ModelHandle
from catalogue.data import ImageFolderDataset
from catalogue.errors import ConfigError, InputError, NotFound
from catalogue.extraction import extract_activations, extract_span, plan_extraction
from catalogue.models import load_demo_checkpoint, random_demo_model
from catalogue.store import ActivationStore
from catalogue.store.shards import Shard, plan_shards, shard_dir, write_master
from tests.test_extraction import make_image_folder

LAYERS = ["conv2", "conv5", "fc7"]


def _datasets(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path) as h5:
        h5.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[...]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return out


@pytest.fixture
def folder(tmp_path: Path) -> ImageFolderDataset:
    # 18 images; dog/img02 … dog/img05 (items 8–11, one whole shard of 4) cannot be read
    broken = {f"dog/img{i:02d}.{'jpg' if i % 2 else 'png'}": "garbage" for i in range(2, 6)}
    root = make_image_folder(tmp_path / "tree", {"cat": 6, "dog": 6, "eel": 6}, corrupt=broken)
    return ImageFolderDataset(root, transform=random_demo_model(num_classes=3).transform)


def _sharded(
    folder: ImageFolderDataset, out: Path, shard_images: int, order: list[int]
) -> list[Shard]:
    """Write the shards in ``order`` (indices into the cut); returns the whole cut."""
    model = random_demo_model(num_classes=3)
    plan = plan_extraction(model, folder, LAYERS, keep_maps=["conv5"])
    shards = plan_shards(out, plan.n_images, shard_images, batch_size=2)
    for i in order:
        span = range(shards[i].start, shards[i].stop)
        extract_span(
            model, folder, plan, shards[i].path, span, reduce="max", device="cpu", batch_size=2
        )
    return shards


def test_shards_written_in_any_order_read_as_the_one_process_store(
    folder: ImageFolderDataset, tmp_path: Path
) -> None:
    one = tmp_path / "one.h5"
    summary = extract_activations(
        random_demo_model(num_classes=3), folder, LAYERS, one, batch_size=2, keep_maps=["conv5"]
    )
    assert summary.n_skipped == 4
    shards = _sharded(folder, tmp_path / "sharded.h5", 3, [4, 1, 0, 3, 2])  # shards of 4
    sharded = write_master(tmp_path / "sharded.h5", shards, {"how": "here"})
    assert [p.name for p in sorted(shard_dir(sharded).iterdir())] == [
        "shard-0000000000-0000000004.h5",
        "shard-0000000004-0000000008.h5",
        "shard-0000000008-0000000012.h5",  # every image unreadable: no rows
        "shard-0000000012-0000000016.h5",
        "shard-0000000016-0000000018.h5",
    ]
    want, got = _datasets(one), _datasets(sharded)
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    with ActivationStore.open(sharded) as s, ActivationStore.open(one) as o:
        assert s.is_complete
        assert (s.n_complete, s.n_consumed) == (o.n_complete, o.n_consumed) == (14, 18)
        assert s.params == o.params
        assert s.skipped == o.skipped
        assert s.runtime == {"how": "here"}
        np.testing.assert_array_equal(s.read_units("fc7", 5, 9), o.read_units("fc7", 5, 9))
        np.testing.assert_array_equal(
            s.read_maps("conv5", rows=[1, 12], units=[3]),
            o.read_maps("conv5", rows=[1, 12], units=[3]),
        )
        # ablation's row bands (`read_rows`): within a shard, across shards and the empty one
        # (rows 0-3 | 4-7 | none | 8-11 | 12-13), a whole shard, none, the last row
        for layer in LAYERS:
            for start, stop in ((0, 14), (3, 9), (6, 7), (8, 12), (5, 5), (13, 14)):
                got_rows = s.read_rows(layer, start, stop)
                assert got_rows.shape == (stop - start, s.layer_shape(layer)[1])
                np.testing.assert_array_equal(got_rows, o.read_rows(layer, start, stop))
        with pytest.raises(InputError, match="outside"):
            s.read_rows("fc7", 0, 15)


def test_a_sharded_run_moved_without_its_shards_is_refused(
    folder: ImageFolderDataset, tmp_path: Path
) -> None:
    sharded = write_master(
        tmp_path / "run.h5", _sharded(folder, tmp_path / "run.h5", 8, [0, 1, 2]), {}
    )
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(sharded, moved / "run.h5")
    with pytest.raises(NotFound, match=r"shard files beside it.*keep the folder run\.shards"):
        ActivationStore.open(moved / "run.h5")
    shutil.move(shard_dir(sharded), moved)  # together they work anywhere: the paths are relative
    with ActivationStore.open(moved / "run.h5") as store:
        assert store.n_complete == 14


def test_shards_of_another_cut_or_a_shard_off_the_batch_grid_are_refused(
    folder: ImageFolderDataset, tmp_path: Path
) -> None:
    out = tmp_path / "run.h5"
    _sharded(folder, out, 8, [0])
    assert [s.stop for s in plan_shards(out, 18, 7, batch_size=2)] == [8, 16, 18]  # 7 → 8
    with pytest.raises(InputError, match="shards of another cut"):
        plan_shards(out, 18, 6, batch_size=2)
    with pytest.raises(InputError, match="at least 1"):
        plan_shards(out, 18, 0, batch_size=2)
    model = random_demo_model(num_classes=3)
    plan = plan_extraction(model, folder, LAYERS)
    with pytest.raises(InputError, match="multiple of the batch size"):
        extract_span(model, folder, plan, tmp_path / "s.h5", range(3, 9), reduce="max",
                     device="cpu", batch_size=2)  # fmt: skip
    shards = plan_shards(out, 18, 8, batch_size=2)
    with pytest.raises(InputError, match=r"shard-0000000008-0000000016\.h5 is missing"):
        write_master(out, shards, {})
    assert not out.exists()


def test_a_model_travels_by_its_recipe_and_is_checked_on_arrival(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = random_demo_model(num_classes=4, seed=7)
    handle = ModelHandle.of(model)
    assert handle.module_ref is None  # no pickled network: the recipe loads it again
    assert dict(handle.recipe.arguments)["seed"] == 7
    again = handle.load()
    assert again.checksum == model.checksum
    assert again.name == model.name and again.input_size == model.input_size
    with pytest.raises(ConfigError, match="other weights"):
        dataclasses.replace(handle, checksum="0" * 64).load()

    from catalogue.models.demo_cnn import train_demo

    train_demo("digits", epochs=1, limit=64, out_path=tmp_path / "demo.pt")
    monkeypatch.chdir(tmp_path)
    loaded = load_demo_checkpoint("demo.pt")  # a worker's working directory is not ours
    assert dict(loaded.recipe.arguments)["path"] == str(tmp_path.resolve() / "demo.pt")
    assert ModelHandle.of(loaded).load().checksum == loaded.checksum


class Interrupted(Exception):
    pass


def test_a_partial_shard_resumes_from_its_last_band(
    folder: ImageFolderDataset, tmp_path: Path
) -> None:
    model = random_demo_model(num_classes=3)
    plan = plan_extraction(model, folder, LAYERS, keep_maps=["conv5"])
    whole, cut = tmp_path / "whole.h5", tmp_path / "cut.h5"
    span = range(4, 18)  # items 8–11 unreadable
    options = {"reduce": "max", "device": "cpu", "batch_size": 2, "chunk_rows": 2}
    assert extract_span(model, folder, plan, whole, span, **options) == 10

    def stop_after_item_14(done: int, total: int) -> None:
        assert total == 14
        if done >= 10:
            raise Interrupted

    with pytest.raises(Interrupted):
        extract_span(model, folder, plan, cut, span, on_progress=stop_after_item_14, **options)
    with ActivationStore.open(cut) as partial:
        assert not partial.is_complete
        assert (partial.n_consumed, partial.n_complete) == (14, 6)
    seen: list[int] = []
    added = extract_span(
        model, folder, plan, cut, span, on_progress=lambda d, _t: seen.append(d), **options
    )
    assert (seen[0], seen[-1], added) == (10, 14, 4)
    want, got = _datasets(whole), _datasets(cut)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert extract_span(model, folder, plan, cut, span, **options) == 0  # complete: left alone
