"""A downgrade names every run it deletes and every run whose results it drops, and those
runs never read `done` without their rows afterwards (not after the next upgrade either)."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from catalogue.db import downgrade_runs, migrate
from catalogue.db.runs import recorded_run
from catalogue.query.runs import run_records
from tests.catalogue_builders import register_toy
from tests.cli import unitcat


def _ablated(engine: Engine, unit_ids: list[int], name: str) -> int:
    def write(conn: Connection, run_id: int) -> None:
        for uid in unit_ids:
            conn.execute(
                text(
                    "INSERT INTO unit_ablation (run_id, unit_id, replacement, n_images, "
                    "accuracy, accuracy_change) VALUES (:r, :u, 0, 10, 0.5, -0.1)"
                ),
                {"r": run_id, "u": uid},
            )

    with recorded_run(engine, "ablate", {"name": name}) as run:
        run.complete(write)
    return run.id


def _chance(engine: Engine, unit_ids: list[int]) -> int:
    def write(conn: Connection, run_id: int) -> None:
        for uid in unit_ids:
            conn.execute(
                text(
                    "INSERT INTO chance_metrics (run_id, unit_id, repeat, n_images, precision) "
                    "VALUES (:r, :u, 0, 10, 0.3)"
                ),
                {"r": run_id, "u": uid},
            )

    with recorded_run(engine, "chance", {"repeats": 1}) as run:
        run.complete(write)
    return run.id


def test_downgrade_lists_the_runs_it_deletes_and_empties_and_they_never_read_done(
    engine: Engine, database_url: str
) -> None:
    model, _ = register_toy(engine)
    units = list(model.layer("fc6").unit_ids)
    ablations = [_ablated(engine, units, f"a{i}") for i in range(3)]
    chance = _chance(engine, units)
    with recorded_run(engine, "score", {"kept": True}) as kept:  # results in a kept table
        kept.complete()

    drops = migrate.downgrade_drops(engine, "0001")
    assert drops.runs_deleted == {chance: "chance"}
    assert drops.runs_emptied == dict.fromkeys(ablations, "ablate")
    described = drops.describe()
    assert f"runs {chance} (chance)" in described
    assert f"runs {', '.join(map(str, ablations))} (ablate) lose their results" in described

    env = {"DATABASE_URL": database_url}
    down = unitcat("db", "downgrade", "0001", "--yes", env=env)
    assert down.returncode == 0, down.stderr
    said = down.stdout.replace("\n", " ")
    assert f"runs {chance} (chance)" in said and "will read failed" in said
    up = unitcat("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr

    records = {r["id"]: r for r in run_records(engine)}
    assert chance not in records
    for run_id in ablations:
        assert records[run_id]["status"] == "failed"
        assert "dropped by `unitcat db downgrade 0001`" in records[run_id]["error"]
    assert records[kept.id]["status"] == "done"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit_ablation")).scalar_one() == 0


def test_run_lists_are_cut_after_twenty_ids() -> None:
    many = dict.fromkeys(range(1, 26), "ablate") | {30: "chance"}
    said = downgrade_runs.describe(many)
    assert said.startswith("1, 2, 3") and "20 and 5 more (ablate)" in said
    assert said.endswith(", 1 more (chance)")  # no room left for ids: counted


def test_a_run_whose_summary_table_goes_but_whose_results_stay_keeps_its_status() -> None:
    before = {"unit_ablation": {1, 3}, "layer_summary_rows": {2}, "dissection": {2}}
    after = {"dissection": {2}}  # the summary went with its revision, the results stayed
    runs_after = {1: ("ablate", "done"), 2: ("dissect", "done"), 3: ("ablate", "failed")}
    assert downgrade_runs.emptied(before, after, runs_after) == {1: "ablate"}
