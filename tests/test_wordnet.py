"""Name matching through WordNet hypernyms (Debian's WordNet 3.0 read by nltk), and the word fallback."""

from __future__ import annotations

import gzip
import re
import warnings
from pathlib import Path

import pytest

from catalogue import wordnet
from catalogue.config import get_settings
from catalogue.errors import ConfigError
from catalogue.wordnet import (
    DEBIAN_WORDNET_DIR,
    LEXNAMES,
    NameMatcher,
    WordNetUnavailableWarning,
    alternatives,
    build_nltk_wordnet,
    fallback_words,
    lexnames_text,
    names_match,
    singular,
    wordnet_available,
)

needs_debian_wordnet = pytest.mark.skipif(
    not (DEBIAN_WORDNET_DIR / "data.noun").is_file(),
    reason="Debian WordNet missing: apt-get install -y wordnet-base wordnet-sense-index",
)


@pytest.fixture(scope="module")
def matcher() -> NameMatcher:
    m = NameMatcher()
    if not m.uses_wordnet:
        pytest.skip(
            "WordNet unavailable: pip install nltk; apt-get install -y wordnet-base wordnet-sense-index"
        )
    return m


@pytest.fixture
def fallback() -> NameMatcher:
    return NameMatcher(use_wordnet=False)


# ---------------------------------------------------------------- WordNet matching (the paper's examples)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("dog", "flat-coated retriever"),  # Fig. 4a: people said 'dogs'
        ("dogs", "flat-coated retriever"),
        ("Dogs ", "Flat-Coated Retriever"),
        ("dog", "n02099267"),  # the ImageNet wnid of flat-coated retriever
        ("drink", "eggnog"),  # Fig. 4c
        ("beverage", "eggnog"),
        ("apple", "Granny Smith"),  # Fig. 4b
        ("apples", "granny smith"),
        ("beer", "drink"),  # appendix 5's example
        ("animal", "dog"),
        ("taxi", "cab, hack, taxi, taxicab"),
        ("car", "cab, hack, taxi, taxicab"),
        ("red car", "sports car"),  # not in WordNet: its head noun 'car' is
        ("butterfly", "monarch"),
        ("object", "object"),
    ],
)
def test_names_of_the_same_rough_class_match_both_ways(
    matcher: NameMatcher, a: str, b: str
) -> None:
    assert matcher.match(a, b)
    assert matcher.match(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("dog", "monitor"),  # Fig. 4a's CCMAS class
        ("dog", "cat"),
        ("bird", "goldfish"),
        ("green peppers", "apples"),  # the paper's coders merged these; WordNet does not
        ("object", "dog"),  # too general to count (min_depth < 4)
        ("thing", "dog"),
        ("xyzzy", "dog"),  # not a word
        ("", "dog"),
        (" , ", "dog"),
    ],
)
def test_unrelated_or_too_general_names_do_not_match(matcher: NameMatcher, a: str, b: str) -> None:
    assert not matcher.match(a, b)
    assert not matcher.match(b, a)


def test_general_depth_limit_is_a_parameter() -> None:
    loose = NameMatcher(min_general_depth=0)
    if not loose.uses_wordnet:
        pytest.skip("WordNet unavailable")
    assert loose.match("object", "dog")


def test_match_any_and_canonical_forms(matcher: NameMatcher) -> None:
    assert matcher.match_any(["cat", "dogs"], ["monitor", "flat-coated retriever"])
    assert not matcher.match_any(["cat"], ["monitor", "flat-coated retriever"])
    assert not matcher.match_any([], ["dog"])
    assert matcher.canonical("Dogs") == "dog"
    assert matcher.canonical("green  peppers") == "green pepper"
    assert matcher.canonical("xyzzies") == "xyzzy"  # unknown: the plain singular


def test_module_shortcut_and_availability_agree(matcher: NameMatcher) -> None:
    assert wordnet_available()
    assert names_match("dog", "flat-coated retriever")
    assert not names_match("dog", "flat-coated retriever", use_wordnet=False)


# ---------------------------------------------------------------- building the nltk copy


@needs_debian_wordnet
def test_nltk_copy_is_built_under_unitcat_home_from_real_files(
    matcher: NameMatcher, tmp_path: Path
) -> None:
    corpus = wordnet.nltk_data_dir() / "corpora" / "wordnet"
    assert wordnet.nltk_data_dir().parent == get_settings().home
    for name in wordnet.WORDNET_FILES:
        copied = corpus / name
        assert copied.is_file() and not copied.is_symlink()
        assert copied.stat().st_size == (DEBIAN_WORDNET_DIR / name).stat().st_size
    lines = (corpus / "lexnames").read_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3"
    assert lines[3] == "03\tnoun.Tops\t1"
    assert lines[13] == "13\tnoun.food\t1"
    assert lines[29] == "29\tverb.body\t2"
    assert lines[44] == "44\tadj.ppl\t3"
    assert build_nltk_wordnet() == corpus  # idempotent
    elsewhere = build_nltk_wordnet(DEBIAN_WORDNET_DIR, tmp_path / "nltk_data")
    assert elsewhere == tmp_path / "nltk_data" / "corpora" / "wordnet"
    assert (elsewhere / "lexnames").read_text() == lexnames_text()


def test_lexnames_match_the_wordnet_manual_page() -> None:
    """Checked against lexnames(5WN) from wordnet-base where it is installed."""
    page = Path("/usr/share/man/man5/lexnames.5WN.gz")
    if not page.is_file():
        pytest.skip("lexnames(5WN) not installed")
    with gzip.open(page, "rt") as f:
        table = re.findall(r"^(\d\d)\t(\S+)\s", f.read(), flags=re.MULTILINE)
    category = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
    expected = "".join(f"{num}\t{name}\t{category[name.split('.')[0]]}\n" for num, name in table)
    assert len(table) == len(LEXNAMES) == 45
    assert lexnames_text() == expected


def test_missing_source_files_are_named(tmp_path: Path) -> None:
    source = tmp_path / "partial"
    source.mkdir()
    (source / "data.noun").write_text("")
    with pytest.raises(FileNotFoundError, match=r"index\.noun"):
        build_nltk_wordnet(source, tmp_path / "out")


# ---------------------------------------------------------------- without WordNet


def test_absent_wordnet_falls_back_with_one_warning(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(wordnet, "_warned", False)
    absent = {
        "source": tmp_path / "no-wordnet",
        "data_dir": tmp_path / "empty",
        "search_nltk_path": False,
    }
    with pytest.warns(WordNetUnavailableWarning, match="normalised words"):
        first = NameMatcher(**absent)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = NameMatcher(**absent)  # no second warning
    assert not first.uses_wordnet and not second.uses_wordnet
    assert first.match("dogs", "dog") and not first.match("dog", "flat-coated retriever")
    with pytest.raises(ConfigError, match="wordnet-base"):
        NameMatcher(use_wordnet=True, **absent)


def test_forced_fallback_gives_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = NameMatcher(use_wordnet=False)
    assert not m.uses_wordnet


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("dogs", "dog", True),
        ("Dog", "sled dog", True),  # every word of one is a word of the other
        ("wine", "red wine", True),
        ("red car", "red wine", False),  # sharing one word is not enough
        ("dog", "flat-coated retriever", False),  # the fallback's known blind spot
        ("buses", "school bus", True),
        ("berries", "berry", True),
        ("glass of wine", "wine glass", True),  # 'of' is ignored
        ("taxi", "cab, hack, taxi, taxicab", True),
        ("flat-coated", "flat coated retriever", True),  # hyphens split words
        ("", "dog", False),
        ("the", "dog", False),  # nothing left after stop words
    ],
)
def test_fallback_matches_normalised_words(
    fallback: NameMatcher, a: str, b: str, expected: bool
) -> None:
    assert fallback.match(a, b) is expected
    assert fallback.match(b, a) is expected


def test_fallback_canonical_form_and_helpers(fallback: NameMatcher) -> None:
    assert fallback.canonical(" Green  Peppers ") == "green pepper"
    assert alternatives("Cab,  hack , ,TAXI") == ["cab", "hack", "taxi"]
    assert fallback_words("The Flat-coated retrievers") == frozenset(
        {"flat", "coated", "retriever"}
    )
    cases = {
        "dogs": "dog",
        "buses": "bus",
        "boxes": "box",
        "churches": "church",
        "berries": "berry",
        "glass": "glass",
        "bus": "bus",
        "cactus": "cactus",
        "iris": "iris",
        "gas": "gas",
        "cats": "cat",
        "s": "s",
    }
    assert {w: singular(w) for w in cases} == cases
