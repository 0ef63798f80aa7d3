"""The catalogue database: migrations, registration, runs, views, the read-only console."""

from __future__ import annotations

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from scipy import stats
from sqlalchemy import Engine, create_engine, inspect, text

from catalogue.db import migrate
from catalogue.db.identities import LayerSpec, register_class_groups, register_model
from catalogue.db.readonly import run_readonly
from catalogue.db.results import write_unit_metrics
from catalogue.db.runs import recorded_run
from catalogue.db.schema import Base
from catalogue.db.views import VIEWS
from catalogue.errors import InputError, ReadOnlyViolation
from tests.catalogue_builders import neutral_metrics, register_toy, write_scores


def test_migrations_have_a_single_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("postgresql+psycopg://x"))
    assert len(script.get_heads()) == 1


def test_upgrade_downgrade_upgrade_round_trip(database_factory) -> None:
    engine = create_engine(database_factory(migrated=False))
    migrate.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert set(VIEWS) <= set(inspect(engine).get_view_names())
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    assert inspect(engine).get_view_names() == []
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_models_match_the_migrated_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_schema_check_refuses_an_old_revision_with_the_fix(database_factory) -> None:
    engine = create_engine(database_factory(migrated=False))
    migrate.upgrade(engine, "0001")
    with pytest.raises(Exception, match="run `unitcat db upgrade`"):
        migrate.ensure_current(engine)
    engine.dispose()


def test_schema_check_upgrades_an_empty_database(database_factory) -> None:
    engine = create_engine(database_factory(migrated=False))
    migrate.ensure_current(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_registering_twice_returns_the_same_ids(engine: Engine) -> None:
    model, dataset = register_toy(engine)
    again, dataset_again = register_toy(engine)
    assert again.id == model.id and dataset_again.id == dataset.id
    assert np.array_equal(again.layer("fc6").unit_ids, model.layer("fc6").unit_ids)
    assert len(model.layer("fc6").unit_ids) == 6
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit")).scalar_one() == 10


def test_a_model_name_with_other_weights_is_refused(engine: Engine) -> None:
    register_toy(engine)
    with engine.begin() as conn, pytest.raises(InputError, match="other weights"):
        register_model(
            conn, name="toy", architecture="toy-cnn", weights="x", checksum="fff", layers=[]
        )


def test_a_layer_with_another_unit_count_is_refused(engine: Engine) -> None:
    register_toy(engine)
    with engine.begin() as conn, pytest.raises(InputError, match="registered with 6 units"):
        register_model(
            conn,
            name="toy",
            architecture="toy-cnn",
            weights="random",
            checksum="abc123",
            layers=[LayerSpec("fc6", "fc", 7, 1)],
        )


def test_class_groups_name_unknown_classes(engine: Engine) -> None:
    _, dataset = register_toy(engine)
    with engine.begin() as conn:
        ids = register_class_groups(conn, dataset, {"pair": ["k0", "k2"]})
        members = conn.execute(
            text(
                "SELECT ic.key FROM class_group_member m JOIN image_class ic ON ic.id = m.class_id "
                "WHERE m.group_id = :g ORDER BY ic.key"
            ),
            {"g": ids["pair"]},
        ).scalars()
        assert list(members) == ["k0", "k2"]
    with engine.begin() as conn, pytest.raises(InputError, match="'k9' is not a class"):
        register_class_groups(conn, dataset, {"bad": ["k0", "k9"]})


def test_misleading_detectors_lists_high_precision_high_false_alarm_units(engine: Engine) -> None:
    model, dataset = register_toy(engine)
    write_scores(
        engine,
        model,
        dataset,
        "fc6",
        {
            "precision": [0.8, 0.7, 0.95, 0.8, 0.76, 0.2],
            "false_alarm_rate": [0.95, 0.95, 0.5, 0.9, 0.91, 0.99],
        },
    )
    with engine.connect() as conn:
        units = conn.execute(
            text("SELECT unit FROM misleading_detectors WHERE layer = 'fc6' ORDER BY unit")
        ).scalars()
        assert list(units) == [0, 4]


def test_unit_catalogue_shows_class_names_and_nulls_before_scoring(engine: Engine) -> None:
    model, dataset = register_toy(engine)
    write_scores(engine, model, dataset, "fc6", {"precision_class": [2, 1, 0, 0, 0, 0]})
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM unit_catalogue WHERE layer = 'fc6' AND unit = 0")
        ).one()
        assert row.precision_class == "class 2" and row.precision_class_index == 2
        assert row.localist_class is None  # -1 → NULL → no name
        assert row.best_concept is None and row.n_ratings is None
        unscored = conn.execute(
            text("SELECT run_id, precision FROM unit_catalogue WHERE layer = 'conv5'")
        ).all()
        assert len(unscored) == 4 and all(r.run_id is None for r in unscored)


def test_rerunning_replaces_the_runs_rows(engine: Engine) -> None:
    model, dataset = register_toy(engine)
    first = write_scores(engine, model, dataset, "fc6", {"precision": [0.1] * 6})
    second = write_scores(engine, model, dataset, "fc6", {"precision": [0.9] * 6})
    assert first == second
    with engine.connect() as conn:
        values = conn.execute(text("SELECT precision FROM unit_metrics")).scalars().all()
        assert sorted(values) == [0.9] * 6
        assert conn.execute(text("SELECT status FROM run")).scalar_one() == "done"


def test_a_failed_bulk_write_leaves_no_rows_and_records_the_error(engine: Engine) -> None:
    model, _dataset = register_toy(engine)
    record = model.layer("fc6")

    def write_then_fail(conn, run_id):
        write_unit_metrics(conn, run_id, record.unit_ids, neutral_metrics(6), n_images=10)
        # the same rows again violate the (run_id, unit_id) primary key
        write_unit_metrics(conn, run_id, record.unit_ids, neutral_metrics(6), n_images=10)

    with (
        pytest.raises(Exception, match="duplicate key"),
        recorded_run(engine, "score", {"layer": "fc6"}, model_id=model.id) as run,
    ):
        run.complete(write_then_fail)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit_metrics")).scalar_one() == 0
        status, error = conn.execute(text("SELECT status, error FROM run")).one()
        assert status == "failed" and "UniqueViolation" in error


def test_nan_measures_are_stored_as_null(engine: Engine) -> None:
    model, dataset = register_toy(engine)
    write_scores(engine, model, dataset, "fc6", {"ccmas": [np.nan, 0.5, 0.5, 0.5, 0.5, 0.5]})
    with engine.connect() as conn:
        values = conn.execute(
            text("SELECT ccmas FROM unit_catalogue WHERE layer = 'fc6' ORDER BY unit")
        ).scalars()
        assert list(values) == [None, 0.5, 0.5, 0.5, 0.5, 0.5]


def test_layer_summary_matches_numpy(engine: Engine) -> None:
    model, dataset = register_toy(engine)
    precision = np.array([0.1, 0.4, 0.4, 0.9, 0.35, 0.6])
    write_scores(engine, model, dataset, "fc6", {"precision": precision})
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM layer_summary WHERE layer = 'fc6' AND measure = 'precision'")
        ).one()
    assert row.n == 6
    assert row.mean == pytest.approx(precision.mean())
    assert row.sd == pytest.approx(precision.std(ddof=1))
    assert (row.q1, row.median, row.q3) == pytest.approx(
        tuple(np.percentile(precision, [25, 50, 75]))
    )


def test_measure_correlations_match_scipy_with_ties(engine: Engine) -> None:
    model, dataset = register_toy(engine)
    precision = np.array([0.1, 0.4, 0.4, 0.9, 0.35, 0.6])
    ccmas = np.array([0.3, 0.2, 0.8, 0.8, 0.1, np.nan])  # NaN: pairwise-complete units only
    write_scores(engine, model, dataset, "fc6", {"precision": precision, "ccmas": ccmas})
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT * FROM measure_correlations WHERE layer = 'fc6' "
                "AND measure_a = 'ccmas' AND measure_b = 'precision'"
            )
        ).one()
    keep = ~np.isnan(ccmas)
    assert row.n == 5
    assert row.pearson == pytest.approx(stats.pearsonr(ccmas[keep], precision[keep])[0])
    assert row.spearman == pytest.approx(stats.spearmanr(ccmas[keep], precision[keep])[0])


def test_console_reads_and_refuses_writes(engine: Engine, reader_engine: Engine) -> None:
    register_toy(engine)
    result = run_readonly(reader_engine, "SELECT name FROM layer ORDER BY position")
    assert result.columns == ["name"] and result.rows == [("conv5",), ("fc6",)]
    with pytest.raises(ReadOnlyViolation, match="read-only"):
        run_readonly(reader_engine, "DELETE FROM unit")
    with pytest.raises(InputError, match="one statement"):
        run_readonly(reader_engine, "SELECT 1; DELETE FROM unit")
    with pytest.raises(InputError, match="SQL error"):
        run_readonly(reader_engine, "SELECT nothing FROM nowhere")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit")).scalar_one() == 10


def test_console_truncates_to_max_rows(engine: Engine, reader_engine: Engine) -> None:
    register_toy(engine)
    result = run_readonly(reader_engine, "SELECT * FROM unit ORDER BY id", max_rows=3)
    assert len(result.rows) == 3 and result.truncated


def test_layer_detectors_counts_each_criterion(engine: Engine) -> None:
    model, dataset = register_toy(engine)
    write_scores(
        engine,
        model,
        dataset,
        "fc6",
        {
            "precision": [0.8, 0.7, 0.95, 0.8, 0.76, 0.2],
            "ccmas": [0.95, 0.95, 0.1, np.nan, 0.91, 0.2],
            "localist": [False, False, True, False, False, False],
            "false_alarm_rate": [0.95, 0.95, 0.5, 0.9, 0.91, 0.99],
            "max_informedness": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        },
    )
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM layer_detectors WHERE layer = 'fc6'")).one()
    assert (row.n_units, row.n_precision, row.n_ccmas, row.n_localist, row.n_misleading) == (
        6,
        4,
        3,
        1,
        2,
    )
    assert row.n_iou == 0
    assert row.median_max_informedness == pytest.approx(0.35)
    assert row.median_false_alarm_rate == pytest.approx(0.93)
