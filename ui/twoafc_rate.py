"""The Rate page's second protocol: the 2-AFC task of natural exemplars (IMI's protocol).

Opened by `?protocol=2afc` (and `study_name=…`, else the newest study) on the Rate page,
e.g. a study link `/rate?study=1&protocol=2afc&study_name=pilot` or `unitcat ui --study`
with that address. A participant enters their code and is dealt a task (in order of
arrival); each trial shows the unit's minimally activating images on the left, its
maximally activating ones on the right (the most extreme first), and two images in the
middle; the participant picks the one that fits the right-hand examples and says how
sure they are (1–3), as in IMI's experiment, and hears whether they were right. Every
answer is stored when given (`catalogue.pipeline.twoafc.study.record_response`) with its
response time — from the moment this server sent the trial to the moment the click
reached it — so a reload, or the same code another day, resumes at the next trial.
Nothing names the model, the layer, the unit or a class.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from catalogue.errors import InputError, NotFound
from catalogue.pipeline.twoafc.study import Assignment, enrol, progress, record_response
from catalogue.query.files import attach_images
from catalogue.query.twoafc import Trial, find_study, studies
from ui import study as study_mode
from ui import urlstate as url

PROTOCOL = "2afc"
CODE = "twoafc_code"
SHOWN = "twoafc_shown"  # trial id → when this server first sent it
NOTICE = "twoafc_notice"
SLOTS = ("upper", "lower")
QUESTION = "Which image in the middle fits the **Right examples** better?"
INSTRUCTIONS = (
    "On the left and on the right you see two groups of example images. Of the two "
    "images in the middle, one belongs with the left group and the other with the right "
    "group. Pick the one that fits the **Right examples** better, with the buttons under "
    "it: 1 if you are guessing, 3 if you are sure. After each answer you are told whether "
    "it was right; then the next trial follows."
)


def requested() -> bool:
    return (st.query_params.get("protocol") or "").strip().lower() == PROTOCOL


def links(engine: Engine) -> None:
    """Outside study mode, the Rate page's sidebar lists the 2-AFC studies to open."""
    if study_mode.active():
        return
    frame = studies(engine)
    if frame.empty:
        return
    st.sidebar.markdown("**2-AFC studies**")
    for name in frame["study"]:
        st.sidebar.page_link(
            "app_pages/rate.py", label=name, query_params={"protocol": PROTOCOL, "study_name": name}
        )


def _leave() -> None:
    st.session_state.pop(CODE, None)
    st.query_params.pop("participant", None)


def _start() -> None:
    code = (st.session_state.get("twoafc_code_input") or "").strip()
    if code:
        st.session_state[CODE] = code
    else:
        st.session_state[NOTICE] = ("warning", "Please enter your participant code.")


def _answer(engine: Engine, who: Assignment, trial: Trial, slot: str, confidence: int) -> None:
    shown = st.session_state.get(SHOWN, {}).get(trial.id)
    rt_ms = None if shown is None else (time.monotonic() - shown) * 1000.0
    chose_max = (slot == "upper") == trial.max_query_first
    try:
        record_response(engine, who, trial, chose_max=chose_max, confidence=confidence, rt_ms=rt_ms)
    except InputError as exc:  # answered meanwhile, e.g. in another tab
        st.session_state[NOTICE] = ("info", f"{exc} Here is the next one.")
        return
    st.session_state[NOTICE] = ("success", "Right.") if chose_max else ("error", "Not this time.")


def trial_images(engine: Engine, trial: Trial) -> dict[str, Any]:
    """The trial's images by key: a file path or a PIL image (bundled datasets)."""
    exemplars = [trial.max_query, trial.min_query, *trial.max_references, *trial.min_references]
    keys = [e.image_key or "" for e in exemplars]
    if trial.score_run_id is None:
        return {}
    frame = attach_images(engine, trial.score_run_id, pd.DataFrame({"image_key": keys}))
    return dict(zip(frame["image_key"], frame["image"], strict=True))


def reference_grid(images: dict[str, Any], exemplars: tuple, title: str) -> None:
    """References in rows of three, in the order shown (the most extreme first)."""
    st.markdown(f"**{title}**")
    for start in range(0, len(exemplars), 3):
        for column, exemplar in zip(st.columns(3), exemplars[start : start + 3], strict=False):
            with column:
                show_image(images, exemplar, width=96)


def show_image(
    images: dict[str, Any], exemplar: Any, *, width: int, caption: str | None = None
) -> None:
    image = images.get(exemplar.image_key or "")
    if isinstance(image, str) or hasattr(image, "size"):
        st.image(image, width=width, caption=caption)
    else:
        st.caption("(image missing)")


def _trial(engine: Engine, who: Assignment, trial: Trial, done: int, total: int) -> None:
    st.session_state.setdefault(SHOWN, {}).setdefault(trial.id, time.monotonic())
    st.progress(done / total, text=f"Trial {done + 1} of {total}")
    st.markdown(QUESTION)
    images = trial_images(engine, trial)
    left, middle, right = st.columns([3, 2, 3], gap="large")
    with left:
        reference_grid(images, trial.min_references, "Left examples")
    with right:
        reference_grid(images, trial.max_references, "Right examples")
    queries = (trial.max_query, trial.min_query)
    if not trial.max_query_first:
        queries = queries[::-1]
    with middle:
        for slot, query in zip(SLOTS, queries, strict=True):
            show_image(images, query, width=160)
            for column, confidence in zip(st.columns(3), (1, 2, 3), strict=True):
                column.button(
                    str(confidence),
                    key=f"twoafc_{slot}_{confidence}",
                    on_click=_answer,
                    args=(engine, who, trial, slot, confidence),
                    width="stretch",
                )
        st.caption("1 = guessing … 3 = sure")


def _ask_code() -> None:
    st.markdown(INSTRUCTIONS)
    with st.form("twoafc_start", border=False):
        st.text_input("Participant code", key="twoafc_code_input", max_chars=64)
        st.form_submit_button("Start", key="twoafc_start_button", type="primary", on_click=_start)


def _show_notice() -> None:
    notice = st.session_state.pop(NOTICE, None)
    if notice is not None:
        getattr(st, notice[0])(notice[1])


def run(engine: Engine) -> None:
    """The 2-AFC protocol on the Rate page."""
    st.title("Image study")
    try:
        study = find_study(engine, st.query_params.get("study_name") or None)
    except NotFound as exc:
        st.info(
            url.literal(exc)
            if not study_mode.active()
            else "There is no study to take part in yet."
        )
        return
    if CODE not in st.session_state and st.query_params.get("participant"):
        st.session_state[CODE] = st.query_params["participant"]  # a reload keeps the code
    if CODE not in st.session_state:
        _show_notice()
        _ask_code()
        return
    try:
        who = enrol(engine, study, st.session_state[CODE])
    except InputError as exc:
        _leave()
        st.warning(url.literal(exc))
        _ask_code()
        return
    st.query_params["participant"] = who.code
    st.sidebar.caption(f"Participant: **{url.literal(who.code)}**")
    st.sidebar.button("Not you? Change participant", key="twoafc_switch", on_click=_leave)
    _show_notice()
    state = progress(engine, who)
    trial = state.next
    if trial is None:
        st.success(
            f"**Thank you, you are done!** You answered {state.n_done} trials. "
            "You can close this page now.",
            icon=":material/task_alt:",
        )
        st.button("Start as another participant", key="twoafc_leave", on_click=_leave)
        return
    _trial(engine, who, trial, state.n_done, len(state.trials))
