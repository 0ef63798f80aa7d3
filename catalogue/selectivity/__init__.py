"""Selectivity measures of hidden units: docs/DESIGN.md "The measures", computed exactly and fast.

Entry points:

- `score_units(activations, labels, n_classes, ...)` → {column: (U,) array} for every
  column of ``unit_metrics``;
- `score_layer(..., groups=..., n_top_classes=5, n_top_images=TOP_N_CLASSES)` → `LayerScores`, adding
  the rows of ``unit_class_stats``, ``unit_top_image``, ``unit_bottom_image`` (the least
  active images, `catalogue.selectivity.exemplars`) and ``unit_group_metrics``.

Definitions follow the paper under review ("Are there any 'object detectors' in the
hidden layers of CNNs…", Sec. 2 and appendix) and docs/DESIGN.md. Per unit: activations a_i of
the N scored images (the caller chooses them, by default the correctly classified ones),
labels y_i in 0..C-1, n_c images in class c. A threshold t selects {i : a_i >= t}; the
candidate thresholds are the distinct activation values.

- ``localist``, ``localist_class``: some class c has min(a | c) > max(a | not c) (Bowers
  et al. 2014); at most one class can be.
- ``precision``, ``precision_class``, ``top60_threshold``: among the k = min(top_k, N)
  most active images, the largest expected count of one class ÷ k (Zhou et al. 2015).
  The images tied at the cut-off value share the remaining slots in proportion, i.e. the
  expected count under a random order of the tied images; the class is the lowest index
  among equal shares; the threshold is the activation at rank k.
- ``classes_in_top100``: expected number of distinct classes among the top
  min(top_n_classes, N): a class with an image above the cut-off counts 1, one with h of
  the m tied images counts 1 - C(m-h, r)/C(m, r) (r slots left; hypergeometric).
- ``ccmas``, ``ccmas_class``: c = the class (with images) of highest mean, lowest index on
  ties; (mu_c - mu_notc) / (mu_c + mu_notc) (Morcos et al. 2018). NaN, with class -1,
  where the denominator is not positive or no image lies outside c.
- ``recall_at_p100``: c = class of the most active image; the share of class c strictly
  above every image of every other class; 0 when the top value is shared by classes.
- ``recall_at_p95``: highest TP/n_c over classes and thresholds with TP/(TP+FP) >=
  precision_target (compared as the rounded quotient, so .95 means 19/20 exactly); 0
  when no threshold reaches it.
- ``max_informedness``, ``mi_class``, ``mi_threshold``: highest TP/n_c - FP/(N - n_c)
  (Youden's J; Powers 2003); ties to the lowest class, then the highest threshold. Each J
  is one correctly rounded division of exact integers, so equal values tie exactly.
  ``recall_at_mi`` = TP/n_c, ``specificity_at_mi`` = TN/(N - n_c) and
  ``false_alarm_rate`` = FP/(TP + FP) at that point (the paper's reading; see docs/DESIGN.md).
- ``frac_zero`` (a == 0, either sign), ``mean_activation``, ``max_activation``.
- ``constant``: every scored activation equal (a dead unit); its other measures then
  describe the class sizes, not the unit.
- ``detector_bar``, ``detector_bar_class`` (Gale et al. 2020's minimal bar for calling a
  unit a detector): the highest min(TP/n_c, TP/(TP+FP)) over classes and thresholds (the
  same candidate thresholds as above), ties to the lowest class index. Above .5 ⇔ some
  threshold gives more hits than misses and more hits than false alarms for one class.
- ``class_selectivity_index`` (Rafegas, Vanrell, Alexandre & Arias, "Understanding trained
  CNNs by indexing neuron selectivity", Pattern Recognition Letters 2020): over the
  n = min(csi_top_n, N) most active images, with weights w_i = max(a_i, 0) / a_max and
  class frequencies f_c = sum_{i in top, y_i = c} w_i / sum_{i in top} w_i,
  CSI = (n - M) / (n - 1), M = the fewest classes, by decreasing f_c, whose frequencies
  sum to at least th = csi_threshold. 1 = one class, 0 = every image another class.

Choices the definitions leave open:

- Classes without images are allowed (n_classes may exceed the labels seen); they are
  never a measure's class.
- Only one class with images: ``localist`` is True (no non-members to overlap),
  ``recall_at_p100`` = ``precision`` = ``recall_at_p95`` = ``detector_bar`` = 1, ``ccmas``
  and the whole informedness family are NaN (there are no negatives), ``mi_class`` = -1.
- A constant (e.g. dead, all-zero) unit: every threshold selects all images, so J = 0 for
  every class: ``mi_class`` is the lowest class with images, ``mi_threshold`` the constant,
  ``recall_at_mi`` = 1, ``specificity_at_mi`` = 0, ``false_alarm_rate`` = 1 - n_c/N;
  ``precision`` = ``detector_bar`` = the largest class share of all images (its class the
  lowest with that share); ``recall_at_p100`` = 0 (with two or more classes); ``ccmas``
  NaN if the constant is <= 0; CSI 0 if it is <= 0; ``constant`` True.
- Fewer images than top_k / top_n_classes / csi_top_n: all N images are used.
- CSI with th = 1 (the default): M = the classes with positive weight among the top n,
  as an expected value over the order of images tied at the cut-off (hypergeometric, as
  ``classes_in_top100``), so it never depends on image order. For th < 1 the expectation
  has no closed form: ties at the cut-off are broken by lower image index (the order of
  ``unit_top_image``). a_max <= 0 gives CSI 0; n = 1 gives 1.
- Activations are scored in float32 (float16 is exact; float64 is rounded). Counts are
  exact below 2**26.5 images (products such as TP·N stay below 2**53).
- Errors: mismatched lengths, labels outside 0..n_classes-1 or not whole numbers, NaN or
  infinite activations (counted, first unit named), a non-2-D matrix, no images,
  n_classes < 1, bad options → `catalogue.errors.InputError`. No units → empty arrays.

Speed and memory: units are scored in blocks; per block the cost is one sort of each
unit's values above its minimum (for ReLU units the non-zero ones) and one sort of
(class, position) keys over the same part, plus a few passes over it (see
`catalogue.selectivity.kernel`). On the CPU the sorts are numpy's vectorised integer
sorts; on CUDA torch's. The block size comes from `memory_budget` (default 512 MiB on
the CPU; a third of free GPU memory, at most 8 GiB, on CUDA) at 192 bytes per (unit ×
image): the scorer's peak is about the budget plus the caller's own array.
"""

from catalogue.measures import MEASURE_NAMES
from catalogue.selectivity.exemplars import BOTTOM_IMAGES, bottom_images
from catalogue.selectivity.scores import (
    CLASS_STAT_COLUMNS,
    TOP_IMAGE_COLUMNS,
    LayerScores,
    score_layer,
    score_units,
)

#: The keys of `score_units`' result: every column of ``unit_metrics``.
METRIC_COLUMNS: tuple[str, ...] = MEASURE_NAMES

__all__ = [
    "BOTTOM_IMAGES",
    "CLASS_STAT_COLUMNS",
    "METRIC_COLUMNS",
    "TOP_IMAGE_COLUMNS",
    "LayerScores",
    "bottom_images",
    "score_layer",
    "score_units",
]
