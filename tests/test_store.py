"""The HDF5 activation store: round trips, column blocks, bands, resume after a cut."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from catalogue.errors import InputError, NotFound
from catalogue.store import ActivationStore, LayerSpec

CLASS_KEYS = ["n01", "n02", "n03"]


def _layers(maps: bool = False) -> list[LayerSpec]:
    return [
        LayerSpec(
            "features.3",
            5,
            kind="conv",
            output_shape=(5, 4, 4),
            position=0,
            reduce="max",
            map_shape=(4, 4) if maps else None,
        ),
        LayerSpec("classifier.1", 70, kind="fc", output_shape=(70,), position=1),
    ]


def _batch(rng: np.random.Generator, start: int, n: int) -> dict:
    acts = {
        "features.3": rng.standard_normal((n, 5)).astype(np.float32),
        "classifier.1": rng.standard_normal((n, 70)).astype(np.float32),
    }
    labels = rng.integers(0, 3, n)
    preds = np.where(rng.random(n) < 0.6, labels, (labels + 1) % 3)
    keys = [f"img/{i:04d}.png" for i in range(start, start + n)]
    return {"activations": acts, "labels": labels, "predictions": preds, "image_keys": keys}


def _write(path, batches, chunk_rows=8, maps=False, **kw):
    store = ActivationStore.create(
        path,
        _layers(maps),
        class_keys=CLASS_KEYS,
        class_names=["a", "b", "c"],
        params={"p": 1},
        chunk_rows=chunk_rows,
        **kw,
    )
    for b in batches:
        store.append(**b)
    store.finish()
    store.close()


def _batches(seed=0, sizes=(5, 7, 3, 9, 1)):
    rng = np.random.default_rng(seed)
    out, start = [], 0
    for n in sizes:
        out.append(_batch(rng, start, n))
        start += n
    return out


def _concat(batches, key, layer=None):
    if layer is not None:
        return np.concatenate([b["activations"][layer] for b in batches])
    if key == "image_keys":
        return [k for b in batches for k in b[key]]
    return np.concatenate([np.asarray(b[key]) for b in batches])


def test_round_trip_keeps_every_row_and_attribute(tmp_path):
    batches = _batches()
    path = tmp_path / "run.h5"
    _write(path, batches)
    with ActivationStore.open(path) as store:
        assert store.n_complete == 25
        assert store.is_complete
        assert store.layer_names == ["features.3", "classifier.1"]
        assert store.layer_shape("classifier.1") == (25, 70)
        np.testing.assert_array_equal(
            store.read_units("classifier.1", 0, 70), _concat(batches, None, "classifier.1")
        )
        np.testing.assert_array_equal(
            store.read_units("features.3", 0, 5), _concat(batches, None, "features.3")
        )
        labels = _concat(batches, "labels")
        preds = _concat(batches, "predictions")
        np.testing.assert_array_equal(store.labels, labels)
        np.testing.assert_array_equal(store.predictions, preds)
        np.testing.assert_array_equal(store.correct, labels == preds)
        assert store.labels.dtype == np.int64
        assert store.correct.dtype == bool
        assert store.image_keys == _concat(batches, "image_keys")
        assert store.class_keys == CLASS_KEYS
        assert store.class_names == ["a", "b", "c"]
        assert store.params == {"p": 1}
        assert {"torch", "h5py", "numpy", "unitcat"} <= set(store.versions)
        info = store.layer_info("features.3")
        assert info == {
            "name": "features.3",
            "kind": "conv",
            "n_units": 5,
            "output_shape": (5, 4, 4),
            "position": 0,
            "reduce": "max",
        }


def test_column_blocks_and_row_selection_match_numpy(tmp_path):
    batches = _batches(1)
    path = tmp_path / "run.h5"
    _write(path, batches)
    full = _concat(batches, None, "classifier.1")
    with ActivationStore.open(path) as store:
        np.testing.assert_array_equal(store.read_units("classifier.1", 63, 66), full[:, 63:66])
        np.testing.assert_array_equal(store.read_units("classifier.1", 7, 8)[:, 0], full[:, 7])
        assert store.read_units("classifier.1", 4, 4).shape == (25, 0)
        mask = store.correct
        np.testing.assert_array_equal(
            store.read_units("classifier.1", 10, 20, rows=mask), full[mask, 10:20]
        )
        assert 0 < mask.sum() < mask.size
        every = np.ones(mask.size, dtype=bool)  # all images correct: read without a copy
        np.testing.assert_array_equal(
            store.read_units("classifier.1", 5, 9, rows=every), full[:, 5:9]
        )
        none = np.zeros(mask.size, dtype=bool)
        assert store.read_units("classifier.1", 5, 9, rows=none).shape == (0, 4)
        idx = np.array([24, 0, 3, 3])
        np.testing.assert_array_equal(store.read_units("classifier.1", 0, 70, rows=idx), full[idx])
        blocks = list(store.iter_unit_blocks("classifier.1", 32, rows=mask))
        assert [(a, b) for a, b, _ in blocks] == [(0, 32), (32, 64), (64, 70)]
        np.testing.assert_array_equal(
            np.concatenate([blk for *_, blk in blocks], axis=1), full[mask]
        )
        with pytest.raises(InputError):
            store.read_units("classifier.1", 60, 71)
        with pytest.raises(InputError):
            store.read_units("classifier.1", 0, 1, rows=np.ones(3, dtype=bool))


def test_layers_are_chunked_in_tall_column_blocks(tmp_path):
    path = tmp_path / "run.h5"
    _write(path, _batches(), chunk_rows=16)
    with h5py.File(path) as h5:
        assert h5["layers/classifier.1"].chunks == (16, 16)
        assert h5["layers/features.3"].chunks == (16, 5)
        assert h5["layers/classifier.1"].compression == "lzf"
        assert not h5["layers/classifier.1"].shuffle  # it split ReLU zeros' runs: bigger, slower
        assert h5["layers/classifier.1"].maxshape == (None, 70)


def test_chunking_does_not_change_the_data(tmp_path):
    batches = _batches(2)
    _write(tmp_path / "a.h5", batches, chunk_rows=1)
    _write(tmp_path / "b.h5", batches, chunk_rows=4096)
    with ActivationStore.open(tmp_path / "a.h5") as a, ActivationStore.open(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(
            a.read_units("classifier.1", 0, 70), b.read_units("classifier.1", 0, 70)
        )
        assert a.image_keys == b.image_keys


def test_rows_reach_disk_in_whole_bands(tmp_path):
    path = tmp_path / "run.h5"
    store = ActivationStore.create(path, _layers(), class_keys=CLASS_KEYS, chunk_rows=8)
    rng = np.random.default_rng(3)
    store.append(**_batch(rng, 0, 5))
    assert store.n_complete == 0
    store.append(**_batch(rng, 5, 7))
    assert store.n_complete == 8
    assert store._h5.attrs["n_complete"] == 8
    store.append(**_batch(rng, 12, 10))
    assert store.n_complete == 16
    store.close()  # an interrupted run: buffered rows are kept too
    with ActivationStore.open(path) as reread:
        assert reread.n_complete == 22
        assert not reread.is_complete


def test_resume_overwrites_rows_past_the_complete_count(tmp_path):
    batches = _batches(4, sizes=(6, 6, 6, 6))
    reference = tmp_path / "ref.h5"
    _write(reference, batches)

    path = tmp_path / "cut.h5"
    store = ActivationStore.create(
        path,
        _layers(),
        class_keys=CLASS_KEYS,
        class_names=["a", "b", "c"],
        params={"p": 1},
        chunk_rows=8,
    )
    for b in batches[:3]:
        store.append(**b)
    # Simulate a kill in the middle of writing the next band: garbage rows past n_complete.
    store._h5.flush()
    h5 = store._h5
    assert h5.attrs["n_complete"] == 16
    for ds in (h5["layers/classifier.1"], h5["labels"], h5["image_keys"]):
        ds.resize(20, axis=0)
    h5["layers/classifier.1"][16:20] = 99.0
    h5.close()  # buffered rows 16..17 are lost, as in a kill

    with ActivationStore.open_append(path) as resumed:
        assert resumed.n_complete == 16
        assert resumed.n_consumed == 16
        resumed.append(**_tail(batches[2], 4))
        resumed.append(**batches[3])
        resumed.finish()
    with ActivationStore.open(path) as a, ActivationStore.open(reference) as b:
        np.testing.assert_array_equal(
            a.read_units("classifier.1", 0, 70), b.read_units("classifier.1", 0, 70)
        )
        np.testing.assert_array_equal(a.labels, b.labels)
        assert a.image_keys == b.image_keys
        assert a.is_complete


def _tail(batch: dict, k: int) -> dict:
    return {
        "activations": {name: a[k:] for name, a in batch["activations"].items()},
        "labels": batch["labels"][k:],
        "predictions": batch["predictions"][k:],
        "image_keys": batch["image_keys"][k:],
        "source_index": np.arange(16, 16 + len(batch["image_keys"]) - k),
    }


def test_skipped_images_are_listed_and_survive_resume(tmp_path):
    path = tmp_path / "run.h5"
    rng = np.random.default_rng(5)
    store = ActivationStore.create(path, _layers(), class_keys=CLASS_KEYS, chunk_rows=4)
    store.add_skipped("bad/0001.jpg", "cannot identify image file", 1)
    b = _batch(rng, 0, 4)
    store.append(**b, source_index=[0, 2, 3, 4])
    store.add_skipped("bad/0009.jpg", "truncated", 9)  # after the last row: not yet consumed
    store._h5.flush()
    store._h5.close()
    with ActivationStore.open_append(path) as resumed:
        assert resumed.n_complete == 4
        assert resumed.n_consumed == 5
        assert resumed.skipped == [("bad/0001.jpg", "cannot identify image file")]
        resumed.add_skipped("bad/0009.jpg", "truncated", 9)
        resumed.finish(n_consumed=10)
    with ActivationStore.open(path) as store:
        assert store.skipped == [
            ("bad/0001.jpg", "cannot identify image file"),
            ("bad/0009.jpg", "truncated"),
        ]
        assert store.n_consumed == 10


def test_maps_round_trip_as_float16(tmp_path):
    path = tmp_path / "run.h5"
    rng = np.random.default_rng(6)
    maps_all = []
    store = ActivationStore.create(path, _layers(maps=True), class_keys=CLASS_KEYS, chunk_rows=4)
    for start, n in ((0, 3), (3, 4)):
        b = _batch(rng, start, n)
        m = rng.standard_normal((n, 5, 4, 4)).astype(np.float32)
        maps_all.append(m.astype(np.float16))
        store.append(**b, maps={"features.3": m})
    store.finish()
    store.close()
    full = np.concatenate(maps_all)
    with ActivationStore.open(path) as store:
        assert store.map_layer_names == ["features.3"]
        got = store.read_maps("features.3")
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, full)
        np.testing.assert_array_equal(store.read_maps("features.3", rows=[5, 1]), full[[5, 1]])
        mask = np.zeros(7, dtype=bool)
        mask[[2, 3, 4]] = True
        np.testing.assert_array_equal(
            store.read_maps("features.3", rows=mask, units=[4, 0]), full[2:5][:, [4, 0]]
        )
        with pytest.raises(NotFound, match=r"maps kept: features\.3"):
            store.read_maps("classifier.1")


def test_empty_store_reads_as_zero_rows(tmp_path):
    path = tmp_path / "run.h5"
    _write(path, [])
    with ActivationStore.open(path) as store:
        assert store.n_complete == 0
        assert store.read_units("classifier.1", 0, 70).shape == (0, 70)
        assert store.labels.shape == (0,)
        assert store.image_keys == []


def test_missing_layer_is_not_found_with_the_stored_names(tmp_path):
    path = tmp_path / "run.h5"
    _write(path, _batches())
    with (
        ActivationStore.open(path) as store,
        pytest.raises(NotFound, match=r"features\.3, classifier\.1"),
    ):
        store.read_units("conv5", 0, 1)


def test_bad_files_are_clear_input_errors(tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        ActivationStore.open(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not hdf5" * 10)
    with pytest.raises(InputError, match="not a readable HDF5"):
        ActivationStore.open(junk)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = 1
    with pytest.raises(InputError, match="not a unitcat activation store"):
        ActivationStore.open(other)
    _write(tmp_path / "ok.h5", [])
    with pytest.raises(InputError, match="already exists"):
        _write(tmp_path / "ok.h5", [])


def test_append_checks_shapes_and_layers(tmp_path):
    store = ActivationStore.create(tmp_path / "r.h5", _layers(), class_keys=CLASS_KEYS)
    b = _batch(np.random.default_rng(0), 0, 3)
    with pytest.raises(InputError, match="expected"):
        store.append(**{**b, "activations": {**b["activations"], "features.3": np.zeros((3, 4))}})
    with pytest.raises(InputError, match="layers"):
        store.append(**{**b, "activations": {"features.3": b["activations"]["features.3"]}})
    with pytest.raises(InputError, match="labels"):
        store.append(**{**b, "labels": [1, 2]})
    store.close()
    with (
        ActivationStore.open(tmp_path / "r.h5") as ro,
        pytest.raises(InputError, match="read-only"),
    ):
        ro.append(**b)
