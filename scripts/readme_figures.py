"""The README's demo figures, written from the catalogue `make demo` builds.

The README quotes what a newcomer sees after `make demo`: the per-layer count of
"object detectors" by each criterion, the headline query's units, a showcase
unit and screenshots of the UI. Typed by hand they drift from the demo the
moment it changes; this script reads them from the catalogue (DATABASE_URL /
UNITCAT_HOME, as every command does) and writes

- ``docs/demo/figures.json``: every number below, machine-readable;
- ``docs/demo/figures.md``: the README block, also pasted into README.md
  between the ``readme-figures`` markers (nothing else of the README changes);
- ``docs/screenshots/*.png``: the UI pages again (`scripts/screenshots.py`),
  the Unit page on the showcase unit.

The scoring run is the newest one of a demo CNN (``demo:…``); the showcase unit
is the precision "detector" with the highest false-alarm rate in that run
(`catalogue.query.report.showcase_unit`, constant units left out). Run after
`make demo`:

    .venv/bin/python scripts/readme_figures.py            # --no-screenshots to skip Chromium
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: the repository's packages
    sys.path.insert(0, str(REPO))

from catalogue.db.engine import get_engine  # noqa: E402
from catalogue.db.migrate import ensure_current  # noqa: E402
from catalogue.errors import NotFound, UnitcatError  # noqa: E402
from catalogue.measures import CRITERIA, CRITERIA_BY_KEY, NOT_CONSTANT  # noqa: E402
from catalogue.pipeline.demo_importance import SHOWN_MEASURES  # noqa: E402
from catalogue.query.files import unit_activations  # noqa: E402
from catalogue.query.importance import (  # noqa: E402
    ablation_runs,
    importance_correlations,
    layer_baselines,
)
from catalogue.query.report import run_report, showcase_unit  # noqa: E402
from catalogue.query.runs import run_records, score_runs  # noqa: E402
from catalogue.query.units import threshold_counts, unit_record  # noqa: E402

BEGIN = "<!-- readme-figures:begin -->"
END = "<!-- readme-figures:end -->"
OUT = REPO / "docs" / "demo"
COUNTED = tuple(c for c in CRITERIA if c.count_column)

#: Short column heads for the per-layer table, by criterion key.
HEADS = {
    "precision": "precision > .75",
    "ccmas": "CCMAS > .9",
    "localist": "localist",
    "iou": "IoU > .04",
    "misleading": "misleading",
    "detector_bar": "detector bar > .5",
}


def demo_run(engine: Any) -> dict[str, Any]:
    """The newest scoring run of a demo CNN, with its extraction run's statistics."""
    runs = score_runs(engine)
    demo = runs[runs["model"].fillna("").str.startswith("demo:")]
    if demo.empty:
        raise NotFound("no scoring run of a demo CNN in the catalogue; run `make demo` first.")
    run = demo.iloc[0].to_dict()
    records = {r["id"]: r for r in run_records(engine, ("score", "extract"), ("done",))}
    score = records[int(run["id"])]
    extract = records.get(score["parent_id"]) or {}
    return {
        "id": int(run["id"]),
        "model": str(run["model"]),
        "dataset": str(run["dataset"]),
        "n_scored": int((score["stats"] or {}).get("n_images", 0)),
        "all_images": bool((score["params"] or {}).get("all_images", False)),
        "n_extracted": int((extract.get("stats") or {}).get("n_images", 0)),
        "extract_id": extract.get("id"),
        "accuracy": (extract.get("stats") or {}).get("accuracy"),
    }


def machine(engine: Any, extract_id: int | None) -> dict[str, Any]:
    """The provenance of the demo's extraction run: the machine, threads and versions that
    decided which images were classified correctly (`catalogue.provenance`)."""
    from catalogue.query.run_details import run_details

    return run_details(engine, extract_id)["provenance"] if extract_id is not None else {}


def machine_line(fig: dict[str, Any]) -> str:
    """Where the figures came from, and why another machine's differ."""
    p = fig.get("machine") or {}
    differ = (
        "Figures differ across CPUs: floating-point kernels and thread counts change a few "
        "activations, so which images are classified correctly, and every count after it; "
        "the same machine gives the same figures twice."
    )
    if not p:
        return (
            f"These figures came from a catalogue made before runs recorded their machine. {differ}"
        )
    m, v, t = p.get("machine") or {}, p.get("versions") or {}, p.get("torch") or {}
    threads = (
        f" with {t['threads']} thread{'s' if t['threads'] != 1 else ''}" if t.get("threads") else ""
    )
    return (
        f"These figures came from one `make demo` on {m.get('cpu')} ({m.get('usable_cpus')} of "
        f"{m.get('cpu_count')} CPUs usable{', ' + p['device'] if p.get('device') else ''}), "
        f"torch {v.get('torch')}"
        f"{threads}, numpy {v.get('numpy')}, Python {v.get('python')}, PostgreSQL "
        f"{v.get('postgresql')} (`unitcat runs show {fig['run'].get('extract_id')}` prints "
        f"the extraction's provenance). {differ}"
    )


def test_accuracy(model: str) -> float | None:
    """The held-out accuracy the demo checkpoint recorded when it was trained."""
    from catalogue.models import load_model

    try:
        return load_model(model).extra.get("test_accuracy")
    except (UnitcatError, OSError):  # the checkpoint may live elsewhere: figure left out
        return None


def showcase(engine: Any, run_id: int) -> dict[str, Any] | None:
    """The showcase unit's record and, from its activations, the counts behind its rates."""
    found = showcase_unit(engine, run_id)
    if found is None:
        return None
    unit_id, _ = found
    record = unit_record(engine, unit_id, run_id)
    out = {
        k: record.get(k)
        for k in (
            "layer",
            "unit",
            "unit_id",
            "precision",
            "precision_class",
            "false_alarm_rate",
            "max_informedness",
            "mi_class",
            "mi_threshold",
            "recall_at_mi",
            "specificity_at_mi",
            "detector_bar",
            "detector_bar_class",
            "ccmas",
        )
    }
    acts = unit_activations(engine, unit_id, run_id)
    out["counts"] = threshold_counts(acts, int(record["mi_class_index"]), record["mi_threshold"])
    return out


def _records(frame: Any, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of `frame` as plain dicts (NaN as None), for JSON and the tables."""
    if frame.empty:
        return []
    kept = frame[list(columns)].astype(object)
    return kept.where(kept.notna(), None).to_dict("records")


def importance(engine: Any, run_id: int) -> dict[str, Any]:
    """The demo's baselines (trained / random weights / chance detectors per layer and
    criterion) and its newest ablation run's selectivity-importance correlations."""
    baselines = _records(
        layer_baselines(engine, run_id),
        (
            "layer",
            "criterion",
            "n_units",
            "trained",
            "random",
            "random_model",
            "chance_mean",
            "chance_sd",
        ),
    )
    ablations = ablation_runs(engine, run_id)
    correlations: list[dict[str, Any]] = []
    ablate_run = None
    if not ablations.empty:
        ablate_run = int(ablations.iloc[0]["id"])
        frame = importance_correlations(engine, ablate_run)
        if not frame.empty:
            frame = frame[frame["measure"].isin(SHOWN_MEASURES)]
        correlations = _records(
            frame,
            ("layer", "measure", "n", "spearman_class_drop", "spearman_overall_drop"),
        )
    return {"ablate_run": ablate_run, "baselines": baselines, "correlations": correlations}


def collect(engine: Any) -> dict[str, Any]:
    run = demo_run(engine)
    report = run_report(engine, run["model"], run["id"])
    return {
        "run": run,
        "test_accuracy": test_accuracy(run["model"]),
        "machine": machine(engine, run.get("extract_id")),
        "layers": report.layers,
        "undefined": report.undefined,
        "n_misleading": report.n_misleading,
        "misleading": report.misleading,
        "showcase": showcase(engine, run["id"]),
        **importance(engine, run["id"]),
    }


def _f(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{float(value):.{digits}f}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def random_rows(fig: dict[str, Any]) -> str:
    """What the random-weights baseline adds to the headline query run over the whole
    catalogue (its units are in `unit_catalogue` too, under their own model name)."""
    rows = [b for b in fig.get("baselines", []) if b["criterion"] == "misleading"]
    models = {b["random_model"] for b in rows if b["random_model"]}
    if not models:
        return ""
    added = sum(int(b["random"] or 0) for b in rows)
    if not added:
        return ""
    return (
        f" (run over the whole catalogue it also returns {added} of the random-weights "
        f"baseline {', '.join(f'`{m}`' for m in sorted(models))}; `model` tells them apart)"
    )


def render_importance(fig: dict[str, Any]) -> list[str]:
    """The block's baselines and selectivity-importance tables (nothing without them)."""
    lines: list[str] = []
    baselines = [b for b in fig.get("baselines", []) if b["criterion"] in HEADS]
    if baselines:
        criteria = [c.key for c in COUNTED if any(b["criterion"] == c.key for b in baselines)]
        by = {(b["layer"], b["criterion"]): b for b in baselines}
        layers = list(dict.fromkeys(b["layer"] for b in baselines))

        undissected = {
            r["layer"]
            for r in fig["layers"]
            if r.get(CRITERIA_BY_KEY["iou"].count_column, 0) is None
        }

        undefined = {(r["layer"], r["measure"]) for r in fig.get("undefined", [])}

        def cell(b: dict[str, Any] | None) -> str:
            if b is None or (b["criterion"] == "iou" and b["layer"] in undissected):
                return "—"
            if (b["layer"], b["criterion"]) in undefined:  # no unit has the measure
                return "—"
            random = "—" if b["random"] is None else str(b["random"])
            chance = (
                "—"
                if b["chance_mean"] is None
                else f"{b['chance_mean']:.1f} ± {b['chance_sd'] or 0.0:.1f}"
            )
            return f"{b['trained']} / {random} / {chance}"

        lines += [
            "",
            "How many of these would a network without learning, or chance, give? Detectors "
            "per criterion in the trained network / the same network with seeded random "
            "weights / the trained activations against permuted labels (mean ± sd over the "
            "permutations); constant units left out (the view `layer_baselines`); — : not "
            "dissected, the measure undefined for the layer's units (as above), or no chance "
            "figure (dissection has none):",
            "",
            "| layer | " + " | ".join(HEADS[k] for k in criteria) + " |",
            "|---|" + "---:|" * len(criteria),
        ]
        for layer in layers:
            lines.append(
                f"| {layer} | " + " | ".join(cell(by.get((layer, k))) for k in criteria) + " |"
            )
    correlations = fig.get("correlations", [])
    if correlations:
        measures = [m for m in SHOWN_MEASURES if any(r["measure"] == m for r in correlations)]
        by_c = {(r["layer"], r["measure"]): r for r in correlations}
        layers = list(dict.fromkeys(r["layer"] for r in correlations))
        lines += [
            "",
            "Do the selective units matter? Each unit of two layers was removed in turn "
            f"(ablation run {fig['ablate_run']}); Spearman correlation of each measure with "
            "the accuracy drop on the unit's own class for that measure (Morcos et al. 2018; "
            "the view `selectivity_vs_importance`):",
            "",
            "| layer | units | " + " | ".join(measures) + " |",
            "|---|---:|" + "---:|" * len(measures),
        ]
        for layer in layers:
            n = max(int(by_c[(layer, m)]["n"] or 0) for m in measures if (layer, m) in by_c)
            cells = []
            for m in measures:
                r = by_c.get((layer, m))
                value = None if r is None else r["spearman_class_drop"]
                cells.append("—" if value is None else f"{value:+.2f}")
            lines.append(f"| {layer} | {n} | " + " | ".join(cells) + " |")
    return lines


def render(fig: dict[str, Any]) -> str:
    """The README block (markdown) from the collected figures."""
    run = fig["run"]
    which = "all" if run["all_images"] else "correctly classified"
    lines = [
        BEGIN,
        "<!-- written by scripts/readme_figures.py from the catalogue `make demo` builds; "
        "run it again instead of editing -->",
        "",
        "### What `make demo` finds",
        "",
        f"`{run['model']}` on `{run['dataset']}`: {run['n_scored']:,} {which} images scored "
        f"(accuracy {_pct(run['accuracy'])} on the {run['n_extracted']:,} extracted"
        + (
            f"; {_pct(fig['test_accuracy'])} on the held-out test images)."
            if fig["test_accuracy"] is not None
            else ")."
        ),
        machine_line(fig),
        "Per layer, the units each criterion calls an object detector. Constant units "
        "(every activation equal) are counted apart and left out of the other columns; "
        "— : the layer was not dissected, or the criterion's measure is undefined for its "
        "units"
        + "".join(
            f"; {r['measure'].upper()} for the {r['n']:,} units of {r['layer']} ({r['reason']})"
            for r in fig.get("undefined", [])
        )
        + ".",
        "",
        "| layer | units | constant | "
        + " | ".join(HEADS.get(c.key, c.key) for c in COUNTED)
        + " | median max informedness | median false-alarm rate |",
        "|---|" + "---:|" * (4 + len(COUNTED)),
    ]
    for row in fig["layers"]:
        counts = " | ".join(
            "—" if row[c.count_column] is None else str(row[c.count_column]) for c in COUNTED
        )
        lines.append(
            f"| {row['layer']} | {row['n_units']} | {row['n_constant']} | {counts} | "
            f"{_f(row['median_max_informedness'])} | {_f(row['median_false_alarm_rate'])} |"
        )
    misleading = CRITERIA_BY_KEY["misleading"]
    lines += [
        "",
        f"The headline query (`{misleading.sql()} AND {NOT_CONSTANT.sql()}`, the view "
        f"`misleading_detectors`) returns **{fig['n_misleading']}** "
        f"unit{'s' if fig['n_misleading'] != 1 else ''} of the trained network"
        + random_rows(fig)
        + (", the ten with the most false alarms:" if fig["n_misleading"] > 10 else ":"),
    ]
    if fig["misleading"]:
        lines += [
            "",
            "| layer | unit | precision | precision class | false-alarm rate | "
            "max informedness | hit rate at MI |",
            "|---|---:|---:|---|---:|---:|---:|",
        ]
        for r in fig["misleading"]:
            lines.append(
                f"| {r['layer']} | {r['unit']} | {_f(r['precision'])} | {r['precision_class']} "
                f"| {_f(r['false_alarm_rate'])} | {_f(r['max_informedness'])} "
                f"| {_f(r['recall_at_mi'])} |"
            )
    unit = fig["showcase"]
    if unit is not None:
        counts = unit["counts"]
        tp, fp = counts["tp"], counts["fp"]
        bar = unit["detector_bar"]
        lines += [
            "",
            f'The Unit page below shows the precision "detector" with the highest false-alarm '
            f"rate, {unit['layer']} unit {unit['unit']}: {_pct(unit['precision'])} of its 60 "
            f"most active images are of the class {unit['precision_class']}, yet at its best "
            f"threshold (max informedness {_f(unit['max_informedness'])}, for the class "
            f"{unit['mi_class']}) {fp:,} of the {tp + fp:,} images at or above it "
            f"({_pct(unit['false_alarm_rate'])}) are of other classes; its textbook "
            f"false-positive rate, "
            f"1 − specificity, is {_pct(1 - float(unit['specificity_at_mi']))} "
            f"({fp:,} of {counts['n'] - counts['n_class']:,}). Gale et al.'s minimal bar "
            f"(hit rate and precision both above .5 at one threshold): "
            f"{_f(bar)} for {unit['detector_bar_class']} — "
            + ("passed." if bar is not None and bar > 0.5 else "not passed."),
        ]
    lines += [
        "",
        "![Unit page](docs/screenshots/unit.png)",
        "",
        "Further down the same page, each verdict names the criterion, its threshold, the "
        "unit's value and whether it passes, and the false-alarm row gives the counts:",
        "",
        "![Unit page: the verdicts](docs/screenshots/unit-verdicts.png)",
        "",
        "The Unit page's first screen tells the unit's story: one line built only from stored",
        "numbers (the precision class and its share of the top 60, max informedness with its class",
        "and false-alarm rate, the best dissection concept, and what removing the unit cost with",
        'the number of images that was measured on — "not measured" where the catalogue has no',
        'number), the top images (for a conv unit, with "Heat maps" its spatial map over each',
        "image, from the store when extraction kept the maps, else the run's own network run again",
        'on those images) and the AM panel, which "Enlarge" shows by whole pixels. The Layer grid',
        "page (`/layer?model=…&layer=…`, linked from every Unit page) shows a layer's units as",
        "tiles of their top images or AM panels, sorted by any measure.",
    ]
    lines += render_importance(fig)
    lines += ["", END]
    return "\n".join(lines) + "\n"


def paste(readme: Path, block: str) -> None:
    """Replace the block between the markers (or say where to add them)."""
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.DOTALL)
    if not pattern.search(text):
        raise NotFound(f"{readme} has no {BEGIN} … {END} block; add the two markers first.")
    readme.write_text(pattern.sub(lambda _m: block, text, count=1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args(argv)
    engine = get_engine()
    ensure_current(engine)
    figures = collect(engine)
    block = render(figures)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    (args.out / "figures.md").write_text(block)
    paste(args.readme, block)
    print(f"wrote {args.out / 'figures.json'}, {args.out / 'figures.md'} and {args.readme}")
    if not args.no_screenshots:
        sys.path.insert(0, str(Path(__file__).parent))
        import screenshots  # scripts/screenshots.py, beside this file

        run_id = figures["run"]["id"]
        found = showcase_unit(engine, run_id)
        if found is not None:
            screenshots.take(screenshots.pages_for(found[0], run_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
