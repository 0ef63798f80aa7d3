"""Summaries kept by triggers; partial indexes per detector criterion instead of one per measure

Three tables kept by statement triggers in the transaction that changes what they
summarise (see catalogue/db/summaries.py, whose SQL this revision carries literally):
`unit_best_concept` (per unit, its best dissection concept), `unit_rating_stats` (per
rated unit, its rating counts and top name) and `layer_detectors_cache` (the rows of
`layer_detectors` per scoring run, recomputed at commit for the runs marked in
`layer_detectors_stale`). The views start reading them in the next revision, which fills
the cache.

The six b-tree indexes on single measures of `unit_metrics` (precision, false_alarm_rate,
max_informedness, ccmas, recall_at_p95, detector_bar) cost about 7 µs per row written
each, three quarters of the writing time at a million units (bench/db.py); a partial
index per detector criterion (constant units left out) serves the presets and the
headline query and costs an entry only where the criterion holds.

unit_metrics' two row-level foreign keys (to run and unit, ON DELETE CASCADE) cost a
lookup and a row lock per row written (about 20 µs, half the writing time); the
statement triggers of CREATE keep the same rules per statement (see summaries.py).

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The single-measure indexes this revision drops (and its downgrade restores).
MEASURE_INDEXES: tuple[str, ...] = (
    "precision",
    "false_alarm_rate",
    "max_informedness",
    "ccmas",
    "recall_at_p95",
    "detector_bar",
)

#: A partial index per detector criterion on unit_metrics' own columns.
DETECTOR_INDEXES: tuple[str, ...] = (
    """CREATE INDEX ix_unit_metrics_ccmas_detectors ON unit_metrics (ccmas) WHERE ccmas > 0.9 AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_detector_bar_detectors ON unit_metrics (detector_bar) WHERE detector_bar > 0.5 AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_localist_detectors ON unit_metrics (localist) WHERE localist IS TRUE AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_misleading_detectors ON unit_metrics (precision) WHERE precision > 0.75 AND false_alarm_rate > 0.9 AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_precision_detectors ON unit_metrics (precision) WHERE precision > 0.75 AND constant IS NOT TRUE""",
)

TABLES: tuple[str, ...] = (
    """CREATE TABLE unit_best_concept (
    unit_id INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    concept_id INTEGER NOT NULL,
    iou DOUBLE PRECISION NOT NULL,
    CONSTRAINT pk_unit_best_concept PRIMARY KEY (unit_id)
)""",
    """CREATE TABLE unit_rating_stats (
    unit_id INTEGER NOT NULL,
    n_ratings INTEGER NOT NULL,
    n_yes INTEGER NOT NULL,
    top_name TEXT,
    CONSTRAINT pk_unit_rating_stats PRIMARY KEY (unit_id)
)""",
    """CREATE TABLE layer_detectors_cache (
    run_id INTEGER NOT NULL,
    summary JSONB NOT NULL
)""",
    """CREATE INDEX ix_layer_detectors_cache_run_id ON layer_detectors_cache (run_id)""",
    """CREATE TABLE layer_detectors_stale (
    run_id INTEGER NOT NULL,
    CONSTRAINT pk_layer_detectors_stale PRIMARY KEY (run_id)
)""",
)

#: Functions and triggers (catalogue/db/summaries.py `CREATE`).
CREATE: tuple[str, ...] = (
    """CREATE FUNCTION refresh_unit_best_concept(units integer[]) RETURNS void
LANGUAGE sql AS $$
DELETE FROM unit_best_concept WHERE units IS NULL OR unit_id = ANY (units);
INSERT INTO unit_best_concept (unit_id, run_id, concept_id, iou)
SELECT DISTINCT ON (dn.unit_id) dn.unit_id, dn.run_id, dn.concept_id, dn.iou
FROM dissection dn
WHERE units IS NULL OR dn.unit_id = ANY (units)
ORDER BY dn.unit_id, dn.iou DESC, dn.run_id DESC, dn.concept_id;
$$""",
    """CREATE FUNCTION refresh_unit_rating_stats(units integer[]) RETURNS void
LANGUAGE sql AS $$
DELETE FROM unit_rating_stats WHERE units IS NULL OR unit_id = ANY (units);
INSERT INTO unit_rating_stats (unit_id, n_ratings, n_yes, top_name)
SELECT
    rt.unit_id,
    count(*)::integer,
    sum(rt.answer::integer)::integer,
    (SELECT n.name FROM rating r2, unnest(r2.names) AS n(name)
     WHERE r2.unit_id = rt.unit_id AND r2.answer
     GROUP BY n.name ORDER BY count(*) DESC, n.name LIMIT 1)
FROM rating rt
WHERE units IS NULL OR rt.unit_id = ANY (units)
GROUP BY rt.unit_id;
$$""",
    """CREATE FUNCTION refresh_layer_detectors(runs integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF runs IS NULL THEN
        DELETE FROM layer_detectors_cache;
        INSERT INTO layer_detectors_cache (run_id, summary)
        SELECT ld.run_id, to_jsonb(ld) FROM layer_detectors ld;
        DELETE FROM layer_detectors_stale;
    ELSE
        DELETE FROM layer_detectors_cache WHERE run_id = ANY (runs);
        INSERT INTO layer_detectors_cache (run_id, summary)
        SELECT ld.run_id, to_jsonb(ld) FROM layer_detectors ld WHERE ld.run_id = ANY (runs);
        DELETE FROM layer_detectors_stale WHERE run_id = ANY (runs);
    END IF;
END
$$""",
    """CREATE FUNCTION mark_layer_detectors_stale(runs integer[]) RETURNS void
LANGUAGE sql AS $$
DELETE FROM layer_detectors_cache WHERE run_id = ANY (runs);
INSERT INTO layer_detectors_stale (run_id)
SELECT DISTINCT r FROM unnest(runs) AS r WHERE r IS NOT NULL
ON CONFLICT DO NOTHING;
$$""",
    """CREATE FUNCTION refresh_stale_layer_detectors() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM layer_detectors_stale WHERE run_id = NEW.run_id) THEN
        PERFORM refresh_layer_detectors(ARRAY(SELECT run_id FROM layer_detectors_stale));
    END IF;
    RETURN NULL;
END
$$""",
    """CREATE FUNCTION unit_metrics_owner_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM unit_metrics;
    ELSIF TG_TABLE_NAME = 'run' THEN
        DELETE FROM unit_metrics WHERE run_id IN (SELECT id FROM old_rows);
    ELSE
        DELETE FROM unit_metrics WHERE unit_id IN (SELECT id FROM old_rows);
    END IF;
    RETURN NULL;
END
$$""",
    """CREATE FUNCTION unit_metrics_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    missing record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM 1 FROM run WHERE id IN (SELECT run_id FROM new_rows) FOR KEY SHARE;
        PERFORM 1 FROM layer
        WHERE id IN (SELECT u.layer_id FROM unit u WHERE u.id IN (SELECT unit_id FROM new_rows))
        FOR KEY SHARE;
        SELECT n.run_id, n.unit_id, r.id IS NULL AS no_run INTO missing
        FROM new_rows n
        LEFT JOIN run r ON r.id = n.run_id
        LEFT JOIN unit u ON u.id = n.unit_id
        WHERE r.id IS NULL OR u.id IS NULL
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'insert or update on table "unit_metrics" violates its references'
                USING ERRCODE = 'foreign_key_violation',
                DETAIL = CASE WHEN missing.no_run
                    THEN format('Key (run_id)=(%s) is not present in table "run".', missing.run_id)
                    ELSE format('Key (unit_id)=(%s) is not present in table "unit".', missing.unit_id)
                    END;
        END IF;
        PERFORM mark_layer_detectors_stale(ARRAY(SELECT DISTINCT run_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM mark_layer_detectors_stale(ARRAY(SELECT DISTINCT run_id FROM old_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM 1 FROM run WHERE id IN (SELECT run_id FROM new_rows) FOR KEY SHARE;
        PERFORM 1 FROM layer
        WHERE id IN (SELECT u.layer_id FROM unit u WHERE u.id IN (SELECT unit_id FROM new_rows))
        FOR KEY SHARE;
        SELECT n.run_id, n.unit_id, r.id IS NULL AS no_run INTO missing
        FROM new_rows n
        LEFT JOIN run r ON r.id = n.run_id
        LEFT JOIN unit u ON u.id = n.unit_id
        WHERE r.id IS NULL OR u.id IS NULL
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'insert or update on table "unit_metrics" violates its references'
                USING ERRCODE = 'foreign_key_violation',
                DETAIL = CASE WHEN missing.no_run
                    THEN format('Key (run_id)=(%s) is not present in table "run".', missing.run_id)
                    ELSE format('Key (unit_id)=(%s) is not present in table "unit".', missing.unit_id)
                    END;
        END IF;
        PERFORM mark_layer_detectors_stale(
            ARRAY(SELECT run_id FROM new_rows UNION SELECT run_id FROM old_rows));
    ELSE
        DELETE FROM layer_detectors_cache;
    END IF;
    RETURN NULL;
END
$$""",
    """CREATE FUNCTION dissection_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    units integer[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        units := ARRAY(SELECT DISTINCT unit_id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        units := ARRAY(SELECT DISTINCT unit_id FROM old_rows);
    ELSIF TG_OP = 'UPDATE' THEN
        units := ARRAY(SELECT unit_id FROM new_rows UNION SELECT unit_id FROM old_rows);
    ELSE
        PERFORM refresh_unit_best_concept(NULL);
        PERFORM mark_layer_detectors_stale(ARRAY(SELECT DISTINCT run_id FROM unit_metrics));
        RETURN NULL;
    END IF;
    PERFORM refresh_unit_best_concept(units);
    PERFORM mark_layer_detectors_stale(
        ARRAY(SELECT DISTINCT um.run_id FROM unit_metrics um WHERE um.unit_id = ANY (units)));
    RETURN NULL;
END
$$""",
    """CREATE FUNCTION rating_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM refresh_unit_rating_stats(ARRAY(SELECT DISTINCT unit_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM refresh_unit_rating_stats(ARRAY(SELECT DISTINCT unit_id FROM old_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM refresh_unit_rating_stats(
            ARRAY(SELECT unit_id FROM new_rows UNION SELECT unit_id FROM old_rows));
    ELSE
        PERFORM refresh_unit_rating_stats(NULL);
    END IF;
    RETURN NULL;
END
$$""",
    """CREATE FUNCTION unit_identity_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'model' THEN
        PERFORM mark_layer_detectors_stale(ARRAY(
            SELECT DISTINCT um.run_id FROM unit_metrics um
            JOIN unit u ON u.id = um.unit_id
            JOIN layer l ON l.id = u.layer_id
            WHERE l.model_id IN (SELECT id FROM new_rows)));
    ELSIF TG_TABLE_NAME = 'layer' THEN
        PERFORM mark_layer_detectors_stale(ARRAY(
            SELECT DISTINCT um.run_id FROM unit_metrics um
            JOIN unit u ON u.id = um.unit_id
            WHERE u.layer_id IN (SELECT id FROM new_rows UNION SELECT id FROM old_rows)));
    ELSE
        PERFORM mark_layer_detectors_stale(ARRAY(
            SELECT DISTINCT um.run_id FROM unit_metrics um
            WHERE um.unit_id IN (SELECT id FROM new_rows UNION SELECT id FROM old_rows)));
    END IF;
    RETURN NULL;
END
$$""",
    """CREATE TRIGGER unit_metrics_summaries_insert AFTER INSERT ON unit_metrics REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_changed()""",
    """CREATE TRIGGER unit_metrics_summaries_update AFTER UPDATE ON unit_metrics REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_changed()""",
    """CREATE TRIGGER unit_metrics_summaries_delete AFTER DELETE ON unit_metrics REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_changed()""",
    """CREATE TRIGGER unit_metrics_summaries_truncate AFTER TRUNCATE ON unit_metrics FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_changed()""",
    """CREATE TRIGGER dissection_summaries_insert AFTER INSERT ON dissection REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dissection_changed()""",
    """CREATE TRIGGER dissection_summaries_update AFTER UPDATE ON dissection REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dissection_changed()""",
    """CREATE TRIGGER dissection_summaries_delete AFTER DELETE ON dissection REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dissection_changed()""",
    """CREATE TRIGGER dissection_summaries_truncate AFTER TRUNCATE ON dissection FOR EACH STATEMENT EXECUTE FUNCTION dissection_changed()""",
    """CREATE TRIGGER rating_summaries_insert AFTER INSERT ON rating REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rating_changed()""",
    """CREATE TRIGGER rating_summaries_update AFTER UPDATE ON rating REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rating_changed()""",
    """CREATE TRIGGER rating_summaries_delete AFTER DELETE ON rating REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION rating_changed()""",
    """CREATE TRIGGER rating_summaries_truncate AFTER TRUNCATE ON rating FOR EACH STATEMENT EXECUTE FUNCTION rating_changed()""",
    """CREATE TRIGGER model_summaries_update AFTER UPDATE ON model REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_identity_changed()""",
    """CREATE TRIGGER layer_summaries_update AFTER UPDATE ON layer REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_identity_changed()""",
    """CREATE TRIGGER unit_summaries_update AFTER UPDATE ON unit REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_identity_changed()""",
    """CREATE TRIGGER run_unit_metrics_delete AFTER DELETE ON run REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_owner_deleted()""",
    """CREATE TRIGGER unit_unit_metrics_delete AFTER DELETE ON unit REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_owner_deleted()""",
    """CREATE TRIGGER run_unit_metrics_truncate AFTER TRUNCATE ON run FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_owner_deleted()""",
    """CREATE TRIGGER unit_unit_metrics_truncate AFTER TRUNCATE ON unit FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_owner_deleted()""",
    """CREATE CONSTRAINT TRIGGER layer_detectors_stale_refresh AFTER INSERT ON layer_detectors_stale DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refresh_stale_layer_detectors()""",
)

BACKFILL: tuple[str, ...] = (
    """SELECT refresh_unit_best_concept(NULL)""",
    """SELECT refresh_unit_rating_stats(NULL)""",
)

DROP: tuple[str, ...] = (
    """DROP TRIGGER layer_detectors_stale_refresh ON layer_detectors_stale""",
    """DROP TRIGGER unit_unit_metrics_truncate ON unit""",
    """DROP TRIGGER unit_unit_metrics_delete ON unit""",
    """DROP TRIGGER run_unit_metrics_truncate ON run""",
    """DROP TRIGGER run_unit_metrics_delete ON run""",
    """DROP TRIGGER unit_summaries_update ON unit""",
    """DROP TRIGGER layer_summaries_update ON layer""",
    """DROP TRIGGER model_summaries_update ON model""",
    """DROP TRIGGER rating_summaries_truncate ON rating""",
    """DROP TRIGGER rating_summaries_delete ON rating""",
    """DROP TRIGGER rating_summaries_update ON rating""",
    """DROP TRIGGER rating_summaries_insert ON rating""",
    """DROP TRIGGER dissection_summaries_truncate ON dissection""",
    """DROP TRIGGER dissection_summaries_delete ON dissection""",
    """DROP TRIGGER dissection_summaries_update ON dissection""",
    """DROP TRIGGER dissection_summaries_insert ON dissection""",
    """DROP TRIGGER unit_metrics_summaries_truncate ON unit_metrics""",
    """DROP TRIGGER unit_metrics_summaries_delete ON unit_metrics""",
    """DROP TRIGGER unit_metrics_summaries_update ON unit_metrics""",
    """DROP TRIGGER unit_metrics_summaries_insert ON unit_metrics""",
    """DROP FUNCTION unit_identity_changed()""",
    """DROP FUNCTION rating_changed()""",
    """DROP FUNCTION dissection_changed()""",
    """DROP FUNCTION unit_metrics_changed()""",
    """DROP FUNCTION unit_metrics_owner_deleted()""",
    """DROP FUNCTION refresh_stale_layer_detectors()""",
    """DROP FUNCTION mark_layer_detectors_stale(integer[])""",
    """DROP FUNCTION refresh_layer_detectors(integer[])""",
    """DROP FUNCTION refresh_unit_rating_stats(integer[])""",
    """DROP FUNCTION refresh_unit_best_concept(integer[])""",
)


#: unit_metrics' row-level foreign keys, replaced by the statement triggers of CREATE.
FOREIGN_KEYS: dict[str, str] = {
    "fk_unit_metrics_run_id_run": "FOREIGN KEY (run_id) REFERENCES run (id) ON DELETE CASCADE",
    "fk_unit_metrics_unit_id_unit": "FOREIGN KEY (unit_id) REFERENCES unit (id) ON DELETE CASCADE",
}


def upgrade() -> None:
    for name in FOREIGN_KEYS:
        op.execute(f"ALTER TABLE unit_metrics DROP CONSTRAINT {name}")
    for column in MEASURE_INDEXES:
        op.execute(f"DROP INDEX ix_unit_metrics_{column}")
    for statement in (*DETECTOR_INDEXES, *TABLES, *CREATE, *BACKFILL):
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP:
        op.execute(statement)
    for table in (
        "layer_detectors_stale",
        "layer_detectors_cache",
        "unit_rating_stats",
        "unit_best_concept",
    ):
        op.execute(f"DROP TABLE {table}")
    for statement in DETECTOR_INDEXES:
        op.execute(f"DROP INDEX {statement.split()[2]}")
    for column in MEASURE_INDEXES:
        op.execute(f"CREATE INDEX ix_unit_metrics_{column} ON unit_metrics ({column})")
    for name, definition in FOREIGN_KEYS.items():
        op.execute(f"ALTER TABLE unit_metrics ADD CONSTRAINT {name} {definition}")
