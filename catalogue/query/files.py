"""Files the catalogue points at: image files, bundled images, artifacts, the HDF5 store.

The database holds keys and paths, not pixels or activations. Image keys are
relative to the folder an extraction read (or absolute); datasets that ship with
a package (digits, Fashion-MNIST, Fashion-MNIST in colours) have keys into arrays; artifact paths (AM
panels) are relative to `UNITCAT_HOME/artifacts`; a unit's activation for every
scored image (the jitter plot of the paper's Figure 3) is read from the scoring
run's parent extraction run's HDF5 store, with the row selection the run actually
scored (`scored_rows`): by default its own correctly classified images, all of them
with `--all-images`, and for a baseline the rows of the run it repeats (a
random-weights network is scored on the images the trained network classified
correctly, not on the few it gets right itself).
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
from catalogue.errors import InputError, NotFound, UnitcatError
from catalogue.query.views import DATASET, LAYER, RUN, UNIT, UNIT_METRICS

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


def confined(path: Path, roots: Iterable[Path]) -> Path | None:
    """`path` resolved (``..`` and symbolic links followed) if it is a file inside one of
    `roots` (resolved the same way), else None.

    Every file the UI serves passes through here: the paths come from the database,
    which the owner role writes, and the UI may run as a user who can read far more
    (a panel path ``../../../../srv/private/secret.png`` must not be served).
    """
    try:
        resolved = path.expanduser().resolve()
        inside = any(resolved.is_relative_to(root.expanduser().resolve()) for root in roots)
        return resolved if inside and resolved.is_file() else None
    except (OSError, RuntimeError, ValueError):  # a loop of links, a NUL byte
        return None


def imported_images(dataset: str) -> Path:
    """The folder of a dataset's images that `unitcat import` wrote."""
    return get_settings().artifacts_dir / "imported" / "images" / dataset_folder(dataset)


def dataset_folder(dataset: str) -> str:
    """A dataset's folder name under `artifacts/imported/images/` (its name made safe)."""
    safe = "".join(c if c.isalnum() or c in "-_.:" else "_" for c in dataset).strip(".")
    return (safe or "dataset").replace(":", "_")


def _image_path(key: str | None, roots: Iterable[Path]) -> str | None:
    """The readable image file a key names (relative to one of `roots`, or absolute inside
    one of them), else None."""
    if not key:
        return None
    roots = list(roots)
    candidate = Path(key).expanduser()
    options = [candidate] if candidate.is_absolute() else [root / key for root in roots]
    for path in options:
        found = confined(path, roots)
        if found is not None:
            return str(found)
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
    """An artifact file (AM panel …) as stored: relative to UNITCAT_HOME/artifacts, or
    absolute inside it; None for a path outside it (`confined`) or no file."""
    if not path:
        return None
    artifacts = get_settings().artifacts_dir
    found = confined(artifacts / Path(path).expanduser(), [artifacts])
    return str(found) if found is not None else None


# ------------------------------------------------------------------------- activations

#: How many scoring runs a row selection may be borrowed through (a baseline of a
#: baseline is refused when it is made; this bounds a damaged catalogue's loop).
_MAX_BORROWED = 8


@dataclass(frozen=True)
class ScoredRows:
    """The rows of its activation store that a scoring run scored.

    `origin` is the run whose own selection it is: the run itself, or (`rows_from`) the
    trained scoring run a baseline borrowed its images from; `all_images` is that run's
    choice (every complete row, or only the rows ``/correct`` marks in *its* store).
    """

    mask: np.ndarray  # bool (n_stored,)
    origin: int
    all_images: bool
    rows_from: int | None

    @property
    def n(self) -> int:
        return int(np.count_nonzero(self.mask))

    def describe(self) -> str:
        """The selection in words: whose images, chosen how."""
        if self.rows_from is None:
            return "all images" if self.all_images else "the correctly classified images"
        if self.all_images:
            return f"all images, as scoring run #{self.origin} scored them"
        return f"the images scoring run #{self.origin}'s network classified correctly"


def _run_source(conn: Any, run_id: int) -> Any:
    """A run's kind, parameters and activation file (its own or its extraction run's)."""
    parent = RUN.alias("parent")
    statement = (
        select(
            RUN.c.id,
            RUN.c.kind,
            RUN.c.params,
            RUN.c.h5_path,
            parent.c.h5_path.label("parent_h5"),
        )
        .select_from(RUN.outerjoin(parent, parent.c.id == RUN.c.parent_id))
        .where(RUN.c.id == int(run_id))
    )
    return conn.execute(statement).one_or_none()


#: The parameter that names the run whose rows a run of this kind scored.
BORROWED_ROWS_PARAM: dict[str, str] = {"score": "rows_from", "chance": "score_run"}


def _borrowed_from(row: Any) -> int | None:
    name = BORROWED_ROWS_PARAM.get(row.kind)
    value = (row.params or {}).get(name) if name else None
    return None if value is None else int(value)


def _origin(engine: Engine, run_id: int) -> tuple[Any, int | None]:
    """The run whose own selection `run_id` scored, and the first run it borrowed from.

    A scoring run with ``rows_from`` (a random-weights baseline) scored the rows of that
    run; a chance run (``score_run``) scored the rows of the scoring run it permutes.
    """
    borrowed: int | None = None
    with engine.connect() as conn:
        row = _run_source(conn, run_id)
        for _ in range(_MAX_BORROWED):
            if row is None:
                raise NotFound(f"no run {run_id} in the catalogue.")
            source = _borrowed_from(row)
            if source is None:
                return row, borrowed
            borrowed = source if borrowed is None else borrowed
            following = _run_source(conn, source)
            if following is None:
                raise NotFound(
                    f"run {row.id} scored the images of run {source}, which is no longer in "
                    "the catalogue: which images it scored cannot be told."
                )
            row = following
    raise NotFound(f"run {run_id} borrows its images through more than {_MAX_BORROWED} runs.")


def _store_path(row: Any) -> Path:
    h5 = row.parent_h5 or row.h5_path
    if not h5:
        raise NotFound(
            f"scoring run {row.id} has no extraction run with an activation file; "
            "the activations need the HDF5 store that `unitcat ingest extract` writes."
        )
    return _h5_file(h5)


def _own_mask(store: Any, all_images: bool) -> np.ndarray:
    """A scoring run's own choice of rows: every complete row, or the correct ones."""
    if all_images:
        return np.ones(store.n_complete, dtype=bool)
    return np.asarray(store.correct, dtype=bool)


def _same_images(store: Any, other: Any) -> bool:
    """Whether two stores hold the same number of images with the same labels (a cheap
    check that a borrowed selection still means the same images)."""
    if store.path == other.path:
        return True
    return store.n_complete == other.n_complete and np.array_equal(store.labels, other.labels)


def scored_rows(engine: Engine, run_id: int, store: Any | None = None) -> ScoredRows:
    """The rows of `run_id`'s activation store that the run scored (see `ScoredRows`).

    `store` is the run's own open store when the caller has it. Where the selection is
    borrowed, the other store must hold the same images in the same order (as the
    baseline checked when it was made): same number of rows and the same labels.
    """
    from catalogue.store import ActivationStore

    origin, borrowed = _origin(engine, run_id)
    all_images = bool((origin.params or {}).get("all_images", False))
    if borrowed is None and store is not None:
        return ScoredRows(_own_mask(store, all_images), int(origin.id), all_images, None)
    with ActivationStore.open(_store_path(origin)) as source:
        mask = _own_mask(source, all_images)
        if borrowed is not None and store is not None and not _same_images(store, source):
            raise InputError(
                f"run {run_id} was scored on the images of run {origin.id}, but their "
                f"activation files now hold different images ({store.path}: "
                f"{store.n_complete:,} rows, {source.path}: {source.n_complete:,}); "
                "re-run the baseline to score it again."
            )
    return ScoredRows(mask=mask, origin=int(origin.id), all_images=all_images, rows_from=borrowed)


@dataclass(frozen=True)
class UnitActivations:
    """One unit's activation for every image its scoring run scored.

    The values are the store rows the run scored (`scored_rows`), in store order; their
    number is the `n_images` the run stored for the unit, so counts made from them
    reproduce the stored measures.
    """

    values: np.ndarray  # float32 (n,)
    labels: np.ndarray  # int64 (n,)
    class_names: list[str]
    all_images: bool
    n_stored: int
    source: Path
    rows: ScoredRows | None = None

    def caption(self) -> str:
        """How many images these are and which, e.g. "2,880 scored images (the correctly
        classified images of 3,200 stored)"."""
        if self.rows is not None:
            which = self.rows.describe()
        else:
            which = "all images" if self.all_images else "the correctly classified images"
        sep = "," if self.rows is not None and self.rows.rows_from is not None else ""
        return f"{self.values.size:,} scored images ({which}{sep} of {self.n_stored:,} stored)"


def _h5_file(path: str) -> Path:
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and not candidate.exists():
        candidate = get_settings().runs_dir / candidate
    return candidate


def unit_activations(engine: Engine, unit_id: int, run_id: int) -> UnitActivations:
    """Read a unit's activations from the HDF5 store of the scoring run's extraction run,
    at the rows the run scored.

    Raises NotFound when the run has no extraction run or file, or the file lacks the
    layer; InputError when the rows found are not the number of images the run stored
    for the unit (the file changed since): counts from them would not be the measures'.
    """
    from catalogue.store import ActivationStore

    statement = (
        select(
            LAYER.c.name.label("layer"),
            UNIT.c.unit_index,
            UNIT_METRICS.c.n_images,
        )
        .select_from(UNIT)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .outerjoin(
            UNIT_METRICS,
            (UNIT_METRICS.c.unit_id == UNIT.c.id) & (UNIT_METRICS.c.run_id == int(run_id)),
        )
        .where(UNIT.c.id == int(unit_id))
    )
    with engine.connect() as conn:
        unit = conn.execute(statement).one_or_none()
        run = _run_source(conn, run_id)
    if unit is None or run is None:
        raise NotFound(f"no scoring run {run_id} or unit id {unit_id} in the catalogue.")
    with ActivationStore.open(_store_path(run)) as store:
        rows = scored_rows(engine, run_id, store)
        if rows.mask.shape != (store.n_complete,):
            raise InputError(
                f"the activation file of run {run_id} holds {store.n_complete:,} images, the "
                f"selection it was scored with {rows.mask.size:,}; re-score the run."
            )
        if unit.n_images is not None and rows.n != int(unit.n_images):
            raise InputError(
                f"scoring run {run_id} scored {int(unit.n_images):,} images of this unit, but "
                f"{rows.n:,} of {store.path} are selected now; the file has changed since: "
                "re-score the run."
            )
        values = store.read_units(unit.layer, unit.unit_index, unit.unit_index + 1, rows=rows.mask)[
            :, 0
        ]
        return UnitActivations(
            values=values,
            labels=store.labels[rows.mask].astype(np.int64, copy=False),
            class_names=store.class_names,
            all_images=rows.all_images,
            n_stored=store.n_complete,
            source=store.path,
            rows=rows,
        )
