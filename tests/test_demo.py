"""The demo pipeline end to end on digits (small settings), and its reuse of finished steps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, text

from catalogue import demo_cnn
from catalogue.pipeline.demo import AM_UNITS, DEMO_LAYERS, DISSECT_LAYERS, DemoPlan, run_demo
from catalogue.pipeline.summary import Progress


class RecordingReporter:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.notes: list[str] = []
        self.calls = 0

    @contextmanager
    def step(self, title: str) -> Iterator[Progress]:
        self.steps.append(title)

        def progress(done: int, total: int) -> None:
            assert 0 <= done <= total
            self.calls += 1

        yield progress

    def note(self, message: str) -> None:
        self.notes.append(message)


@pytest.fixture
def quick_checkpoint() -> None:
    """A demo CNN trained for one short epoch, where the demo looks for its checkpoint."""
    demo_cnn.train_demo("digits", epochs=1, limit=300)
    yield
    demo_cnn.checkpoint_path("digits").unlink()


@pytest.mark.usefixtures("quick_checkpoint")
def test_demo_builds_every_part_and_a_second_run_reuses_it(engine: Engine) -> None:
    plan = DemoPlan(
        dataset="digits",
        probe_images=12,
        probe_size=32,
        am_images=4,
        am_steps=3,
        ablate_images=40,
        chance_repeats=2,
    )
    first = RecordingReporter()
    report = run_demo(engine, plan, first)
    assert [row["layer"] for row in report.layers] == list(DEMO_LAYERS)
    assert all(row["n_units"] > 0 for row in report.layers)
    assert report.n_misleading == len(report.misleading) or report.n_misleading > 10
    assert first.calls > 0
    with engine.connect() as conn:
        kinds = dict(conn.execute(text("SELECT kind, count(*) FROM run GROUP BY kind")).all())
        dissected = (
            conn.execute(
                text(
                    "SELECT DISTINCT layer FROM unit_catalogue WHERE best_iou IS NOT NULL ORDER BY layer"
                )
            )
            .scalars()
            .all()
        )
        panels = conn.execute(text("SELECT count(*) FROM am_panel")).scalar_one()
        ablated = dict(
            conn.execute(text("SELECT layer, count(*) FROM unit_importance GROUP BY layer")).all()
        )
        baselines = conn.execute(
            text(
                "SELECT count(*), count(random), count(chance_mean) FROM layer_baselines "
                "WHERE criterion = 'precision'"
            )
        ).one()
    # the trained network, and its random-weights baseline: extracted, scored, dissected
    assert kinds == {
        "extract": 2,
        "score": 2,
        "dissect": 2,
        "am": len(AM_UNITS),
        "ablate": 1,
        "chance": 1,
    }
    assert dissected == sorted(DISSECT_LAYERS)
    assert panels == sum(len(u) for u in AM_UNITS.values())
    assert ablated == {"conv5": 32, "fc6": 128}
    assert tuple(baselines) == (len(DEMO_LAYERS),) * 3
    assert any(n.startswith("detectors: trained / random weights / chance") for n in first.notes)
    assert any(n.startswith("Spearman(selectivity") for n in first.notes)

    second = RecordingReporter()
    again = run_demo(engine, plan, second)
    assert again.layers == report.layers
    assert any("reusing demo:digits" in n for n in second.notes)
    assert any("(reused)" in n for n in second.notes)
    assert sum("reusing AM panels" in n for n in second.notes) == len(AM_UNITS)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM run")).scalar_one() == sum(kinds.values())
