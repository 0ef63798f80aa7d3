"""The tables of the 2-AFC study of natural exemplars (on the metadata of `base.Base`, as `schema`'s).

A study is a seeded set of trials built from one scoring run's exemplars
(`unit_top_image`, `unit_bottom_image`), dealt into tasks (one task per participant,
as IMI deals HITs); each trial shows a unit's 9 maximally and 9 minimally activating
reference images and asks which of two query images — one strongly, one weakly
activating, neither among the references — fits the maximal ones (Borowski et al.
ICLR 2021; Zimmermann et al. NeurIPS 2021; the IMI data set, NeurIPS 2023). Catch
trials show a reference again as the query, so their answer is obvious; participants
who fail them are left out of the accuracy (`catalogue.db.twoafc_views`).

A trial stores its images (index into the extraction run's images, key, activation)
in the order participants see them, so the stimuli stay what they were even when the
scoring run is computed again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from catalogue.db.base import Base

RESPONSE_SOURCES = ("ui", "import")


class TwoAFCStudy(Base):
    """One 2-AFC study: its name, the scoring run its exemplars come from, its parameters
    (units, seed, batches, task size, catch trials) and how many tasks it deals."""

    __tablename__ = "twoafc_study"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    score_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("run.id", ondelete="SET NULL"), index=True
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    n_tasks: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TwoAFCTrial(Base):
    """One trial at its place in its task: the unit, the two queries, the references in
    the order shown (the most extreme first), and which query is shown first."""

    __tablename__ = "twoafc_trial"
    __table_args__ = (
        UniqueConstraint("study_id", "task", "position"),
        CheckConstraint("task >= 1 AND position >= 1", name="place"),
        CheckConstraint(
            "cardinality(max_references) = cardinality(min_references) "
            "AND cardinality(max_references) = cardinality(max_reference_keys) "
            "AND cardinality(min_references) = cardinality(min_reference_keys)",
            name="references",
        ),
        CheckConstraint("max_query_activation > min_query_activation", name="queries_ordered"),
        Index(None, "unit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("twoafc_study.id", ondelete="CASCADE"))
    task: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id", ondelete="CASCADE"))
    catch: Mapped[bool] = mapped_column(Boolean)
    batch: Mapped[int] = mapped_column(Integer)
    max_query_first: Mapped[bool] = mapped_column(Boolean)
    max_query: Mapped[int] = mapped_column(Integer)
    max_query_key: Mapped[str | None] = mapped_column(Text)
    max_query_activation: Mapped[float] = mapped_column(Double)
    min_query: Mapped[int] = mapped_column(Integer)
    min_query_key: Mapped[str | None] = mapped_column(Text)
    min_query_activation: Mapped[float] = mapped_column(Double)
    max_references: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    max_reference_keys: Mapped[list[str | None]] = mapped_column(ARRAY(Text))
    max_reference_activations: Mapped[list[float]] = mapped_column(ARRAY(Double))
    min_references: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    min_reference_keys: Mapped[list[str | None]] = mapped_column(ARRAY(Text))
    min_reference_activations: Mapped[list[float]] = mapped_column(ARRAY(Double))


class TwoAFCAssignment(Base):
    """The task a participant was dealt in a study (in order of arrival)."""

    __tablename__ = "twoafc_assignment"

    study_id: Mapped[int] = mapped_column(
        ForeignKey("twoafc_study.id", ondelete="CASCADE"), primary_key=True
    )
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), primary_key=True
    )
    task: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TwoAFCResponse(Base):
    """One participant's answer to one trial: whether they chose the strongly activating
    query (the correct answer), with IMI's confidence (1–3) and the response time."""

    __tablename__ = "twoafc_response"
    __table_args__ = (
        UniqueConstraint("trial_id", "participant_id"),
        CheckConstraint("confidence IS NULL OR confidence BETWEEN 1 AND 3", name="confidence"),
        CheckConstraint("rt_ms IS NULL OR rt_ms >= 0", name="rt_ms"),
        CheckConstraint(
            f"source IN ({', '.join(repr(s) for s in RESPONSE_SOURCES)})", name="source"
        ),
        Index(None, "participant_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("twoafc_trial.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    chose_max: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[int | None] = mapped_column(SmallInteger)
    rt_ms: Mapped[float | None] = mapped_column(Double)
    source: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
