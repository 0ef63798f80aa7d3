"""The demo's 2-AFC step: the trials of a study of the demo CNN, and no answers.

There are no participants on a demo machine, so the demo builds the trials (and says
where participants would answer them, or how to export them for a lab's platform) and
writes no answers: nothing simulated is stored as if people had given it.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Engine

from catalogue.pipeline.twoafc.study import build_study
from catalogue.twoafc.design import DesignOptions

DEMO_STUDY = "demo-2afc"
#: the demo's study: every unit of the dissected top conv layer and of the first fc layer
#: that is not constant
DEMO_UNITS = (("conv5", None), ("fc6", None))


class _Reporter(Protocol):
    def note(self, message: str) -> None: ...


def build_demo_study(engine: Engine, score_run: int, reporter: _Reporter) -> None:
    built = build_study(
        engine, score_run, DEMO_UNITS, name=DEMO_STUDY, options=DesignOptions(seed=0)
    )
    study = built.study
    what = "reusing" if built.reused else "built"
    reporter.note(
        f"{what} 2-AFC study {study.name!r}: {built.n_trials} trials ({built.n_catch} catch) of "
        f"{built.n_units} units in {study.n_tasks} tasks, no answers (there are no "
        f"participants here); answer at /rate?protocol=2afc&study_name={study.name} "
        f"(`unitcat ui`), or `unitcat ingest study export {study.name} OUT` for a lab's platform"
    )
