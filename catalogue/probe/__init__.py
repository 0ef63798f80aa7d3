"""Probe sets in the Broden on-disk format: read them, write them, make them.

Network dissection (Bau, Zhou, Khosla, Oliva & Torralba, CVPR 2017) measures
how well each unit's thresholded activation map overlaps pixel-labelled
concepts of a *probe set*. Their probe set, Broden, is stored as:

```
index.csv          image,split,ih,iw,sh,sw,<category>,<category>,…
                   one row per image; a category field holds ';'-separated
                   mask PNG names (pixel labels) or label numbers (labels of
                   the whole image, e.g. scene, texture); '' = not annotated
label.csv          number,name,category,frequency,coverage,syns
                   category is e.g. "material(36);object(3)" (images per category)
category.csv       name,first,last,count,frequency
c_<category>.csv   code,number,name,frequency,coverage  (dense per-category codes)
images/…           the images and the mask PNGs, paths relative to images/;
                   a mask pixel's label number is R + 256·G, 0 = unlabelled
```

`ProbeSet.open` (`reader`) reads such a directory (the real Broden too)
lazily, one image at a time, so Broden's 63,305 images never have their
masks in memory together. `ProbeWriter` (`writer`) writes one, and
`make_probe` (`synthetic`) builds a small synthetic probe set in this format
from any labelled image collection (objects pasted onto varied backgrounds,
plus Broden-style colour labels); such a set is a probe set *in Broden's
format*, not Broden. `broden` holds the column names and the records.
"""

from catalogue.probe.broden import (
    CATEGORY_COLUMNS,
    CODE_COLUMNS,
    COLOR_SUFFIX,
    LABEL_COLUMNS,
    META_COLUMNS,
    Concept,
    ImageMasks,
    ProbeSample,
)
from catalogue.probe.reader import ProbeSet
from catalogue.probe.synthetic import make_probe
from catalogue.probe.writer import ProbeWriter

__all__ = [
    "CATEGORY_COLUMNS",
    "CODE_COLUMNS",
    "COLOR_SUFFIX",
    "LABEL_COLUMNS",
    "META_COLUMNS",
    "Concept",
    "ImageMasks",
    "ProbeSample",
    "ProbeSet",
    "ProbeWriter",
    "make_probe",
]
