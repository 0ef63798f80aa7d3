"""Page sections of the 2-AFC study, kept apart from the pages.

- `unit_section`: the Unit page's "Human 2-AFC" section: the unit's share of correct
  answers with its 95 % Wilson interval, each of its trials as participants saw it
  (minimal references left, the two queries in the order shown, maximal references
  right) and every participant's answer to it, counted or left out.
- `measures_section`: on the Measures page, whether precision, CCMAS, max informedness,
  the best IoU or the accuracy drop when ablated predict human 2-AFC accuracy, with the
  number of units behind each correlation.

Reads go through `catalogue.query.twoafc`, cached like the pages' own queries.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from catalogue.measures import TWOAFC_CATCH_PASS_SHARE
from catalogue.query import twoafc as twoafc_query
from ui import connection, queries, tables
from ui.twoafc_rate import reference_grid, show_image, trial_images

BUILD_HINT = (
    "`unitcat ingest study 2afc RUN --units LAYER:UNITS` builds a 2-AFC study (IMI's "
    "protocol); participants answer on the Rate page (`?protocol=2afc`) or on a lab's own "
    "platform (`unitcat ingest study export`, then `unitcat ingest study responses`)."
)
PREDICTOR_LABELS = {
    "precision": "Top-60 precision",
    "ccmas": "CCMAS",
    "max_informedness": "Max informedness",
    "best_iou": "Best dissection IoU",
    "ablation_drop": "Accuracy drop when ablated",
}


@st.cache_data(ttl=queries.TTL_S, show_spinner=False)
def _unit_trials(key: str, unit_id: int) -> list[twoafc_query.Trial]:
    return twoafc_query.unit_trials(connection.engine_for(key), unit_id)


@st.cache_data(ttl=queries.TTL_S, show_spinner=False)
def _unit_answers(key: str, unit_id: int) -> pd.DataFrame:
    return twoafc_query.unit_answers(connection.engine_for(key), unit_id)


@st.cache_data(ttl=queries.TTL_S, show_spinner=False)
def _unit_accuracy(key: str, unit_id: int) -> dict[str, Any] | None:
    return twoafc_query.unit_accuracy(connection.engine_for(key), unit_id)


@st.cache_data(ttl=queries.TTL_S, show_spinner=False)
def _predictors(key: str, run_id: int, layer: str | None, include_constant: bool) -> pd.DataFrame:
    return twoafc_query.predictor_correlations(
        connection.engine_for(key), run_id, layer, include_constant=include_constant
    )


def _metrics(accuracy: dict[str, Any] | None) -> None:
    if accuracy is None or not accuracy["n_responses"]:
        left_out = 0 if accuracy is None else accuracy["n_excluded"]
        st.info(
            "No counted answers yet"
            + (
                f" ({left_out} left out: their participants failed the catch trials)."
                if left_out
                else "."
            )
        )
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(
        "2-AFC accuracy",
        f"{accuracy['accuracy']:.0%}",
        help="Share of answers choosing the strongly activating image.",
    )
    c2.metric(
        "Answers counted",
        accuracy["n_responses"],
        help=f"By {accuracy['n_participants']} participant(s).",
    )
    c3.metric(
        "95% interval",
        f"{accuracy['ci_low']:.0%}–{accuracy['ci_high']:.0%}",
        help="Wilson score interval of the share (binomial).",
    )
    c4.metric(
        "Left out",
        accuracy["n_excluded"],
        help=f"Answers of participants who got under {TWOAFC_CATCH_PASS_SHARE:.0%} of their catch trials right.",
    )


def _trial(key: str, trial: twoafc_query.Trial, answers: pd.DataFrame) -> None:
    images = trial_images(connection.engine_for(key), trial)
    left, middle, right = st.columns([3, 2, 3], gap="medium")
    with left:
        reference_grid(images, trial.min_references, "Left examples (least activating)")
    with right:
        reference_grid(images, trial.max_references, "Right examples (most activating)")
    shown = (trial.max_query, trial.min_query)
    roles = ("strongly activating ✓", "weakly activating")
    if not trial.max_query_first:
        shown, roles = shown[::-1], roles[::-1]
    with middle:
        st.markdown("**Queries, in the order shown**")
        for query, role in zip(shown, roles, strict=True):
            show_image(images, query, width=120, caption=f"{role} ({query.activation:.3g})")
    mine = answers[answers["trial_id"] == trial.id].drop(
        columns=["study", "trial_id", "task", "position", "catch"]
    )
    if mine.empty:
        st.caption("Nobody has answered this trial yet.")
    else:
        st.dataframe(tables.readable(mine), hide_index=True, key=f"twoafc_answers_{trial.id}")


def unit_section(key: str, unit_id: int) -> None:
    st.subheader("Human 2-AFC (natural exemplars)")
    trials = _unit_trials(key, int(unit_id))
    if not trials:
        st.info(f"This unit is in no 2-AFC study yet. {BUILD_HINT}")
        return
    _metrics(_unit_accuracy(key, int(unit_id)))
    answers = _unit_answers(key, int(unit_id))
    for i, trial in enumerate(trials):
        kind = "catch trial" if trial.catch else f"batch {trial.batch}"
        n = int((answers["trial_id"] == trial.id).sum())
        title = f"Study {trial.study} · task {trial.task} · trial {trial.position} ({kind}) · {n} answer(s)"
        with st.expander(title, expanded=i == 0):
            _trial(key, trial, answers)
    st.caption(
        "A participant's answers count once they got at least "
        f"{TWOAFC_CATCH_PASS_SHARE:.0%} of their catch trials right (IMI's criterion); catch "
        "trials never count. Response times run from the moment the server sent the trial."
    )


def measures_section(key: str, run_id: int, layer: str | None, include_constant: bool) -> None:
    st.subheader("Does selectivity predict human 2-AFC accuracy?")
    frame = _predictors(key, int(run_id), layer, include_constant)
    if frame.empty:
        st.info(
            f"No unit of this {'layer' if layer else 'run'} has counted 2-AFC answers. {BUILD_HINT}"
        )
        return
    shown = frame.assign(predictor=[PREDICTOR_LABELS.get(p, p) for p in frame["predictor"]])
    st.dataframe(
        tables.readable(shown.rename(columns={"n": "units"})),
        hide_index=True,
        key="twoafc_predictors",
    )
    where = f"layer {layer}" if layer else "all layers of the run (pooled)"
    st.caption(
        f"Correlation over the units of {where} between each measure and the unit's share of "
        "correct 2-AFC answers (participants who passed the catch trials); `units` counts the "
        "units with both values. From the `measure_correlations` view per layer."
    )
