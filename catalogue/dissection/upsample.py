"""Where a unit fires: mask pixels at which its bilinearly upsampled map exceeds T_k.

A bilinear value is a convex combination of the four map cells around it, so
it can exceed T_k only in a block of pixels one of whose corner cells does;
only those blocks are interpolated (see `catalogue.dissection`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class _Axis:
    """Bilinear sampling along one axis, n_in → n_out, pixel centres aligned.

    Output i lies at source position s = (i + ½)·n_in/n_out − ½ and reads the
    cells ⌊s⌋ and ⌊s⌋ + 1, clamped to 0..n_in − 1, with weight s − ⌊s⌋ on the
    second (near the edges both are the same cell, so this equals clamping s).
    Outputs are grouped by ⌊s⌋ + 1 ∈ 0..n_in, the *block* between cells:
    `members[b]` are its outputs and `weights[b]` their weights, padded with
    NaN (which makes every comparison false).
    """

    members: torch.Tensor  # (n_in + 1) × R, int64
    weights: torch.Tensor  # (n_in + 1) × R, float32, NaN where padded

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def build(n_in: int, n_out: int, device: str) -> _Axis:
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        block = np.floor(src).astype(np.int64) + 1
        lam = src - (block - 1)
        width = max(1, int(np.bincount(block, minlength=n_in + 1).max()))
        members = np.zeros((n_in + 1, width), dtype=np.int64)
        weights = np.full((n_in + 1, width), np.nan, dtype=np.float32)
        for b in range(n_in + 1):
            own = np.flatnonzero(block == b)
            members[b, : own.size] = own
            weights[b, : own.size] = lam[own]
        return _Axis(
            torch.as_tensor(members, device=device), torch.as_tensor(weights, device=device)
        )


def _candidate_blocks(
    maps: torch.Tensor, thresholds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image, unit, block row, block column) of the blocks with a corner cell above T.

    Block b spans cells b − 1 and b (clamped), so cell c is a corner of blocks c and c + 1.
    """
    units, h, w = maps.shape[1:]
    im, un, cy, cx = (maps > thresholds[None, :, None, None]).nonzero(as_tuple=True)
    dy = torch.tensor([0, 0, 1, 1], device=maps.device)
    dx = torch.tensor([0, 1, 0, 1], device=maps.device)
    by = (cy[:, None] + dy).reshape(-1)
    bx = (cx[:, None] + dx).reshape(-1)
    owner = (im * units + un)[:, None].expand(-1, 4).reshape(-1)
    key = torch.unique((owner * (h + 1) + by) * (w + 1) + bx)
    bx, key = key % (w + 1), key // (w + 1)
    by, owner = key % (h + 1), key // (h + 1)
    return owner // units, owner % units, by, bx


def firing_pixels(
    maps: torch.Tensor, thresholds: torch.Tensor, shape: tuple[int, int], chunk_elements: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(image, unit, pixel) of every mask pixel where the upsampled map exceeds T_unit.

    A bilinear value is a convex combination of the four cells around it, so
    it can exceed T only in a block of pixels one of whose four corner cells is
    above T — at most 4·⌈q·n⌉ blocks per unit. Only those blocks are
    interpolated, so the cost follows the firing area rather than units × pixels.
    """
    rows = _Axis.build(maps.shape[2], shape[0], str(maps.device))
    cols = _Axis.build(maps.shape[3], shape[1], str(maps.device))
    h, w = maps.shape[2:]
    candidates = _candidate_blocks(maps, thresholds)
    step = max(1, chunk_elements // (rows.members.shape[1] * cols.members.shape[1]))
    for s in range(0, candidates[0].shape[0], step):
        im, un, y, x = (t[s : s + step] for t in candidates)
        y0, y1 = (y - 1).clamp(min=0), y.clamp(max=h - 1)  # the block's corner cells
        x0, x1 = (x - 1).clamp(min=0), x.clamp(max=w - 1)
        x00, x01 = maps[im, un, y0, x0][:, None], maps[im, un, y0, x1][:, None]
        x10, x11 = maps[im, un, y1, x0][:, None], maps[im, un, y1, x1][:, None]
        lx = cols.weights[x]  # candidates × Q
        upper_row = x00 + lx * (x01 - x00)  # along the block's upper and lower edges
        lower_row = x10 + lx * (x11 - x10)
        # value = upper + ly·(lower − upper) > T, compared without forming the value
        rise = (lower_row - upper_row)[:, None, :]
        margin = (thresholds[un][:, None] - upper_row)[:, None, :]
        fire = rows.weights[y][:, :, None] * rise > margin
        i, a, b = fire.nonzero(as_tuple=True)
        yield im[i], un[i], rows.members[y[i], a] * shape[1] + cols.members[x[i], b]
