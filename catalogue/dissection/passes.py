"""The two passes of network dissection over (a shard of) a probe set.

Pass one keeps every unit's largest activations (`RunningTopK`), from which
the thresholds T_k follow; pass two tallies intersections and unions
(`IoUTally`) with those thresholds. `ProbePasses` runs them over a range of
probe images — a shard (`catalogue.dissection.dissect`: all images in one
process, about two shards per worker on a Ray cluster): the shards' top activations merge
into the same thresholds (the k-th largest of a union is the k-th largest of
the parts' k largest) and their tallies, integer pixel counts, add up to the
same sums, so a sharded dissection equals a one-process one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from catalogue.dissection.inputs import as_maps
from catalogue.dissection.labels import LayerDissection, label_units
from catalogue.dissection.tally import IoUTally
from catalogue.dissection.thresholds import RunningTopK, threshold_rank
from catalogue.errors import InputError, UnitcatError
from catalogue.probe import ProbeSet


class _ProbeImages(torch.utils.data.Dataset):
    """Probe images (and optionally masks) as model inputs, for a DataLoader."""

    def __init__(
        self, probe: ProbeSet, transform: Callable[[Image.Image], torch.Tensor], with_masks: bool
    ):
        self.probe, self.transform, self.with_masks = probe, transform, with_masks

    def __len__(self) -> int:
        return len(self.probe)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, Any]:
        # A bad probe file is returned, not raised, so that a worker process hands the
        # main process the one-line error rather than a wrapped traceback.
        try:
            x = self.transform(Image.fromarray(self.probe.image(i)))
            if not isinstance(x, torch.Tensor) or x.ndim != 3:
                raise InputError("the transform must map a PIL RGB image to a C × H × W tensor.")
            return x, (self.probe.masks(i) if self.with_masks else None)
        except UnitcatError as e:
            return None, e


def _collate(batch: list[tuple[torch.Tensor | None, Any]]) -> tuple[torch.Tensor | None, list[Any]]:
    errors = [m for x, m in batch if x is None]
    if errors:
        return None, errors[:1]
    shapes = {tuple(x.shape) for x, _ in batch if x is not None}
    if len(shapes) > 1:
        error = InputError(
            f"the transform gave inputs of different sizes {sorted(shapes)}; resize to one size."
        )
        return None, [error]
    return torch.stack([x for x, _ in batch if x is not None]), [m for _, m in batch]


@dataclass(frozen=True)
class ProbePasses:
    """A feature extractor over probe images ``items`` (None: all), batch by batch."""

    extractor: torch.nn.Module
    layer_names: tuple[str, ...]
    probe: ProbeSet
    transform: Callable[[Image.Image], torch.Tensor]
    device: str
    batch_size: int
    num_workers: int = 0
    items: range | None = None

    def batches(self, with_masks: bool) -> Iterator[tuple[dict[str, torch.Tensor], list[Any]]]:
        """(maps per layer, masks) per batch; batches start at multiples of ``batch_size`` of ``items``."""
        images: torch.utils.data.Dataset = _ProbeImages(self.probe, self.transform, with_masks)
        if self.items is not None:
            images = torch.utils.data.Subset(images, self.items)
        loader = torch.utils.data.DataLoader(
            images, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=_collate
        )
        with torch.inference_mode():
            for x, masks in loader:
                if x is None:
                    raise masks[0]
                out = self.extractor(x.to(self.device))
                for name in self.layer_names:
                    if out[name].ndim != 4:
                        raise InputError(
                            f"layer {name!r} outputs shape {tuple(out[name].shape)}; dissection needs "
                            "convolutional feature maps (images × units × h × w)."
                        )
                yield out, masks

    def top_activations(
        self, n_images: int, quantile: float, on_images: Callable[[int], None]
    ) -> dict[str, RunningTopK]:
        """Pass one: per layer, each unit's k = ⌈q·N·h·w⌉ largest values (N: the whole probe set)."""
        topk: dict[str, RunningTopK] = {}
        for out, _ in self.batches(with_masks=False):
            for name in self.layer_names:
                m = as_maps(out[name], self.device)
                if name not in topk:
                    k = threshold_rank(n_images * m.shape[2] * m.shape[3], quantile)
                    topk[name] = RunningTopK(k)
                topk[name].add(m.transpose(0, 1).reshape(m.shape[1], -1))
            on_images(next(iter(out.values())).shape[0])
        return topk

    def tallies(
        self, thresholds: Mapping[str, torch.Tensor], on_images: Callable[[int], None]
    ) -> dict[str, IoUTally]:
        """Pass two: per layer, the IoU tally of these images with the given thresholds."""
        tallies = {
            name: new_tally(thresholds[name], self.probe, self.device) for name in self.layer_names
        }
        for out, masks in self.batches(with_masks=True):
            for name in self.layer_names:
                tallies[name].add(out[name], masks)
            on_images(len(masks))
        return tallies


def new_tally(thresholds: torch.Tensor, probe: ProbeSet, device: str) -> IoUTally:
    """An empty tally of the probe set's concepts (with their categories) at ``thresholds``."""
    return IoUTally(
        thresholds,
        len(probe.concepts),
        concept_category=probe.concept_category,
        n_categories=len(probe.categories),
        device=device,
    )


def label_layers(
    tallies: Mapping[str, IoUTally],
    probe: ProbeSet,
    quantile: float,
    *,
    iou_threshold: float,
    top_n: int,
) -> dict[str, LayerDissection]:
    """Each layer's units labelled from its finished tally."""
    return {
        name: label_units(
            name, tally.result(quantile), probe.concepts, iou_threshold=iou_threshold, top_n=top_n
        )
        for name, tally in tallies.items()
    }
