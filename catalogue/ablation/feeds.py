"""Where a layer's output comes from for ablation: the activation store, or the images.

The rest of the network needs the layer's full output. For an fc layer the
extraction run's HDF5 store holds exactly that (one value per image and unit),
so `StoreFeed` reads it in row bands and no image is loaded and no earlier
layer runs. A conv layer's store holds one reduced value per unit (the spatial
maximum or mean), not the feature map, so `ImageFeed` computes the layer's
output (and any other value the rest reads, such as a residual block's skip
tensor) once per image batch with the model's one extractor; the batch then
serves every ablation configuration. Feature maps are kept in memory up to
``cache_bytes`` so that later passes (the mean, the class curves) skip the head.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from catalogue.data import ImageDataset, collate_samples
from catalogue.errors import InputError
from catalogue.models import GraphSplit, PreparedModel
from catalogue.store import StoreReader

DEFAULT_CACHE_BYTES = 1 << 30


@dataclass
class FeedBatch:
    value: torch.Tensor  # (B, U, …) the layer's output
    inputs: list[torch.Tensor]  # the tail's other inputs
    labels: torch.Tensor  # (B,)


class StoreFeed:
    """An fc layer's stored values for the chosen rows, ``batch_size`` rows at a time."""

    def __init__(
        self,
        store: StoreReader,
        layer: str,
        rows: np.ndarray,
        labels: np.ndarray,
        *,
        batch_size: int,
        device: torch.device,
    ) -> None:
        self.store, self.layer, self.rows = store, layer, np.asarray(rows, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.batch_size, self.device = batch_size, device

    @property
    def n_images(self) -> int:
        return int(self.rows.size)

    def __iter__(self) -> Iterator[FeedBatch]:
        band = self.store.chunk_rows
        groups = self.rows // band
        bounds = np.flatnonzero(np.diff(groups)) + 1
        for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), self.rows.size], strict=True):
            wanted = self.rows[lo:hi]
            if not wanted.size:
                continue
            first, last = int(wanted.min()), int(wanted.max()) + 1
            values = self.store.read_rows(self.layer, first, last)[wanted - first]
            labels = self.labels[lo:hi]
            for start in range(0, wanted.size, self.batch_size):
                part = slice(start, start + self.batch_size)
                yield FeedBatch(
                    torch.from_numpy(np.ascontiguousarray(values[part])).to(self.device),
                    [],
                    torch.from_numpy(labels[part]).to(self.device),
                )


@dataclass
class ImageFeed:
    """The layer's output (and the tail's other inputs) from the images, by the model's head."""

    ready: PreparedModel
    split: GraphSplit
    dataset: ImageDataset
    indices: np.ndarray  # dataset indices of the chosen images, in store order
    labels: np.ndarray  # their labels (from the store)
    batch_size: int
    workers: int = 0
    cache_bytes: int = DEFAULT_CACHE_BYTES
    _cache: list[FeedBatch] = field(default_factory=list, init=False)
    _cached_all: bool = field(default=False, init=False)

    @property
    def n_images(self) -> int:
        return int(self.indices.size)

    def __iter__(self) -> Iterator[FeedBatch]:
        if self._cached_all:
            yield from self._cache
            return
        self._cache = []
        cached = 0
        keep = True
        extractor = self.ready.extractor(self.split.extract, with_logits=False)
        subset = torch.utils.data.Subset(self.dataset, self.indices.tolist())
        loader = torch.utils.data.DataLoader(
            subset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.workers,
            collate_fn=collate_samples,
        )
        start = 0
        for batch in loader:
            if batch.skipped:
                key, reason, _ = batch.skipped[0]
                raise InputError(
                    f"image {key} of the extraction run cannot be read now ({reason}); "
                    "ablation needs the same images."
                )
            n = len(batch)
            images = batch.images.to(self.ready.device)
            if self.ready.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            outputs = extractor(images)
            labels = torch.from_numpy(self.labels[start : start + n]).to(self.ready.device)
            start += n
            item = FeedBatch(
                outputs[self.split.layer], [outputs[i] for i in self.split.inputs], labels
            )
            if keep:
                size = sum(t.numel() * t.element_size() for t in [item.value, *item.inputs])
                cached += size
                keep = cached <= self.cache_bytes
                if keep:
                    self._cache.append(item)
                else:
                    self._cache = []
            yield item
        self._cached_all = keep


def layer_feed(
    ready: PreparedModel,
    split: GraphSplit,
    store: StoreReader,
    *,
    kind: str,
    rows: np.ndarray,
    labels: np.ndarray,
    dataset: ImageDataset | None,
    indices: np.ndarray | None,
    use_store: bool,
    batch_size: int,
    workers: int,
    device: torch.device,
) -> StoreFeed | ImageFeed:
    """Where ablation reads the output of ``split.layer``: an fc layer's from the store (when
    the rest of the network reads nothing else of the head), any other from the images."""
    if kind == "fc" and use_store and not split.inputs:
        return StoreFeed(store, split.layer, rows, labels, batch_size=batch_size, device=device)
    if dataset is None or indices is None:
        raise InputError(f"ablating {split.layer} needs the run's images; give the dataset.")
    return ImageFeed(ready, split, dataset, indices, labels, batch_size, workers=workers)


def layer_means(feed: StoreFeed | ImageFeed, n_units: int) -> np.ndarray:
    """(U,) each unit's mean over the feed's images (and, for conv, over its map's positions)."""
    total = np.zeros(n_units)
    count = 0
    for batch in feed:
        value = batch.value.double()
        dims = [0, *range(2, value.ndim)]
        total += value.sum(dim=dims).cpu().numpy()
        count += int(value.numel() // n_units)
    return total / max(count, 1)


def dataset_indices(dataset: ImageDataset, keys: Sequence[str]) -> np.ndarray:
    """The dataset index of each stored image key; InputError if an image is missing."""
    position = {dataset.key(i): i for i in range(len(dataset))}
    missing = [k for k in keys if k not in position]
    if missing:
        raise InputError(
            f"{len(missing)} image(s) of the extraction run are not in dataset {dataset.name} "
            f"(first: {missing[0]}); ablation needs the images the run extracted."
        )
    return np.fromiter((position[k] for k in keys), dtype=np.int64, count=len(keys))


def choose_rows(labels: np.ndarray, correct: np.ndarray, images: str | int) -> np.ndarray:
    """Rows of the store to ablate over, ascending.

    ``all``: every image; ``correct``: the correctly classified ones; a number N:
    N images spread evenly over the classes present (N // C each, one more for the
    first N mod C classes), each class's first images in store order — a class-balanced
    subset, so every class's accuracy is measured even when N is small.
    """
    labels = np.asarray(labels, dtype=np.int64)
    spec = str(images).strip().lower()
    if spec == "all":
        return np.arange(labels.size, dtype=np.int64)
    if spec == "correct":
        return np.flatnonzero(np.asarray(correct, dtype=bool)).astype(np.int64)
    if not spec.isdigit() or int(spec) < 1:
        raise InputError(f"--images must be all, correct or a number of images, not {images!r}.")
    n = int(spec)
    present = np.unique(labels)
    if present.size == 0:
        return np.zeros(0, dtype=np.int64)
    quota = np.full(present.size, n // present.size)
    quota[: n % present.size] += 1
    chosen = [np.flatnonzero(labels == c)[:q] for c, q in zip(present, quota, strict=True)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)
