"""Every measure of docs/DESIGN.md for a block of units at once, in torch (CPU or CUDA).

A block is B units × N images (float32, one unit per row). The cost is one
sort of the part of each row that matters and a few passes over it, never an
N × C (images × classes) table:

1. **The region**: each row's images strictly above its minimum. The minimum's
   tie group (for ReLU units the zeros: often 80 % of the images) is handled in
   closed form, because every class's threshold there selects all images.
2. **One sort of each region** (`sorting.sort_head`), descending, ties by lower
   image index. It gives the top images and the cut-off of every top-k measure.
3. **Tie-group ends**: a threshold t selects every image with a >= t, so the
   number of images at or above the value at sorted position p is the end of
   p's tie group + 1 (one reverse running-minimum).
4. **A second sort of (class, position) keys** over the region puts each
   class's images together, in activation order. At the j-th image of class c,
   j is a hit count. It is exact at the last image of c in each tie group and an
   under-count before it, which only lowers recall, precision and informedness
   there, so maxima (and their positions) over a class's images are exact.
   The best threshold for class c is always at an activation of a class-c image
   (raising the threshold up to the next class-c value only drops false
   positives), so these are all the candidates needed.
5. Class composition at a cut-off (for precision, classes in the top 100,
   Rafegas's index and the group measures) comes from binary searches in the
   sorted keys: B × C queries, not B × N work.

Counts are combined in float64; every count and product such as TP·N is an
integer below 2**53, so informedness is one correctly rounded division of exact
integers, and mathematically equal values compare equal (which the tie rules
need).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from catalogue.selectivity import sorting
from catalogue.selectivity.inputs import Options
from catalogue.selectivity.sorting import Head, class_shift, sort_by_class, sort_head

F64 = torch.float64
NEG_INF = float("-inf")
NAN = float("nan")


@dataclass
class Context:
    """What every block shares: labels, class sizes and options, on the scoring device."""

    n_images: int
    n_classes: int
    options: Options
    labels: Tensor  # (N,) int64
    counts: Tensor  # (C,) int64 images per class
    counts_f: Tensor  # (C+1,) float64, the last entry (the "no class" sentinel) +inf
    youden_den: Tensor  # (C+1,) float64 n_c (N - n_c), sentinel 1
    n_present: int
    first_present: int
    bottom_p95: float  # 1.0 when the lowest threshold alone reaches the precision target
    bottom_bar: float  # the detector bar at the lowest threshold: the largest class share
    bottom_bar_class: int  # the lowest class with that share

    @classmethod
    def build(cls, labels: np.ndarray, n_classes: int, options: Options, device: str) -> Context:
        n = int(labels.shape[0])
        counts_np = np.bincount(labels, minlength=n_classes).astype(np.int64)
        present = np.flatnonzero(counts_np)
        counts_f = counts_np.astype(np.float64)
        den = counts_f * (n - counts_f)
        den[den == 0] = 1.0  # absent classes never enter; a single present class is NaN anyway
        # The "no class" sentinel (region padding) gets infinite size, so that its recall
        # is 0 and its informedness -inf without masking.
        counts_f = np.append(counts_f, np.inf)
        den = np.append(den, 1.0)
        share = counts_np.max() / n
        return cls(
            n_images=n,
            n_classes=n_classes,
            options=options,
            labels=torch.from_numpy(labels).to(device),
            counts=torch.from_numpy(counts_np).to(device),
            counts_f=torch.from_numpy(counts_f).to(device),
            youden_den=torch.from_numpy(den).to(device),
            n_present=len(present),
            first_present=int(present[0]),
            bottom_p95=1.0 if share >= options.precision_target else 0.0,
            bottom_bar=float(share),
            bottom_bar_class=int(counts_np.argmax()),
        )


@dataclass
class Detail:
    """Extra outputs for the catalogue writer (`score_layer`)."""

    n_top_images: int
    group_masks: list[Tensor] = field(default_factory=list)  # each (C+1,) bool, sentinel False


@dataclass
class Cut:
    """The tie group at a top-k cut-off: positions start..end-1 hold the value at rank k."""

    k: int
    value: Tensor  # (B,) activation of the k-th most active image
    start: Tensor  # (B,) images strictly above the cut-off value
    end: Tensor  # (B,) images at or above it
    above: Tensor  # (B, C) per class: images strictly above
    tied: Tensor  # (B, C) per class: images at the cut-off value

    @property
    def share_of_slots(self) -> tuple[Tensor, Tensor]:
        """(r, m): r of the k slots go to the m tied images."""
        return self.k - self.start, self.end - self.start


class NonFiniteBlock(Exception):
    """The block holds NaN or infinite activations (the caller counts them and reports)."""


def count_above(vs: Tensor, t: Tensor, strict: Sequence[bool] | None = None) -> Tensor:
    """(B, m) entries > t[:, i] (>= where not strict[i]) of each descending row of vs.

    Bisection over the sorted rows: O(B m log N) work, no pass over the block.
    """
    B, N = vs.shape
    m = t.shape[1]
    strict_t = torch.tensor(strict if strict is not None else [True] * m, device=vs.device)
    lo = torch.zeros(B, m, dtype=torch.int64, device=vs.device)
    hi = torch.full((B, m), N, dtype=torch.int64, device=vs.device)
    for _ in range(N.bit_length()):
        mid = (lo + hi) // 2
        v = vs.gather(1, mid.clamp(max=N - 1))
        ok = torch.where(strict_t, v > t, v >= t)
        active = lo < hi
        lo = torch.where(active & ok, mid + 1, lo)
        hi = torch.where(active & ~ok, mid, hi)
    return lo


class SortedBlock:
    """The sorted views of one block that all measures read.

    Each row's *region* is its images strictly above the row's minimum; past it every
    value is the minimum. Only the first W = min(N, max(K + 1, n_head)) sorted positions
    are kept (K: the widest region of the block; n_head: the most top images any measure
    reads), so a sparse unit is never sorted beyond its region.

    Attributes:
        vs, p1: (B, W) values sorted descending and their image indices; ties keep the
            lower image index first. Positions k_b..W-1 hold the minimum, and (up to
            n_head) the lowest-indexed images at the minimum.
        v_min, k_b: (B,) each row's minimum and region size.
        at_or_above: (B, K) float64, images with a >= the value at each position.
        cls: (B, K) class of each region position; C (the sentinel) past k_b.
        ks, q2, c2: (B, K) the second sort by (class, position): keys, positions, classes.
        bounds: (B, C+1) where each class's segment starts in that order.
    """

    def __init__(self, head: Head, ctx: Context, label_width: int) -> None:
        self.ctx = ctx
        self.B, self.N = head.values.shape[0], ctx.n_images
        C = self.C = ctx.n_classes
        dev = head.values.device
        self.vs, self.p1, self.v_min, self.k_b = head.values, head.images, head.v_min, head.k_b
        self.W = head.width
        K = self.K = max(int(self.k_b.max()), 1)
        self.R = self.vs[:, :K]
        self.ar = torch.arange(K, device=dev)
        width = min(self.W, max(K, label_width))
        flat = self.p1[:, :width].reshape(-1)
        self.ys = ctx.labels.index_select(0, flat).view(self.B, width)
        self.at_or_above = _at_or_above(self.vs, K)
        self.cls = self.ys[:, :K]
        if bool((self.k_b < K).any()):
            self.cls = self.cls.masked_fill(self.ar >= self.k_b[:, None], C)
        self.shift = class_shift(K)
        kd = self.key_dtype = torch.int32 if (C + 1) << self.shift < 2**31 else torch.int64
        self.ks, self.q2, self.c2 = sort_by_class(self.cls, kd)
        self.offsets = torch.arange(C + 1, device=dev, dtype=kd) << self.shift
        self.bounds = torch.searchsorted(self.ks, self.offsets.expand(self.B, C + 1).contiguous())
        self.region_counts = self.bounds[:, 1:] - self.bounds[:, :-1]

    def count_above(self, t: Tensor, strict: Sequence[bool] | None = None) -> Tensor:
        """(B, m) images with a > t[:, i] (>= where not strict[i]), over all N images."""
        found = count_above(self.vs, t, strict)
        return torch.where(found == self.W, self.N, found)  # past W every value is v_min

    def count_before(self, x: Tensor) -> Tensor:
        """(B, m, C): per class, the region images at sorted positions < x[:, i] (<= k_b)."""
        m = x.shape[1]
        q = self.offsets[None, None, : self.C] + x[:, :, None].to(self.key_dtype)
        found = torch.searchsorted(self.ks, q.reshape(self.B, m * self.C))
        return found.view(self.B, m, self.C) - self.bounds[:, None, : self.C]

    def cuts(self, ks: Sequence[int], n_pos: Tensor) -> tuple[list[Cut], Tensor]:
        """The tie groups at the given top-k cut-offs, and (B, C) images with a > 0 per
        class, from one batched search of the class-sorted keys."""
        N, counts = self.N, self.ctx.counts[None, :]
        parts = []
        for k in ks:
            value = self.vs[:, k - 1]
            start = (self.vs[:, :k] > value[:, None]).sum(1)
            in_region = (k - 1) < self.k_b
            if k - 1 < self.K:
                end = torch.where(in_region, self.at_or_above[:, k - 1].to(torch.int64), N)
            else:
                end = torch.full_like(start, N)
            parts.append((k, value, start, end, in_region))
        x = [p[2] for p in parts] + [torch.minimum(p[3], self.k_b) for p in parts]
        x.append(torch.minimum(n_pos, self.k_b))
        found = self.count_before(torch.stack(x, dim=1))
        cuts = []
        for i, (k, value, start, end, in_region) in enumerate(parts):
            above = found[:, i]
            through = torch.where(in_region[:, None], found[:, len(parts) + i], counts)
            cuts.append(Cut(k, value, start, end, above, through - above))
        positive = torch.where((self.v_min > 0)[:, None], counts, found[:, -1])
        return cuts, positive

    def class_sums(self) -> Tensor:
        """(B, C) float64: sum of activations per class."""
        sums = torch.zeros(self.B, self.C + 1, dtype=F64, device=self.vs.device)
        sums.scatter_add_(1, self.cls, self.R.to(F64))
        bottom = (self.ctx.counts[None, :] - self.region_counts).to(F64)
        return sums[:, : self.C] + self.v_min.to(F64)[:, None] * bottom

    def leading_run(self, c: Tensor) -> Tensor:
        """(B,) length of the run of class-c images at the top of each row (within the region).

        Class c's positions in sorted order are q2[bounds[c] + j], increasing in j; the run
        is the j for which q2[bounds[c] + j] == j, found by bisection.
        """
        seg = self.bounds.gather(1, c[:, None]).squeeze(1)
        lo = torch.zeros_like(seg)
        hi = self.region_counts.gather(1, c[:, None]).squeeze(1)
        for _ in range(self.K.bit_length()):
            mid = (lo + hi) // 2
            pos = self.q2.gather(1, (seg + mid).clamp(max=self.K - 1)[:, None]).squeeze(1)
            ok = pos == mid
            active = lo < hi
            lo = torch.where(active & ok, mid + 1, lo)
            hi = torch.where(active & ~ok, mid, hi)
        return lo


def _at_or_above(vs: Tensor, K: int, numpy_scan: bool | None = None) -> Tensor:
    """(B, K) float64: images with a >= the value at each region position (end of its tie
    group + 1); positions past the region get K + 1 or more.

    A reverse running minimum; on the CPU numpy does it on a reversed view (torch would
    need two flipped copies), elsewhere torch's cummin.
    """
    B, N = vs.shape
    last = torch.ones(B, K, dtype=torch.bool, device=vs.device)
    if K < N:
        torch.ne(vs[:, :K], vs[:, 1 : K + 1], out=last)
    else:
        torch.ne(vs[:, : K - 1], vs[:, 1:K], out=last[:, : K - 1])
    if numpy_scan is None:
        numpy_scan = sorting.numpy_for(vs)
    if numpy_scan:
        idx = np.where(last.numpy(), np.arange(1.0, K + 1.0), K + 1.0)
        out = np.empty_like(idx)
        np.minimum.accumulate(idx[:, ::-1], axis=1, out=out[:, ::-1])
        return torch.from_numpy(out)
    idx = torch.where(last, torch.arange(1, K + 1, device=vs.device, dtype=F64), K + 1.0)
    return idx.flip(1).cummin(1).values.flip(1)


def _expected_classes(cut: Cut) -> Tensor:
    """(B,) float64: expected number of classes among the top k, tied images in random order.

    A class with an image strictly above the cut-off is always in; otherwise, with h of
    its images among the m tied ones and r slots left, it is in with probability
    1 - C(m-h, r) / C(m, r) (hypergeometric).
    """
    r, m = cut.share_of_slots
    has_above = cut.above > 0
    maybe = (~has_above) & (cut.tied > 0)
    p_none = torch.zeros(maybe.shape, dtype=F64, device=maybe.device)
    rows, cols = torch.nonzero(maybe & (r < m)[:, None], as_tuple=True)
    if rows.numel():
        mm = m[rows].to(F64)
        rr = r[rows]
        hh = cut.tied[rows, cols].to(F64)
        prod = torch.ones_like(mm)
        for j in range(int(rr.max())):
            factor = (mm - hh - j).clamp_(min=0) / (mm - j)
            prod = torch.where(rr > j, prod * factor, prod)
        p_none[rows, cols] = prod
    contrib = has_above.to(F64) + maybe.to(F64) * (1.0 - p_none)
    return contrib.sum(1)


def score_block(
    x: Tensor, ctx: Context, detail: Detail | None = None, max_region: int | None = None
) -> tuple[dict[str, Tensor], int]:
    """All unit measures (and, with `detail`, the layer extras) for one block.

    x: (B, N) float32 contiguous, one unit per row. Returns (B,) tensors keyed by
    docs/DESIGN.md's column names (plus "_..." keys for the `Detail` outputs) and the head
    width, the sorted positions per unit that the block needed (its density). Rows are
    scored in chunks of at most `max_region` (unit × head position) elements.
    """
    opt = ctx.options
    N = ctx.n_images
    n_csi = min(opt.csi_top_n, N)
    n_head = max(opt.top_k, opt.top_n_classes, n_csi, detail.n_top_images if detail else 1)
    head = sort_head(x, min(n_head, N))
    if not bool(torch.isfinite(head.values[:, 0]).all() & torch.isfinite(head.v_min).all()):
        raise NonFiniteBlock
    B = head.values.shape[0]
    rows = B if max_region is None else max(1, max_region // head.width)
    if rows >= B:
        return _score_rows(head, ctx, detail), head.width
    parts = [
        _score_rows(head.rows(i, min(i + rows, B), min(n_head, N)), ctx, detail)
        for i in range(0, B, rows)
    ]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}, head.width


def _score_rows(head: Head, ctx: Context, detail: Detail | None) -> dict[str, Tensor]:
    opt = ctx.options
    N, C = ctx.n_images, ctx.n_classes
    n_csi = min(opt.csi_top_n, N)
    label_width = n_csi if opt.csi_threshold < 1.0 else 1
    blk = SortedBlock(head, ctx, label_width)
    vs = blk.vs
    device = vs.device
    out: dict[str, Tensor] = {}

    # --- hit counts at every candidate threshold (class-sorted order) ---
    # Region padding has class C, whose size is +inf: recall 0 and informedness -inf there.
    B, K = blk.B, blk.K
    flat_c2 = blk.c2.reshape(-1)
    tp = torch.arange(1.0, K + 1.0, dtype=F64, device=device) - blk.bounds.to(F64).gather(1, blk.c2)
    g = blk.at_or_above.gather(1, blk.q2)
    nc = ctx.counts_f.index_select(0, flat_c2).view(B, K)

    precise = torch.div(tp, g)
    recall = torch.div(tp, nc)
    _detector_bar(out, blk, recall, precise)
    precise.ge_(opt.precision_target)
    recall.mul_(precise)
    out["recall_at_p95"] = torch.clamp(recall.max(1).values, min=ctx.bottom_p95)
    del precise, recall
    out["constant"] = blk.k_b == 0  # no image above the minimum: every activation equal

    youden = torch.mul(tp, N).addcmul_(g, nc, value=-1)
    youden.div_(ctx.youden_den.index_select(0, flat_c2).view(B, K))
    _max_informedness(out, blk, youden, tp, g)
    if detail is not None:
        out.update(_class_informedness(blk, youden))
    del youden, tp, g, nc

    # --- localist and recall at 100% precision ---
    # The top image's class c leads the row for `run` images; the first other image (if in
    # the region) holds max(a | not c), else that is the minimum (or there is none).
    c_top = blk.ys[:, 0]
    run = blk.leading_run(c_top)
    has_other = run < blk.k_b
    m_other = vs.gather(1, run.clamp(max=blk.W - 1)[:, None]).squeeze(1)
    zero = torch.zeros_like(m_other)
    found = blk.count_above(torch.stack([zero, zero, m_other], 1), strict=[True, False, True])
    n_pos, n_zero, strictly = found[:, 0], found[:, 1] - found[:, 0], found[:, 2]
    n_top = ctx.counts.index_select(0, c_top)
    count = torch.where(has_other, strictly, torch.where(n_top == N, N, blk.k_b))
    out["recall_at_p100"] = count.to(F64) / n_top.to(F64)
    out["localist"] = localist = count == n_top
    out["localist_class"] = torch.where(localist, c_top, -1)

    # --- top-k measures ---
    k60, k100 = min(opt.top_k, N), min(opt.top_n_classes, N)
    wanted = [k60, k100]
    if opt.csi_threshold >= 1.0 and n_csi != k100:
        wanted.append(n_csi)
    cuts, positive = blk.cuts(wanted, n_pos)
    cut60, cut100 = cuts[0], cuts[1]
    r, m = cut60.share_of_slots
    share = cut60.above * m[:, None] + r[:, None] * cut60.tied
    out["precision"] = share.max(1).values.to(F64) / (m * k60).to(F64)
    out["precision_class"] = share.argmax(1)
    out["top60_threshold"] = cut60.value.to(F64)
    out["classes_in_top100"] = in_top = _expected_classes(cut100)
    cut_csi, known = (cuts[2], None) if len(cuts) > 2 else (cut100, in_top)
    out["class_selectivity_index"] = _class_selectivity(blk, n_csi, cut_csi, known, positive)

    # --- means ---
    sums = blk.class_sums()
    total = sums.sum(1)
    means = sums / ctx.counts_f[None, :C]
    best = means.nan_to_num(nan=NEG_INF).argmax(1)
    mu = means.gather(1, best[:, None]).squeeze(1)
    n_best = ctx.counts_f[best]
    mu_not = (total - sums.gather(1, best[:, None]).squeeze(1)) / (N - n_best)
    ccmas, ok = _ccmas(mu, mu_not)
    out["ccmas"] = ccmas
    out["ccmas_class"] = torch.where(ok, best, -1)
    out["frac_zero"] = n_zero.to(F64) / N
    out["mean_activation"] = total / N
    out["max_activation"] = vs[:, 0].to(F64)

    if detail is not None:
        out["_class_mean"] = means
        out["_class_frac_nonzero"] = positive.to(F64) / ctx.counts_f[None, :C]
        n_top_img = min(detail.n_top_images, N)
        out["_top_index"] = blk.p1[:, :n_top_img]
        out["_top_activation"] = vs[:, :n_top_img].to(F64)
        out["_top_class"] = ctx.labels[blk.p1[:, :n_top_img]].view(blk.B, n_top_img)
        for i, mask in enumerate(detail.group_masks):
            group = _group_measures(blk, mask, cut60, sums, total, positive, n_pos)
            for name, value in group.items():
                out[f"_group{i}_{name}"] = value
    return out


def _ccmas(mu_in: Tensor, mu_out: Tensor) -> tuple[Tensor, Tensor]:
    """Morcos et al.'s index; NaN where mu_in + mu_out is not positive (or undefined)."""
    den = mu_in + mu_out
    ok = den > 0  # False for NaN (no images outside the class)
    value = torch.where(ok, (mu_in - mu_out) / den, NAN)
    return value, ok


def _max_informedness(
    out: dict[str, Tensor], blk: SortedBlock, youden: Tensor, tp: Tensor, g: Tensor
) -> None:
    """Best (class, threshold) over the region, then the closed-form minimum threshold.

    At each row's minimum value every class scores J = 0 (all images selected), so the
    region's first maximum (lowest class, then highest value) wins whenever it is >= 0.
    When it is exactly 0 it already lies in the lowest present class: at the top value
    the J_c, weighted by n_c (N - n_c), sum to 0, so if none is positive all are 0 there.
    Otherwise (no region, or only negative J there) the lowest present class at the
    minimum wins.
    """
    ctx, N = blk.ctx, blk.ctx.n_images
    arg = youden.argmax(1, keepdim=True)  # first maximum: lowest class, then highest value
    best = youden.gather(1, arg).squeeze(1)
    c_r = blk.c2.gather(1, arg).squeeze(1)
    c0 = ctx.first_present
    use = best >= 0
    cls = torch.where(use, c_r, c0)
    hits = torch.where(use, tp.gather(1, arg).squeeze(1), ctx.counts_f[c0])
    selected = torch.where(use, g.gather(1, arg).squeeze(1), float(N))
    value = blk.vs.gather(1, blk.q2.gather(1, arg)).squeeze(1)
    n_c = ctx.counts_f[cls]
    false_pos = selected - hits
    mi = torch.where(use, best, 0.0)
    out["max_informedness"] = mi
    out["mi_class"] = cls
    out["mi_threshold"] = torch.where(use, value, blk.v_min).to(F64)
    out["recall_at_mi"] = hits / n_c
    out["specificity_at_mi"] = (N - n_c - false_pos) / (N - n_c)
    out["false_alarm_rate"] = false_pos / selected
    if ctx.n_present < 2:  # no negatives: the false-positive rate is undefined
        for name in ("max_informedness", "mi_threshold", "recall_at_mi"):
            out[name] = torch.full_like(out[name], NAN)
        for name in ("specificity_at_mi", "false_alarm_rate"):
            out[name] = torch.full_like(out[name], NAN)
        out["mi_class"] = torch.full_like(cls, -1)


def _detector_bar(
    out: dict[str, Tensor], blk: SortedBlock, recall: Tensor, precision: Tensor
) -> None:
    """Gale et al.'s minimal bar: the best min(TP/n_c, TP/(TP+FP)) over classes and thresholds.

    Over the region, in class-sorted order, the first maximum is in the lowest class (the
    under-counted positions before the last of a tie group only score lower, as for
    informedness). At the row's minimum every image is selected and class c scores
    min(1, n_c/N) = n_c/N, the same for every row: the largest class share, in the lowest
    class that has it. The two candidates are compared exactly (each value is one correctly
    rounded division of integers) and ties go to the lower class.
    """
    ctx = blk.ctx
    bar = torch.minimum(recall, precision)
    arg = bar.argmax(1, keepdim=True)
    best = bar.gather(1, arg).squeeze(1)
    del bar
    region_class = blk.c2.gather(1, arg).squeeze(1)
    bottom, bottom_class = ctx.bottom_bar, ctx.bottom_bar_class
    use = (best > bottom) | ((best == bottom) & (region_class < bottom_class))
    out["detector_bar"] = torch.where(use, best, bottom)
    out["detector_bar_class"] = torch.where(use, region_class, bottom_class)


def _class_informedness(blk: SortedBlock, youden: Tensor) -> dict[str, Tensor]:
    """(B, C) best informedness per class and its (highest) threshold."""
    B, C, K = blk.B, blk.C, blk.K
    dev = youden.device
    best = torch.full((B, C + 1), NEG_INF, dtype=F64, device=dev)
    best.scatter_reduce_(1, blk.c2, youden, "amax")
    at_best = youden == best.gather(1, blk.c2)
    pos = torch.where(at_best, blk.ar, K)
    first = torch.full((B, C + 1), K, dtype=torch.int64, device=dev)
    first.scatter_reduce_(1, blk.c2, pos, "amin")
    first = first[:, :C].clamp_(max=K - 1)
    region_thr = blk.vs.gather(1, blk.q2.gather(1, first))
    best = best[:, :C]
    use = best >= 0
    j = torch.where(use, best, 0.0)
    thr = torch.where(use, region_thr, blk.v_min[:, None]).to(F64)
    absent = (blk.ctx.counts == 0)[None, :].expand(B, C)
    if blk.ctx.n_present < 2:
        absent = torch.ones_like(absent)
    return {
        "_class_informedness": j.masked_fill(absent, NAN),
        "_class_informedness_threshold": thr.masked_fill(absent, NAN),
    }


def _class_selectivity(
    blk: SortedBlock, n: int, cut: Cut, expected: Tensor | None, positive: Tensor
) -> Tensor:
    """Rafegas et al.'s class selectivity index over the n most active images.

    `cut` is the tie group at rank n; `expected` the expected number of classes among
    the top n when already known.
    """
    opt = blk.ctx.options
    a_max = blk.vs[:, 0]
    if opt.csi_threshold >= 1.0:
        # M = classes with positive weight among the top n; expected value over tie orders.
        if expected is None:
            expected = _expected_classes(cut)
        with_positive = (positive > 0).sum(1).to(F64)
        n_classes = torch.where(cut.value > 0, expected, with_positive)
    else:
        # Ties at the cut-off broken by lower image index (the order of unit_top_image).
        weights = blk.vs[:, :n].clamp(min=0).to(F64)
        per_class = torch.zeros(blk.B, blk.C, dtype=F64, device=weights.device)
        per_class.scatter_add_(1, blk.ys[:, :n], weights)
        cum = per_class.sort(1, descending=True).values.cumsum(1)
        n_classes = ((cum < opt.csi_threshold * cum[:, -1:]).sum(1) + 1).to(F64)
    csi = (n - n_classes) / (n - 1) if n > 1 else torch.ones_like(a_max, dtype=F64)
    return torch.where(a_max > 0, csi, 0.0)


def _group_measures(
    blk: SortedBlock,
    mask: Tensor,
    cut60: Cut,
    sums: Tensor,
    total: Tensor,
    positive: Tensor,
    n_pos: Tensor,
) -> dict[str, Tensor]:
    """The paper's Tables 4–6 for one class group A against the rest."""
    ctx, N, C = blk.ctx, blk.ctx.n_images, blk.C
    in_a = mask[:C].to(F64)
    n_in = float((ctx.counts_f[:C] * in_a).sum())
    n_out = N - n_in
    member = mask[blk.cls]
    hits = member.cumsum(1).to(F64)
    youden = hits.mul_(N).sub_(blk.at_or_above * n_in).div_(max(n_in * n_out, 1.0))
    youden.masked_fill_(~member, NEG_INF)
    arg = youden.argmax(1, keepdim=True)
    best = youden.gather(1, arg).squeeze(1)
    use = best >= 0
    mi = torch.where(use, best, 0.0)
    thr = torch.where(use, blk.vs.gather(1, arg).squeeze(1), blk.v_min).to(F64)

    r, m = cut60.share_of_slots
    share = (cut60.above.to(F64) @ in_a) * m + r * (cut60.tied.to(F64) @ in_a)
    sum_in = sums @ in_a
    pos_in = positive.to(F64) @ in_a
    mu_in = sum_in / n_in if n_in else torch.full_like(total, NAN)
    mu_out = (total - sum_in) / n_out if n_out else torch.full_like(total, NAN)
    ccmas, _ok = _ccmas(mu_in, mu_out)
    out = {
        "n_nonzero_in": pos_in / n_in if n_in else torch.full_like(total, NAN),
        "n_nonzero_out": (n_pos.to(F64) - pos_in) / n_out if n_out else torch.full_like(total, NAN),
        "mu_in": mu_in,
        "mu_out": mu_out,
        "precision": share / (m * cut60.k).to(F64),
        "ccmas": ccmas,
        "max_informedness": mi,
        "mi_threshold": thr,
    }
    if n_in == 0 or n_out == 0:
        out["max_informedness"] = torch.full_like(total, NAN)
        out["mi_threshold"] = torch.full_like(total, NAN)
    return out
