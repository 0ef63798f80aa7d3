"""Files the catalogue points at: image files, bundled images, artifacts, the HDF5 store.

The database holds keys and paths, not pixels or activations. Image keys are
relative to the folder an extraction read (or absolute); datasets that ship with
a package (digits, Fashion-MNIST, Fashion-MNIST in colours) have keys into arrays; artifact paths (AM
panels) are relative to `UNITCAT_HOME/artifacts`; a unit's activation for every
scored image (the jitter plot of the paper's Figure 3) is read from the scoring
run's parent extraction run's HDF5 store, with the scoring run's row selection
(by default only the correctly classified images).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from catalogue.config import get_settings
from catalogue.errors import NotFound, UnitcatError
from catalogue.query.views import DATASET, LAYER, RUN, UNIT

# ------------------------------------------------------------------------------ images

#: Datasets that ship with a package (catalogue.data): their images are arrays, not files.
BUNDLED_DATASETS: tuple[str, ...] = ("digits", "fashion-mnist", "fashion-mnist-colours")

#: Extraction-run parameters that may name the folder image keys are relative to
#: (`dataset_source` is what `unitcat ingest extract` records for an image folder).
IMAGE_ROOT_PARAMS: tuple[str, ...] = ("dataset_source", "root", "image_root", "data_root")


@functools.lru_cache(maxsize=2)
def _bundled_index(name: str, source: str | None) -> tuple[Any, dict[str, int]] | None:
    """A bundled dataset (digits:test, fashion-mnist:train …) and its index by image key.

    Imports catalogue.data (and torch) lazily: only the Unit page of such a run needs it.
    """
    base = name.partition(":")[0].lower()
    if base not in BUNDLED_DATASETS and not base.startswith("fashion-mnist-colours-seed"):
        return None
    from catalogue.data import resolve_dataset

    folder = source if source and Path(source).is_dir() else None
    try:
        dataset = resolve_dataset(name, fashion_mnist_dir=folder)
    except (UnitcatError, OSError):
        return None
    return dataset, {dataset.key(i): i for i in range(len(dataset))}


def bundled_image(name: str, source: str | None, key: str) -> Any:
    """The image (PIL) with this key in a bundled dataset, or None when it cannot be read."""
    found = _bundled_index(name, source)
    if found is None or key not in found[1]:
        return None
    dataset, index = found
    return dataset.load_image(index[key])


def _image_roots(engine: Engine, run_id: int) -> list[Path]:
    """Folders that image keys of a scoring run may be relative to: its extraction run's
    dataset source, its dataset's registered source, and where `unitcat import` put the
    images of a dump (`catalogue.share.images`)."""
    parent = RUN.alias("parent")
    statement = (
        select(
            RUN.c.params, parent.c.params.label("parent_params"), DATASET.c.source, DATASET.c.name
        )
        .select_from(
            RUN.outerjoin(parent, parent.c.id == RUN.c.parent_id).outerjoin(
                DATASET, DATASET.c.id == RUN.c.dataset_id
            )
        )
        .where(RUN.c.id == int(run_id))
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one_or_none()
    if row is None:
        return []
    candidates: list[str] = []
    for params in (row.parent_params, row.params):
        for key in IMAGE_ROOT_PARAMS:
            value = (params or {}).get(key)
            if isinstance(value, str):
                candidates.append(value)
    if row.source:
        candidates.append(row.source)
    if row.name:
        candidates.append(str(imported_images(row.name)))
    roots: list[Path] = []
    for value in dict.fromkeys(candidates):
        path = Path(value).expanduser()
        if value and path.is_dir():
            roots.append(path)
    return roots


def imported_images(dataset: str) -> Path:
    """The folder of a dataset's images that `unitcat import` wrote."""
    return get_settings().artifacts_dir / "imported" / "images" / dataset_folder(dataset)


def dataset_folder(dataset: str) -> str:
    """A dataset's folder name under `artifacts/imported/images/` (its name made safe)."""
    safe = "".join(c if c.isalnum() or c in "-_.:" else "_" for c in dataset).strip(".")
    return (safe or "dataset").replace(":", "_")


def _image_path(key: str | None, roots: Iterable[Path]) -> str | None:
    """The readable image file a key names (absolute, or relative to one of `roots`), else None."""
    if not key:
        return None
    candidate = Path(key).expanduser()
    options = [candidate] if candidate.is_absolute() else [root / key for root in roots]
    for path in options:
        if path.is_file():
            return str(path)
    return None


def attach_images(engine: Engine, run_id: int, frame: pd.DataFrame) -> pd.DataFrame:
    """Add `path` (the image file, or None) and `image` (a path or a PIL image of a bundled
    dataset, or None) to a frame of a scoring run's images with an `image_key` column."""
    roots = _image_roots(engine, run_id)
    frame["path"] = [_image_path(k, roots) for k in frame["image_key"]]
    images: list[Any] = list(frame["path"])
    missing = [i for i, p in enumerate(images) if p is None and frame["image_key"].iloc[i]]
    if missing:
        with engine.connect() as conn:
            dataset = conn.execute(
                select(DATASET.c.name, DATASET.c.source)
                .join(RUN, RUN.c.dataset_id == DATASET.c.id)
                .where(RUN.c.id == int(run_id))
            ).one_or_none()
        if dataset is not None:
            for i in missing:
                images[i] = bundled_image(dataset.name, dataset.source, frame["image_key"].iloc[i])
    frame["image"] = images
    return frame


# --------------------------------------------------------------------------- artifacts


def artifact_path(path: str | None) -> str | None:
    """An artifact file (AM panel …) as stored: absolute, or relative to UNITCAT_HOME/artifacts."""
    if not path:
        return None
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = get_settings().artifacts_dir / candidate
    return str(candidate) if candidate.is_file() else None


# ------------------------------------------------------------------------- activations


@dataclass(frozen=True)
class UnitActivations:
    """One unit's activation for every image its scoring run scored.

    `rows` are the store rows scored (in store order): all complete rows when the
    run scored all images, else those with ``/correct`` true (the paper's choice).
    """

    values: np.ndarray  # float32 (n,)
    labels: np.ndarray  # int64 (n,)
    class_names: list[str]
    all_images: bool
    n_stored: int
    source: Path


def _h5_file(path: str) -> Path:
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and not candidate.exists():
        candidate = get_settings().runs_dir / candidate
    return candidate


def unit_activations(engine: Engine, unit_id: int, run_id: int) -> UnitActivations:
    """Read a unit's activations from the HDF5 store of the scoring run's extraction run.

    Raises NotFound when the run has no extraction run or file, or the file lacks the layer.
    """
    from catalogue.store import ActivationStore

    parent = RUN.alias("parent")
    statement = (
        select(
            RUN.c.kind,
            RUN.c.params,
            RUN.c.h5_path,
            parent.c.h5_path.label("parent_h5"),
            LAYER.c.name.label("layer"),
            UNIT.c.unit_index,
        )
        .select_from(RUN.outerjoin(parent, parent.c.id == RUN.c.parent_id))
        .join(UNIT, UNIT.c.id == int(unit_id))
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .where(RUN.c.id == int(run_id))
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one_or_none()
    if row is None:
        raise NotFound(f"no scoring run {run_id} or unit id {unit_id} in the catalogue.")
    h5 = row.parent_h5 or row.h5_path
    if not h5:
        raise NotFound(
            f"scoring run {run_id} has no extraction run with an activation file; "
            "the jitter plot needs the HDF5 store that `unitcat ingest extract` writes."
        )
    params = row.params or {}
    all_images = bool(params.get("all_images", False))
    with ActivationStore.open(_h5_file(h5)) as store:
        rows = None if all_images else store.correct
        values = store.read_units(row.layer, row.unit_index, row.unit_index + 1, rows=rows)[:, 0]
        labels = store.labels if rows is None else store.labels[rows]
        return UnitActivations(
            values=values,
            labels=labels.astype(np.int64, copy=False),
            class_names=store.class_names,
            all_images=all_images,
            n_stored=store.n_complete,
            source=store.path,
        )
