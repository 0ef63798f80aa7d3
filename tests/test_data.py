"""Dataset loaders on small fixtures in their real on-disk formats."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from catalogue.data import (
    FASHION_MNIST_INSTALL,
    ImageFolderDataset,
    collate_samples,
    load_digits,
    load_fashion_mnist,
    read_class_mapping,
    read_idx,
    resolve_dataset,
)
from catalogue.errors import InputError, NotFound


def write_idx(path, array: np.ndarray, code: int = 0x08, compress: bool = True) -> None:
    """The idx format written literally: 0, 0, type code, ndim, big-endian dims, big-endian data."""
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    payload = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += np.ascontiguousarray(array.astype(dtype)).tobytes()
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


@pytest.fixture
def fashion_dir(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "fashion"
    root.mkdir()
    for part, n in (("train", 7), ("t10k", 4)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(root / f"{part}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{part}-labels-idx1-ubyte.gz", labels)
    return root


def make_image_folder(
    root, counts: dict[str, int], corrupt: dict[str, str] | None = None, size: int = 20
):
    """Class folders of real PNG/JPEG files (every other image a JPEG), plus named corrupt files."""
    rng = np.random.default_rng(1)
    for cls, n in counts.items():
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (size, size + 3, 3), dtype=np.uint8)
            ext = "JPEG" if i % 2 else "png"
            Image.fromarray(pixels).save(folder / f"img{i:02d}.{ext}")
    for rel, content in (corrupt or {}).items():
        (root / rel).write_bytes(content.encode())
    return root


def test_idx_reader_reads_what_was_written(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)
    b = np.array([[-2, 300], [7, 0]], dtype=np.int16)
    write_idx(tmp_path / "b", b, code=0x0B, compress=False)
    got = read_idx(tmp_path / "b")
    np.testing.assert_array_equal(got, b)
    assert got.dtype == np.int16
    write_idx(tmp_path / "c.gz", np.array([0.5, -1.25], dtype=np.float32), code=0x0D)
    np.testing.assert_array_equal(read_idx(tmp_path / "c.gz"), [0.5, -1.25])


def test_idx_reader_refuses_damaged_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(InputError, match="magic"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((3, 2), dtype=np.uint8), compress=False)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(InputError, match="header says 6"):
        read_idx(tmp_path / "short")
    (tmp_path / "notgz.gz").write_bytes(b"plain")
    with pytest.raises(InputError, match="cannot read"):
        read_idx(tmp_path / "notgz.gz")


def test_fashion_mnist_splits_from_idx_files(fashion_dir):
    train = read_idx(fashion_dir / "train-labels-idx1-ubyte.gz")
    test = read_idx(fashion_dir / "t10k-labels-idx1-ubyte.gz")
    ds = load_fashion_mnist("test", root=fashion_dir)
    assert len(ds) == 4
    assert ds.name == "fashion-mnist:test"
    np.testing.assert_array_equal(ds.labels, test)
    assert ds.key(0) == "test/00000"
    assert ds.class_keys[0] == "tshirt_top"
    assert ds.class_names[9] == "Ankle boot"
    both = load_fashion_mnist("all", root=fashion_dir)
    np.testing.assert_array_equal(both.labels, np.concatenate([train, test]))
    assert both.key(7) == "test/00000"
    sample = ds[1]
    assert sample.image.shape == (3, 28, 28)
    np.testing.assert_allclose(sample.image[0].numpy() * 255, ds.images[1], atol=1e-4)
    assert torch.equal(sample.image[0], sample.image[2])


def test_missing_fashion_mnist_names_the_apt_command(tmp_path):
    with pytest.raises(NotFound, match=FASHION_MNIST_INSTALL):
        load_fashion_mnist("train", root=tmp_path)


def test_digits_splits_are_disjoint_and_upsampled():
    from sklearn.datasets import load_digits as sk

    target = sk().target
    test, train, everything = load_digits("test"), load_digits("train"), load_digits("all")
    assert (len(test), len(train), len(everything)) == (360, 1437, 1797)
    assert test.images.shape == (360, 32, 32)
    assert test.images.dtype == np.uint8
    assert not {test.key(i) for i in range(len(test))} & {train.key(i) for i in range(len(train))}
    assert test.key(1) == "0005"
    assert test.label(1) == target[5]
    assert everything.images.max() == 255
    assert test.class_names[3] == "three"


def test_image_folder_labels_follow_sorted_folders_and_skip_corrupt_files(tmp_path):
    root = make_image_folder(
        tmp_path / "tree",
        {"n02": 2, "n01": 3, "n03": 1},
        corrupt={"n02/broken.jpg": "not a jpeg at all", "n01/notes.txt": "ignored"},
    )
    ds = ImageFolderDataset(root)
    assert ds.class_keys == ["n01", "n02", "n03"]
    keys = [ds.key(i) for i in range(len(ds))]
    assert keys == [
        "n01/img00.png", "n01/img01.JPEG", "n01/img02.png",
        "n02/broken.jpg", "n02/img00.png", "n02/img01.JPEG", "n03/img00.png",
    ]  # fmt: skip
    assert [ds.label(i) for i in range(len(ds))] == [0, 0, 0, 1, 1, 1, 2]
    broken = ds[3]
    assert broken.image is None
    assert "UnidentifiedImageError" in broken.error
    good = ds[0]
    assert good.image.shape == (3, 20, 23)
    expected = np.asarray(Image.open(root / "n01/img00.png").convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_allclose(good.image.permute(1, 2, 0).numpy(), expected, atol=1e-6)
    batch = collate_samples([ds[i] for i in range(len(ds))])
    assert len(batch) == 6
    assert batch.images.shape == (6, 3, 20, 23)
    assert batch.skipped[0][0] == "n02/broken.jpg"
    assert batch.skipped[0][2] == 3
    assert batch.indices.tolist() == [0, 1, 2, 4, 5, 6]
    strict = ImageFolderDataset(root, strict=True)
    with pytest.raises(InputError, match=r"n02/broken\.jpg"):
        strict[3]


def test_image_folder_uses_model_classes_and_mapping_files(tmp_path):
    root = make_image_folder(tmp_path / "tree", {"n09": 1, "n02": 1})
    ds = ImageFolderDataset(
        root, class_keys=["n01", "n02", "n05", "n09"], class_names=["a", "b", "c", "d"]
    )
    assert [ds.label(i) for i in range(len(ds))] == [1, 3]
    assert ds.n_classes == 4
    with pytest.raises(InputError, match="not classes of the model"):
        ImageFolderDataset(root, class_keys=["n01", "n02"])
    csv_map = tmp_path / "map.csv"
    csv_map.write_text("index,key,name\n1,n09,nine\n0,n02,two\n2,n07,seven\n")
    mapped = ImageFolderDataset(root, mapping_file=csv_map)
    assert mapped.class_keys == ["n02", "n09", "n07"]
    assert mapped.class_names == ["two", "nine", "seven"]
    assert [mapped.label(i) for i in range(len(mapped))] == [0, 1]
    loc = tmp_path / "LOC_synset_mapping.txt"
    loc.write_text("n09 ninth thing, other\nn02 second\n")
    assert read_class_mapping(loc) == (["n09", "n02"], ["ninth thing, other", "second"])
    bad = tmp_path / "bad.csv"
    bad.write_text("index,key,name\n0,a,x\n2,b,y\n")
    with pytest.raises(InputError, match="indices"):
        read_class_mapping(bad)


def test_model_names_without_keys_need_the_whole_tree(tmp_path):
    root = make_image_folder(tmp_path / "tree", {"n02": 1, "n01": 1})
    ds = ImageFolderDataset(root, class_names=["tench", "goldfish"])
    assert ds.class_keys == ["n01", "n02"]
    assert ds.class_names == ["tench", "goldfish"]
    with pytest.raises(InputError, match="mapping file"):
        ImageFolderDataset(root, class_names=["tench", "goldfish", "shark"])


def test_empty_or_missing_folders_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ImageFolderDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no class folders"):
        ImageFolderDataset(tmp_path / "empty")
    (tmp_path / "hollow" / "n01").mkdir(parents=True)
    (tmp_path / "hollow" / "n01" / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="no images"):
        ImageFolderDataset(tmp_path / "hollow")


def test_resolve_dataset_specs(tmp_path, fashion_dir):
    assert resolve_dataset("digits").name == "digits:test"
    assert len(resolve_dataset("digits:train")) == 1437
    assert len(resolve_dataset("fashion-mnist:train", fashion_mnist_dir=fashion_dir)) == 7
    assert (
        resolve_dataset("fashion-mnist", fashion_mnist_dir=fashion_dir).name == "fashion-mnist:test"
    )
    root = make_image_folder(tmp_path / "tree", {"a": 1})
    assert isinstance(resolve_dataset(str(root)), ImageFolderDataset)
    with pytest.raises(InputError, match="split"):
        resolve_dataset("digits:valid")
    with pytest.raises(InputError, match="not digits"):
        resolve_dataset(str(tmp_path / "nowhere"))
