"""Summaries kept beside the result tables so that the views stay fast at a million units.

At 1,000,000 units (`bench/db.py`) `unit_catalogue`'s per-row subqueries (the best
dissection concept, the rating summary) and `layer_detectors`' aggregate over every
unit cost seconds. Three summaries replace them, each kept exact by PostgreSQL
triggers inside the transaction that changes what it summarises (a run's one
transaction, an import of ratings, a `DELETE` typed in psql alike), so no writer has
to remember them and a failed run rolls them back with its rows:

- `unit_best_concept`: per unit, the dissection row with the highest IoU over every
  dissection run (ties: the newer run, then the lower concept id — the order
  `unit_catalogue` used). Statement triggers on `dissection` recompute it for the
  units a statement touched.
- `unit_rating_stats`: per rated unit, the number of ratings, of "yes" answers and
  the name most often given with a "yes" (ties: alphabetical). Statement triggers
  on `rating`. The share of yes and the consensus are computed from the counts by
  the view, so their thresholds stay in `catalogue.measures`.
- `layer_detectors_cache`: the rows of `layer_detectors` of each scoring run, as
  jsonb. The view reads a run's rows from here and computes the rows of a run that
  has none from `unit_catalogue` (see `catalogue.db.views`), so a missing row is
  only slower, never wrong. A statement that changes what a run's rows depend on
  (`unit_metrics`, `dissection` through the best IoU, a model, layer or unit) deletes
  the run's cached rows and marks it in `layer_detectors_stale`; a deferred
  constraint trigger recomputes every marked run once, at commit. A view revision
  that replaces `layer_detectors` recomputes the whole cache (`REFRESH`).

The tables of a scoring run's rows per unit (`UNIT_RESULT_TABLES`: `unit_metrics`,
`unit_class_stats`, `unit_top_image`) have no row-level foreign keys: PostgreSQL checks a
foreign key with one lookup and one row lock per inserted row, which cost about 20 µs per
score (half the time of writing a million scores, bench/db.py) and 7 of the 9 µs of server
time per top image (bench/paper_scale.py). The same rules are kept per statement instead:
an insert or update locks the runs and the layers its rows belong to (`FOR KEY SHARE`, as
a foreign key would lock them, so they cannot be deleted until the writer commits) and
fails with `foreign_key_violation` if a run or a unit is missing; `lock_references` does
that for a statement's runs and unit id range at once (a layer's units have consecutive
ids), and a statement whose ids have holes is checked row by row. Deleting or truncating
runs or units deletes their rows (ON DELETE CASCADE). Unlike a foreign key, an update of
`run.id` or `unit.id` is not followed (ids are never updated), and a unit deleted by
itself (not with its layer) while a writer that references it has not committed leaves
that writer's rows behind.

Nothing here holds a threshold or a measure name: the triggers copy rows, the views
hold the definitions. The migration that created these carries this SQL literally;
a change here is a new revision.
"""

from __future__ import annotations

#: Recompute the best dissection concept of some units (NULL: of every unit). Two
#: statements, not one with ``units IS NULL OR …``: a function's plan is made once for any
#: argument, and that condition made it scan every dissection row for a layer's units
#: (quadratic in the catalogue's size; bench/db.py).
REFRESH_UNIT_BEST_CONCEPT = """
CREATE FUNCTION refresh_unit_best_concept(units integer[]) RETURNS void
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
$$
"""

#: Recompute the rating counts of some units (NULL: of every unit); two statements, as above.
_RATING_COUNTS = """
        INSERT INTO unit_rating_stats (unit_id, n_ratings, n_yes, top_name)
        SELECT
            rt.unit_id,
            count(*)::integer,
            sum(rt.answer::integer)::integer,
            (SELECT n.name FROM rating r2, unnest(r2.names) AS n(name)
             WHERE r2.unit_id = rt.unit_id AND r2.answer
             GROUP BY n.name ORDER BY count(*) DESC, n.name LIMIT 1)
        FROM rating rt"""

REFRESH_UNIT_RATING_STATS = f"""
CREATE FUNCTION refresh_unit_rating_stats(units integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF units IS NULL THEN
        DELETE FROM unit_rating_stats;{_RATING_COUNTS}
        GROUP BY rt.unit_id;
    ELSE
        DELETE FROM unit_rating_stats WHERE unit_id = ANY (units);{_RATING_COUNTS}
        WHERE rt.unit_id = ANY (units)
        GROUP BY rt.unit_id;
    END IF;
END
$$
"""

#: Recompute the cached `layer_detectors` rows of some scoring runs (NULL: of every run)
#: from the view itself, which computes a run without cached rows from `unit_catalogue`.
REFRESH_LAYER_DETECTORS = """
CREATE FUNCTION refresh_layer_detectors(runs integer[]) RETURNS void
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
$$
"""

#: Forget the cached rows of some runs now; recompute them at commit.
MARK_LAYER_DETECTORS_STALE = """
CREATE FUNCTION mark_layer_detectors_stale(runs integer[]) RETURNS void
LANGUAGE sql AS $$
DELETE FROM layer_detectors_cache WHERE run_id = ANY (runs);
INSERT INTO layer_detectors_stale (run_id)
SELECT DISTINCT r FROM unnest(runs) AS r WHERE r IS NOT NULL
ON CONFLICT DO NOTHING;
$$
"""

#: The deferred trigger: at commit, recompute every run marked stale (once).
REFRESH_STALE_LAYER_DETECTORS = """
CREATE FUNCTION refresh_stale_layer_detectors() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM layer_detectors_stale WHERE run_id = NEW.run_id) THEN
        PERFORM refresh_layer_detectors(ARRAY(SELECT run_id FROM layer_detectors_stale));
    END IF;
    RETURN NULL;
END
$$
"""

#: Lock the runs, and the layers of the units with ids lo..hi, as foreign keys would
#: (FOR KEY SHARE), and say whether a statement's references hold without looking at its
#: rows one by one: every run exists and so does every unit id from lo to hi (hence every
#: unit of the rows). A writer sends a layer's rows at a time and a layer's units have
#: consecutive ids, so its statements pass here; a range with holes, or much wider than
#: the rows, returns false and the rows are checked one by one.
LOCK_REFERENCES = """
CREATE FUNCTION lock_references(runs integer[], lo integer, hi integer, n bigint)
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
$$
"""

#: The foreign keys of a table of `UNIT_RESULT_TABLES`, checked per statement (inside its
#: trigger, where the transition table `new_rows` is seen): `lock_references` over the rows'
#: runs and unit id range, else row by row: lock the runs and layers of the new rows as a
#: foreign key would, and refuse rows whose run or unit is missing. (Row by row, with the
#: rows joined to `unit`, this took about 5 µs of the 10 µs per row of writing scores;
#: bench/db.py.)
_CHECK_REFERENCES = """
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
        END IF;"""

#: The tables of a scoring run's rows per unit that keep their references to `run` and
#: `unit` per statement instead of by row-level foreign keys: a foreign key costs a lookup
#: and a row lock per row written (about 7 µs of the 9 µs per row of the paper's top images
#: at 721,536 images, bench/paper_scale.py; half the time of writing a million scores).
UNIT_RESULT_TABLES: tuple[str, ...] = ("unit_metrics", "unit_class_stats", "unit_top_image")


def _delete_results(where: str) -> str:
    return "".join(f"\n        DELETE FROM {t}{where};" for t in UNIT_RESULT_TABLES)


#: ON DELETE CASCADE of the references of `UNIT_RESULT_TABLES`, per statement.
UNIT_RESULTS_OWNER_DELETED = f"""
CREATE FUNCTION unit_results_owner_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN{_delete_results("")}
    ELSIF TG_TABLE_NAME = 'run' THEN{_delete_results(" WHERE run_id IN (SELECT id FROM old_rows)")}
    ELSE{_delete_results(" WHERE unit_id IN (SELECT id FROM old_rows)")}
    END IF;
    RETURN NULL;
END
$$
"""

_REFERENCE_VARIABLES = """
DECLARE
    missing record;
    runs integer[];
    lo integer;
    hi integer;
    n bigint;"""

#: The references of the other tables of `UNIT_RESULT_TABLES` (unit_metrics' own trigger
#: also follows its changes for the `layer_detectors` cache).
UNIT_RESULTS_CHANGED = f"""
CREATE FUNCTION unit_results_changed() RETURNS trigger
LANGUAGE plpgsql AS $${_REFERENCE_VARIABLES}
BEGIN{_CHECK_REFERENCES}
    RETURN NULL;
END
$$
"""

UNIT_METRICS_CHANGED = f"""
CREATE FUNCTION unit_metrics_changed() RETURNS trigger
LANGUAGE plpgsql AS $${_REFERENCE_VARIABLES}
BEGIN
    IF TG_OP = 'INSERT' THEN{_CHECK_REFERENCES}
        PERFORM mark_layer_detectors_stale(runs);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM mark_layer_detectors_stale(ARRAY(SELECT DISTINCT run_id FROM old_rows));
    ELSIF TG_OP = 'UPDATE' THEN{_CHECK_REFERENCES}
        PERFORM mark_layer_detectors_stale(
            ARRAY(SELECT run_id FROM new_rows UNION SELECT run_id FROM old_rows));
    ELSE
        DELETE FROM layer_detectors_cache;
    END IF;
    RETURN NULL;
END
$$
"""

DISSECTION_CHANGED = """
CREATE FUNCTION dissection_changed() RETURNS trigger
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
$$
"""

RATING_CHANGED = """
CREATE FUNCTION rating_changed() RETURNS trigger
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
$$
"""

#: A renamed model or layer, or a moved unit, changes the names in `layer_detectors`.
IDENTITY_CHANGED = """
CREATE FUNCTION unit_identity_changed() RETURNS trigger
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
$$
"""


def _statement_triggers(table: str, function: str, *, truncate: bool = True) -> list[str]:
    """AFTER statement triggers with transition tables (one per event, as PostgreSQL asks)."""
    name = f"{table}_summaries"
    out = [
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} "
        f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {name}_update AFTER UPDATE ON {table} "
        f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} "
        f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]
    if truncate:
        out.append(
            f"CREATE TRIGGER {name}_truncate AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    return out


#: Functions and triggers, in creation order.
CREATE: tuple[str, ...] = (
    REFRESH_UNIT_BEST_CONCEPT,
    REFRESH_UNIT_RATING_STATS,
    REFRESH_LAYER_DETECTORS,
    MARK_LAYER_DETECTORS_STALE,
    REFRESH_STALE_LAYER_DETECTORS,
    UNIT_RESULTS_OWNER_DELETED,
    LOCK_REFERENCES,
    UNIT_METRICS_CHANGED,
    UNIT_RESULTS_CHANGED,
    DISSECTION_CHANGED,
    RATING_CHANGED,
    IDENTITY_CHANGED,
    *_statement_triggers("unit_metrics", "unit_metrics_changed"),
    *_statement_triggers("dissection", "dissection_changed"),
    *_statement_triggers("rating", "rating_changed"),
    *(
        statement
        for t in UNIT_RESULT_TABLES[1:]
        for statement in (
            f"CREATE TRIGGER {t}_references_insert AFTER INSERT ON {t} "
            "REFERENCING NEW TABLE AS new_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION unit_results_changed()",
            f"CREATE TRIGGER {t}_references_update AFTER UPDATE ON {t} "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION unit_results_changed()",
        )
    ),
    *(
        f"CREATE TRIGGER {t}_summaries_update AFTER UPDATE ON {t} "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION unit_identity_changed()"
        for t in ("model", "layer", "unit")
    ),
    *(
        f"CREATE TRIGGER {t}_unit_results_delete AFTER DELETE ON {t} "
        "REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION unit_results_owner_deleted()"
        for t in ("run", "unit")
    ),
    *(
        f"CREATE TRIGGER {t}_unit_results_truncate AFTER TRUNCATE ON {t} "
        "FOR EACH STATEMENT EXECUTE FUNCTION unit_results_owner_deleted()"
        for t in ("run", "unit")
    ),
    "CREATE CONSTRAINT TRIGGER layer_detectors_stale_refresh AFTER INSERT ON layer_detectors_stale "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refresh_stale_layer_detectors()",
)

#: Fill the per-unit summaries from the rows already there (the cache fills itself).
BACKFILL: tuple[str, ...] = (
    "SELECT refresh_unit_best_concept(NULL)",
    "SELECT refresh_unit_rating_stats(NULL)",
)

#: What CREATE made, in the order to drop it.
DROP: tuple[str, ...] = (
    "DROP TRIGGER layer_detectors_stale_refresh ON layer_detectors_stale",
    *(
        f"DROP TRIGGER {t}_unit_results_{event} ON {t}"
        for t in ("unit", "run")
        for event in ("truncate", "delete")
    ),
    *(
        f"DROP TRIGGER {t}_references_{event} ON {t}"
        for t in reversed(UNIT_RESULT_TABLES[1:])
        for event in ("update", "insert")
    ),
    *(f"DROP TRIGGER {t}_summaries_update ON {t}" for t in ("unit", "layer", "model")),
    *(
        f"DROP TRIGGER {t}_summaries_{event} ON {t}"
        for t in ("rating", "dissection", "unit_metrics")
        for event in ("truncate", "delete", "update", "insert")
    ),
    "DROP FUNCTION unit_identity_changed()",
    "DROP FUNCTION rating_changed()",
    "DROP FUNCTION dissection_changed()",
    "DROP FUNCTION unit_results_changed()",
    "DROP FUNCTION unit_metrics_changed()",
    "DROP FUNCTION lock_references(integer[], integer, integer, bigint)",
    "DROP FUNCTION unit_results_owner_deleted()",
    "DROP FUNCTION refresh_stale_layer_detectors()",
    "DROP FUNCTION mark_layer_detectors_stale(integer[])",
    "DROP FUNCTION refresh_layer_detectors(integer[])",
    "DROP FUNCTION refresh_unit_rating_stats(integer[])",
    "DROP FUNCTION refresh_unit_best_concept(integer[])",
)

#: Run by a view revision that replaces `layer_detectors` (both ways): recompute the cache
#: from the view as it now is. Does nothing below the revision that made the cache.
REFRESH = (
    "DO $$ BEGIN IF to_regprocedure('refresh_layer_detectors(integer[])') IS NOT NULL "
    "THEN PERFORM refresh_layer_detectors(NULL); END IF; END $$"
)
