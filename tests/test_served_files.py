"""Files the UI serves stay inside the folders they belong to.

The database says where AM panels and image files are, and the owner role writes
the database; the UI may run as a user who can read much more (root). A panel
path `../../../../srv/private/secret.png` or an image key that climbs out of its dataset
folder (or a symbolic link that points out of it) must not be served.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from streamlit.testing.v1 import AppTest

from catalogue.config import get_settings
from catalogue.query.files import artifact_path, attach_images, confined
from tests.ui_fixtures import UICatalogue

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """An image outside every folder the UI may serve."""
    path = tmp_path / "outside" / "secret.png"
    path.parent.mkdir()
    Image.fromarray(np.full((4, 4, 3), 200, np.uint8)).save(path)
    return path


def _climb(start: Path, target: Path) -> str:
    """A relative path from folder `start` to `target` that climbs with `..`."""
    return "/".join([".."] * len(start.resolve().parts)) + str(target.resolve())


def test_artifact_paths_are_confined_to_the_artifacts_folder(secret: Path) -> None:
    artifacts = get_settings().artifacts_dir
    inside = artifacts / "am" / "confined-test" / "panel.png"
    inside.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(inside)
    link = inside.with_name("link.png")
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    assert artifact_path("am/confined-test/panel.png") == str(inside.resolve())
    assert artifact_path(str(inside)) == str(inside.resolve())  # absolute, inside
    assert artifact_path(_climb(artifacts, secret)) is None
    assert artifact_path("am/../../" + _climb(artifacts, secret)) is None
    assert artifact_path(str(secret)) is None  # absolute, outside
    assert artifact_path("am/confined-test/link.png") is None  # a link that leads out
    assert artifact_path("am/confined-test/missing.png") is None
    assert artifact_path("am/\0.png") is None
    assert secret.is_file() and confined(secret, [secret.parent]) == secret.resolve()


def test_image_keys_are_confined_to_their_dataset_folder(
    catalogue: UICatalogue, secret: Path
) -> None:
    root = catalogue.image_root
    inside = sorted(root.rglob("*.png"))[0]
    key = str(inside.relative_to(root))
    frame = pd.DataFrame({"image_key": [key, _climb(root, secret), str(secret), str(inside)]})
    engine = create_engine(catalogue.url, poolclass=NullPool)
    attached = attach_images(engine, catalogue.score_run, frame)
    engine.dispose()
    served = [p if isinstance(p, str) else None for p in attached["path"]]
    assert served == [str(inside.resolve()), None, None, str(inside.resolve())]
    assert [i is None or isinstance(i, float) for i in attached["image"]] == [
        False,
        True,
        True,
        False,
    ]


@pytest.fixture
def tampered(catalogue: UICatalogue, secret: Path) -> Iterator[None]:
    """The owner points fc6.3's AM panel outside the artifacts folder (and back afterwards)."""
    engine = create_engine(catalogue.url, poolclass=NullPool)
    with engine.begin() as conn:
        before = conn.execute(text("SELECT path FROM am_panel")).scalar_one()
        conn.execute(
            text("UPDATE am_panel SET path = :p"),
            {"p": _climb(get_settings().artifacts_dir, secret)},
        )
    yield
    with engine.begin() as conn:
        conn.execute(text("UPDATE am_panel SET path = :p"), {"p": before})
    engine.dispose()


@pytest.mark.usefixtures("tampered")
def test_the_unit_page_does_not_serve_a_panel_outside_the_artifacts(
    catalogue: UICatalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", catalogue.url)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["unit_id"] = str(catalogue.unit_ids[("fc6", 3)])
    at.query_params["run_id"] = str(catalogue.score_run)
    at.switch_page("app_pages/unit.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.image) == 2  # the top images' two parts; no panel
    assert all("toy-am" not in c for image in at.image for c in image.captions)
    assert any("cannot be read here" in w.value for w in at.warning)
