"""Do two object names mean the same rough class? WordNet hypernyms, or a plain-word fallback.

The paper (appendix 5) compared participants' names for an AM panel with each
other and with the unit's class names by hand: "agreement was taken if the
object was the same rough class" ('dogs' for a unit whose most active class is
'flat-coated retriever'; 'beverage' or 'drink' for 'eggnog'). We make that
mechanical with WordNet 3.0: two names match when some noun sense of one is a
hypernym of, or the same synset as, some noun sense of the other (instance
hypernyms count too, so proper names reach their class).

- Names are split on commas (ImageNet's "cab, hack, taxi, taxicab") and each
  alternative is tried; a name of the form ``n02099267`` is a WordNet noun
  offset (an ImageNet wnid) and means exactly that synset.
- Each alternative is looked up with spaces as underscores through WordNet's
  morphology (``morphy``), so "dogs" and "Granny Smith" are found; a phrase
  WordNet lacks ("red car") falls back to its last word, the English head noun.
- A hypernym match through a very general synset (``min_depth()`` below
  ``min_general_depth``, default 4: entity, physical entity, object, whole,
  matter, substance …) does not count, else "object" or "thing" would agree
  with every answer; equal synsets always match.

WordNet comes from Debian (``apt-get install -y wordnet-base
wordnet-sense-index`` → /usr/share/wordnet) and is read by nltk, which only
reads corpora under its data path: on first use the files are copied (nltk
refuses symlinks) into ``$UNITCAT_HOME/nltk_data/corpora/wordnet`` with the
``lexnames`` file no Debian package ships, and that directory is added to
``nltk.data.path``. An nltk-downloaded WordNet found on nltk's own path works too.

Without WordNet (no nltk or no data files) matching falls back to normalised
words: lower-case, singular ("dogs" → "dog"), and two names match when the words
of one are all among the words of the other ("dog" ~ "sled dog", but "dog" !~
"flat-coated retriever"). A one-time warning says so; `wordnet_available`
tells callers which one they get.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterable
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from catalogue.config import get_settings
from catalogue.errors import ConfigError

DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")
DEFAULT_MIN_GENERAL_DEPTH = 4

# The files nltk's WordNetCorpusReader opens (its _FILES, minus lexnames, which we write).
WORDNET_FILES = (
    "cntlist.rev",
    "index.sense",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
)

# The 45 lexicographer files of WordNet 3.0 in file-number order, from
# lexnames(5WN): name and syntactic category (1 noun, 2 verb, 3 adjective, 4 adverb).
LEXNAMES: tuple[tuple[str, int], ...] = (
    ("adj.all", 3),
    ("adj.pert", 3),
    ("adv.all", 4),
    ("noun.Tops", 1),
    ("noun.act", 1),
    ("noun.animal", 1),
    ("noun.artifact", 1),
    ("noun.attribute", 1),
    ("noun.body", 1),
    ("noun.cognition", 1),
    ("noun.communication", 1),
    ("noun.event", 1),
    ("noun.feeling", 1),
    ("noun.food", 1),
    ("noun.group", 1),
    ("noun.location", 1),
    ("noun.motive", 1),
    ("noun.object", 1),
    ("noun.person", 1),
    ("noun.phenomenon", 1),
    ("noun.plant", 1),
    ("noun.possession", 1),
    ("noun.process", 1),
    ("noun.quantity", 1),
    ("noun.relation", 1),
    ("noun.shape", 1),
    ("noun.state", 1),
    ("noun.substance", 1),
    ("noun.time", 1),
    ("verb.body", 2),
    ("verb.change", 2),
    ("verb.cognition", 2),
    ("verb.communication", 2),
    ("verb.competition", 2),
    ("verb.consumption", 2),
    ("verb.contact", 2),
    ("verb.creation", 2),
    ("verb.emotion", 2),
    ("verb.motion", 2),
    ("verb.perception", 2),
    ("verb.possession", 2),
    ("verb.social", 2),
    ("verb.stative", 2),
    ("verb.weather", 2),
    ("adj.ppl", 3),
)

_STOPWORDS = frozenset({"a", "an", "the", "of", "and", "or", "with", "in", "on"})
_WNID = re.compile(r"^n(\d{8})$")


class WordNetUnavailableWarning(UserWarning):
    """WordNet could not be loaded; names are matched by normalised words instead."""


_lock = threading.Lock()
_reader_cache: dict[str, Any] = {}
_warned = False


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>category`` per lexicographer file."""
    return "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES))


def nltk_data_dir() -> Path:
    """Where unitcat builds the nltk copy of WordNet: ``$UNITCAT_HOME/nltk_data``."""
    return get_settings().home / "nltk_data"


def build_nltk_wordnet(source: Path = DEBIAN_WORDNET_DIR, data_dir: Path | None = None) -> Path:
    """Copy WordNet's database files into ``<data_dir>/corpora/wordnet`` for nltk.

    Idempotent and safe against concurrent callers: the copy is made in a
    temporary directory and renamed into place. Returns the corpus directory.
    Raises FileNotFoundError when ``source`` lacks a needed file.
    """
    data_dir = data_dir or nltk_data_dir()
    target = data_dir / "corpora" / "wordnet"
    if _complete(target):
        return target
    missing = [f for f in WORDNET_FILES if not (source / f).is_file()]
    if missing:
        raise FileNotFoundError(f"WordNet files missing in {source}: {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    try:
        for name in WORDNET_FILES:
            shutil.copyfile(source / name, staging / name)
        (staging / "lexnames").write_text(lexnames_text(), encoding="utf-8")
        os.chmod(staging, 0o755)
        try:
            staging.rename(target)
        except OSError:
            if not _complete(target):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _complete(corpus: Path) -> bool:
    return all((corpus / f).is_file() for f in (*WORDNET_FILES, "lexnames"))


def load_wordnet(
    source: Path = DEBIAN_WORDNET_DIR,
    data_dir: Path | None = None,
    *,
    search_nltk_path: bool = True,
) -> Any | None:
    """An nltk WordNetCorpusReader, or None when nltk or the data is missing.

    Tries, in order: unitcat's copy under ``data_dir`` (default
    ``$UNITCAT_HOME/nltk_data``, built from ``source`` when absent), then, if
    ``search_nltk_path``, a WordNet on nltk's own data path (``nltk.download``).
    Cached per argument set: the index takes seconds to load.
    """
    data_dir = data_dir or nltk_data_dir()
    key = f"{source}|{data_dir}|{search_nltk_path}"
    with _lock:
        if key not in _reader_cache:
            _reader_cache[key] = _open_reader(source, data_dir, search_nltk_path)
        return _reader_cache[key]


def _open_reader(source: Path, data_dir: Path, search_nltk_path: bool) -> Any | None:
    try:
        import nltk
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError:
        return None
    try:
        build_nltk_wordnet(source, data_dir)
        if str(data_dir) not in nltk.data.path:
            nltk.data.path.append(str(data_dir))
        root = nltk.data.find("corpora/wordnet", paths=[str(data_dir)])
    except (OSError, LookupError):
        if not search_nltk_path:
            return None
        try:
            root = nltk.data.find("corpora/wordnet")
        except LookupError:
            return None
    with warnings.catch_warnings():
        # "The multilingual functions are not available": we need English only.
        warnings.simplefilter("ignore")
        try:
            return WordNetCorpusReader(root, None)
        except (OSError, LookupError, ValueError, PermissionError):
            return None


def wordnet_available() -> bool:
    """True when names are matched through WordNet, False when the word fallback is used."""
    return load_wordnet() is not None


def singular(word: str) -> str:
    """A crude English singular for the fallback: dogs → dog, buses → bus, berries → berry."""
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith(("sses", "shes", "ches", "xes", "zes", "uses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def alternatives(name: str) -> list[str]:
    """The comma-separated alternatives of a name, stripped, lower-cased, blanks collapsed."""
    parts = (" ".join(p.split()).lower() for p in name.split(","))
    return [p for p in parts if p]


def fallback_words(name: str) -> frozenset[str]:
    """Normalised content words of one alternative (hyphens and slashes split words)."""
    words = re.split(r"[\s\-/_]+", name.lower())
    return frozenset(
        singular(w) for w in (w.strip(".'\"()") for w in words) if w and w not in _STOPWORDS
    )


class NameMatcher:
    """Decides whether two names denote the same rough class (see the module docstring).

    ``use_wordnet``: None loads WordNet when available and otherwise falls back
    to normalised words with a one-time `WordNetUnavailableWarning`; False
    forces the word fallback (no warning); True requires WordNet (ConfigError
    when it cannot be loaded). ``source``, ``data_dir`` and ``search_nltk_path``
    are passed to `load_wordnet`.
    """

    def __init__(
        self,
        *,
        use_wordnet: bool | None = None,
        min_general_depth: int = DEFAULT_MIN_GENERAL_DEPTH,
        source: Path = DEBIAN_WORDNET_DIR,
        data_dir: Path | None = None,
        search_nltk_path: bool = True,
    ) -> None:
        self.min_general_depth = min_general_depth
        self._wn = None
        if use_wordnet is not False:
            self._wn = load_wordnet(source, data_dir, search_nltk_path=search_nltk_path)
            if self._wn is None:
                if use_wordnet:
                    raise ConfigError(
                        "WordNet is not available: pip install nltk and "
                        "apt-get install -y wordnet-base wordnet-sense-index."
                    )
                _warn_fallback()
        self._profile = lru_cache(maxsize=None)(self._profile_uncached)
        self._alternatives = lru_cache(maxsize=None)(alternatives)

    @property
    def uses_wordnet(self) -> bool:
        return self._wn is not None

    def match(self, a: str, b: str) -> bool:
        """True when some alternative of ``a`` matches some alternative of ``b``."""
        return any(
            self._match_one(x, y) for x in self._alternatives(a) for y in self._alternatives(b)
        )

    def match_any(self, names_a: Iterable[str], names_b: Iterable[str]) -> bool:
        """True when some name of the first collection matches some name of the second."""
        listed_b = list(names_b)
        return any(self.match(x, y) for x in names_a for y in listed_b)

    def canonical(self, name: str) -> str:
        """A name's base form for counting answers: WordNet's lemma ("dogs" → "dog"), else singular words."""
        text = " ".join(name.lower().split())
        if self._wn is not None:
            base = self._wn.morphy(text.replace(" ", "_"), "n")
            if base:
                return base.replace("_", " ")
        return " ".join(singular(w) for w in text.split())

    def _match_one(self, x: str, y: str) -> bool:
        if self._wn is None:
            wx, wy = fallback_words(x), fallback_words(y)
            return bool(wx) and bool(wy) and (wx <= wy or wy <= wx)
        sx, deep_x, up_x = self._profile(x)
        sy, deep_y, up_y = self._profile(y)
        return bool(sx & sy or deep_x & up_y or deep_y & up_x)

    def _profile_uncached(
        self, alternative: str
    ) -> tuple[frozenset[Any], frozenset[Any], frozenset[Any]]:
        """The alternative's noun synsets, those deep enough to subsume others, and all their ancestors."""
        synsets = self._synsets(alternative)
        deep = frozenset(s for s in synsets if s.min_depth() >= self.min_general_depth)
        up = frozenset().union(*(_ancestors(s) for s in synsets))
        return synsets, deep, up

    def _synsets(self, alternative: str) -> frozenset[Any]:
        wn = self._wn
        found = _WNID.match(alternative)
        if found:
            try:
                return frozenset([wn.synset_from_pos_and_offset("n", int(found.group(1)))])
            except Exception:  # nltk raises WordNetError (an Exception) for unknown offsets
                return frozenset()
        phrase = alternative.replace(" ", "_")
        for candidate in (phrase, phrase.replace("-", "_"), phrase.replace("-", "")):
            synsets = wn.synsets(candidate, pos="n")
            if synsets:
                return frozenset(synsets)
        words = alternative.replace("-", " ").split()
        if len(words) > 1:
            return frozenset(wn.synsets(words[-1], pos="n"))
        return frozenset()


@cache
def _ancestors(synset: Any) -> frozenset[Any]:
    """The synset and all its (instance) hypernyms, transitively."""
    seen = {synset}
    stack = [synset]
    while stack:
        current = stack.pop()
        for parent in (*current.hypernyms(), *current.instance_hypernyms()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return frozenset(seen)


def _warn_fallback() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            "WordNet is not available (pip install nltk; apt-get install -y wordnet-base "
            "wordnet-sense-index): names are matched by normalised words only, so 'dog' "
            "will not match 'flat-coated retriever'.",
            WordNetUnavailableWarning,
            stacklevel=3,
        )


_default: dict[bool | None, NameMatcher] = {}


def names_match(a: str, b: str, *, use_wordnet: bool | None = None) -> bool:
    """Module-level shortcut for ``NameMatcher(use_wordnet=...).match(a, b)`` (matcher cached)."""
    if use_wordnet not in _default:
        _default[use_wordnet] = NameMatcher(use_wordnet=use_wordnet)
    return _default[use_wordnet].match(a, b)
