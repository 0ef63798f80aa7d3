"""Named groups of classes (e.g. *bus* = school bus + trolleybus + minibus).

The paper's appendix (Tables 4–6) scores units against such groups. A groups
file is either YAML — a mapping from group name to a list of class keys::

    bus: [n04146614, n04487081, n03769881]
    car:
      - n02930766
      - n04037443

or CSV with a header ``group,key`` and one class per line. Classes are given
by the dataset's class keys (WordNet ids for ImageNet folders; `unitcat query
"SELECT key, name FROM image_class"` lists them) or by their exact names.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from catalogue.errors import InputError

#: The class groups of the paper's appendix (ImageNet WordNet ids).
PAPER_GROUPS: dict[str, list[str]] = {
    "bus": ["n04146614", "n04487081", "n03769881"],
    "car": [
        "n02930766",  # cab, hack, taxi, taxicab
        "n04037443",  # racer, race car, racing car
        "n03594945",  # jeep, landrover
        "n03770679",  # minivan
        "n02814533",  # beach wagon, station wagon
        "n03670208",  # limousine, limo
        "n03777568",  # Model T (misprinted as n0377568 in the paper)
        "n03100240",  # convertible
        "n03459775",  # grille, radiator grille
        "n04285008",  # sports car, sport car
        "n04461696",  # tow truck, tow car, wrecker
        "n02965783",  # car mirror
        "n02974003",  # car wheel
    ],
}


def load_groups(path: str | Path) -> dict[str, list[str]]:
    """Read a YAML or CSV groups file; any problem is one InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"groups file {path} does not exist; give a YAML or CSV file of class groups."
        )
    text = path.read_text(encoding="utf-8")
    groups = _parse_csv(text, path) if path.suffix.lower() == ".csv" else _parse_yaml(text, path)
    if not groups:
        raise InputError(f"groups file {path} defines no groups.")
    return groups


def _parse_yaml(text: str, path: Path) -> dict[str, list[str]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"groups file {path} is not valid YAML{where}.") from None
    if not isinstance(data, Mapping):
        raise InputError(f"groups file {path} must map group names to lists of class keys.")
    groups: dict[str, list[str]] = {}
    for name, keys in data.items():
        if not isinstance(keys, Sequence) or isinstance(keys, str) or not keys:
            raise InputError(
                f"groups file {path}: group {name!r} must be a non-empty list of class keys."
            )
        groups[str(name)] = [str(k) for k in keys]
    return groups


def _parse_csv(text: str, path: Path) -> dict[str, list[str]]:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or not {"group", "key"} <= {f.strip() for f in reader.fieldnames}:
        raise InputError(f"groups file {path} needs a header line 'group,key'.")
    groups: dict[str, list[str]] = {}
    for line_no, row in enumerate(reader, start=2):
        group, key = (row.get("group") or "").strip(), (row.get("key") or "").strip()
        if not group or not key:
            raise InputError(f"groups file {path}, line {line_no}: both group and key are needed.")
        groups.setdefault(group, []).append(key)
    return groups


def group_class_indices(
    groups: Mapping[str, Sequence[str]],
    class_keys: Sequence[str],
    class_names: Sequence[str] | None = None,
    *,
    dataset: str = "the dataset",
) -> dict[str, list[int]]:
    """Map each group's classes to class indices.

    A class may be given by its key (a WordNet id, `tshirt_top`) or, where keys
    are not what people type, by its exact name (`T-shirt/top`). Unknown
    classes are an InputError that lists some valid keys.
    """
    index_of = {k: i for i, k in enumerate(class_keys)}
    for i, name in enumerate(class_names or ()):
        index_of.setdefault(name, i)
    out: dict[str, list[int]] = {}
    for group, members in groups.items():
        unknown = [k for k in members if k not in index_of]
        if unknown:
            examples = ", ".join(list(class_keys)[:6]) + (" …" if len(class_keys) > 6 else "")
            raise InputError(
                f"class group {group!r}: {', '.join(map(repr, unknown[:5]))} "
                f"{'is' if len(unknown) == 1 else 'are'} not a class of {dataset} "
                f"(its class keys: {examples})."
            )
        out[group] = sorted({index_of[k] for k in members})
    return out
