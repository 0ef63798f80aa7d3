"""The 100-class demo data set (Fashion-MNIST items in ten colours), from idx files in the
real format: shape, balance, determinism, and every image's item and colour read back
from its pixels with the test's own colour definitions (hue and saturation ranges)."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch

from catalogue.data import FASHION_MNIST_DIR, is_bundled, resolve_dataset, to_tensor
from catalogue.data.fashion_colours import load_fashion_mnist_colours
from catalogue.errors import InputError
from tests.test_data import write_idx

#: What each colour name means, written independently of the code: (hue range in degrees,
#: saturation range) of the tint a class's images carry. Red wraps around 0°.
COLOUR_RANGES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "red": ((-15, 10), (0.6, 1.0)),
    "orange": ((20, 45), (0.6, 1.0)),
    "yellow": ((46, 65), (0.6, 1.0)),
    "lime": ((70, 100), (0.6, 1.0)),
    "green": ((115, 160), (0.6, 1.0)),
    "cyan": ((170, 200), (0.6, 1.0)),
    "blue": ((210, 245), (0.6, 1.0)),
    "purple": ((265, 300), (0.6, 1.0)),
    "pink": ((315, 345), (0.3, 0.7)),
    "white": ((0, 360), (0.0, 0.02)),
}
ITEM_NAMES = (
    "T-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)


@pytest.fixture
def items_dir(tmp_path):
    """Fashion-MNIST idx files with 20 training and 10 test images of each item (shuffled):
    noise images that are never black, so every pixel carries the tint."""
    rng = np.random.default_rng(5)
    root = tmp_path / "fashion"
    root.mkdir()
    arrays = {}
    for part, per_item in (("train", 20), ("t10k", 10)):
        labels = rng.permutation(np.repeat(np.arange(10), per_item)).astype(np.uint8)
        images = rng.integers(40, 256, (labels.size, 28, 28), dtype=np.uint8)
        write_idx(root / f"{part}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{part}-labels-idx1-ubyte.gz", labels)
        arrays[part] = (images, labels)
    return root, arrays


def read_back(rgb: np.ndarray, grey: np.ndarray) -> tuple[str, bool]:
    """The colour name (by COLOUR_RANGES) of an image's tint, estimated from its pixels, and
    whether the image is exactly that tint of `grey` padded with 2 black pixels."""
    inner = rgb[2:-2, 2:-2].astype(np.float64)
    border = np.ones(rgb.shape[:2], dtype=bool)
    border[2:-2, 2:-2] = False
    g = grey.astype(np.float64)
    tint = 255 * np.array([(inner[..., k] * g).sum() for k in range(3)]) / (g * g).sum()
    tint = np.clip(np.round(tint), 0, 255)  # least squares: pixel ≈ grey × tint / 255
    same = np.all(rgb[border] == 0) and np.all(
        np.abs(inner - grey[..., None].astype(np.float64) * tint / 255) <= 1.0
    )
    h, s, _v = colorsys.rgb_to_hsv(*(tint / 255))
    hue = h * 360
    names = []
    for name, ((h0, h1), (s0, s1)) in COLOUR_RANGES.items():
        in_hue = h0 <= hue <= h1 or h0 <= hue - 360 <= h1
        if in_hue and s0 <= s <= s1:
            names.append(name)
    return (names[0] if len(names) == 1 else f"ambiguous {names}"), bool(same)


def test_shape_names_and_balance(items_dir):
    root, _ = items_dir
    train = load_fashion_mnist_colours("train", root=root)
    test = load_fashion_mnist_colours("test", root=root)
    assert (len(train), len(test)) == (200, 100)
    assert train.n_classes == 100 and len(set(train.class_keys)) == 100
    assert train.class_names[0] == "red T-shirt/top"
    assert train.class_names[59] == "white sandal" and train.class_keys[59] == "white_sandal"
    assert [n.split(" ", 1)[1] for n in train.class_names[::10]] == list(ITEM_NAMES)
    # every (item, colour) pair equally often in each split
    assert np.bincount(train.labels, minlength=100).tolist() == [2] * 100
    assert np.bincount(test.labels, minlength=100).tolist() == [1] * 100
    sample = train[7]
    assert sample.image.shape == (3, 32, 32) and sample.image.dtype == torch.float32
    assert train.rgb_images().shape == (200, 32, 32, 3)
    assert np.asarray(train.load_image(3)).shape == (32, 32, 3)
    assert train.name == "fashion-mnist-colours:train"
    assert train.key(0).startswith("train/00000-")


def test_colours_are_fixed_by_the_seed_and_split(items_dir):
    root, _ = items_dir
    a = load_fashion_mnist_colours("train", root=root)
    b = load_fashion_mnist_colours("train", root=root)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.rgb_images(), b.rgb_images())
    other = load_fashion_mnist_colours("train", root=root, seed=3)
    assert not np.array_equal(a.labels, other.labels)
    assert np.bincount(other.labels, minlength=100).tolist() == [2] * 100
    assert other.name == "fashion-mnist-colours-seed3:train"
    np.testing.assert_array_equal(a.items, other.items)  # only the colours differ
    both = load_fashion_mnist_colours("all", root=root)
    test = load_fashion_mnist_colours("test", root=root)
    np.testing.assert_array_equal(both.labels, np.concatenate([a.labels, test.labels]))
    assert [both.key(i) for i in (0, 200)] == [a.key(0), test.key(0)]
    with pytest.raises(InputError, match="split must be one of"):
        load_fashion_mnist_colours("val", root=root)
    with pytest.raises(InputError, match="seed"):
        load_fashion_mnist_colours("train", root=root, seed=-1)


def test_every_image_carries_its_class_item_and_colour(items_dir):
    root, arrays = items_dir
    for split, part in (("train", "train"), ("test", "t10k")):
        data = load_fashion_mnist_colours(split, root=root)
        grey, items = arrays[part]
        rgb = data.rgb_images()
        for i in range(len(data)):
            colour, item = data.class_names[data.label(i)].split(" ", 1)
            index = int(data.key(i).split("/")[1].split("-")[0])
            assert index == i and ITEM_NAMES[items[i]] == item
            seen, same = read_back(rgb[i], grey[i])
            assert same, (split, i)
            assert seen == colour, (split, i, data.class_names[data.label(i)])
            assert data.key(i).endswith(f"-{colour}")
            np.testing.assert_array_equal(np.asarray(data.load_image(i)), rgb[i])


def test_the_data_set_is_found_by_name_and_its_images_by_key(items_dir):
    from catalogue.query.files import bundled_image

    root, _ = items_dir
    data = resolve_dataset(
        "fashion-mnist-colours:test", fashion_mnist_dir=root, transform=to_tensor
    )
    assert data.name == "fashion-mnist-colours:test" and len(data) == 100
    assert resolve_dataset("fashion-mnist-colours", fashion_mnist_dir=root).name.endswith(":test")
    seeded = resolve_dataset("fashion-mnist-colours-seed3:train", fashion_mnist_dir=root)
    assert seeded.name == "fashion-mnist-colours-seed3:train"
    assert is_bundled("fashion-mnist-colours:train") and is_bundled("digits:test")
    assert not is_bundled("my-photos")
    image = bundled_image(data.name, str(root), data.key(5))
    np.testing.assert_array_equal(np.asarray(image), np.asarray(data.load_image(5)))
    with pytest.raises(InputError, match="split must be one of"):
        resolve_dataset("fashion-mnist-colours:val", fashion_mnist_dir=root)


@pytest.mark.skipif(
    not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_the_installed_files_give_600_and_100_images_per_class():
    train = load_fashion_mnist_colours("train")
    test = load_fashion_mnist_colours("test")
    assert (len(train), len(test)) == (60_000, 10_000)
    assert set(np.bincount(train.labels, minlength=100).tolist()) == {600}
    assert set(np.bincount(test.labels, minlength=100).tolist()) == {100}
    rgb = train.rgb_images(slice(0, 3000))
    for i in range(3000):
        grey = train.grey[i]
        if np.count_nonzero(grey >= 128) < 20:
            continue  # too dark an item to estimate its tint from
        colour = train.class_names[train.label(i)].split(" ", 1)[0]
        assert read_back(rgb[i], grey) == (colour, True), i


def test_the_demo_cnn_trains_on_colour_and_keeps_it(items_dir, tmp_path, monkeypatch):
    """The demo CNN on the 100-class set: 100 outputs, inputs normalised per channel (a red
    and a blue copy of one item reach the network differently), AM in colour."""
    from PIL import Image

    from catalogue.models import demo_cnn, load_model
    from catalogue.pipeline.am import am_defaults

    root, _ = items_dir
    monkeypatch.setenv("UNITCAT_HOME", str(tmp_path))
    result = demo_cnn.train_demo(
        "fashion-mnist-colours", epochs=1, batch_size=50, fashion_mnist_dir=root
    )
    assert result.n_train == 200 and result.n_test == 100
    model = load_model("demo:fashion-mnist-colours")
    assert model.n_outputs == 100 and model.class_names[0] == "red T-shirt/top"
    transform = model.transform
    assert isinstance(transform, demo_cnn.DemoRGBTransform)
    train = load_fashion_mnist_colours("train", root=root)
    pixels = train.rgb_images().reshape(-1, 3) / 255.0
    np.testing.assert_allclose(transform.mean, pixels.mean(0), rtol=1e-5)
    np.testing.assert_allclose(transform.std, pixels.std(0), rtol=1e-4)
    item = np.full((32, 32, 3), 0, dtype=np.uint8)
    item[8:24, 8:24] = (255, 30, 30)
    red = transform(Image.fromarray(item))
    item[8:24, 8:24] = (40, 80, 255)
    blue = transform(Image.fromarray(item))
    assert red.shape == (3, 32, 32) and not torch.allclose(red, blue)
    literal = (
        torch.tensor([255.0, 30.0, 30.0]) / 255 - torch.tensor(transform.mean)
    ) / torch.tensor(transform.std)
    torch.testing.assert_close(red[:, 16, 16], literal.float())
    defaults = am_defaults(model)
    assert (defaults.channels, defaults.input_channels, defaults.image_size) == (3, 3, 32)
    assert defaults.mean == pytest.approx(transform.mean)
