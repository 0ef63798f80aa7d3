"""unit_metrics' references checked over the statement's unit id range, not row by row

The statement trigger that keeps unit_metrics' references (revision 0016: lock the runs
and layers of the new rows, refuse a missing run or unit) joined every new row to `unit`,
about 5 µs of the 10 µs of server time per score written (bench/db.py). A writer sends
one layer's rows per statement and a layer's units have consecutive ids, so the new
function `lock_references` checks the statement's runs and its unit id range at once
(every id in the range exists, so every unit of the rows does) and locks the same runs
and layers; a range with holes, or much wider than the rows, is still checked row by
row. The SQL is catalogue/db/summaries.py's, carried literally.

Revision ID: 0040
Revises: 0019
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0040"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The functions this revision creates or replaces, as catalogue/db/summaries.py has them
#: (created with CREATE OR REPLACE).
FUNCTIONS: tuple[str, ...] = (
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
                RAISE EXCEPTION 'insert or update on table "unit_metrics" violates its references'
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
                RAISE EXCEPTION 'insert or update on table "unit_metrics" violates its references'
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
)

#: The function definitions of revision 0016 that FUNCTIONS replaced (restored by downgrade).
PREVIOUS_FUNCTIONS: tuple[str, ...] = (
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

#: What downgrade drops after restoring PREVIOUS_FUNCTIONS.
DROP: tuple[str, ...] = ("DROP FUNCTION lock_references(integer[], integer, integer, bigint)",)


def _or_replace(statement: str) -> str:
    return statement.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    for statement in FUNCTIONS:
        op.execute(_or_replace(statement))


def downgrade() -> None:
    for statement in PREVIOUS_FUNCTIONS:
        op.execute(_or_replace(statement))
    for statement in DROP:
        op.execute(statement)
