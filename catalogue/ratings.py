"""The human-rating experiment on AM panels: list assignment, CSV import, per-unit summaries.

Protocol (Gale et al., sec. 3.2 and appendix 5). Each participant first sees
practice trials, then one list of 10 × 10 AM panels. For every panel:

- Q1 "Can you identify multiple examples of an everyday object, place or
  animal?" — yes or no;
- only after yes, Q2: the share of other people expected to say yes, one of the
  bins 0-20, 20-40, 40-60, 60-80, 80-100 (%), and Q3: up to two names.

The paper split 3,299 panels (256 conv5, 2,048 fc6, 995 fc8) into 64
counterbalanced lists of 51 or 52 (4 conv5, 15 or 16 fc8, 32 fc6 each) and gave
each list to 5 or 6 of its 333 participants. `assign_lists` reproduces that
split for any panels, `list_for_participant` deals participants round-robin.

Everything here is pure: `catalogue.query.ratings` reads panels, answers and class
names from the database, `catalogue.pipeline.ratings` writes what these functions
return, and the view `rating_layer_summary` aggregates the per-unit summaries into
the paper's Table 1.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalogue.errors import InputError
from catalogue.measures import RATING_CONSENSUS_SHARE, RATING_MIN_RATERS
from catalogue.wordnet import NameMatcher

CSV_COLUMNS = ("participant", "model", "layer", "unit", "answer", "estimate", "names")
ANSWERS = ("yes", "no")
ESTIMATE_BINS = ("0-20", "20-40", "40-60", "60-80", "80-100")
# Midpoint of each Q2 bin as a share, for the mean expected agreement.
ESTIMATE_MIDPOINTS = {b: (int(b.split("-")[0]) + int(b.split("-")[1])) / 200 for b in ESTIMATE_BINS}
MAX_NAMES = 2


def estimate_label(bin_name: str) -> str:
    """A Q2 bin as participants read it: the paper's '0-20%' … '80-100%' without edges that
    two bins share ('20-40' → '21–40%'); the stored value stays the bin's name."""
    low, high = (int(x) for x in bin_name.split("-"))
    return f"{low if low == 0 else low + 1}–{high}%"


NAME_SEPARATOR = ";"
MIN_RATERS = RATING_MIN_RATERS
MAX_ERRORS_SHOWN = 10

PanelId = Hashable
UnitKey = tuple[str, str, int]  # (model, layer, unit)


# ---------------------------------------------------------------- list assignment


@dataclass(frozen=True)
class PanelRef:
    """A panel to rate and the layer of its unit (lists mix layers in proportion)."""

    panel_id: PanelId
    layer: str


@dataclass(frozen=True)
class Trial:
    """One screen of a participant's session."""

    panel_id: PanelId
    practice: bool


def assign_lists(panels: Sequence[PanelRef], n_lists: int, seed: int = 0) -> list[list[PanelId]]:
    """Split panels into ``n_lists`` counterbalanced lists; every panel is in exactly one list.

    Panels are sorted by layer and id (so the result depends on the set of
    panels, not their order), shuffled within each layer (seeded), laid end to
    end layer after layer and dealt round-robin: panel k goes to list k mod
    ``n_lists``. Each layer is one contiguous run of that deal, so every list
    holds ⌊n_layer / n_lists⌋ or ⌈n_layer / n_lists⌉ panels of each layer, and
    list lengths differ by at most one. With the paper's 256 conv5, 2,048 fc6
    and 995 fc8 panels in 64 lists this gives lists of 51 or 52 with 4 conv5,
    32 fc6 and 15 or 16 fc8. The order within each list is then shuffled with
    its own seeded stream, so layers are interleaved.

    Raises InputError for no panels, a repeated panel id, or ``n_lists`` outside
    1..number of panels.
    """
    if not panels:
        raise InputError("no panels to assign to lists; generate AM panels first.")
    ids = [p.panel_id for p in panels]
    if len(set(ids)) != len(ids):
        repeated = next(i for i, c in Counter(ids).items() if c > 1)
        raise InputError(f"panel {repeated!r} is listed twice; give each panel once.")
    if not 1 <= n_lists <= len(panels):
        raise InputError(
            f"n_lists must be between 1 and the number of panels ({len(panels)}), got {n_lists}."
        )
    rng = np.random.default_rng(seed)
    by_layer: dict[str, list[PanelId]] = defaultdict(list)
    for p in sorted(panels, key=lambda p: (p.layer, type(p.panel_id).__name__, p.panel_id)):
        by_layer[p.layer].append(p.panel_id)
    sequence: list[PanelId] = []
    for layer in sorted(by_layer):
        members = by_layer[layer]
        sequence.extend(members[i] for i in rng.permutation(len(members)))
    lists: list[list[PanelId]] = [[] for _ in range(n_lists)]
    for k, panel_id in enumerate(sequence):
        lists[k % n_lists].append(panel_id)
    for i, members in enumerate(lists):
        order = np.random.default_rng([seed, 1, i]).permutation(len(members))
        lists[i] = [members[j] for j in order]
    return lists


def list_for_participant(participant_index: int, n_lists: int) -> int:
    """The list of the participant with 0-based arrival index ``participant_index``.

    Round-robin (``participant_index mod n_lists``), so after P participants
    every list has ⌊P / n_lists⌋ or ⌈P / n_lists⌉ raters. Since each panel is in
    exactly one list, every panel has at least ``min_raters`` raters once
    P ≥ ``min_raters`` · ``n_lists``: choose ``n_lists = n_lists_for(P)``. The
    paper's 333 participants over 64 lists give 51 lists 5 raters and 13 lists 6.
    (A participant who quits leaves their list one short: give the next
    participant the same index.)
    """
    if n_lists < 1:
        raise InputError(f"n_lists must be at least 1, got {n_lists}.")
    if participant_index < 0:
        raise InputError(f"participant index must be 0 or more, got {participant_index}.")
    return participant_index % n_lists


def n_lists_for(
    n_participants: int, min_raters: int = MIN_RATERS, n_panels: int | None = None
) -> int:
    """The most lists such that every panel gets at least ``min_raters`` raters (at least 1 list).

    Fewer participants than ``min_raters`` give one list that everybody rates.
    ``n_panels`` caps the result (a list needs at least one panel).
    """
    if n_participants < 0 or min_raters < 1:
        raise InputError("n_participants must be 0 or more and min_raters at least 1.")
    n = max(1, n_participants // min_raters)
    return min(n, n_panels) if n_panels is not None else n


def participant_trials(
    participant_index: int, lists: Sequence[Sequence[PanelId]], practice: Sequence[PanelId] = ()
) -> list[Trial]:
    """The session of one participant: the practice panels first, then their list."""
    own = lists[list_for_participant(participant_index, len(lists))]
    return [Trial(p, True) for p in practice] + [Trial(p, False) for p in own]


def select_panels(
    panels: Sequence[PanelRef], per_layer: Mapping[str, int], seed: int = 0
) -> list[PanelRef]:
    """A seeded random subset with at most ``per_layer[layer]`` panels of each listed layer.

    The paper rated all conv5 and fc8 panels but 2,048 randomly chosen fc6 ones;
    layers not in ``per_layer`` are kept whole. Order follows the input.
    """
    rng = np.random.default_rng(seed)
    keep: set[int] = set()
    by_layer: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(panels):
        by_layer[p.layer].append(i)
    for layer in sorted(by_layer):
        members = by_layer[layer]
        limit = per_layer.get(layer)
        if limit is None or limit >= len(members):
            keep.update(members)
        else:
            keep.update(
                members[j] for j in rng.choice(len(members), size=max(0, limit), replace=False)
            )
    return [p for i, p in enumerate(panels) if i in keep]


# ---------------------------------------------------------------- CSV import


@dataclass(frozen=True)
class RatingRow:
    """One participant's answer for one panel, validated.

    ``answer`` is True for yes. ``estimate`` (Q2) and ``names`` (Q3, lower-case,
    at most two) are only given after yes: a no-row with either is rejected.
    After yes both may be left empty (the participant skipped them); such a row
    counts for the share of yes but not for name agreement. ``line`` is the CSV
    line, for messages about unknown models, layers or units found later.
    """

    line: int
    participant: str
    model: str
    layer: str
    unit: int
    answer: bool
    estimate: str | None
    names: tuple[str, ...]

    @property
    def unit_key(self) -> UnitKey:
        return (self.model, self.layer, self.unit)


def parse_ratings_csv(source: str | Path) -> list[RatingRow]:
    """Read and validate a ratings CSV; all lines or nothing.

    Columns (header line, any order, extra columns ignored): participant, model,
    layer, unit, answer (yes|no), estimate (one of 0-20 … 80-100, a trailing %
    allowed, empty after no), names (up to two, ';'-separated, empty after no).
    ``source`` is a path, or the CSV text itself when it is a str holding a
    newline or comma that names no existing file.

    Raises InputError naming the line and problem for the first bad lines
    (e.g. "line 7: answer 'maybe' is not yes or no"), for missing columns, an
    empty file, or a participant rating the same unit twice.
    """
    text, label = _read_source(source)
    reader = csv.reader(io.StringIO(text))
    try:
        header: list[str] | None = None
        for raw in reader:
            if any(cell.strip() for cell in raw):
                header = [cell.strip().lower() for cell in raw]
                break
        if header is None:
            raise InputError(f"{label} is empty; it needs the header line {','.join(CSV_COLUMNS)}.")
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            raise InputError(
                f"{label} lacks the column(s) {', '.join(missing)}; the header must name "
                f"{','.join(CSV_COLUMNS)}."
            )
        repeated = sorted({c for c in header if c in CSV_COLUMNS and header.count(c) > 1})
        if repeated:
            raise InputError(
                f"{label} names the column(s) {', '.join(repeated)} twice in its header."
            )
        position = {c: header.index(c) for c in CSV_COLUMNS}
        rows: list[RatingRow] = []
        problems: list[str] = []
        first_line: dict[tuple[str, str, str, int], int] = {}
        for raw in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in raw):
                continue
            if len(raw) != len(header):
                problems.append(f"line {line}: {len(raw)} fields, the header has {len(header)}")
                continue
            row, errors = _parse_row(line, {c: raw[i] for c, i in position.items()})
            problems.extend(f"line {line}: {e}" for e in errors)
            if row is None:
                continue
            key = (row.participant, row.model, row.layer, row.unit)
            if key in first_line:
                problems.append(
                    f"line {line}: participant {row.participant!r} already rated {row.model} "
                    f"{row.layer} unit {row.unit} on line {first_line[key]}"
                )
                continue
            first_line[key] = line
            rows.append(row)
    except csv.Error as exc:
        raise InputError(f"{label} line {reader.line_num}: not valid CSV ({exc}).") from None
    if problems:
        shown = "; ".join(problems[:MAX_ERRORS_SHOWN])
        more = len(problems) - MAX_ERRORS_SHOWN
        suffix = f"; and {more} more" if more > 0 else ""
        raise InputError(
            f"{label}: {len(problems)} bad line(s), nothing imported: {shown}{suffix}. Fix them and import again."
        )
    if not rows:
        raise InputError(f"{label} has a header but no rating lines.")
    return rows


def _read_source(source: str | Path) -> tuple[str, str]:
    if isinstance(source, str) and ("\n" in source or ("," in source and not _is_file(source))):
        return source.removeprefix("\ufeff"), "ratings CSV"
    path = Path(source)
    label = f"ratings CSV {path}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{label} does not exist; check the path.") from None
    except OSError as exc:
        raise InputError(f"{label} cannot be read ({exc.strerror}).") from None
    try:
        return data.decode("utf-8-sig"), label
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{label} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV."
        ) from None


def _is_file(name: str) -> bool:
    try:
        return Path(name).is_file()
    except OSError:  # e.g. a name too long to be a path
        return False


def _parse_row(line: int, cells: dict[str, str]) -> tuple[RatingRow | None, list[str]]:
    errors: list[str] = []
    participant = cells["participant"].strip()
    model = cells["model"].strip()
    layer = cells["layer"].strip()
    for name, value in (("participant", participant), ("model", model), ("layer", layer)):
        if not value:
            errors.append(f"{name} is empty")
    unit_text = cells["unit"].strip()
    unit = int(unit_text) if re.fullmatch(r"\d+", unit_text) else None
    if unit is None:
        errors.append(f"unit {unit_text!r} is not a whole number ≥ 0")
    answer_text = cells["answer"].strip().lower()
    if answer_text not in ANSWERS:
        errors.append(f"answer {cells['answer'].strip()!r} is not yes or no")
    estimate_text = re.sub(r"\s+", "", cells["estimate"]).removesuffix("%")
    estimate = estimate_text or None
    if estimate is not None and estimate not in ESTIMATE_BINS:
        errors.append(
            f"estimate {cells['estimate'].strip()!r} is not one of {', '.join(ESTIMATE_BINS)} (or empty)"
        )
    names, name_error = _parse_names(cells["names"])
    if name_error:
        errors.append(name_error)
    if answer_text == "no" and estimate is not None:
        errors.append("estimate given with answer no (Q2 is asked only after yes); leave it empty")
    if answer_text == "no" and names:
        errors.append("names given with answer no (Q3 is asked only after yes); leave them empty")
    if errors or unit is None:
        return None, errors
    return RatingRow(
        line, participant, model, layer, unit, answer_text == "yes", estimate, names
    ), []


def _parse_names(text: str) -> tuple[tuple[str, ...], str | None]:
    names: list[str] = []
    for part in text.split(NAME_SEPARATOR):
        name = " ".join(part.split()).lower()
        if name and name not in names:
            names.append(name)
    if len(names) > MAX_NAMES:
        return (), f"{len(names)} names given; at most {MAX_NAMES}, separated by '{NAME_SEPARATOR}'"
    return tuple(names), None


# ---------------------------------------------------------------- per-unit summaries


@dataclass(frozen=True)
class UnitClasses:
    """A unit's class names to compare with people's names: its most active image's class and its CCMAS class."""

    most_active: str | None = None
    ccmas: str | None = None


@dataclass(frozen=True)
class UnitRatingSummary:
    """Ratings of one unit's panel.

    - ``share_yes``: n_yes / n_ratings; ``consensus``: share_yes ≥ `RATING_CONSENSUS_SHARE`
      (Table 1b), None while fewer than `RATING_MIN_RATERS` people rated the panel.
    - ``n_named``: yes raters who gave at least one name; the name measures use only them.
    - ``most_common_name``: the name (in base form, "dogs" → "dog") given by most
      named raters, each rater counting a name once; ties go to the alphabetically first.
    - ``human_agreement``: over the unordered pairs of named raters, the share of
      pairs where some name of one matches some name of the other (WordNet, see
      `catalogue.wordnet`); None with fewer than two named raters.
    - ``match_most_active`` / ``match_ccmas``: the share of named raters with a
      name matching the unit's most-active class / CCMAS class; None without
      named raters or class name.
    - ``mean_estimate``: mean Q2 bin midpoint (.1 … .9) over yes raters who gave one.
    """

    model: str
    layer: str
    unit: int
    n_ratings: int
    n_yes: int
    share_yes: float
    consensus: bool | None
    n_named: int
    most_common_name: str | None
    most_common_count: int
    human_agreement: float | None
    match_most_active: float | None
    match_ccmas: float | None
    mean_estimate: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise_units(
    rows: Iterable[RatingRow],
    class_names: Mapping[UnitKey, UnitClasses] | None = None,
    *,
    matcher: NameMatcher | None = None,
    consensus_share: float = RATING_CONSENSUS_SHARE,
    min_raters: int = RATING_MIN_RATERS,
) -> list[UnitRatingSummary]:
    """Per-unit summaries, ordered by first appearance of (model, layer), then unit.

    ``class_names`` maps (model, layer, unit) to the unit's class names;
    ``matcher`` defaults to a `NameMatcher` (WordNet when available).
    """
    groups: dict[UnitKey, list[RatingRow]] = defaultdict(list)
    layer_order: dict[tuple[str, str], int] = {}
    for row in rows:
        groups[row.unit_key].append(row)
        layer_order.setdefault((row.model, row.layer), len(layer_order))
    if not groups:
        return []
    matcher = matcher or NameMatcher()
    class_names = class_names or {}
    keys = sorted(groups, key=lambda k: (layer_order[(k[0], k[1])], k[2]))
    return [
        _summarise_unit(k, groups[k], class_names.get(k), matcher, consensus_share, min_raters)
        for k in keys
    ]


def _summarise_unit(
    key: UnitKey,
    rows: list[RatingRow],
    classes: UnitClasses | None,
    matcher: NameMatcher,
    consensus_share: float,
    min_raters: int,
) -> UnitRatingSummary:
    n = len(rows)
    yes = [r for r in rows if r.answer]
    named = [r.names for r in yes if r.names]
    counts: Counter[str] = Counter()
    for names in named:
        counts.update({matcher.canonical(name) for name in names})
    best = min(counts.items(), key=lambda item: (-item[1], item[0])) if counts else None
    pairs = [(a, b) for i, a in enumerate(named) for b in named[i + 1 :]]
    agreement = sum(matcher.match_any(a, b) for a, b in pairs) / len(pairs) if pairs else None
    estimates = [ESTIMATE_MIDPOINTS[r.estimate] for r in yes if r.estimate is not None]

    def match_class(name: str | None) -> float | None:
        if not name or not named:
            return None
        return sum(matcher.match_any(names, [name]) for names in named) / len(named)

    share = len(yes) / n
    return UnitRatingSummary(
        model=key[0],
        layer=key[1],
        unit=key[2],
        n_ratings=n,
        n_yes=len(yes),
        share_yes=share,
        consensus=share >= consensus_share if n >= min_raters else None,
        n_named=len(named),
        most_common_name=best[0] if best else None,
        most_common_count=best[1] if best else 0,
        human_agreement=agreement,
        match_most_active=match_class(classes.most_active if classes else None),
        match_ccmas=match_class(classes.ccmas if classes else None),
        mean_estimate=sum(estimates) / len(estimates) if estimates else None,
    )
