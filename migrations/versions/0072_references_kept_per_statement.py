"""Scores, per-class statistics and top images written faster; detector counts from indexes

Costs that grew with the catalogue or with a run's rows
(bench/db.py at 10 million units, bench/paper_scale.py at 721,536 images):

- unit_metrics' statement trigger (revision 0016) joined every new row to `unit` to check
  and lock its references, about 5 µs of the 10 µs of server time per score. The new
  `lock_references` checks a statement's runs and its unit id range at once (a writer
  sends a layer's rows per statement, and a layer's units have consecutive ids; every id
  in the range exists, so every unit of the rows does) and locks the same runs and
  layers; a range with holes, or much wider than the rows, is still checked row by row.
- unit_class_stats and unit_top_image (100 rows per unit: 945,000 rows for the paper's
  9,448 units) had row-level foreign keys to run and unit: about 7 of the 9 µs of server
  time per top image. They keep the same references per statement now, as unit_metrics
  does (`unit_results_changed`), and deleting a run or a unit deletes their rows through
  `unit_results_owner_deleted`, which replaces unit_metrics' own cascade function.
- refresh_unit_best_concept and refresh_unit_rating_stats were one SQL statement for "some
  units or all" (`units IS NULL OR unit_id = ANY (units)`), planned once for any argument:
  every dissection statement scanned every dissection row, a cost that grew with the
  catalogue. They are two statements now.
- The headline query's count read the whole of unit_metrics at 10 million units (7 s
  under load): PostgreSQL removes the view's joins a count does not read but still
  fetches the columns they were on, so the partial index of the criterion could not
  answer alone. Each criterion's partial index now INCLUDEs those columns (the run, the
  unit, the class columns), and such a count is an index-only scan (0.3 s under load).

The SQL is catalogue/db/summaries.py's, carried literally.

Revision ID: 0072
Revises: 0071
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0072"
down_revision: str | None = "0071"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The row-level foreign keys this revision drops (restored by downgrade).
FOREIGN_KEYS: dict[str, tuple[str, str]] = {
    "fk_unit_class_stats_run_id_run": (
        "unit_class_stats",
        "FOREIGN KEY (run_id) REFERENCES run (id) ON DELETE CASCADE",
    ),
    "fk_unit_class_stats_unit_id_unit": (
        "unit_class_stats",
        "FOREIGN KEY (unit_id) REFERENCES unit (id) ON DELETE CASCADE",
    ),
    "fk_unit_top_image_run_id_run": (
        "unit_top_image",
        "FOREIGN KEY (run_id) REFERENCES run (id) ON DELETE CASCADE",
    ),
    "fk_unit_top_image_unit_id_unit": (
        "unit_top_image",
        "FOREIGN KEY (unit_id) REFERENCES unit (id) ON DELETE CASCADE",
    ),
}

#: The partial indexes per detector criterion, as revision 0016 made them (restored by
#: downgrade) and as this revision makes them again, with the joined columns included.
PREVIOUS_INDEXES: tuple[str, ...] = (
    """CREATE INDEX ix_unit_metrics_ccmas_detectors ON unit_metrics (ccmas) WHERE ccmas > 0.9 AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_detector_bar_detectors ON unit_metrics (detector_bar) WHERE detector_bar > 0.5 AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_localist_detectors ON unit_metrics (localist) WHERE localist IS TRUE AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_misleading_detectors ON unit_metrics (precision) WHERE precision > 0.75 AND false_alarm_rate > 0.9 AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_precision_detectors ON unit_metrics (precision) WHERE precision > 0.75 AND constant IS NOT TRUE""",
)
INDEXES: tuple[str, ...] = (
    """CREATE INDEX ix_unit_metrics_ccmas_detectors ON unit_metrics (ccmas) INCLUDE (run_id, unit_id, localist_class, precision_class, ccmas_class, mi_class, detector_bar_class) WHERE ccmas > 0.9 AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_detector_bar_detectors ON unit_metrics (detector_bar) INCLUDE (run_id, unit_id, localist_class, precision_class, ccmas_class, mi_class, detector_bar_class) WHERE detector_bar > 0.5 AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_localist_detectors ON unit_metrics (localist) INCLUDE (run_id, unit_id, localist_class, precision_class, ccmas_class, mi_class, detector_bar_class) WHERE localist IS TRUE AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_misleading_detectors ON unit_metrics (precision) INCLUDE (run_id, unit_id, localist_class, precision_class, ccmas_class, mi_class, detector_bar_class) WHERE precision > 0.75 AND false_alarm_rate > 0.9 AND constant IS NOT TRUE""",
    """CREATE INDEX ix_unit_metrics_precision_detectors ON unit_metrics (precision) INCLUDE (run_id, unit_id, localist_class, precision_class, ccmas_class, mi_class, detector_bar_class) WHERE precision > 0.75 AND constant IS NOT TRUE""",
)

#: The functions this revision creates or replaces (with CREATE OR REPLACE), as
#: catalogue/db/summaries.py has them.
FUNCTIONS: tuple[str, ...] = (
    """CREATE FUNCTION refresh_unit_best_concept(units integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF units IS NULL THEN
        DELETE FROM unit_best_concept;
        INSERT INTO unit_best_concept (unit_id, run_id, concept_id, iou)
        SELECT DISTINCT ON (dn.unit_id) dn.unit_id, dn.run_id, dn.concept_id, dn.iou
        FROM dissection dn
        ORDER BY dn.unit_id, dn.iou DESC, dn.run_id DESC, dn.concept_id;
    ELSE
        DELETE FROM unit_best_concept WHERE unit_id = ANY (units);
        INSERT INTO unit_best_concept (unit_id, run_id, concept_id, iou)
        SELECT DISTINCT ON (dn.unit_id) dn.unit_id, dn.run_id, dn.concept_id, dn.iou
        FROM dissection dn
        WHERE dn.unit_id = ANY (units)
        ORDER BY dn.unit_id, dn.iou DESC, dn.run_id DESC, dn.concept_id;
    END IF;
END
$$""",
    """CREATE FUNCTION refresh_unit_rating_stats(units integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF units IS NULL THEN
        DELETE FROM unit_rating_stats;
        INSERT INTO unit_rating_stats (unit_id, n_ratings, n_yes, top_name)
        SELECT
            rt.unit_id,
            count(*)::integer,
            sum(rt.answer::integer)::integer,
            (SELECT n.name FROM rating r2, unnest(r2.names) AS n(name)
             WHERE r2.unit_id = rt.unit_id AND r2.answer
             GROUP BY n.name ORDER BY count(*) DESC, n.name LIMIT 1)
        FROM rating rt
        GROUP BY rt.unit_id;
    ELSE
        DELETE FROM unit_rating_stats WHERE unit_id = ANY (units);
        INSERT INTO unit_rating_stats (unit_id, n_ratings, n_yes, top_name)
        SELECT
            rt.unit_id,
            count(*)::integer,
            sum(rt.answer::integer)::integer,
            (SELECT n.name FROM rating r2, unnest(r2.names) AS n(name)
             WHERE r2.unit_id = rt.unit_id AND r2.answer
             GROUP BY n.name ORDER BY count(*) DESC, n.name LIMIT 1)
        FROM rating rt
        WHERE rt.unit_id = ANY (units)
        GROUP BY rt.unit_id;
    END IF;
END
$$""",
    """CREATE FUNCTION lock_references(runs integer[], lo integer, hi integer, n bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    n_units bigint;
    layers integer[];
BEGIN
    IF n = 0 THEN
        RETURN true;
    END IF;
    PERFORM 1 FROM run WHERE id = ANY (runs) FOR KEY SHARE;
    IF (SELECT count(*) FROM run WHERE id = ANY (runs)) < cardinality(runs)
            OR hi::bigint - lo + 1 > 2 * n THEN
        RETURN false;
    END IF;
    SELECT count(*), array_agg(DISTINCT layer_id) INTO n_units, layers
    FROM unit WHERE id BETWEEN lo AND hi;
    IF n_units < hi::bigint - lo + 1 THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM layer WHERE id = ANY (layers) FOR KEY SHARE;
    RETURN true;
END
$$""",
    """CREATE FUNCTION unit_metrics_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    missing record;
    runs integer[];
    lo integer;
    hi integer;
    n bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT ARRAY(SELECT DISTINCT run_id FROM new_rows), min(unit_id), max(unit_id), count(*)
        INTO runs, lo, hi, n FROM new_rows;
        IF NOT lock_references(runs, lo, hi, n) THEN
            PERFORM 1 FROM run WHERE id IN (SELECT run_id FROM new_rows) FOR KEY SHARE;
            PERFORM 1 FROM layer
            WHERE id IN (SELECT u.layer_id FROM unit u WHERE u.id IN (SELECT unit_id FROM new_rows))
            FOR KEY SHARE;
            SELECT nr.run_id, nr.unit_id, r.id IS NULL AS no_run INTO missing
            FROM new_rows nr
            LEFT JOIN run r ON r.id = nr.run_id
            LEFT JOIN unit u ON u.id = nr.unit_id
            WHERE r.id IS NULL OR u.id IS NULL
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'insert or update on table "%" violates its references', TG_TABLE_NAME
                    USING ERRCODE = 'foreign_key_violation',
                    DETAIL = CASE WHEN missing.no_run
                        THEN format('Key (run_id)=(%s) is not present in table "run".', missing.run_id)
                        ELSE format('Key (unit_id)=(%s) is not present in table "unit".', missing.unit_id)
                        END;
            END IF;
        END IF;
        PERFORM mark_layer_detectors_stale(runs);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM mark_layer_detectors_stale(ARRAY(SELECT DISTINCT run_id FROM old_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT ARRAY(SELECT DISTINCT run_id FROM new_rows), min(unit_id), max(unit_id), count(*)
        INTO runs, lo, hi, n FROM new_rows;
        IF NOT lock_references(runs, lo, hi, n) THEN
            PERFORM 1 FROM run WHERE id IN (SELECT run_id FROM new_rows) FOR KEY SHARE;
            PERFORM 1 FROM layer
            WHERE id IN (SELECT u.layer_id FROM unit u WHERE u.id IN (SELECT unit_id FROM new_rows))
            FOR KEY SHARE;
            SELECT nr.run_id, nr.unit_id, r.id IS NULL AS no_run INTO missing
            FROM new_rows nr
            LEFT JOIN run r ON r.id = nr.run_id
            LEFT JOIN unit u ON u.id = nr.unit_id
            WHERE r.id IS NULL OR u.id IS NULL
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'insert or update on table "%" violates its references', TG_TABLE_NAME
                    USING ERRCODE = 'foreign_key_violation',
                    DETAIL = CASE WHEN missing.no_run
                        THEN format('Key (run_id)=(%s) is not present in table "run".', missing.run_id)
                        ELSE format('Key (unit_id)=(%s) is not present in table "unit".', missing.unit_id)
                        END;
            END IF;
        END IF;
        PERFORM mark_layer_detectors_stale(
            ARRAY(SELECT run_id FROM new_rows UNION SELECT run_id FROM old_rows));
    ELSE
        DELETE FROM layer_detectors_cache;
    END IF;
    RETURN NULL;
END
$$""",
    """CREATE FUNCTION unit_results_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    missing record;
    runs integer[];
    lo integer;
    hi integer;
    n bigint;
BEGIN
        SELECT ARRAY(SELECT DISTINCT run_id FROM new_rows), min(unit_id), max(unit_id), count(*)
        INTO runs, lo, hi, n FROM new_rows;
        IF NOT lock_references(runs, lo, hi, n) THEN
            PERFORM 1 FROM run WHERE id IN (SELECT run_id FROM new_rows) FOR KEY SHARE;
            PERFORM 1 FROM layer
            WHERE id IN (SELECT u.layer_id FROM unit u WHERE u.id IN (SELECT unit_id FROM new_rows))
            FOR KEY SHARE;
            SELECT nr.run_id, nr.unit_id, r.id IS NULL AS no_run INTO missing
            FROM new_rows nr
            LEFT JOIN run r ON r.id = nr.run_id
            LEFT JOIN unit u ON u.id = nr.unit_id
            WHERE r.id IS NULL OR u.id IS NULL
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'insert or update on table "%" violates its references', TG_TABLE_NAME
                    USING ERRCODE = 'foreign_key_violation',
                    DETAIL = CASE WHEN missing.no_run
                        THEN format('Key (run_id)=(%s) is not present in table "run".', missing.run_id)
                        ELSE format('Key (unit_id)=(%s) is not present in table "unit".', missing.unit_id)
                        END;
            END IF;
        END IF;
    RETURN NULL;
END
$$""",
    """CREATE FUNCTION unit_results_owner_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM unit_metrics;
        DELETE FROM unit_class_stats;
        DELETE FROM unit_top_image;
    ELSIF TG_TABLE_NAME = 'run' THEN
        DELETE FROM unit_metrics WHERE run_id IN (SELECT id FROM old_rows);
        DELETE FROM unit_class_stats WHERE run_id IN (SELECT id FROM old_rows);
        DELETE FROM unit_top_image WHERE run_id IN (SELECT id FROM old_rows);
    ELSE
        DELETE FROM unit_metrics WHERE unit_id IN (SELECT id FROM old_rows);
        DELETE FROM unit_class_stats WHERE unit_id IN (SELECT id FROM old_rows);
        DELETE FROM unit_top_image WHERE unit_id IN (SELECT id FROM old_rows);
    END IF;
    RETURN NULL;
END
$$""",
)

#: The triggers this revision creates.
TRIGGERS: tuple[str, ...] = (
    """CREATE TRIGGER unit_class_stats_references_insert AFTER INSERT ON unit_class_stats REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_results_changed()""",
    """CREATE TRIGGER unit_class_stats_references_update AFTER UPDATE ON unit_class_stats REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_results_changed()""",
    """CREATE TRIGGER unit_top_image_references_insert AFTER INSERT ON unit_top_image REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_results_changed()""",
    """CREATE TRIGGER unit_top_image_references_update AFTER UPDATE ON unit_top_image REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_results_changed()""",
    """CREATE TRIGGER run_unit_results_delete AFTER DELETE ON run REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_results_owner_deleted()""",
    """CREATE TRIGGER unit_unit_results_delete AFTER DELETE ON unit REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_results_owner_deleted()""",
    """CREATE TRIGGER run_unit_results_truncate AFTER TRUNCATE ON run FOR EACH STATEMENT EXECUTE FUNCTION unit_results_owner_deleted()""",
    """CREATE TRIGGER unit_unit_results_truncate AFTER TRUNCATE ON unit FOR EACH STATEMENT EXECUTE FUNCTION unit_results_owner_deleted()""",
)

#: What revision 0016 made that this revision drops: unit_metrics' own cascade.
REMOVED: tuple[str, ...] = (
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
    """CREATE TRIGGER run_unit_metrics_delete AFTER DELETE ON run REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_owner_deleted()""",
    """CREATE TRIGGER unit_unit_metrics_delete AFTER DELETE ON unit REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_owner_deleted()""",
    """CREATE TRIGGER run_unit_metrics_truncate AFTER TRUNCATE ON run FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_owner_deleted()""",
    """CREATE TRIGGER unit_unit_metrics_truncate AFTER TRUNCATE ON unit FOR EACH STATEMENT EXECUTE FUNCTION unit_metrics_owner_deleted()""",
)

#: Revision 0016's definitions of the functions FUNCTIONS replaced (restored by downgrade).
PREVIOUS_FUNCTIONS: tuple[str, ...] = (
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
)

#: The functions FUNCTIONS added (dropped by downgrade, after PREVIOUS_FUNCTIONS).
ADDED_FUNCTIONS: tuple[str, ...] = (
    "unit_results_owner_deleted()",
    "unit_results_changed()",
    "lock_references(integer[], integer, integer, bigint)",
)


def _or_replace(statement: str) -> str:
    return statement.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def _drop(statement: str) -> str:
    """The DROP of a CREATE TRIGGER or CREATE FUNCTION statement."""
    words = statement.split()
    if words[1] == "TRIGGER":
        return f"DROP TRIGGER {words[2]} ON {words[words.index('ON') + 1]}"
    return f"DROP FUNCTION {words[2]}"


def upgrade() -> None:
    for name, (table, _) in FOREIGN_KEYS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for statement in FUNCTIONS:
        op.execute(_or_replace(statement))
    for statement in reversed(REMOVED):
        op.execute(_drop(statement))
    for statement in TRIGGERS:
        op.execute(statement)
    for statement in INDEXES:
        op.execute(f"DROP INDEX {statement.split()[2]}")
        op.execute(statement)


def downgrade() -> None:
    for statement in PREVIOUS_INDEXES:
        op.execute(f"DROP INDEX {statement.split()[2]}")
        op.execute(statement)
    for statement in reversed(TRIGGERS):
        op.execute(_drop(statement))
    for statement in REMOVED:
        op.execute(statement)
    for statement in PREVIOUS_FUNCTIONS:
        op.execute(_or_replace(statement))
    for signature in ADDED_FUNCTIONS:
        op.execute(f"DROP FUNCTION {signature}")
    for name, (table, definition) in FOREIGN_KEYS.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
