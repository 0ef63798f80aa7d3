"""`unitcat ingest paper` on a small ImageNet-layout folder with a random-weight AlexNet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import create_engine, text

from catalogue.pipeline.paper import ALEXNET_LAYERS, present_groups
from tests.cli import unitcat

WNIDS = ["n02930766", "n03769881", "n04146614", "n04487081"]  # cab, minibus, school bus, trolleybus


@pytest.fixture
def imagenet_folder(tmp_path: Path) -> Path:
    root = tmp_path / "val"
    rng = np.random.default_rng(0)
    for c, wnid in enumerate(WNIDS):
        (root / wnid).mkdir(parents=True)
        for i in range(5):
            pixels = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
            pixels[..., c % 3] //= 2 + i  # a little class structure
            Image.fromarray(pixels).save(root / wnid / f"ILSVRC2012_val_{c:02d}{i:03d}.JPEG")
    return root


def test_groups_keep_only_the_classes_present() -> None:
    groups = present_groups(WNIDS)
    assert groups == {"bus": ["n04146614", "n04487081", "n03769881"], "car": ["n02930766"]}
    assert present_groups(["n01440764"]) == {}


def test_the_paper_command_builds_the_catalogue(database_url: str, imagenet_folder: Path) -> None:
    result = unitcat(
        "ingest", "paper", "--imagenet", str(imagenet_folder), "--weights", "none",
        "--num-classes", "4", "--workers", "0", "--batch-size", "8",
        env={"DATABASE_URL": database_url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "The headline query" in result.stdout
    engine = create_engine(database_url)
    with engine.connect() as conn:
        layers = (
            conn.execute(
                text(
                    "SELECT DISTINCT layer FROM unit_catalogue WHERE run_id IS NOT NULL ORDER BY layer"
                )
            )
            .scalars()
            .all()
        )
        groups = conn.execute(
            text(
                "SELECT g.name, count(DISTINCT m.class_id) FROM class_group g "
                "JOIN class_group_member m ON m.group_id = g.id GROUP BY g.name ORDER BY g.name"
            )
        ).all()
        n_group_rows = conn.execute(text("SELECT count(*) FROM unit_group_metrics")).scalar_one()
        score = conn.execute(text("SELECT params FROM run WHERE kind = 'score'")).scalar_one()
    engine.dispose()
    assert layers == sorted(ALEXNET_LAYERS.values())
    assert [tuple(g) for g in groups] == [("bus", 3), ("car", 1)]
    assert n_group_rows == 2 * (256 + 4096 + 4096 + 4)
    assert score["all_images"] is False


def test_missing_imagenet_weights_are_one_line_naming_the_file(
    database_url: str, tmp_path: Path
) -> None:
    result = unitcat(
        "ingest", "paper", "--imagenet", str(tmp_path),
        env={"DATABASE_URL": database_url, "TORCH_HOME": str(tmp_path / "torch")},
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "alexnet-owt-7be5be79.pth" in result.stderr
    assert "never downloads" in result.stderr
