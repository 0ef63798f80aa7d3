"""Row sorts for the scorer: the one cost that cannot be avoided.

On CUDA, `torch.sort` (a segmented radix sort) is the fastest there is. On the
CPU, numpy's vectorised sort of plain integers (x86-simd-sort) is several times
faster than `torch.sort`, so rows are sorted as packed 64-bit keys: an
order-preserving integer image of the activation in the high 32 bits and the
image index in the low 32 bits. One values-only sort then gives the values in
descending order with ties in ascending image order (a stable sort), and the
image indices come back out of the low bits. Rows are split over
`torch.get_num_threads()` threads (numpy releases the GIL while sorting).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

import numpy as np
import torch
from torch import Tensor

LOW32 = np.int64(0xFFFFFFFF)

#: Whether CPU tensors are sorted with numpy (True) or with the torch code that CUDA
#: runs (False: tests use it to run the GPU path on a CPU).
NUMPY_ON_CPU = True


def numpy_for(t: Tensor) -> bool:
    return NUMPY_ON_CPU and t.device.type == "cpu"


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="unitcat-sort")


def _over_row_chunks(n_rows: int, work: Callable[[int, int], None]) -> None:
    workers = max(1, min(torch.get_num_threads(), n_rows))
    if workers == 1:
        work(0, n_rows)
        return
    bounds = np.linspace(0, n_rows, workers + 1).astype(int)
    futures = [
        _pool(workers).submit(work, int(lo), int(hi)) for lo, hi in pairwise(bounds) if hi > lo
    ]
    for f in futures:
        f.result()


def packed_keys(a: np.ndarray, index: np.ndarray | int) -> np.ndarray:
    """int64 keys ordering float32 values `a` descending, then by `index` (< 2**32).

    0 - a turns descending into ascending and -0.0 into +0.0 (so the two zeros tie); the
    float's bits map to a signed integer of the same order (negative floats have their
    magnitude bits flipped); the index fills the low 32 bits.
    """
    y = np.subtract(np.float32(0.0), a, dtype=np.float32)
    bits = y.view(np.int32)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    key = ordered.astype(np.int64) << 32
    key |= np.asarray(index, dtype=np.int64)
    return key


def unpack_values(key: np.ndarray) -> np.ndarray:
    """The float32 values of `packed_keys` (with +0.0 for either zero)."""
    ordered = (key >> 32).astype(np.int32)
    bits = ordered ^ ((ordered >> 31) & 0x7FFFFFFF)
    return np.subtract(np.float32(0.0), bits.view(np.float32), dtype=np.float32)


@dataclass
class Head:
    """The first `width` sorted positions of each row (see `sort_head`)."""

    values: Tensor  # (B, width) descending; ties by lower image index
    images: Tensor  # (B, width) int64 image index of each position
    v_min: Tensor  # (B,) row minimum
    k_b: Tensor  # (B,) images strictly above the minimum
    width: int

    def rows(self, start: int, stop: int, n_head: int) -> Head:
        """Rows start..stop-1, trimmed to the width they need."""
        k_b = self.k_b[start:stop]
        width = min(self.width, max(max(int(k_b.max()), 1) + 1, n_head))
        return Head(
            self.values[start:stop, :width].contiguous(),
            self.images[start:stop, :width].contiguous(),
            self.v_min[start:stop],
            k_b,
            width,
        )


def head_width(k_max: int, n_images: int, n_head: int) -> int:
    """The region (at least one position) plus one position of the minimum, and at least
    the n_head top images."""
    return min(n_images, max(max(k_max, 1) + 1, n_head))


def sort_head(x: Tensor, n_head: int, use_numpy: bool | None = None) -> Head:
    """Each row's images above its minimum sorted descending, then its minimum.

    Only the first width = min(N, max(K + 1, n_head)) positions are produced (K: the
    largest count above a row's minimum in the block). When that is under half a row,
    only the entries above the minimum are sorted (for ReLU units, the non-zero ones);
    positions past a row's region hold its minimum and, up to n_head, the
    lowest-indexed images at the minimum (image 0 beyond). Otherwise one full sort.
    """
    if use_numpy is None:
        use_numpy = numpy_for(x)
    return _sort_head_numpy(x, n_head) if use_numpy else _sort_head_torch(x, n_head)


def _sort_head_numpy(x: Tensor, n_head: int) -> Head:
    a = x.numpy()
    B, N = a.shape
    n_head = min(n_head, N)
    v_min = a.min(axis=1)  # NaN propagates; the caller rejects non-finite rows
    k_b = np.empty(B, dtype=np.int64)

    def count(lo: int, hi: int) -> None:
        k_b[lo:hi] = np.count_nonzero(a[lo:hi] > v_min[lo:hi, None], axis=1)

    _over_row_chunks(B, count)
    width = head_width(int(k_b.max(initial=0)), N, n_head)
    dense = 2 * width > N
    values = np.empty((B, width), dtype=np.float32)
    images = np.empty((B, width), dtype=np.int64)

    def work(lo: int, hi: int) -> None:
        rows_a, vmin, k = a[lo:hi], v_min[lo:hi], k_b[lo:hi]
        if dense:
            key = packed_keys(rows_a, np.arange(N))
            key.sort(axis=1)
            key = key[:, :width]
        else:
            above = rows_a > vmin[:, None]
            flat = np.flatnonzero(above)  # row-major: images ascending within each row
            rows = np.repeat(np.arange(hi - lo), k)
            starts = np.cumsum(k) - k
            dest = np.arange(flat.size) + rows * width - starts[rows]
            # The minimum's key carries image 0; it sorts after every value above it.
            key = np.repeat(packed_keys(vmin, 0)[:, None], width, axis=1)
            key.ravel()[dest] = packed_keys(rows_a.ravel()[flat], flat - rows * N)
            key.sort(axis=1)
        idx = key & LOW32
        values[lo:hi] = unpack_values(key)
        if not dense:
            need = n_head - k
            short = np.flatnonzero(need > 0)
            if short.size:  # the lowest-indexed images at the minimum
                at_min = ~above[short]
                rank = np.cumsum(at_min, axis=1)
                r, col = np.nonzero(at_min & (rank <= need[short][:, None]))
                idx[short[r], k[short][r] + rank[r, col] - 1] = col
        images[lo:hi] = idx

    _over_row_chunks(B, work)
    return Head(
        torch.from_numpy(values),
        torch.from_numpy(images),
        torch.from_numpy(v_min),
        torch.from_numpy(k_b),
        width,
    )


def _sort_head_torch(x: Tensor, n_head: int) -> Head:
    B, N = x.shape
    n_head = min(n_head, N)
    v_min = x.amin(1)
    above_min = x > v_min[:, None]
    k_b = above_min.sum(1)
    width = head_width(int(k_b.max()), N, n_head)
    if 2 * width > N:
        vs, p1 = torch.sort(x, dim=1, descending=True, stable=True)
        return Head(vs[:, :width].contiguous(), p1[:, :width].contiguous(), v_min, k_b, width)
    flat = above_min.view(-1).nonzero().squeeze(1)  # row-major: images ascending per row
    rows = torch.div(flat, N, rounding_mode="floor")
    starts = torch.cumsum(k_b, 0) - k_b
    dest = torch.arange(flat.numel(), device=x.device) + rows * width - starts.index_select(0, rows)
    head = v_min[:, None].expand(B, width).contiguous()
    head.view(-1).index_copy_(0, dest, x.view(-1).index_select(0, flat))
    images = torch.zeros(B, width, dtype=torch.int64, device=x.device)
    images.view(-1).index_copy_(0, dest, flat - rows * N)
    vs, order = torch.sort(head, dim=1, descending=True, stable=True)
    p1 = images.gather(1, order)
    short = torch.nonzero(k_b < n_head).squeeze(1)
    if short.numel():  # the lowest-indexed images at the minimum
        at_min = ~above_min.index_select(0, short)
        rank = torch.cumsum(at_min, 1)
        take = at_min & (rank <= (n_head - k_b.index_select(0, short))[:, None])
        r, col = torch.nonzero(take, as_tuple=True)
        pos = k_b.index_select(0, short).index_select(0, r) + rank[r, col] - 1
        p1[short.index_select(0, r), pos] = col
    return Head(vs, p1, v_min, k_b, width)


def class_shift(n_positions: int) -> int:
    """Bits for a position in a (class, position) key: class = key >> shift."""
    return max(int(n_positions - 1).bit_length(), 1)


def sort_by_class(
    cls: Tensor, key_dtype: torch.dtype, use_numpy: bool | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Region positions grouped by class, in position order within each class.

    cls: (B, K) int64 class of each position. The keys (class << shift) | position
    (shift = `class_shift(K)`) are unique. Returns the sorted keys (key_dtype), the
    positions and the classes (both int64) in that order.
    """
    B, K = cls.shape
    shift = class_shift(K)
    ar = torch.arange(K, device=cls.device, dtype=key_dtype)
    key = torch.bitwise_or(ar, cls.to(key_dtype) << shift)
    if use_numpy is None:
        use_numpy = numpy_for(cls)
    if not use_numpy:
        keys, pos = torch.sort(key, dim=1)
        return keys, pos, cls.gather(1, pos)
    keys = key.numpy()
    pos = np.empty((B, K), dtype=np.int64)
    classes = np.empty((B, K), dtype=np.int64)

    def work(lo: int, hi: int) -> None:
        keys[lo:hi].sort(axis=1)
        np.right_shift(keys[lo:hi], shift, out=classes[lo:hi], casting="unsafe")
        np.bitwise_and(keys[lo:hi], (1 << shift) - 1, out=pos[lo:hi], casting="unsafe")

    _over_row_chunks(B, work)
    return key, torch.from_numpy(pos), torch.from_numpy(classes)
