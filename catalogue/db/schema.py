"""SQLAlchemy models of the catalogue (the source of truth for Alembic autogenerate).

Identity: model → layer → unit; dataset → image_class, class_group. Every result
row hangs off a `run` (one execution of extract / score / dissect / am / ablate)
and is deleted with it, so replacing a run's results is one DELETE per table
inside the transaction that writes the new ones.

Class columns (`*_class`, `class_index`) hold the class *index* of the run's
dataset; the views join them to `image_class` for names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from catalogue.db.base import Base
from catalogue.measures import (
    CCMAS_UNDEFINED,
    CRITERIA,
    NOT_CONSTANT,
    SELECTIVE_CLASSES,
    UNDEFINED_REASONS,
    UNIT_MEASURES,
)

RUN_KINDS = ("extract", "score", "dissect", "am", "ablate", "chance")
#: Stored statuses. `interrupted`: stopped by the user (Ctrl-C, SIGTERM); a `running` run
#: whose owner is gone also *reads* as interrupted (the `run_status` view, `catalogue.db.runs`).
RUN_STATUSES = ("running", "done", "failed", "interrupted")
ESTIMATE_BINS = ("0-20", "20-40", "40-60", "60-80", "80-100")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Model(Base):
    __tablename__ = "model"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    architecture: Mapped[str] = mapped_column(Text)
    weights: Mapped[str | None] = mapped_column(Text)
    checksum: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Layer(Base):
    __tablename__ = "layer"
    __table_args__ = (
        UniqueConstraint("model_id", "name"),
        CheckConstraint(_in("kind", ("conv", "fc")), name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("model.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(8))
    n_units: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    output_shape: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))


class Unit(Base):
    __tablename__ = "unit"
    __table_args__ = (UniqueConstraint("layer_id", "unit_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("layer.id", ondelete="CASCADE"))
    unit_index: Mapped[int] = mapped_column(Integer)


class Dataset(Base):
    __tablename__ = "dataset"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    n_classes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ImageClass(Base):
    __tablename__ = "image_class"
    __table_args__ = (
        UniqueConstraint("dataset_id", "class_index"),
        UniqueConstraint("dataset_id", "key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    class_index: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)


class ClassGroup(Base):
    """One version of a named group of classes. A group redefined with other members is a
    new version (a new row), so the results of a run join to the members it used."""

    __tablename__ = "class_group"
    __table_args__ = (UniqueConstraint("dataset_id", "name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ClassGroupMember(Base):
    __tablename__ = "class_group_member"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("class_group.id", ondelete="CASCADE"), primary_key=True
    )
    class_id: Mapped[int] = mapped_column(
        ForeignKey("image_class.id", ondelete="CASCADE"), primary_key=True
    )


class Run(Base):
    """One execution of a command. (kind, key) identifies "the same command with
    the same parameters": running it again replaces this run's results.

    The owner is the process that runs it now (or ran it last): its host, pid and
    process start time (so that a recycled pid is not taken for it). While it runs,
    the owner holds an advisory lock keyed by the run key (`catalogue.db.runs`)."""

    __tablename__ = "run"
    __table_args__ = (
        UniqueConstraint("kind", "key"),
        CheckConstraint(_in("kind", RUN_KINDS), name="kind"),
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        Index(None, "model_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(Text)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("model.id", ondelete="CASCADE"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float | None] = mapped_column(Double)
    code_version: Mapped[str | None] = mapped_column(Text)
    h5_path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    owner_host: Mapped[str | None] = mapped_column(Text)
    owner_pid: Mapped[int | None] = mapped_column(Integer)
    owner_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the trained run this run is a baseline of (random weights, chance); NULL otherwise
    baseline_of: Mapped[int | None] = mapped_column(
        ForeignKey("run.id", ondelete="SET NULL"), index=True
    )
    #: what made the run's numbers: versions, machine, threads, seeds (`catalogue.provenance`)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    #: where an imported run came from (`catalogue.share`); NULL for a run made here
    imported_from: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


def _measure_column(kind: str) -> Any:
    if kind == "bool":
        return mapped_column(Boolean, nullable=True)
    if kind == "class":
        return mapped_column(Integer, nullable=True)
    return mapped_column(Double, nullable=True)


def _reason_columns() -> dict[str, Any]:
    """Why a measure is NULL for a unit (`catalogue.measures.UNDEFINED_REASONS`): a code."""
    return {r.column: mapped_column(SmallInteger, nullable=True) for r in UNDEFINED_REASONS}


def _ccmas_checks(*, reasons: bool = True) -> tuple[CheckConstraint, ...]:
    """CCMAS is never outside [-1, 1] (NaN is outside too); a reason only where it is NULL,
    and one of the known ones."""
    reason = CCMAS_UNDEFINED
    codes = ", ".join(str(c) for c in reason.codes)
    checks = [CheckConstraint(f"{reason.measure} BETWEEN -1 AND 1", name="ccmas_range")]
    if reasons:
        checks.append(
            CheckConstraint(
                f"{reason.column} IS NULL OR ({reason.measure} IS NULL "
                f"AND {reason.column} IN ({codes}))",
                name="ccmas_undefined",
            )
        )
    return tuple(checks)


def _detector_indexes() -> tuple[Index, ...]:
    """A partial index per detector criterion on `unit_metrics`' own columns, over the rows
    it selects with constant units left out (the presets, the headline query and their
    counts read only these). Writing a row costs an index entry only where a criterion
    holds; a b-tree per measure cost about 7 µs per row written (bench/db.py). A query with
    a stricter threshold still uses the index; one with another threshold scans the table.

    Each index also holds (INCLUDE) the columns `unit_catalogue` joins on — the run, the
    unit, the class columns — so a count through the view (the headline query's) is an
    index-only scan: PostgreSQL removes the joins the count does not read, but still
    fetches the columns they were on. Without them the count read the whole table (7 s
    at 10 million units, against 0.3 s, under load; bench/db.py)."""
    names = {m.name for m in UNIT_MEASURES}
    joined = ["run_id", "unit_id", *(m.name for m in UNIT_MEASURES if m.kind == "class")]
    indexes = []
    for criterion in CRITERIA:
        if criterion.count_column is None or not set(criterion.columns) <= names:
            continue
        where = f"{criterion.sql()} AND {NOT_CONSTANT.sql()}"
        indexes.append(
            Index(
                f"ix_unit_metrics_{criterion.key}_detectors",
                criterion.columns[0],
                postgresql_where=text(where),
                postgresql_include=joined,
            )
        )
    return tuple(indexes)


class UnitMetrics(Base):
    """One row per unit and scoring run, one column per measure (docs/DESIGN.md)."""

    __tablename__ = "unit_metrics"
    __table_args__ = (Index(None, "unit_id"), *_detector_indexes(), *_ccmas_checks())

    # references run.id and unit.id (ON DELETE CASCADE), kept per statement by the
    # triggers of `catalogue.db.summaries`: a row-level foreign key costs a lookup and a
    # row lock per row written, half the time of writing a million scores
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n_images: Mapped[int] = mapped_column(Integer)

    locals().update({m.name: _measure_column(m.kind) for m in UNIT_MEASURES})
    locals().update(_reason_columns())


class UnitClassStats(Base):
    """Per unit, its top classes by informedness and by mean activation."""

    __tablename__ = "unit_class_stats"
    __table_args__ = (Index(None, "unit_id"),)

    # references run.id and unit.id (ON DELETE CASCADE), kept per statement as unit_metrics'
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    class_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    mean_activation: Mapped[float | None] = mapped_column(Double)
    frac_nonzero: Mapped[float | None] = mapped_column(Double)
    informedness: Mapped[float | None] = mapped_column(Double)
    informedness_threshold: Mapped[float | None] = mapped_column(Double)
    rank_by_informedness: Mapped[int | None] = mapped_column(Integer)
    rank_by_mean: Mapped[int | None] = mapped_column(Integer)


class UnitGroupMetrics(Base):
    """The paper's Tables 4–6 for a named group of classes (e.g. *bus*)."""

    __tablename__ = "unit_group_metrics"
    __table_args__ = (Index(None, "unit_id"), *_ccmas_checks(reasons=False))

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("class_group.id", ondelete="CASCADE"), primary_key=True
    )
    n_nonzero_in: Mapped[float | None] = mapped_column(Double)
    n_nonzero_out: Mapped[float | None] = mapped_column(Double)
    mu_in: Mapped[float | None] = mapped_column(Double)
    mu_out: Mapped[float | None] = mapped_column(Double)
    precision: Mapped[float | None] = mapped_column(Double)
    ccmas: Mapped[float | None] = mapped_column(Double)
    max_informedness: Mapped[float | None] = mapped_column(Double)
    mi_threshold: Mapped[float | None] = mapped_column(Double)


class UnitTopImage(Base):
    __tablename__ = "unit_top_image"
    __table_args__ = (Index(None, "unit_id"),)

    # references run.id and unit.id (ON DELETE CASCADE), kept per statement as unit_metrics'
    # (catalogue.db.summaries): 100 rows per unit, a foreign key cost most of their writing
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_index: Mapped[int] = mapped_column(Integer)
    image_key: Mapped[str | None] = mapped_column(Text)
    class_index: Mapped[int] = mapped_column(Integer)
    activation: Mapped[float] = mapped_column(Double)


class UnitBottomImage(Base):
    """A unit's least activating images (rank 1 = least active), beside `unit_top_image`:
    the minimally activating references and queries of a 2-AFC trial."""

    __tablename__ = "unit_bottom_image"
    __table_args__ = (Index(None, "unit_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_index: Mapped[int] = mapped_column(Integer)
    image_key: Mapped[str | None] = mapped_column(Text)
    class_index: Mapped[int] = mapped_column(Integer)
    activation: Mapped[float] = mapped_column(Double)


class Concept(Base):
    """A labelled visual concept of a probe set (Broden or one unitcat built)."""

    __tablename__ = "concept"
    __table_args__ = (UniqueConstraint("probe", "category", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    probe: Mapped[str] = mapped_column(Text)
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)


class Dissection(Base):
    """Per unit, its top concepts by IoU (Bau, Zhou et al. 2017)."""

    __tablename__ = "dissection"
    __table_args__ = (Index(None, "unit_id"), Index(None, "iou"))

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True
    )
    concept_id: Mapped[int] = mapped_column(
        ForeignKey("concept.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer)
    iou: Mapped[float] = mapped_column(Double)
    threshold: Mapped[float] = mapped_column(Double)
    is_detector: Mapped[bool] = mapped_column(Boolean)


class AMPanel(Base):
    """A unit's activation-maximisation panel (a PNG of n images) and the unit's
    activation on each image."""

    __tablename__ = "am_panel"
    __table_args__ = (UniqueConstraint("run_id", "unit_id"), Index(None, "unit_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    path: Mapped[str] = mapped_column(Text)
    activations: Mapped[list[float]] = mapped_column(ARRAY(Double))
    dataset_max: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Participant(Base):
    __tablename__ = "participant"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    list_index: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Rating(Base):
    """One participant's answer about one unit's AM panel (the paper's Q1–Q3)."""

    __tablename__ = "rating"
    __table_args__ = (
        UniqueConstraint("participant_id", "unit_id"),
        CheckConstraint(f"estimate IS NULL OR {_in('estimate', ESTIMATE_BINS)}", name="estimate"),
        CheckConstraint(
            "answer OR (estimate IS NULL AND cardinality(names) = 0)", name="no_details"
        ),
        CheckConstraint("cardinality(names) <= 2", name="at_most_two_names"),
        CheckConstraint(_in("source", ("ui", "import")), name="source"),
        Index(None, "unit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id", ondelete="CASCADE"))
    panel_id: Mapped[int | None] = mapped_column(ForeignKey("am_panel.id", ondelete="SET NULL"))
    answer: Mapped[bool] = mapped_column(Boolean)
    estimate: Mapped[str | None] = mapped_column(String(8))
    names: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    source: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UnitRatingAnalysis(Base):
    """The name analysis of a unit's ratings (`catalogue.ratings.summarise_units`):
    names are matched through WordNet hypernyms in Python, which SQL cannot do, so
    it is stored here and joined by `rating_summary`."""

    __tablename__ = "unit_rating_analysis"

    unit_id: Mapped[int] = mapped_column(
        ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True
    )
    score_run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"))
    n_named: Mapped[int] = mapped_column(Integer)
    top_name: Mapped[str | None] = mapped_column(Text)
    human_agreement: Mapped[float | None] = mapped_column(Double)
    match_most_active: Mapped[float | None] = mapped_column(Double)
    match_ccmas: Mapped[float | None] = mapped_column(Double)
    mean_estimate: Mapped[float | None] = mapped_column(Double)
    used_wordnet: Mapped[bool] = mapped_column(Boolean)
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class UnitBestConcept(Base):
    """Per dissected unit, its best concept over every dissection run: the highest IoU,
    ties to the newer run, then the lower concept id. Kept by triggers on `dissection`
    (`catalogue.db.summaries`); `unit_catalogue` reads it."""

    __tablename__ = "unit_best_concept"

    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    run_id: Mapped[int] = mapped_column(Integer)
    concept_id: Mapped[int] = mapped_column(Integer)
    iou: Mapped[float] = mapped_column(Double)


class UnitRatingStats(Base):
    """Per rated unit: ratings, "yes" answers, and the name most often given with a yes.
    Kept by triggers on `rating` (`catalogue.db.summaries`); `unit_catalogue` reads it."""

    __tablename__ = "unit_rating_stats"

    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n_ratings: Mapped[int] = mapped_column(Integer)
    n_yes: Mapped[int] = mapped_column(Integer)
    top_name: Mapped[str | None] = mapped_column(Text)


#: `layer_detectors`' rows of each scoring run (one jsonb object per row, keyed by the
#: view's column names), kept by triggers (`catalogue.db.summaries`); the view computes a
#: run that has none here.
LAYER_DETECTORS_CACHE = Table(
    "layer_detectors_cache",
    Base.metadata,
    Column("run_id", Integer, nullable=False),
    Column("summary", JSONB, nullable=False),
    Index(None, "run_id"),
)

#: Scoring runs whose cached `layer_detectors` rows are recomputed at commit.
LAYER_DETECTORS_STALE = Table(
    "layer_detectors_stale",
    Base.metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=False),
)


class UnitAblation(Base):
    """Per unit and ablation run: what replacing the unit's whole activation did (Zhou et al.
    2018; Bau et al. 2020). The full unit × class matrix is in the run's HDF5 file; here the
    overall change and the change for the unit's selective classes (as a scoring run of the
    same extraction named them), so that one join relates selectivity and importance."""

    __tablename__ = "unit_ablation"
    __table_args__ = (Index(None, "unit_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True
    )
    score_run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"))
    replacement: Mapped[float] = mapped_column(Double)
    n_images: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float | None] = mapped_column(Double)
    accuracy_change: Mapped[float | None] = mapped_column(Double)

    locals().update(
        {
            name: mapped_column(Integer, nullable=True)
            if name in SELECTIVE_CLASSES
            else mapped_column(Double, nullable=True)
            for c in SELECTIVE_CLASSES
            for name in (c, f"{c}_change")
        }
    )


class UnitAblationClass(Base):
    """Per unit and ablation run, the classes its removal hurt most (rank 1 = lowest change)."""

    __tablename__ = "unit_ablation_class"
    __table_args__ = (Index(None, "unit_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_index: Mapped[int] = mapped_column(Integer)
    accuracy_change: Mapped[float | None] = mapped_column(Double)


class ClassAblationCurve(Base):
    """Bau et al. (2020): a class's accuracy, and the other classes', as the top k units of a
    layer by a ranking for that class are removed together (k = 0: none removed)."""

    __tablename__ = "class_ablation_curve"

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    layer_id: Mapped[int] = mapped_column(
        ForeignKey("layer.id", ondelete="CASCADE"), primary_key=True
    )
    class_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    ranking: Mapped[str] = mapped_column(Text, primary_key=True)
    k: Mapped[int] = mapped_column(Integer, primary_key=True)
    units: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    class_accuracy: Mapped[float | None] = mapped_column(Double)
    other_accuracy: Mapped[float | None] = mapped_column(Double)


class ChanceMetrics(Base):
    """Every measure of a unit scored against permuted labels (same class sizes): one row per
    unit, chance run and repeat — each measure's chance distribution."""

    __tablename__ = "chance_metrics"
    __table_args__ = (Index(None, "unit_id"), *_ccmas_checks())

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True
    )
    repeat: Mapped[int] = mapped_column(Integer, primary_key=True)
    n_images: Mapped[int] = mapped_column(Integer)

    locals().update({m.name: _measure_column(m.kind) for m in UNIT_MEASURES})
    locals().update(_reason_columns())


#: Tables whose rows belong to one run and are replaced when the run is re-run.
RUN_RESULT_TABLES: tuple[str, ...] = (
    "unit_metrics",
    "unit_class_stats",
    "unit_group_metrics",
    "unit_top_image",
    "unit_bottom_image",
    "dissection",
    "am_panel",
    "unit_ablation",
    "unit_ablation_class",
    "class_ablation_curve",
    "chance_metrics",
)

# The 2-AFC study's tables live in their own module on the same metadata (`base`);
# importing it here registers them wherever the schema is loaded (Alembic autogenerate,
# the tests).
from catalogue.db import twoafc_schema as _twoafc_schema  # noqa: E402, F401
