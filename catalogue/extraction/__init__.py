"""Extraction: images → one value per image and unit → the HDF5 store.

What is stored follows the object-detector paper's protocol (docs/DESIGN.md,
"The measures"): a conv unit is reduced to one value per image by the spatial
maximum (default) or mean, an fc unit is stored as is; labels, predictions and
a correct flag are kept so that scoring can use only correctly classified
images. Spatial maps of conv layers can be kept too (float16) for dissection.

Why it is resumable: an ImageNet pass takes hours. The order is fixed (no
shuffling), the store advances its complete-row count only after a flushed
band, and a re-run with the same parameters restarts at the batch boundary
that contains the first missing image and drops the rows it already has, so
every image is computed in the same batch as in an uninterrupted run and the
file ends up identical. Different parameters are refused instead of mixed.

One driver, two strategies (`extract_activations`): the request is checked
once (`plan`), then the images run here into the run's file (`loop`), or, with
a Ray ``cluster``, in shards of images, one file per shard written by the
cluster's workers and read as one store (`shards`). Both give the same file
values, so either path reuses the other's finished file.

The model is a `catalogue.models.ModelInfo`, borrowed through
`catalogue.models.prepared`: it runs on the device, channels-last and in eval
mode, and the caller gets it back as given, also when the run fails.
"""

from catalogue.extraction.driver import extract_activations
from catalogue.extraction.loop import extract_span, reduce_spatial
from catalogue.extraction.plan import (
    COMPARED_PARAMS,
    REDUCTIONS,
    ExtractionPlan,
    ExtractionSummary,
    check_classes,
    check_options,
    check_output,
    layer_specs,
    plan_extraction,
    run_params,
)

__all__ = [
    "COMPARED_PARAMS",
    "REDUCTIONS",
    "ExtractionPlan",
    "ExtractionSummary",
    "check_classes",
    "check_options",
    "check_output",
    "extract_activations",
    "extract_span",
    "layer_specs",
    "plan_extraction",
    "reduce_spatial",
    "run_params",
]
