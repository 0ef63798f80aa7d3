"""Class-group files (YAML and CSV) and their mapping to class indices."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogue.errors import InputError
from catalogue.groups import PAPER_GROUPS, group_class_indices, load_groups


def test_yaml_and_csv_files_give_the_same_groups(tmp_path: Path) -> None:
    yaml_file = tmp_path / "groups.yaml"
    yaml_file.write_text("bus: [n04146614, n04487081]\ncar:\n  - n02930766\n")
    csv_file = tmp_path / "groups.csv"
    csv_file.write_text("group,key\nbus,n04146614\nbus,n04487081\ncar,n02930766\n")
    expected = {"bus": ["n04146614", "n04487081"], "car": ["n02930766"]}
    assert load_groups(yaml_file) == expected
    assert load_groups(csv_file) == expected


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("g.yaml", "bus: [a, b\n", "not valid YAML at line"),
        ("g.yaml", "- a\n- b\n", "must map group names"),
        ("g.yaml", "bus: []\n", "non-empty list"),
        ("g.yaml", "", "defines no groups|must map"),
        ("g.csv", "name,key\nbus,a\n", "header line 'group,key'"),
        ("g.csv", "group,key\nbus,\n", "line 2: both group and key"),
    ],
)
def test_bad_groups_files_name_the_problem(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_groups(path)


def test_a_missing_groups_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_groups(tmp_path / "nope.yaml")


def test_keys_map_to_sorted_indices_and_unknown_keys_are_refused() -> None:
    keys = ["a", "b", "c", "d"]
    assert group_class_indices({"g": ["d", "b", "d"]}, keys) == {"g": [1, 3]}
    with pytest.raises(
        InputError, match=r"'z' is not a class of toy \(its class keys: a, b, c, d\)"
    ):
        group_class_indices({"g": ["a", "z"]}, keys, dataset="toy")


def test_classes_can_be_named_where_keys_are_not_what_people_type() -> None:
    keys, names = ["tshirt_top", "trouser", "ankle_boot"], ["T-shirt/top", "Trouser", "Ankle boot"]
    assert group_class_indices({"g": ["Ankle boot", "tshirt_top"]}, keys, names) == {"g": [0, 2]}


def test_paper_groups_are_the_appendix_classes() -> None:
    assert len(PAPER_GROUPS["bus"]) == 3
    assert len(PAPER_GROUPS["car"]) == 13
    assert all(k.startswith("n") and len(k) == 9 for keys in PAPER_GROUPS.values() for k in keys)
