"""Network dissection: which units' activation maps overlap which labelled concepts.

Bau, Zhou, Khosla, Oliva & Torralba, "Network Dissection: Quantifying
Interpretability of Deep Visual Representations" (CVPR 2017), §3:

- per unit k, a threshold T_k such that the unit's activation exceeds it at a
  `quantile` (0.005) share of all its spatial positions over the probe set;
- the unit's map on image x, upsampled bilinearly to the mask resolution and
  thresholded, is its *segmentation* M_k(x) = {p : S_k(x)[p] > T_k};
- IoU_k,c = Σ_x |M_k(x) ∩ L_c(x)| / Σ_x |M_k(x) ∪ L_c(x)| over probe images x,
  where L_c(x) is concept c's mask; the unit *detects* c if IoU_k,c > 0.04.

Definitions made exact here:

- T_k is the ⌈q·n⌉-th largest of the unit's n = N·h·w activations at the map
  resolution (q read as the decimal it is written as, so 0.005·20000 = 100;
  at least 1). It is exact: the first pass keeps each unit's top ⌈q·n⌉ values
  with torch.topk merges (memory 4·U·⌈q·n⌉ bytes; 53 MB for AlexNet conv5 on
  Broden). NetDissect-Lite's np.percentile lies within one order statistic
  of it; davidbau/dissect's quantile sketch is approximate.
- The unit fires where the upsampled value is *strictly* above T_k (as in Bau
  et al.'s code), so a unit that is constant — a dead ReLU unit, all zeros —
  fires nowhere instead of everywhere. Ties at T_k therefore fire less than a
  q share.
- Upsampling is bilinear with pixel centres aligned and edges clamped (the
  convention of `torch.nn.functional.interpolate(mode="bilinear",
  align_corners=False)`): mask pixel i lies at map position
  (i + ½)·h/H − ½. It is evaluated only where it can exceed T_k (below).
- A union of 0 gives IoU 0.
- Probe sets such as Broden annotate each image only in some categories (its
  DTD images carry no object labels). Given each concept's category and each
  image's annotated categories (`ImageMasks.annotated`), the unit's firing
  pixels count towards a concept's union only on images annotated in that
  concept's category, as in NetDissect's code. Without that information every
  image counts, which is the plain formula above.

The computation is two streaming passes over the probe set, on the GPU when
there is one: thresholds, then intersections and unions. An interpolated
value is a convex combination of four map cells, so it can exceed T_k only
next to one of the unit's < ⌈q·n⌉ cells above T_k; the second pass
interpolates just those blocks of pixels and looks up which concepts the
firing pixels carry, so its cost follows the firing area (about q of all
unit-pixels), not units × pixels × concepts.

Modules: `iou` (`unit_concept_iou`, the pure core), `thresholds` (T_k,
streamed exactly), `upsample` (where a unit fires at mask resolution),
`tally` (the streaming IoU tally, `IoUTally`), `inputs` (arrays or streams of
batches), `labels` (`label_units`: concepts ranked per unit, detectors),
`driver` (`dissect`: a `catalogue.models.ModelInfo` over a `ProbeSet`).
"""

from catalogue.dissection.driver import dissect
from catalogue.dissection.inputs import MaskBatch
from catalogue.dissection.iou import unit_concept_iou
from catalogue.dissection.labels import LayerDissection, label_units
from catalogue.dissection.tally import DEFAULT_CHUNK_ELEMENTS, ConceptIoU, IoUTally
from catalogue.dissection.thresholds import RunningTopK, threshold_rank, unit_thresholds

__all__ = [
    "DEFAULT_CHUNK_ELEMENTS",
    "ConceptIoU",
    "IoUTally",
    "LayerDissection",
    "MaskBatch",
    "RunningTopK",
    "dissect",
    "label_units",
    "threshold_rank",
    "unit_concept_iou",
    "unit_thresholds",
]
