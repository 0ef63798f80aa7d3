"""A unit's story in one line, from the catalogue's own numbers (`catalogue.query.glance`).

Every clause states a stored fact with the measure it comes from — the class of each
measure, the precision share of its top images, the false-alarm rate at its
max-informedness threshold, the best dissection concept, the ablation cost with the
number of images it was measured on — and says "not measured" where the catalogue has
no number. No word is made up: a class is called what its dataset calls it.

Presentation only (no Streamlit here): `summary_parts` gives the clauses, `summary_markdown`
the line with every name escaped so that a class name cannot become Markdown.
"""

from __future__ import annotations

import re

from catalogue.query.glance import AblationCost, UnitGlance

NOT_MEASURED = "not measured"
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def escape(text: object) -> str:
    """A name as literal Markdown text (Streamlit's colour and icon directives included)."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def _share(value: float) -> str:
    return f"{value:.1%}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def who(g: UnitGlance, esc=str) -> str | None:
    """Whose unit it is when that is not the trained network's: a baseline's."""
    if g.baseline_of is None:
        return None
    weights = f", weights {esc(g.model_weights)}" if g.model_weights else ""
    return f"baseline of scoring run #{g.baseline_of} ({esc(g.model)}{weights})"


def class_clauses(g: UnitGlance, esc=str) -> list[str]:
    """What its scoring says: the precision class and share, the max-informedness class and
    its false-alarm rate (or why there are none)."""
    if not g.scored:
        return [f"selectivity {NOT_MEASURED} (not scored)"]
    if g.constant:
        value = "" if g.constant_value is None else f" {g.constant_value:.4g}"
        n = "" if g.n_images is None else f"{g.n_images:,} "
        return [f"constant: all {n}scored activations equal{value}, so no class measure applies"]
    out = []
    if g.precision is None or g.precision_class is None:
        out.append(f"top-{g.top_k} precision {NOT_MEASURED}")
    else:
        out.append(f"{_share(g.precision)} {esc(g.precision_class)} in its top {g.top_k}")
    if g.mi_class is None or g.max_informedness is None:
        out.append(f"max informedness {NOT_MEASURED}")
    else:
        far = (
            f"false-alarm rate {NOT_MEASURED}"
            if g.false_alarm_rate is None
            else f"false-alarm rate {_share(g.false_alarm_rate)}"
        )
        out.append(f"max informedness {g.max_informedness:.3f} for {esc(g.mi_class)}, {far}")
    return out


def dissection_clause(g: UnitGlance, esc=str) -> str:
    if g.best_concept is None:
        return f"dissection {NOT_MEASURED}"
    iou = "" if g.best_iou is None else f" (IoU {g.best_iou:.3f}"
    if iou:
        iou += ", a detector)" if g.is_detector else ")"
    return f"best concept {esc(g.best_concept)}{iou}"


def ablation_clause(cost: AblationCost | None, esc=str) -> str:
    """What removing it cost, with the images that was measured on."""
    if cost is None:
        return f"ablation {NOT_MEASURED}"
    sample = f"{cost.n_images:,} images"
    if cost.min_class_size is not None and cost.max_class_size is not None:
        low, high = cost.min_class_size, cost.max_class_size
        sample += f", {low:,} per class" if low == high else f", {low:,}–{high:,} per class"
    overall = (
        "" if cost.accuracy_change is None else f"; overall accuracy {cost.accuracy_change:+.3f}"
    )
    if cost.worst_images_lost is None:  # the run's file with the per-class changes is gone
        if cost.most_hurt_class is None or cost.most_hurt_change is None:
            return f"removing it: per-class cost {NOT_MEASURED} ({sample}){overall}"
        return (
            f"removing it: most hurt {esc(cost.most_hurt_class)} "
            f"{cost.most_hurt_change:+.3f} ({sample}){overall}"
        )
    if cost.worst_images_lost <= 0:
        return f"removing it costs no class an image ({sample}){overall}"
    lost = _plural(cost.worst_images_lost, "image")
    return (
        f"removing it costs at most {lost} of one class "
        f"({esc(cost.worst_class)}: {cost.worst_images_lost} of {cost.worst_class_size}; "
        f"{sample}){overall}"
    )


def summary_parts(g: UnitGlance, esc=str) -> list[str]:
    """The clauses of the summary line, in reading order."""
    baseline = who(g, esc)
    parts = [baseline] if baseline else []
    parts += class_clauses(g, esc)
    parts.append(dissection_clause(g, esc))
    parts.append(ablation_clause(g.ablation, esc))
    return parts


def summary_text(g: UnitGlance) -> str:
    """The line as plain text."""
    return " · ".join(summary_parts(g))


def summary_markdown(g: UnitGlance) -> str:
    """The line as Markdown, the unit's name in bold and every stored name escaped."""
    name = f"**{escape(g.layer)}.{g.unit}**"
    return " · ".join([name, *summary_parts(g, escape)])
