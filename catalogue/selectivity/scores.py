"""The scorer's public functions: `score_units` (one row per unit) and `score_layer`.

See the package docstring (`catalogue.selectivity`) for the definitions and the
choices the specification leaves open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from catalogue.errors import InputError
from catalogue.measures import (
    CSI_THRESHOLD,
    CSI_TOP_N,
    GROUP_MEASURES,
    PRECISION_TARGET,
    TOP_K_PRECISION,
    TOP_N_CLASSES,
    UNIT_MEASURES,
)
from catalogue.selectivity.exemplars import BOTTOM_IMAGES, bottom_images
from catalogue.selectivity.inputs import (
    REGION_BYTES,
    Activations,
    Options,
    block_size,
    check_groups,
    check_labels,
    exact_limit_ok,
    memory_budget_for,
    raise_non_finite,
    scoring_device,
)
from catalogue.selectivity.kernel import Context, Detail, NonFiniteBlock, score_block

#: Columns of `LayerScores.class_stats` (the table `unit_class_stats`, plus `unit`).
CLASS_STAT_COLUMNS: tuple[str, ...] = (
    "unit",
    "class_index",
    "mean_activation",
    "frac_nonzero",
    "informedness",
    "informedness_threshold",
    "rank_by_informedness",
    "rank_by_mean",
)

#: Columns of `LayerScores.top_image_table()` (the table `unit_top_image`, less image_key).
TOP_IMAGE_COLUMNS: tuple[str, ...] = ("unit", "rank", "image_index", "class_index", "activation")


def _empty_metrics() -> dict[str, np.ndarray]:
    dtypes = {"bool": np.bool_, "class": np.int64, "float": np.float64}
    return {m.name: np.zeros(0, dtype=dtypes[m.kind]) for m in UNIT_MEASURES}


def score_units(
    activations: Any,
    labels: Any,
    n_classes: int,
    *,
    top_k: int = TOP_K_PRECISION,
    top_n_classes: int = TOP_N_CLASSES,
    precision_target: float = PRECISION_TARGET,
    csi_top_n: int = CSI_TOP_N,
    csi_threshold: float = CSI_THRESHOLD,
    device: str | None = None,
    block_units: int | None = None,
    memory_budget: int | None = None,
) -> dict[str, np.ndarray]:
    """Every measure of docs/DESIGN.md for every unit: column name → array of length U.

    Args:
        activations: N images × U units; numpy array, torch tensor, memory map or
            h5py dataset of floats (float16/32/64) or integers. Scored in float32.
        labels: N class indices in 0..n_classes-1.
        n_classes: number of classes C (classes without images are allowed).
        top_k: images in the precision measure (Zhou et al.'s 60).
        top_n_classes: images counted by ``classes_in_top100``.
        precision_target: precision reached by ``recall_at_p95``.
        csi_top_n, csi_threshold: N and th of Rafegas et al.'s index.
        device: "auto"/None (CUDA when available), "cpu" or "cuda".
        block_units: units per block; default from `memory_budget`.
        memory_budget: bytes for one block's working memory (default 512 MiB on
            the CPU, a third of free GPU memory up to 8 GiB on CUDA); the peak is
            about this plus the caller's own array.

    Returns:
        ``localist`` (bool), ``localist_class``, ``precision_class``,
        ``ccmas_class``, ``mi_class`` (int64, -1 where undefined) and float64
        arrays for the other columns (NaN where undefined).

    Raises:
        InputError: mismatched lengths, labels outside 0..n_classes-1, NaN or
            infinite activations, a non-2-D matrix, no images, n_classes < 1,
            bad options.
    """
    options = Options(top_k, top_n_classes, precision_target, csi_top_n, csi_threshold)
    return _score(activations, labels, n_classes, options, device, block_units, memory_budget)[
        "metrics"
    ]


@dataclass(frozen=True)
class LayerScores:
    """Everything the catalogue stores for one layer's scoring run.

    Attributes:
        metrics: column of ``unit_metrics`` → (U,) array (as `score_units`).
        class_stats: long format, one entry per (unit, class) row of
            ``unit_class_stats``: for each unit the union of its ``n_top_classes``
            classes by best informedness and by mean activation (rows ordered by
            unit, then class). Columns: `CLASS_STAT_COLUMNS`. ``frac_nonzero`` is
            the share of the class's images with a > 0; ``informedness`` the
            class's best Youden J and ``informedness_threshold`` where (the
            highest threshold among ties); ranks are 1-based among the classes
            with images (ties to the lower class index), -1 where undefined.
        top_image_index, top_image_activation, top_image_class: (U, n_top_images)
            most active images, descending, ties broken by lower image index
            (padded with -1 / NaN when there are fewer images).
        bottom_image_index, bottom_image_activation, bottom_image_class:
            (U, n_bottom_images) least active images, ascending
            (`catalogue.selectivity.exemplars`: ties in a fixed pseudo-random order).
        group_metrics: group name → column of ``unit_group_metrics`` → (U,).
        class_counts: (C,) images per class among the scored images.
    """

    metrics: dict[str, np.ndarray]
    class_stats: dict[str, np.ndarray]
    top_image_index: np.ndarray
    top_image_activation: np.ndarray
    top_image_class: np.ndarray
    group_metrics: dict[str, dict[str, np.ndarray]]
    class_counts: np.ndarray
    bottom_image_index: np.ndarray
    bottom_image_activation: np.ndarray
    bottom_image_class: np.ndarray

    @property
    def n_units(self) -> int:
        return int(self.top_image_index.shape[0])

    def top_image_table(self) -> dict[str, np.ndarray]:
        """Long format for ``unit_top_image``: one entry per (unit, rank), rank from 1."""
        units, cols = np.nonzero(self.top_image_index >= 0)
        return {
            "unit": units.astype(np.int64),
            "rank": cols.astype(np.int64) + 1,
            "image_index": self.top_image_index[units, cols],
            "class_index": self.top_image_class[units, cols],
            "activation": self.top_image_activation[units, cols],
        }

    def group_table(self) -> dict[str, np.ndarray]:
        """Long format for ``unit_group_metrics``: one entry per (group, unit)."""
        names = list(self.group_metrics)
        n = self.n_units
        out: dict[str, np.ndarray] = {
            "group": np.repeat(np.array(names, dtype=object), n),
            "unit": np.tile(np.arange(n, dtype=np.int64), len(names)),
        }
        for col in GROUP_MEASURES:
            parts = [self.group_metrics[g][col] for g in names]
            out[col] = np.concatenate(parts) if parts else np.zeros(0)
        return out


def score_layer(
    activations: Any,
    labels: Any,
    n_classes: int,
    *,
    groups: Mapping[str, Sequence[int]] | None = None,
    n_top_classes: int = 5,
    n_top_images: int = TOP_N_CLASSES,
    n_bottom_images: int = BOTTOM_IMAGES,
    top_k: int = TOP_K_PRECISION,
    top_n_classes: int = TOP_N_CLASSES,
    precision_target: float = PRECISION_TARGET,
    csi_top_n: int = CSI_TOP_N,
    csi_threshold: float = CSI_THRESHOLD,
    device: str | None = None,
    block_units: int | None = None,
    memory_budget: int | None = None,
) -> LayerScores:
    """`score_units` plus per-class statistics, top images and class-group measures.

    Args:
        groups: group name → class indices (e.g. bus → school bus, trolleybus,
            minibus), each scored as one class against all others.
        n_top_classes: classes kept per unit by informedness and by mean.
        n_top_images: most active images kept per unit.
        n_bottom_images: least active images kept per unit (a 2-AFC trial needs 10).
        (others as in `score_units`)
    """
    for name, value in (("n_top_classes", n_top_classes), ("n_top_images", n_top_images)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer; got {value!r}.")
    if isinstance(n_bottom_images, bool) or not isinstance(n_bottom_images, int):
        raise InputError(f"n_bottom_images must be an integer; got {n_bottom_images!r}.")
    if n_bottom_images < 0:
        raise InputError(f"n_bottom_images must be 0 or more; got {n_bottom_images}.")
    options = Options(top_k, top_n_classes, precision_target, csi_top_n, csi_threshold)
    raw = _score(
        activations,
        labels,
        n_classes,
        options,
        device,
        block_units,
        memory_budget,
        groups=groups,
        n_top_images=n_top_images,
        n_top_classes=n_top_classes,
    )
    bottom = bottom_images(activations, labels, n_bottom_images)
    return LayerScores(
        **raw,
        bottom_image_index=bottom.index,
        bottom_image_activation=bottom.activation,
        bottom_image_class=bottom.image_class,
    )


def _score(
    activations: Any,
    labels: Any,
    n_classes: int,
    options: Options,
    device: str | None,
    block_units: int | None,
    memory_budget: int | None,
    *,
    groups: Mapping[str, Sequence[int]] | None = None,
    n_top_images: int | None = None,
    n_top_classes: int = 5,
) -> dict[str, Any]:
    options.check()
    acts = Activations(activations)
    if acts.n_images == 0:
        raise InputError("activations have no images (0 rows); score at least one image.")
    label_array = check_labels(labels, acts.n_images, n_classes)
    exact_limit_ok(acts.n_images)
    group_idx = check_groups(groups, int(n_classes))
    dev = scoring_device(device)
    ctx = Context.build(label_array, int(n_classes), options, dev)
    detail = None
    if n_top_images is not None:
        masks = []
        for members in group_idx.values():
            mask = torch.zeros(ctx.n_classes + 1, dtype=torch.bool)
            mask[torch.from_numpy(members)] = True
            masks.append(mask.to(dev))
        detail = Detail(n_top_images=n_top_images, group_masks=masks)

    budget = memory_budget_for(dev, memory_budget)
    max_region = budget // REGION_BYTES
    parts: list[dict[str, np.ndarray]] = []
    start, width = 0, acts.n_images  # the dense worst case until a block shows the density
    while start < acts.n_units:
        size = block_size(acts.n_images, acts.n_units, block_units, budget, width)
        stop = min(start + size, acts.n_units)
        x = acts.block(start, stop, dev)
        if x.device.type == "cuda":
            x.add_(0.0)  # -0.0 → 0.0: radix sorts order the two zeros apart
        try:
            result, used = score_block(x, ctx, detail, max_region)
        except NonFiniteBlock:
            raise_non_finite(acts, start, size, dev)
        del x
        width = min(acts.n_images, max(used, width // 2))  # density may drift; adapt slowly
        if detail is not None:
            result.update(_class_ranks(result, n_top_classes))
        parts.append({k: v.cpu().numpy() for k, v in result.items()})
        start = stop

    metrics = _empty_metrics()
    for name in metrics:
        if parts:
            metrics[name] = np.concatenate([p[name] for p in parts]).astype(metrics[name].dtype)
    if detail is None:
        return {"metrics": metrics}
    return _layer_fields(metrics, parts, ctx, group_idx, n_top_images or 0, acts.n_units)


def _class_ranks(result: dict[str, torch.Tensor], n_top: int) -> dict[str, torch.Tensor]:
    """1-based ranks by informedness and by mean (ties to the lower class), -1 if undefined."""
    out = {}
    for key, name in (("_class_informedness", "_rank_inf"), ("_class_mean", "_rank_mean")):
        value = result[key]
        undefined = torch.isnan(value)
        order = torch.sort(
            value.nan_to_num(nan=float("-inf")), dim=1, descending=True, stable=True
        ).indices
        rank = torch.empty_like(order)
        ar = torch.arange(1, value.shape[1] + 1, device=value.device).expand_as(order)
        rank.scatter_(1, order, ar)
        out[name] = rank.masked_fill(undefined, -1)
    keep = ((out["_rank_inf"] > 0) & (out["_rank_inf"] <= n_top)) | (
        (out["_rank_mean"] > 0) & (out["_rank_mean"] <= n_top)
    )
    out["_keep"] = keep
    return out


def _layer_fields(
    metrics: dict[str, np.ndarray],
    parts: list[dict[str, np.ndarray]],
    ctx: Context,
    group_idx: dict[str, np.ndarray],
    n_top_images: int,
    n_units: int,
) -> dict[str, Any]:
    width = n_top_images
    top_index = np.full((n_units, width), -1, dtype=np.int64)
    top_class = np.full((n_units, width), -1, dtype=np.int64)
    top_act = np.full((n_units, width), np.nan)
    rows: dict[str, list[np.ndarray]] = {c: [] for c in CLASS_STAT_COLUMNS}
    offset = 0
    for p in parts:
        b, w = p["_top_index"].shape
        top_index[offset : offset + b, :w] = p["_top_index"]
        top_class[offset : offset + b, :w] = p["_top_class"]
        top_act[offset : offset + b, :w] = p["_top_activation"]
        units, classes = np.nonzero(p["_keep"])
        rows["unit"].append(units.astype(np.int64) + offset)
        rows["class_index"].append(classes.astype(np.int64))
        rows["mean_activation"].append(p["_class_mean"][units, classes])
        rows["frac_nonzero"].append(p["_class_frac_nonzero"][units, classes])
        rows["informedness"].append(p["_class_informedness"][units, classes])
        rows["informedness_threshold"].append(p["_class_informedness_threshold"][units, classes])
        rows["rank_by_informedness"].append(p["_rank_inf"][units, classes].astype(np.int64))
        rows["rank_by_mean"].append(p["_rank_mean"][units, classes].astype(np.int64))
        offset += b
    class_stats = {
        c: (np.concatenate(v) if v else np.zeros(0, dtype=np.float64)) for c, v in rows.items()
    }
    for c in ("unit", "class_index", "rank_by_informedness", "rank_by_mean"):
        class_stats[c] = class_stats[c].astype(np.int64)
    group_metrics: dict[str, dict[str, np.ndarray]] = {}
    for i, name in enumerate(group_idx):
        group_metrics[name] = {
            col: (
                np.concatenate([p[f"_group{i}_{col}"] for p in parts])
                if parts
                else np.zeros(0, dtype=np.float64)
            )
            for col in GROUP_MEASURES
        }
    return {
        "metrics": metrics,
        "class_stats": class_stats,
        "top_image_index": top_index,
        "top_image_activation": top_act,
        "top_image_class": top_class,
        "group_metrics": group_metrics,
        "class_counts": ctx.counts.cpu().numpy(),
    }
