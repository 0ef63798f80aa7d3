"""Rate: the human rating experiment on activation-maximisation panels.

The protocol is the paper's (Gale et al., sec. 3.2 and appendix 5): a
participant enters their code, does a few practice trials (answers not
stored), then sees the 10 × 10 AM panels of their counterbalanced list one at
a time. For each panel, Q1 asks whether they can identify multiple examples of
an everyday object, place or animal; only after "Yes" come Q2 (what share of
people would also say yes, in five bins) and Q3 (which thing, at most two).

Every answer is written to the catalogue when it is submitted
(`catalogue.pipeline.ratings.record_rating`), so a reload — or the same code
on another day — resumes at the next unanswered panel, and a panel cannot be
rated twice. The code is kept in the URL (``?participant=…``) so that
reloading the browser tab does not ask for it again. Practice trials are
skipped for a participant who already has stored ratings.

With ?protocol=2afc the page runs the 2-AFC study of natural exemplars instead
(ui/twoafc_rate.py). In study mode (ui/study.py) this page is all a participant sees. The estimate bins
read as the paper's (0-20% … 80-100%) but without shared edges (0–20%, 21–40% …);
the stored values stay the paper's bin names. Panels are shown at their native size.
"""

from __future__ import annotations

import re

import streamlit as st
from PIL import Image
from sqlalchemy import Engine

from catalogue.errors import InputError
from catalogue.pipeline.ratings import (
    Participant,
    StudyDesign,
    design_study,
    enrol,
    next_panel,
    record_rating,
)
from catalogue.query.files import artifact_path
from catalogue.query.ratings import StudyPanel, answered_units, study_panels
from catalogue.ratings import ESTIMATE_BINS, MAX_NAMES, estimate_label
from ui import connection, study, twoafc_rate
from ui import urlstate as url

# The questions exactly as the paper's appendix 5 words them.
Q1 = "Can you identify multiple examples of an everyday object, place or animal?"
Q2 = "You answered ‘Yes’. Indicate what percentage of people you think would also answer ‘Yes’:"
Q3 = "Please write which everyday object, place or animal you were referring to:"
Q3_HELP = "You may write a maximum of two things, separated by a comma (e.g. fish, goldfish)."
ESTIMATE_LABELS = {b: estimate_label(b) for b in ESTIMATE_BINS}
NO_PANELS = (
    "There are no activation-maximisation panels to rate yet. Make some with "
    "`unitcat ingest am --model … --layer …` (after `unitcat ingest extract`), then reload this page."
)

CODE = "rate_code"  # the participant code of this session
PRACTICE_DONE = "rate_practice_done"  # code → practice trials answered in this session
YES_FOR = "rate_yes_for"  # the trial whose Q1 was answered yes (Q2 and Q3 shown)
NOTICE = "rate_notice"  # (kind, message) to show once after a callback
Q2_KEY, Q3_KEY = "rate_q2", "rate_q3"


def _split_names(text: str) -> list[str]:
    return [n.strip() for n in re.split(r"[,;\n]", text or "") if n.strip()]


def _notice(kind: str, message: str) -> None:
    st.session_state[NOTICE] = (kind, message)


def _clear_answer() -> None:
    for key in (YES_FOR, Q2_KEY, Q3_KEY):
        st.session_state.pop(key, None)


def _start() -> None:
    code = (st.session_state.get("rate_code_input") or "").strip()
    if not code:
        _notice("warning", "Please enter your participant code.")
        return
    st.session_state[CODE] = code
    _clear_answer()


def _leave() -> None:
    st.session_state.pop(CODE, None)
    st.query_params.pop("participant", None)
    _clear_answer()


def _answer_yes(trial: str) -> None:
    st.session_state[YES_FOR] = trial


def _submit(
    engine: Engine,
    participant: Participant,
    panel: StudyPanel,
    practice: bool,
    answer: bool,
) -> None:
    """Store one answer (practice answers only advance the practice)."""
    estimate: str | None = None
    names: list[str] = []
    if answer:
        estimate = st.session_state.get(Q2_KEY)
        names = _split_names(st.session_state.get(Q3_KEY, ""))
        if estimate is None:
            _notice("warning", "Please choose a percentage for the second question.")
            return
        if not names:
            _notice("warning", "Please write the object, place or animal you saw.")
            return
        if len(names) > MAX_NAMES:
            _notice("warning", f"Please write at most {MAX_NAMES} things, separated by a comma.")
            return
    if practice:
        done = st.session_state.setdefault(PRACTICE_DONE, {})
        done[participant.code] = done.get(participant.code, 0) + 1
    else:
        try:
            record_rating(engine, participant, panel, answer=answer, estimate=estimate, names=names)
        except InputError as exc:  # e.g. answered meanwhile in another tab
            _notice("info", f"{exc} Here is the next one.")
    _clear_answer()


def _ask_code() -> None:
    st.markdown(
        "In this study you will see panels of 100 computer-generated images. For each panel "
        "you will be asked whether the images show an everyday object, place or animal."
    )
    with st.form("rate_start", border=False):
        st.text_input("Participant code", key="rate_code_input", max_chars=64)
        st.form_submit_button("Start", key="rate_start_button", type="primary", on_click=_start)


def _trial(
    engine: Engine,
    participant: Participant,
    panel: StudyPanel,
    *,
    practice: bool,
    heading: str,
) -> None:
    """One screen: the panel, Q1, and after 'Yes' Q2 and Q3."""
    trial = f"{'practice' if practice else 'panel'}:{panel.panel_id}"
    st.subheader(heading)
    if practice:
        st.caption("Practice trial: your answers here are not stored.")
    path = artifact_path(panel.path)
    if path is None:
        where = "" if study.active() else f" ({panel.path})"  # a path can name a layer
        st.error(
            f"The image of this panel cannot be found{where}. Please tell the "
            "experimenter; the panels may need to be generated again with `unitcat ingest am`."
        )
        st.stop()
    picture, questions = st.columns([3, 2], gap="large")
    with Image.open(path) as image:
        native_width = image.width
    picture.image(str(path), width=native_width)  # native size: never stretched
    with questions:
        _questions(engine, participant, panel, practice=practice, trial=trial)


def _questions(
    engine: Engine, participant: Participant, panel: StudyPanel, *, practice: bool, trial: str
) -> None:
    st.markdown(f"**Q1. {Q1}**")
    chose_yes = st.session_state.get(YES_FOR) == trial
    yes, no = st.columns(2)
    yes.button(
        "Yes ✓" if chose_yes else "Yes",
        key="rate_yes",
        on_click=_answer_yes,
        args=(trial,),
        type="primary" if chose_yes else "secondary",
        width="stretch",
        help="Your answer" if chose_yes else None,
    )
    no.button(
        "No",
        key="rate_no",
        on_click=_submit,
        args=(engine, participant, panel, practice, False),
        width="stretch",
    )
    if not chose_yes:
        return
    st.radio(
        f"**Q2. {Q2}**",
        ESTIMATE_BINS,
        index=None,
        format_func=ESTIMATE_LABELS.__getitem__,
        horizontal=True,
        key=Q2_KEY,
    )
    st.text_input(f"**Q3. {Q3}**", key=Q3_KEY, help=Q3_HELP, placeholder="fish, goldfish")
    st.button(
        "Submit",
        key="rate_submit",
        type="primary",
        on_click=_submit,
        args=(engine, participant, panel, practice, True),
    )


def _done(n_rated: int) -> None:
    st.success(
        f"**Thank you, you are done!** You rated {n_rated} panel{'s' if n_rated != 1 else ''}. "
        "You can close this page now.",
        icon=":material/task_alt:",
    )
    st.button("Start as another participant", key="rate_leave", on_click=_leave)


def _show_notice() -> None:
    notice = st.session_state.pop(NOTICE, None)
    if notice is not None:
        kind, message = notice
        getattr(st, kind)(message)


def _run(engine: Engine) -> None:
    panels = study_panels(engine)
    if not panels:
        st.info(NO_PANELS, icon=":material/inventory_2:")
        st.stop()
    design: StudyDesign = design_study(panels)

    if CODE not in st.session_state and st.query_params.get("participant"):
        st.session_state[CODE] = st.query_params["participant"]  # a reload keeps the code
    if CODE not in st.session_state:
        _show_notice()
        _ask_code()
        return
    try:
        participant = enrol(engine, st.session_state[CODE], len(design.lists))
    except InputError as exc:
        _leave()
        st.warning(url.literal(exc))
        _ask_code()
        return
    st.query_params["participant"] = participant.code
    st.sidebar.caption(f"Participant: **{url.literal(participant.code)}**")
    st.sidebar.button("Not you? Change participant", key="rate_switch", on_click=_leave)
    _show_notice()

    answered = answered_units(engine, participant.id)
    practice_done = st.session_state.get(PRACTICE_DONE, {}).get(participant.code, 0)
    if not answered and practice_done < len(design.practice):
        panel = design.panels[design.practice[practice_done]]
        heading = f"Practice trial {practice_done + 1} of {len(design.practice)}"
        _trial(engine, participant, panel, practice=True, heading=heading)
        return

    own_list = design.lists[participant.list_index]
    panel = next_panel(engine, design, participant)
    n_rated = sum(design.panels[p].unit_id in answered for p in own_list)
    if panel is None:
        _done(n_rated)
        return
    st.progress(n_rated / len(own_list), text=f"{n_rated} of {len(own_list)} panels rated")
    _trial(
        engine,
        participant,
        panel,
        practice=False,
        heading=f"Panel {n_rated + 1} of {len(own_list)}",
    )


if twoafc_rate.requested():  # the 2-AFC protocol (?protocol=2afc): ui/twoafc_rate.py
    twoafc_rate.run(connection.engine())
else:
    twoafc_rate.links(connection.engine())
    st.title("Rate AM panels")
    _run(connection.engine())
