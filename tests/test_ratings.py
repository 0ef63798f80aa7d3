"""The rating experiment's logic: counterbalanced lists, CSV validation, per-unit summaries
(Table 1 per layer is the view `rating_layer_summary`: tests/test_ratings_db.py)."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from catalogue.errors import InputError
from catalogue.ratings import (
    ESTIMATE_BINS,
    PanelRef,
    RatingRow,
    Trial,
    UnitClasses,
    assign_lists,
    list_for_participant,
    n_lists_for,
    parse_ratings_csv,
    participant_trials,
    select_panels,
    summarise_units,
)
from catalogue.wordnet import NameMatcher

HEADER = "participant,model,layer,unit,answer,estimate,names\n"


@pytest.fixture(scope="module")
def words() -> NameMatcher:
    """The plain-word matcher: deterministic, no WordNet needed."""
    return NameMatcher(use_wordnet=False)


def paper_panels() -> list[PanelRef]:
    """The paper's 3,299 panels: 256 conv5, 2,048 fc6, 995 fc8 (appendix 5)."""
    sizes = {"conv5": 256, "fc6": 2048, "fc8": 995}
    return [PanelRef(f"{layer}.{i}", layer) for layer, n in sizes.items() for i in range(n)]


# ---------------------------------------------------------------- lists


def test_paper_design_gives_lists_of_51_or_52_mixing_layers_in_proportion() -> None:
    panels = paper_panels()
    lists = assign_lists(panels, 64, seed=0)
    assert len(lists) == 64
    assert sorted(p for lst in lists for p in lst) == sorted(p.panel_id for p in panels)
    assert Counter(len(lst) for lst in lists) == Counter({52: 35, 51: 29})
    layer_of = {p.panel_id: p.layer for p in panels}
    for lst in lists:
        per_layer = Counter(layer_of[p] for p in lst)
        assert per_layer["conv5"] == 4 and per_layer["fc6"] == 32 and per_layer["fc8"] in (15, 16)
        # shuffled: layers interleave rather than come in blocks
        sequence = [layer_of[p] for p in lst]
        assert sum(a != b for a, b in itertools.pairwise(sequence)) > 5


def test_small_design_matches_a_hand_count() -> None:
    panels = [PanelRef(i, "a") for i in range(5)] + [PanelRef(10 + i, "b") for i in range(3)]
    lists = assign_lists(panels, 3, seed=1)
    assert sorted(len(lst) for lst in lists) == [2, 3, 3]
    for lst in lists:
        a = sum(p < 10 for p in lst)
        assert a in (1, 2) and len(lst) - a == 1
    with pytest.raises(InputError, match="between 1 and the number of panels"):
        assign_lists(panels, 9)


def test_lists_depend_on_the_seed_not_on_the_input_order() -> None:
    panels = paper_panels()[::7]
    shuffled = panels[:]
    random.Random(5).shuffle(shuffled)
    assert assign_lists(panels, 8, seed=3) == assign_lists(shuffled, 8, seed=3)
    assert assign_lists(panels, 8, seed=3) != assign_lists(panels, 8, seed=4)


def test_bad_list_requests() -> None:
    with pytest.raises(InputError, match="no panels"):
        assign_lists([], 3)
    with pytest.raises(InputError, match="listed twice"):
        assign_lists([PanelRef(1, "a"), PanelRef(1, "b")], 1)
    with pytest.raises(InputError, match="n_lists"):
        assign_lists([PanelRef(1, "a")], 0)
    with pytest.raises(InputError, match="n_lists"):
        list_for_participant(0, 0)
    with pytest.raises(InputError, match="participant index"):
        list_for_participant(-1, 4)


def test_333_participants_over_64_lists_give_every_panel_5_or_6_raters() -> None:
    """The paper: 51 lists assigned to 5 participants, 13 lists to 6."""
    per_list = Counter(list_for_participant(i, 64) for i in range(333))
    assert Counter(per_list.values()) == Counter({5: 51, 6: 13})
    lists = assign_lists(paper_panels(), 64)
    raters = Counter()
    for participant in range(333):
        raters.update(lists[list_for_participant(participant, 64)])
    assert min(raters.values()) == 5 and max(raters.values()) == 6
    assert len(raters) == 3299


@pytest.mark.parametrize("n_participants", [0, 4, 5, 9, 10, 333])
def test_n_lists_for_reaches_five_raters_per_panel(n_participants: int) -> None:
    n = n_lists_for(n_participants)
    assert n == max(1, n_participants // 5)
    if n_participants >= 5:
        per_list = Counter(list_for_participant(i, n) for i in range(n_participants))
        assert len(per_list) == n and min(per_list.values()) >= 5
    assert n_lists_for(333, n_panels=10) == 10


def test_participant_session_starts_with_practice() -> None:
    lists = [["a", "b"], ["c"], ["d", "e"]]
    assert participant_trials(4, lists, practice=["p1", "p2"]) == [
        Trial("p1", True),
        Trial("p2", True),
        Trial("c", False),
    ]
    assert participant_trials(2, lists) == [Trial("d", False), Trial("e", False)]


def test_select_panels_subsamples_only_the_listed_layers() -> None:
    panels = paper_panels()
    chosen = select_panels(panels, {"fc6": 100}, seed=2)
    counts = Counter(p.layer for p in chosen)
    assert counts == Counter({"conv5": 256, "fc6": 100, "fc8": 995})
    kept = set(chosen)
    assert chosen == [p for p in panels if p in kept]  # input order kept
    assert chosen == select_panels(panels, {"fc6": 100}, seed=2)
    assert chosen != select_panels(panels, {"fc6": 100}, seed=3)
    assert select_panels(panels, {"fc6": 5000}) == panels


# ---------------------------------------------------------------- CSV


def test_valid_file_is_read_and_normalised(tmp_path: Path) -> None:
    text = (
        "\ufeffAnswer, Participant ,model,layer,unit,estimate,names,comment\n"
        "yes,p1,alexnet,fc8,969,80-100%,Drink; Beverage ,first\n"
        "\n"
        "NO,p1,alexnet,conv5,183,,,\n"
        "yes,p2,alexnet,conv5,183, 60 - 80 ,dogs;dogs;,\n"
        "yes,p3,alexnet,conv5,183,,,skipped Q2 and Q3\n"
    )
    path = tmp_path / "ratings.csv"
    path.write_text(text, encoding="utf-8")
    rows = parse_ratings_csv(path)
    assert rows == parse_ratings_csv(str(path)) == parse_ratings_csv(text.removeprefix("\ufeff"))
    assert rows == [
        RatingRow(2, "p1", "alexnet", "fc8", 969, True, "80-100", ("drink", "beverage")),
        RatingRow(4, "p1", "alexnet", "conv5", 183, False, None, ()),
        RatingRow(5, "p2", "alexnet", "conv5", 183, True, "60-80", ("dogs",)),
        RatingRow(6, "p3", "alexnet", "conv5", 183, True, None, ()),
    ]
    assert rows[0].unit_key == ("alexnet", "fc8", 969)


def test_every_bad_line_is_reported_and_nothing_is_returned() -> None:
    text = HEADER + "\n".join(
        [
            "p1,alexnet,fc6,1,yes,80-100,dog",  # line 2: fine
            "p1,alexnet,fc6,7,maybe,,",  # 3
            "p1,alexnet,fc6,8,yes,50-70,dog",  # 4
            "p1,alexnet,fc6,x,no,,",  # 5
            "p1,alexnet,fc6,9,no,0-20,",  # 6
            "p1,alexnet,fc6,10,no,,dog",  # 7
            "p1,alexnet,fc6,11,yes,,dog;cat;fish",  # 8
            "p1,alexnet,fc6,12,yes",  # 9
            ",alexnet,fc6,13,no,,",  # 10
            "p1,alexnet,fc6,1,no,,",  # 11: same unit as line 2
            "p1,alexnet,fc6,-3,no,,",  # 12
            "p1,alexnet,fc6,14,YES,,a;b;c",  # 13
        ]
    )
    with pytest.raises(InputError) as caught:
        parse_ratings_csv(text)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "ratings CSV: 11 bad line(s), nothing imported: line 3: answer 'maybe'"
    )
    for fragment in [
        "line 3: answer 'maybe' is not yes or no",
        "line 4: estimate '50-70' is not one of 0-20, 20-40, 40-60, 60-80, 80-100 (or empty)",
        "line 5: unit 'x' is not a whole number ≥ 0",
        "line 6: estimate given with answer no (Q2 is asked only after yes); leave it empty",
        "line 7: names given with answer no",
        "line 8: 3 names given; at most 2, separated by ';'",
        "line 9: 5 fields, the header has 7",
        "line 10: participant is empty",
        "line 11: participant 'p1' already rated alexnet fc6 unit 1 on line 2",
    ]:
        assert fragment in message
    assert "line 12: unit '-3'" in message
    assert "line 13" not in message  # only the first 10 problems are shown
    assert message.endswith("; and 1 more. Fix them and import again.")


def test_a_line_with_several_problems_lists_each() -> None:
    with pytest.raises(InputError) as caught:
        parse_ratings_csv(HEADER + "p1,,fc6,1,perhaps,99,")
    message = str(caught.value)
    assert "3 bad line(s)" in message
    assert "line 2: model is empty" in message
    assert "line 2: answer 'perhaps'" in message
    assert "line 2: estimate '99'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("\n  \n", "is empty"),
        (
            "participant,model,layer,unit,answer\np1,m,l,1,no\n",
            "lacks the column(s) estimate, names",
        ),
        (HEADER, "has a header but no rating lines"),
        (HEADER.strip() + ",unit\n", "names the column(s) unit twice"),
    ],
)
def test_unusable_files_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(expected)):
        parse_ratings_csv(path)


def test_missing_and_binary_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        parse_ratings_csv(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="does not exist"):
        parse_ratings_csv("nope.csv")
    binary = tmp_path / "r.csv"
    binary.write_bytes(HEADER.encode() + b"p1,m,l,1,no,,\xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8"):
        parse_ratings_csv(binary)


# ---------------------------------------------------------------- summaries


def row(
    participant: str,
    unit: int,
    answer: bool,
    names: tuple[str, ...] = (),
    estimate=None,
    layer="fc6",
):
    return RatingRow(0, participant, "alexnet", layer, unit, answer, estimate, names)


def test_unit_summary_by_hand(words: NameMatcher) -> None:
    rows = [
        row("p1", 3, True, ("dog",), "80-100"),
        row("p2", 3, True, ("dogs", "cat"), "60-80"),
        row("p3", 3, True, ("retriever",)),
        row("p4", 3, True),  # yes without names
        row("p5", 3, False),
    ]
    classes = {
        ("alexnet", "fc6", 3): UnitClasses(most_active="flat-coated retriever", ccmas="monitor")
    }
    (s,) = summarise_units(rows, classes, matcher=words)
    assert (s.n_ratings, s.n_yes, s.share_yes, s.consensus) == (5, 4, 0.8, True)  # 80% is consensus
    assert (s.n_named, s.most_common_name, s.most_common_count) == (3, "dog", 2)
    assert s.human_agreement == pytest.approx(1 / 3)  # only p1-p2 of 3 pairs share a word
    assert s.match_most_active == pytest.approx(1 / 3)  # 'retriever' is a word of the class
    assert s.match_ccmas == 0.0
    assert s.mean_estimate == pytest.approx((0.9 + 0.7) / 2)
    assert s.as_dict()["most_common_name"] == "dog"


def test_unit_summary_through_wordnet_follows_the_papers_figure_4() -> None:
    matcher = NameMatcher()
    if not matcher.uses_wordnet:
        pytest.skip("WordNet unavailable")
    rows = [
        row("p1", 183, True, ("dogs",), layer="conv5"),
        row("p2", 183, True, ("dog",), layer="conv5"),
        row("p3", 183, True, ("retriever",), layer="conv5"),
        row("p1", 969, True, ("beverage",), layer="fc8"),
        row("p2", 969, True, ("drink",), layer="fc8"),
        row("p3", 969, True, ("glass",), layer="fc8"),
    ]
    classes = {
        ("alexnet", "conv5", 183): UnitClasses("flat-coated retriever", "monitor"),
        ("alexnet", "fc8", 969): UnitClasses("eggnog", "eggnog"),
    }
    dogs, drink = summarise_units(rows, classes, matcher=matcher)
    assert (dogs.layer, dogs.unit, dogs.most_common_name) == ("conv5", 183, "dog")
    assert dogs.human_agreement == 1.0 and dogs.match_most_active == 1.0 and dogs.match_ccmas == 0.0
    assert drink.human_agreement == pytest.approx(1 / 3)  # beverage~drink; 'glass' is a container
    assert drink.match_most_active == pytest.approx(2 / 3) and drink.match_ccmas == pytest.approx(
        2 / 3
    )


def test_ties_go_to_the_alphabetically_first_name_and_empty_units_are_undefined(words) -> None:
    rows = [
        row("p1", 1, True, ("cat",)),
        row("p2", 1, True, ("bat",)),
        row("p1", 2, False),
        row("p2", 2, False),
        row("p1", 3, True, ("owl",)),
    ]
    tie, silent, single = summarise_units(
        rows, {("alexnet", "fc6", 1): UnitClasses()}, matcher=words
    )
    assert (tie.most_common_name, tie.most_common_count, tie.human_agreement) == ("bat", 1, 0.0)
    assert tie.match_most_active is None and tie.match_ccmas is None  # no class names
    assert (silent.share_yes, silent.consensus, silent.n_named) == (0.0, None, 0)  # 2 raters
    assert silent.most_common_name is None and silent.human_agreement is None
    assert silent.mean_estimate is None
    assert single.human_agreement is None  # one named rater: no pairs
    assert summarise_units([], matcher=words) == []


def literal_unit(rows: list[RatingRow], most_active: str, matcher: NameMatcher) -> dict:
    """The definitions, written out again as loops."""
    yes = [r for r in rows if r.answer]
    named = [r for r in yes if r.names]
    agree = total = 0
    for i in range(len(named)):
        for j in range(i + 1, len(named)):
            total += 1
            agree += any(matcher.match(a, b) for a in named[i].names for b in named[j].names)
    hits = sum(any(matcher.match(n, most_active) for n in r.names) for r in named)
    return {
        "share_yes": len(yes) / len(rows),
        "consensus": len(yes) / len(rows) >= 0.8 if len(rows) >= 5 else None,
        "human_agreement": agree / total if total else None,
        "match_most_active": hits / len(named) if named else None,
    }


def test_summaries_agree_with_literal_definitions_on_random_ratings(words: NameMatcher) -> None:
    rng = random.Random(11)
    vocabulary = ["dog", "dogs", "sled dog", "cat", "bus", "school bus", "wine", "red wine", "car"]
    rows: list[RatingRow] = []
    classes = {}
    for layer in ("conv5", "fc6", "fc8"):
        p_yes = {"conv5": 0.3, "fc6": 0.5, "fc8": 0.9}[layer]
        for unit in range(40):
            classes[("alexnet", layer, unit)] = UnitClasses(
                rng.choice(vocabulary), rng.choice(vocabulary)
            )
            for participant in range(rng.randint(1, 7)):
                yes = rng.random() < p_yes
                names = tuple(rng.sample(vocabulary, rng.randint(0, 2))) if yes else ()
                estimate = rng.choice((None, *ESTIMATE_BINS)) if yes else None
                rows.append(
                    RatingRow(0, f"p{participant}", "alexnet", layer, unit, yes, estimate, names)
                )
    units = summarise_units(rows, classes, matcher=words)
    assert [(u.layer, u.unit) for u in units] == [
        (la, u) for la in ("conv5", "fc6", "fc8") for u in range(40)
    ]
    for u in units:
        mine = [r for r in rows if (r.layer, r.unit) == (u.layer, u.unit)]
        expected = literal_unit(mine, classes[("alexnet", u.layer, u.unit)].most_active, words)
        got = {k: getattr(u, k) for k in expected}
        assert got == pytest.approx(expected)
