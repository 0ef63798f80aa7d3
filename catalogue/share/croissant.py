"""`croissant.json`: the dump described in ML Commons Croissant 1.0 (JSON-LD).

One `cr:FileObject` per Parquet file (with its sha256), one `cr:FileSet` per kind of
image file, and one `cr:RecordSet` per table whose fields name their column
(`source.extract.column`), their type, and the record set a key column refers to
(`references`), so a Croissant reader (e.g. `mlcroissant`) can load and join the tables
without unitcat. Descriptions come from `catalogue.share.spec` and `catalogue.measures`.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from catalogue.measures import UNIT_MEASURES
from catalogue.share.manifest import Manifest
from catalogue.share.spec import IMAGE_DESCRIPTIONS, IMAGES, TABLES, DumpTable

CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

#: Key column -> (record set, field) it refers to.
_REFERS: dict[str, tuple[str, str]] = {
    "model": ("model", "model"),
    "dataset": ("dataset", "dataset"),
    "run": ("run", "run"),
    "parent": ("run", "run"),
    "baseline_of": ("run", "run"),
    "score_run": ("run", "run"),
    "panel_run": ("run", "run"),
    "participant": ("participant", "participant"),
}
_MEASURE_LABELS = {m.name: m.label for m in UNIT_MEASURES}


def _data_type(kind: pa.DataType) -> tuple[str, bool]:
    """(Croissant data type, repeated) of an Arrow type."""
    if pa.types.is_list(kind):
        return _data_type(kind.value_type)[0], True
    if pa.types.is_boolean(kind):
        return "sc:Boolean", False
    if pa.types.is_integer(kind):
        return "sc:Integer", False
    if pa.types.is_floating(kind):
        return "sc:Float", False
    if pa.types.is_timestamp(kind):
        return "sc:DateTime", False
    if pa.types.is_struct(kind):
        return "sc:ImageObject", False
    return "sc:Text", False


def _field(record_set: str, source: dict[str, Any], name: str, kind: pa.DataType) -> dict[str, Any]:
    data_type, repeated = _data_type(kind)
    out: dict[str, Any] = {
        "@type": "cr:Field",
        "@id": f"{record_set}/{name}",
        "name": name,
        "description": _MEASURE_LABELS.get(name, name.replace("_", " ")),
        "dataType": data_type,
        "source": {**source, "extract": {"column": name}},
    }
    if data_type == "sc:ImageObject":  # the encoded bytes of the {bytes, path} struct
        out["source"]["transform"] = {"jsonPath": "bytes"}
    if repeated:
        out["repeated"] = True
    refers = _REFERS.get(name)
    if refers is not None and refers[0] != record_set:
        out["references"] = {"field": {"@id": f"{refers[0]}/{refers[1]}"}}
    return out


def _record_set(table: DumpTable) -> dict[str, Any]:
    source = {"fileObject": {"@id": table.file}}
    return {
        "@type": "cr:RecordSet",
        "@id": table.table,
        "name": table.table,
        "description": table.description,
        "key": [{"@id": f"{table.table}/{k}"} for k in table.key],
        "field": [_field(table.table, source, f.name, f.type) for f in table.schema()],
    }


def _image_record_set(kind: str) -> dict[str, Any]:
    name = f"{kind}_images"
    source = {"fileSet": {"@id": f"{kind}_files"}}
    return {
        "@type": "cr:RecordSet",
        "@id": name,
        "name": name,
        "description": IMAGE_DESCRIPTIONS[kind],
        "field": [_field(name, source, f.name, f.type) for f in IMAGES[kind]],
    }


def croissant(manifest: Manifest, *, name: str, description: str) -> dict[str, Any]:
    """The Croissant metadata of a dump whose files `manifest` lists."""
    files = manifest.files
    distribution: list[dict[str, Any]] = [
        {
            "@type": "cr:FileObject",
            "@id": table.file,
            "name": table.file,
            "contentUrl": table.file,
            "encodingFormat": "application/x-parquet",
            "sha256": files[table.file]["sha256"],
        }
        for table in TABLES
    ]
    record_sets = [_record_set(t) for t in TABLES]
    for kind in IMAGES:
        if not manifest.files_of(f"images:{kind}"):
            continue
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": f"{kind}_files",
                "name": f"{kind}_files",
                "encodingFormat": "application/x-parquet",
                "includes": f"images/{kind}-*.parquet",
            }
        )
        record_sets.append(_image_record_set(kind))
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": name,
        "description": description,
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "citeAs": "unitcat catalogue dump (format "
        f"{manifest.data['format']} {manifest.data['format_version']})",
        "datePublished": manifest.data["created_at"],
        "version": "1.0.0",
        "distribution": distribution,
        "recordSet": record_sets,
    }
