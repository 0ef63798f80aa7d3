"""Probe sets in Broden's format: writer/reader round trip, make_probe, bad directories."""

from __future__ import annotations

import csv
import filecmp
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from catalogue.color_names import BASIC_COLOR_TERMS, PROTOTYPES, PROTOTYPES_RGB, name_colors
from catalogue.errors import InputError
from catalogue.probe import Concept, ProbeSet, ProbeWriter, make_probe

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

CONCEPTS = [
    Concept(1, "red-c", "color"),
    Concept(2, "blue-c", "color"),
    Concept(3, "dog", "object"),
    Concept(4, "cat", "object"),
    Concept(300, "sky", "object"),  # needs the green channel: 300 = 44 + 256
    Concept(5, "leg", "part"),
    Concept(6, "head", "part"),
    Concept(7, "beach", "scene"),
    Concept(8, "kitchen", "scene"),
]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def digit_items(n: int = 200) -> list[tuple[np.ndarray, int, str]]:
    d = load_digits()
    return [(im, int(t), DIGIT_NAMES[t]) for im, t in zip(d.images[:n], d.target[:n], strict=True)]


@pytest.fixture
def written(tmp_path):
    """A probe set with pixel, layered and image-level labels, and what was written."""
    rng = np.random.default_rng(0)
    expected = []
    with ProbeWriter(tmp_path / "probe", CONCEPTS, readme="test probe") as w:
        for i in range(5):
            image = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
            color = rng.choice([0, 1, 2], size=(6, 5))
            objects = rng.choice([0, 3, 4, 300], size=(6, 5))
            parts = rng.choice([0, 5, 6], size=(2, 6, 5))  # two overlapping layers
            scene = [7, 8] if i == 1 else [7]
            labels = {"color": color, "object": objects, "part": parts, "scene": scene}
            if i == 3:
                del labels["part"]  # this image is not annotated with parts
            w.add(image, labels, split="val" if i == 4 else "train")
            masks = {n: color == n for n in (1, 2)} | {n: objects == n for n in (3, 4, 300)}
            if i != 3:
                masks |= {n: (parts == n).any(axis=0) for n in (5, 6)}
            masks |= {n: np.full((6, 5), n in scene) for n in (7, 8)}
            expected.append((image, {n: m for n, m in masks.items() if m.any()}))
    return tmp_path / "probe", expected


def test_written_probe_set_reads_back_with_identical_images_masks_and_labels(written):
    directory, expected = written
    probe = ProbeSet.open(directory)
    assert probe.categories == ("color", "object", "part", "scene")
    assert probe.concepts == tuple(sorted(CONCEPTS, key=lambda c: c.number))
    assert len(probe) == 5
    for i, sample in enumerate(probe):
        image, masks = expected[i]
        np.testing.assert_array_equal(sample.image, image)
        numbers = [probe.concepts[c].number for c in sample.masks.concepts]
        assert numbers == sorted(masks)
        for c, m in zip(sample.masks.concepts, sample.masks.masks, strict=True):
            np.testing.assert_array_equal(m, masks[probe.concepts[c].number])
        assert sample.masks.annotated.tolist() == [True, True, i != 3, True]
    assert [s.split for s in probe] == ["train"] * 4 + ["val"]
    dense = probe.masks(0).dense(len(probe.concepts))
    assert dense.shape == (9, 6, 5) and dense.sum() == sum(m.sum() for m in expected[0][1].values())


def test_written_csv_files_follow_the_broden_layout(written):
    directory, expected = written
    index = read_rows(directory / "index.csv")
    assert list(index[0]) == [
        "image",
        "split",
        "ih",
        "iw",
        "sh",
        "sw",
        "color",
        "object",
        "part",
        "scene",
    ]
    assert index[0]["part"] == "probe/000000_part.png;probe/000000_part_2.png"
    assert index[1]["scene"] == "7;8" and index[3]["part"] == ""
    assert (index[0]["ih"], index[0]["iw"], index[0]["sh"], index[0]["sw"]) == (
        "12",
        "10",
        "6",
        "5",
    )
    mask = np.asarray(Image.open(directory / "images" / index[0]["object"]))
    assert set(np.unique(mask[..., 0] + 256 * mask[..., 1].astype(int))) <= {0, 3, 4, 300}
    labels = {int(r["number"]): r for r in read_rows(directory / "label.csv")}
    sky_images = sum(300 in masks for _, masks in expected)
    sky_cover = sum(masks[300].mean() for _, masks in expected if 300 in masks)
    assert labels[300]["category"] == f"object({sky_images})"
    assert int(labels[300]["frequency"]) == sky_images
    assert float(labels[300]["coverage"]) == pytest.approx(sky_cover, abs=1e-6)
    categories = read_rows(directory / "category.csv")
    assert [(r["name"], r["first"], r["last"], r["count"]) for r in categories] == [
        ("color", "1", "2", "2"),
        ("object", "3", "300", "3"),
        ("part", "5", "6", "2"),
        ("scene", "7", "8", "2"),
    ]
    scene_codes = read_rows(directory / "c_scene.csv")
    assert [(r["code"], r["number"], r["frequency"]) for r in scene_codes] == [
        ("1", "7", "5"),
        ("2", "8", "1"),
    ]
    assert (directory / "README.txt").read_text() == "test probe"


def test_reader_restricts_categories_splits_and_count(written):
    directory, _ = written
    objects = ProbeSet.open(directory, categories=["object"], limit=3)
    assert [c.name for c in objects.concepts] == ["dog", "cat", "sky"]
    assert len(objects) == 3 and objects.categories == ("object",)
    sample = objects[0]
    assert all(objects.concepts[c].category == "object" for c in sample.masks.concepts)
    assert len(ProbeSet.open(directory, split="val")) == 1
    parts = ProbeSet.open(directory, categories=["part"])
    assert len(parts) == 4  # the image without part labels is skipped, as in NetDissect


def test_a_label_in_two_categories_is_one_concept_of_its_larger_coverage_category(tmp_path):
    d = tmp_path / "p"
    (d / "images").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(d / "images" / "a.jpg")
    material = np.zeros((4, 4, 3), np.uint8)
    material[:2, :, 0] = 9
    obj = np.zeros((4, 4, 3), np.uint8)
    obj[:, :1, 0] = 9
    Image.fromarray(material).save(d / "images" / "a_material.png")
    Image.fromarray(obj).save(d / "images" / "a_object.png")
    (d / "index.csv").write_text(
        "image,split,ih,iw,sh,sw,object,material\na.jpg,train,4,4,4,4,a_object.png,a_material.png\n"
    )
    (d / "label.csv").write_text(
        "number,name,category,frequency,coverage,syns\n9,fabric,material(36);object(3),39,4.2,cloth\n"
    )
    (d / "category.csv").write_text(
        "name,first,last,count,frequency\nobject,9,9,1,3\nmaterial,9,9,1,36\n"
    )
    for c, cover in (("object", "0.5"), ("material", "2.0")):
        (d / f"c_{c}.csv").write_text(
            f"code,number,name,frequency,coverage\n1,9,fabric,3,{cover}\n"
        )
    probe = ProbeSet.open(d)
    assert probe.concepts == (Concept(9, "fabric", "material"),)  # covers more as a material
    expected = np.zeros((4, 4), bool)
    expected[:2] = True
    expected[:, :1] = True
    np.testing.assert_array_equal(probe[0].masks.masks[0], expected)
    only_objects = ProbeSet.open(d, categories=["object"])
    assert only_objects[0].masks.annotated.tolist() == [True]
    (d / "index.csv").write_text(
        "image,split,ih,iw,sh,sw,object,material\na.jpg,train,4,4,4,4,a_object.png,\n"
    )
    sample = ProbeSet.open(d)[0]  # fabric (a material) found only in the object mask
    assert sample.masks.annotated.tolist() == [True, True]
    np.testing.assert_array_equal(sample.masks.masks[0], obj[..., 0] == 9)
    (d / "c_object.csv").write_text("code,number,name,frequency,coverage\n1,9,fabric,3,7.5\n")
    assert ProbeSet.open(d).concepts == (Concept(9, "fabric", "object"),)


# ----------------------------------------------------------------- make_probe


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> ProbeSet:
    return make_probe(
        digit_items(),
        tmp_path_factory.mktemp("made"),
        n_images=12,
        image_size=48,
        seed=5,
        mask_size=24,
    )


def test_make_probe_writes_objects_and_colours_that_partition_each_image(made):
    assert made.categories == ("color", "object")
    assert [c.name for c in made.concepts[:11]] == [t + "-c" for t in BASIC_COLOR_TERMS]
    assert [c.name for c in made.concepts[11:]] == DIGIT_NAMES[: len(made.concepts) - 11]
    colour = made.concept_category == 0
    for sample in made:
        assert sample.image.shape == (48, 48, 3) and sample.masks.shape == (24, 24)
        dense = sample.masks.dense(len(made.concepts))
        assert (dense[colour].sum(axis=0) == 1).all()  # every pixel has exactly one colour
        objects = dense[~colour]
        present = objects.any(axis=(1, 2))
        assert present.any()  # at least one object per scene
        assert (objects.sum(axis=0) <= 1).all()  # occlusion: one visible object per pixel
        assert all(objects[present].sum(axis=(1, 2)) > 0)


def test_make_probe_colour_masks_name_the_image_pixels(tmp_path):
    probe = make_probe(digit_items(50), tmp_path, n_images=3, image_size=32, seed=1)
    for sample in probe:
        names = name_colors(sample.image)
        for c, m in zip(sample.masks.concepts, sample.masks.masks, strict=True):
            concept = probe.concepts[c]
            if concept.category == "color":
                np.testing.assert_array_equal(
                    m, names == BASIC_COLOR_TERMS.index(concept.name[:-2])
                )


def test_make_probe_is_deterministic_and_says_it_is_not_broden(tmp_path):
    a = make_probe(digit_items(60), tmp_path / "a", n_images=4, image_size=32, seed=9)
    b = make_probe(digit_items(60), tmp_path / "b", n_images=4, image_size=32, seed=9)
    files = sorted(p.relative_to(a.directory) for p in a.directory.rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(b.directory) for p in b.directory.rglob("*") if p.is_file()
    )
    _, mismatch, errors = filecmp.cmpfiles(
        a.directory, b.directory, [str(f) for f in files], shallow=False
    )
    assert mismatch == [] and errors == []
    readme = (a.directory / "README.txt").read_text()
    assert "Broden on-disk format" in readme and "NOT Broden" in readme


def test_make_probe_takes_rgb_items_and_refuses_unusable_ones(tmp_path):
    rng = np.random.default_rng(0)
    rgb = [(rng.integers(0, 256, (10, 10, 3)), "k", "thing")]
    probe = make_probe(rgb, tmp_path / "rgb", n_images=2, image_size=16, seed=0)
    assert [c.name for c in probe.concepts if c.category == "object"] == ["thing"]
    with pytest.raises(InputError, match="at least one item with a visible"):
        make_probe([(np.zeros((8, 8)), 0, "blank")], tmp_path / "x", n_images=1)
    with pytest.raises(InputError, match="two classes share the name 'a'"):
        make_probe(
            [(np.ones((8, 8)), 0, "a"), (np.ones((8, 8)), 1, "a")], tmp_path / "y", n_images=1
        )
    with pytest.raises(InputError, match="already holds a probe set"):
        make_probe(rgb, tmp_path / "rgb", n_images=1, image_size=16)


def test_basic_colour_prototypes_name_themselves_and_common_colours():
    for term, rgb in PROTOTYPES:
        assert BASIC_COLOR_TERMS[name_colors(np.array(rgb, np.uint8))] == term
    samples = {
        (255, 0, 0): "red",
        (0, 0, 255): "blue",
        (0, 255, 255): "blue",
        (255, 128, 0): "orange",
    }
    for rgb, term in samples.items():
        assert BASIC_COLOR_TERMS[name_colors(np.array(rgb, np.uint8))] == term
    assert name_colors(PROTOTYPES_RGB.reshape(1, -1, 3)).shape == (1, len(PROTOTYPES))


# ----------------------------------------------------------------- bad directories


@pytest.fixture
def broken(written, tmp_path):
    directory, _ = written
    copy = tmp_path / "broken"
    shutil.copytree(directory, copy)
    return copy


@pytest.mark.parametrize("name", ["index.csv", "label.csv", "category.csv", "c_part.csv"])
def test_a_missing_csv_is_named(broken, name):
    (broken / name).unlink()
    with pytest.raises(InputError, match=f"^{name} is missing from the probe directory"):
        ProbeSet.open(broken)


def test_a_mask_of_the_wrong_size_is_refused(broken):
    Image.new("RGB", (7, 7)).save(broken / "images" / "probe" / "000001_object.png")
    probe = ProbeSet.open(broken)
    with pytest.raises(
        InputError, match=r"000001_object\.png is 7×7 but index\.csv line 3 says sh×sw = 6×5"
    ):
        probe[1]


def test_an_unknown_label_number_in_a_mask_is_refused(broken):
    mask = np.zeros((6, 5, 3), np.uint8)
    mask[2, 2] = (231, 3, 0)  # 231 + 3·256 = 999
    Image.fromarray(mask).save(broken / "images" / "probe" / "000002_part.png")
    probe = ProbeSet.open(broken)
    with pytest.raises(
        InputError, match=r"000002_part\.png uses label number 999, which label\.csv does not"
    ):
        probe[2]
    (broken / "index.csv").write_text((broken / "index.csv").read_text().replace(",7;8", ",7;77"))
    with pytest.raises(InputError, match=r"index\.csv line 3 uses label number 77"):
        ProbeSet.open(broken)[1]


def test_a_missing_image_or_mask_is_named(broken):
    (broken / "images" / "probe" / "000004.png").unlink()
    (broken / "images" / "probe" / "000000_color.png").unlink()
    probe = ProbeSet.open(broken)
    with pytest.raises(
        InputError, match=r"probe image .*000004\.png \(index\.csv line 6\) is missing"
    ):
        probe[4]
    with pytest.raises(
        InputError, match=r"mask .*000000_color\.png \(index\.csv line 2\) is missing"
    ):
        probe.masks(0)


def test_malformed_csv_content_and_options_are_refused(broken, tmp_path):
    with pytest.raises(InputError, match="category 'texture' is not in"):
        ProbeSet.open(broken, categories=["texture"])
    with pytest.raises(InputError, match="does not exist"):
        ProbeSet.open(tmp_path / "nowhere")
    text = (broken / "index.csv").read_text().splitlines()
    text[1] = text[1].replace(",12,10,", ",twelve,10,")
    (broken / "index.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match="line 2: column ih is 'twelve', not an integer"):
        ProbeSet.open(broken)
    (broken / "label.csv").write_text("number,name\n1,red-c\n")
    with pytest.raises(InputError, match="lacks the column"):
        ProbeSet.open(broken)
