"""The HDF5 activation store: one file per extraction run.

Why this layout: extraction produces activations image by image (rows) while
the scorer reads them unit by unit (columns) — every measure in docs/DESIGN.md is a
function of one unit's activations over all images. Each layer is therefore an
(N images × U units) float32 dataset chunked in tall, narrow blocks
(``chunk_rows × 16`` = 4096 × 16 floats = 256 KiB by default, lzf):
reading one unit of a 100,000-image layer decompresses 25 chunks (6 MiB raw),
whatever the layer's width, and a 16-unit block costs the same. Narrower
chunks would make single-unit reads (the UI's Unit page) cheaper still but
multiply the chunk count; wider ones (64 units, 1 MiB) made a unit of a
721,536-image layer cost 1.1 s of decompression instead of 0.3 s, while block
reads for scoring decompress the same bytes either way.

Activation layers are written without HDF5's byte shuffle (stores written before
still read). On ReLU-like float32 (chunks of 4,096 × 16, lzf) the shuffle split
the runs of zeros that lzf compresses: with 80 % zeros, files of 0.34 of the raw
size without it against 0.48 with it, written 1.5× and read 1.5× faster (CPU
time); with half zeros 0.65 against 0.79. Only dense layers (no zeros, e.g.
logits) compress at all with it, to 0.90–0.93 of raw, at 5–7× the read time
(a chunk lzf cannot shrink is stored as it is and read without decompressing).
Writing was the slowest stage of `bench/paper_scale.py`, and reading a fifth of
its scoring. Spatial maps (float16) keep the shuffle.

Every chunk carries HDF5's Fletcher-32 checksum. A chunk lzf cannot shrink is stored raw,
and damage to a raw chunk would otherwise read back as values; with the checksum any
damaged chunk reads as an error, which is how a resumed extraction finds the band a
killed run left half-written (`catalogue.store.bands`).

Writes go to disk in whole bands and a crash leaves a file whose first
``n_complete`` rows are valid (`catalogue.store.bands`).

Layout (format ``unitcat-activations`` version 1)::

    /layers/<layer>     float32 (N, U)        attrs: kind, n_units, output_shape, position, reduce
    /maps/<layer>       float16 (N, U, H, W)  optional spatial maps of conv layers (dissection)
    /labels             int64 (N,)            true class index
    /predictions        int64 (N,)            model's arg-max class index
    /correct            bool (N,)             labels == predictions
    /image_keys         utf-8 str (N,)        the dataset's key of each image
    /classes/keys       utf-8 str (C,)        class keys (e.g. WordNet ids), in model output order
    /classes/names      utf-8 str (C,)
    /skipped/keys, /skipped/reasons  utf-8 str (S,), /skipped/source_index int64 (S,)
    attrs: format, format_version, params (JSON), versions (JSON), runtime (JSON),
           layer_order (JSON), n_complete, n_consumed, status ("running"|"complete"),
           created_at, finished_at

Layer names are feature-extraction node names (``features.10``, ``conv5``);
they contain dots, never slashes.

A run extracted on a cluster is written in shards (one store per range of
images) and its file reads them in place through HDF5 virtual datasets, with
the same layout and the same values (`shards`; attribute ``shards`` lists
them, relative to the file).

Modules: `layout` (the file's datasets, format checks, `LayerSpec`),
`reader` (column blocks, maps, labels, attributes), `bands` (the crash-safe
band protocol), `writer` (`ActivationStore`: create, resume, append, finish),
`shards` (a run in shards, read as one store).
"""

from catalogue.store.layout import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_CHUNK_UNITS,
    FORMAT,
    FORMAT_VERSION,
    MAP_CHUNK_BYTES,
    MAP_CHUNK_UNITS,
    LayerSpec,
    library_versions,
)
from catalogue.store.reader import StoreReader
from catalogue.store.writer import ActivationStore, unclosed_stores

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_CHUNK_UNITS",
    "FORMAT",
    "FORMAT_VERSION",
    "MAP_CHUNK_BYTES",
    "MAP_CHUNK_UNITS",
    "ActivationStore",
    "LayerSpec",
    "StoreReader",
    "library_versions",
    "unclosed_stores",
]
