"""The demo pipeline end to end on digits (small settings), and its reuse of finished steps."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from catalogue.errors import NotFound
from catalogue.models import demo_cnn
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
def _check_readme_figures(engine: Engine, report: object, tmp_path: Path) -> None:
    """scripts/readme_figures.py on the demo catalogue: the README block quotes the
    report's numbers, and pasting it changes nothing outside its markers."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        import readme_figures
    finally:
        sys.path.pop(0)
    figures = readme_figures.collect(engine)
    assert figures["run"]["model"] == "demo:digits"
    assert figures["layers"] == report.layers  # type: ignore[attr-defined]
    assert figures["n_misleading"] == report.n_misleading  # type: ignore[attr-defined]
    block = readme_figures.render(figures)
    for row in report.layers:  # type: ignore[attr-defined]
        assert f"| {row['layer']} | {row['n_units']} | {row['n_constant']} | " in block
    unit = figures["showcase"]
    if unit is not None:
        counts = unit["counts"]
        far = counts["fp"] / (counts["tp"] + counts["fp"])
        assert far == pytest.approx(unit["false_alarm_rate"])
        assert f"{counts['fp']:,} of the {counts['tp'] + counts['fp']:,} images" in block
    # trained / random / chance per layer: the trained count is the catalogue's own
    with engine.connect() as conn:
        trained = dict(
            conn.execute(
                text(
                    "SELECT layer, count(*) FILTER (WHERE precision > .75 AND constant IS NOT TRUE)"
                    " FROM unit_catalogue WHERE run_id = :r GROUP BY layer"
                ),
                {"r": figures["run"]["id"]},
            ).all()
        )
    assert {b["layer"] for b in figures["baselines"]} == set(trained)
    for layer, n in trained.items():
        assert f"| {layer} | {n} / " in block  # precision is the table's first criterion
    assert {r["layer"] for r in figures["correlations"]} == {"conv5", "fc6"}
    assert f"(ablation run {figures['ablate_run']})" in block
    random_models = sorted({b["random_model"] for b in figures["baselines"]} - {None})
    assert random_models == ["demo:digits@random-seed0"]
    with engine.connect() as conn:  # the headline query's rows of the random-weights copy
        added = conn.execute(
            text("SELECT count(*) FROM misleading_detectors WHERE model = :m"),
            {"m": random_models[0]},
        ).scalar_one()
    if added:
        assert f"also returns {added} of the random-weights baseline" in block
    else:
        assert "of the random-weights baseline" not in block
    readme = tmp_path / "README.md"
    readme.write_text(f"# intro\n\n{readme_figures.BEGIN}\nold\n{readme_figures.END}\n\ntail\n")
    readme_figures.paste(readme, block)
    assert readme.read_text() == f"# intro\n\n{block}\ntail\n"
    readme.write_text("no markers\n")
    with pytest.raises(NotFound, match="markers"):
        readme_figures.paste(readme, block)


def test_demo_builds_every_part_and_a_second_run_reuses_it(engine: Engine, tmp_path: Path) -> None:
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
    with engine.connect() as conn:
        scored = conn.execute(
            text(
                "SELECT d.name, r.stats->>'n_images' FROM run r JOIN dataset d "
                "ON d.id = r.dataset_id WHERE r.kind = 'score' AND r.baseline_of IS NULL"
            )
        ).one()
    # the images the network was trained on (digits: 1,437 train), correctly classified
    assert scored[0] == "digits:train"
    assert 0 < int(scored[1]) <= 1437
    assert any("1,437 train images" in n for n in first.notes)
    assert dissected == sorted(DISSECT_LAYERS)
    assert panels == sum(len(u) for u in AM_UNITS.values())
    assert ablated == {"conv5": 32, "fc6": 128}
    assert tuple(baselines) == (len(DEMO_LAYERS),) * 3
    assert any(n.startswith("detectors: trained / random weights / chance") for n in first.notes)
    assert any(n.startswith("Spearman(selectivity") for n in first.notes)
    with engine.connect() as conn:
        trials, answers = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM twoafc_trial), (SELECT count(*) FROM twoafc_response)"
            )
        ).one()
    assert trials > 0 and answers == 0  # the 2-AFC trials are built; nobody has answered

    _check_readme_figures(engine, report, tmp_path)

    second = RecordingReporter()
    again = run_demo(engine, plan, second)
    assert again.layers == report.layers
    assert any("reusing demo:digits" in n for n in second.notes)
    assert any("(reused)" in n for n in second.notes)
    assert sum("reusing AM panels" in n for n in second.notes) == len(AM_UNITS)
    assert any(n.startswith("reusing 2-AFC study 'demo-2afc'") for n in second.notes)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM run")).scalar_one() == sum(kinds.values())


def test_the_demo_defaults_and_refuses_a_bad_split_before_training(engine: Engine) -> None:
    from catalogue.data import FASHION_MNIST_DIR
    from catalogue.errors import ConfigError
    from catalogue.pipeline.demo import choose_dataset

    installed = (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file()
    assert choose_dataset() == ("fashion-mnist-colours" if installed else "digits")
    assert DemoPlan(dataset="digits").split == "train"
    reporter = RecordingReporter()
    with pytest.raises(ConfigError, match="train or test split, not 'val'"):
        run_demo(engine, DemoPlan(dataset="digits", split="val"), reporter)
    assert reporter.steps == []  # nothing trained or written


def test_unitcat_demo_refuses_a_bad_split_in_one_line(database_url: str) -> None:
    from tests.cli import unitcat

    done = unitcat("demo", "--dataset", "digits", "--split", "val")
    assert done.returncode != 0
    assert "the demo scores the train or test split, not 'val'" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
