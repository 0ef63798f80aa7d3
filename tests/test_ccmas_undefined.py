"""CCMAS in a layer whose activations can be negative: undefined, with the reason, wherever
CCMAS is stored or shown — never a number outside [-1, 1].

The catalogue: an HDF5 store with a ReLU layer (fc7: a class-selective unit, noise, a dead
unit) and a layer of logits (fc8: four units shifted above 0, whose CCMAS alone would look
fine, and two plain logits, whose CCMAS alone would run past 1), scored by the real
pipeline in blocks of two units (so the logits' negative values lie in another block than
the shifted units), with a class group and a chance baseline.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from rich.console import Console
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool
from streamlit.testing.v1 import AppTest

from catalogue.db.identities import LayerSpec, register_dataset, register_model
from catalogue.db.runs import recorded_run
from catalogue.measures import CORRELATED_MEASURES
from catalogue.pipeline.baseline import chance_baseline
from catalogue.pipeline.scoring import score_extraction
from catalogue.query.layers import (
    measure_values,
    pooled_correlations,
    undefined_counts,
    undefined_note,
)
from catalogue.query.report import run_report
from catalogue.store import ActivationStore
from catalogue.store import LayerSpec as StoreLayer

N_CLASSES, PER_CLASS = 6, 30
CLASSES = [f"class {c}" for c in range(N_CLASSES)]
NEGATIVE = "activations can be negative"


@dataclass(frozen=True)
class LogitCatalogue:
    url: str
    score_run: int
    chance_run: int
    unit_ids: dict[tuple[str, int], int]
    activations: dict[str, np.ndarray]
    labels: np.ndarray  # of the scored (correct) images


def _activations(labels: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(24)
    n = labels.size
    fc7 = np.maximum(rng.normal(size=(n, 4)), 0).round(2)
    fc7[:, 0] += 3.0 * (labels == 2)  # selective for class 2
    fc7[:, 3] = 0.0  # dead
    onehot = labels[:, None] == (np.arange(6) % N_CLASSES)
    fc8 = rng.normal(size=(n, 6)) + 3.0 * onehot
    fc8[:, :4] += 8.0  # positive on every image: alone, a CCMAS in [0, 1]
    fc8[:, 4:] -= 1.0  # logits mostly below 0: alone, a CCMAS of about 3
    return {"fc7": fc7.astype(np.float32), "fc8": fc8.astype(np.float32)}


def build(engine: Engine, url: str, folder: Path) -> LogitCatalogue:
    labels = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    predictions = labels.copy()
    predictions[::7] = (labels[::7] + 1) % N_CLASSES
    acts = _activations(labels)
    keys = [f"c{i}" for i in range(N_CLASSES)]
    path = folder / "logits.h5"
    layers = [("fc7", "fc", 4), ("fc8", "fc", 6)]
    with ActivationStore.create(
        path,
        [StoreLayer(n, u, kind=k, position=i) for i, (n, k, u) in enumerate(layers)],
        class_keys=keys,
        class_names=CLASSES,
        params={"model": "logitnet"},
        chunk_rows=64,
    ) as store:
        store.append(
            acts,
            labels=labels,
            predictions=predictions,
            image_keys=[f"img{i}" for i in range(labels.size)],
        )
        store.finish()
    with engine.begin() as conn:
        model = register_model(
            conn,
            name="logitnet",
            architecture="toy",
            weights="random",
            checksum="logits",
            layers=[LayerSpec(n, k, u, i) for i, (n, k, u) in enumerate(layers)],
        )
        dataset = register_dataset(
            conn, name="six", kind="test", source=None, class_keys=keys, class_names=CLASSES
        )
    with recorded_run(
        engine, "extract", {"model": "logitnet"}, model_id=model.id, dataset_id=dataset.id,
        h5_path=str(path),
    ) as extract:  # fmt: skip
        pass
    score = score_extraction(engine, extract.id, groups={"pair": ["c0", "c1"]}, block_units=2)
    chance = chance_baseline(engine, score.run_id, repeats=2, block_units=2)
    unit_ids = {
        (layer, i): int(uid)
        for layer, record in model.layers.items()
        for i, uid in enumerate(record.unit_ids)
    }
    correct = predictions == labels
    return LogitCatalogue(
        url,
        score.run_id,
        chance.run_id,
        unit_ids,
        {k: v[correct] for k, v in acts.items()},
        labels[correct],
    )


@pytest.fixture(scope="module")
def logits(
    database_factory: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> LogitCatalogue:
    url = database_factory()
    engine = create_engine(url, poolclass=NullPool)
    built = build(engine, url, tmp_path_factory.mktemp("logits"))
    engine.dispose()
    return built


@pytest.fixture
def logit_engine(logits: LogitCatalogue) -> Iterator[Engine]:
    engine = create_engine(logits.url, poolclass=NullPool)
    yield engine
    engine.dispose()


def _ratio(values: np.ndarray, labels: np.ndarray) -> float:
    """CCMAS's formula without the rule, literally."""
    x = values.astype(np.float64)
    means = np.array([x[labels == c].mean() for c in range(N_CLASSES)])
    c = int(np.argmax(means))
    mu_in, mu_out = x[labels == c].mean(), x[labels != c].mean()
    return float((mu_in - mu_out) / (mu_in + mu_out))


def test_a_layer_of_logits_stores_no_ccmas_and_says_why(
    logits: LogitCatalogue, logit_engine: Engine
) -> None:
    fc8 = logits.activations["fc8"]
    ratios = [_ratio(fc8[:, u], logits.labels) for u in range(6)]
    assert all(0 <= r <= 1 for r in ratios[:4])  # the shifted units alone look fine
    assert max(ratios[4:]) > 1  # the plain logits run past CCMAS's range

    with logit_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT layer, unit, ccmas, ccmas_class, ccmas_undefined, constant "
                "FROM unit_catalogue WHERE run_id = :r ORDER BY layer, unit"
            ),
            {"r": logits.score_run},
        ).all()
        stored = conn.execute(
            text(
                "SELECT l.name, um.ccmas_undefined, count(*) FROM unit_metrics um "
                "JOIN unit u ON u.id = um.unit_id JOIN layer l ON l.id = u.layer_id "
                "WHERE um.run_id = :r GROUP BY 1, 2 ORDER BY 1, 2"
            ),
            {"r": logits.score_run},
        ).all()
        groups = conn.execute(
            text(
                "SELECT l.name, g.ccmas FROM unit_group_metrics g JOIN unit u ON u.id = g.unit_id "
                "JOIN layer l ON l.id = u.layer_id WHERE g.run_id = :r ORDER BY 1, u.unit_index"
            ),
            {"r": logits.score_run},
        ).all()
        chance = conn.execute(
            text(
                "SELECT l.name, count(cm.ccmas), count(*) FILTER (WHERE cm.ccmas_undefined = 1), "
                "count(*) FROM chance_metrics cm JOIN unit u ON u.id = cm.unit_id "
                "JOIN layer l ON l.id = u.layer_id WHERE cm.run_id = :r GROUP BY 1 ORDER BY 1"
            ),
            {"r": logits.chance_run},
        ).all()
        summary = conn.execute(
            text(
                "SELECT layer, n, max FROM layer_summary WHERE run_id = :r AND measure = 'ccmas' "
                "ORDER BY layer"
            ),
            {"r": logits.score_run},
        ).all()
        pairs = conn.execute(
            text(
                "SELECT layer, n FROM measure_correlations WHERE run_id = :r "
                "AND measure_a = 'ccmas' AND measure_b = 'precision' ORDER BY layer"
            ),
            {"r": logits.score_run},
        ).all()
    by_unit = {(r.layer, r.unit): r for r in rows}
    for u in range(6):
        row = by_unit[("fc8", u)]
        assert (row.ccmas, row.ccmas_class, row.ccmas_undefined) == (None, None, NEGATIVE)
    for u in range(3):  # the ReLU layer keeps CCMAS, in [0, 1], with the class of highest mean
        row = by_unit[("fc7", u)]
        assert row.ccmas_undefined is None and 0 <= row.ccmas <= 1
        assert row.ccmas == pytest.approx(_ratio(logits.activations["fc7"][:, u], logits.labels))
    assert by_unit[("fc7", 0)].ccmas_class == "class 2"
    dead = by_unit[("fc7", 3)]
    assert (dead.ccmas, dead.ccmas_undefined, dead.constant) == (None, "no positive mean", True)
    assert [tuple(r) for r in stored] == [("fc7", 3, 1), ("fc7", None, 3), ("fc8", 1, 6)]
    assert all(c is None for layer, c in groups if layer == "fc8")
    fc7_groups = [c for layer, c in groups if layer == "fc7"]
    assert all(-1 <= c <= 1 for c in fc7_groups[:3]) and fc7_groups[3] is None  # dead: 0/0
    assert [tuple(r) for r in chance] == [("fc7", 6, 0, 8), ("fc8", 0, 12, 12)]
    # the summary and the correlations are over the units with a CCMAS: none in fc8
    assert [(r.layer, r.n) for r in summary] == [("fc7", 3), ("fc8", 0)]
    assert summary[0].max <= 1 and summary[1].max is None
    assert [tuple(r) for r in pairs] == [("fc7", 3)]


def test_no_stored_ccmas_leaves_its_range_and_no_correlation_pools_an_undefined_one(
    logits: LogitCatalogue, logit_engine: Engine
) -> None:
    """Every CCMAS the catalogue stores for the logit catalogue (units, chance repeats, class
    groups) is in [-1, 1] or NULL with a reason; the correlations over all layers (the
    Measures page's) pair CCMAS only over the units that have one: fc7's, so they equal
    fc7's own row of `measure_correlations` and a literal correlation of fc7's values."""
    with logit_engine.connect() as conn:
        outside = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT ccmas FROM unit_metrics UNION ALL "
                "SELECT ccmas FROM chance_metrics UNION ALL SELECT ccmas FROM unit_group_metrics"
                ") c WHERE ccmas = 'NaN' OR ccmas < -1 OR ccmas > 1"
            )
        ).scalar_one()
        unexplained = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT ccmas, ccmas_undefined FROM unit_metrics "
                "UNION ALL SELECT ccmas, ccmas_undefined FROM chance_metrics) c "
                "WHERE ccmas IS NULL AND ccmas_undefined IS NULL"
            )
        ).scalar_one()
        fc7 = conn.execute(
            text(
                "SELECT n, pearson, spearman FROM measure_correlations WHERE run_id = :r "
                "AND layer = 'fc7' AND measure_a = 'ccmas' AND measure_b = 'precision'"
            ),
            {"r": logits.score_run},
        ).one()
        defined = pd.read_sql_query(
            text(
                "SELECT ccmas, precision FROM unit_catalogue WHERE run_id = :r "
                "AND constant IS NOT TRUE AND ccmas IS NOT NULL"
            ),
            conn,
            params={"r": logits.score_run},
        )
    assert (outside, unexplained) == (0, 0)
    values = measure_values(logit_engine, logits.score_run, CORRELATED_MEASURES)
    assert set(values["layer"]) == {"fc7", "fc8"}  # fc8's units are there, for other pairs
    pooled = pooled_correlations(values).set_index(["measure_a", "measure_b"])
    pair = pooled.loc[("ccmas", "precision")]
    assert int(pair["n"]) == fc7.n == len(defined) == 3
    literal = float(np.corrcoef(defined["ccmas"], defined["precision"])[0, 1])
    assert pair["pearson"] == pytest.approx(literal) and fc7.pearson == pytest.approx(literal)
    assert pair["spearman"] == pytest.approx(fc7.spearman)
    # fc8's units pool into the pairs of the measures they do have
    assert int(pooled.loc[("max_informedness", "precision"), "n"]) == len(values) > 3


def test_the_report_and_the_counts_say_how_many_units_and_why(
    logits: LogitCatalogue, logit_engine: Engine
) -> None:
    counts = undefined_counts(logit_engine, logits.score_run)
    assert counts[["layer", "measure", "reason", "n"]].values.tolist() == [
        ["fc8", "ccmas", NEGATIVE, 6]
    ]
    every = undefined_counts(logit_engine, logits.score_run, include_constant=True)
    assert every[["layer", "reason", "n"]].values.tolist() == [
        ["fc7", "no positive mean", 1],
        ["fc8", NEGATIVE, 6],
    ]
    assert undefined_note(counts, "ccmas") == (
        f"CCMAS is undefined for 6 units, left out: fc8 6 ({NEGATIVE})."
    )
    assert undefined_note(counts, "ccmas", layer="fc7") is None

    report = run_report(logit_engine, "logitnet", logits.score_run)
    by_layer = {r["layer"]: r for r in report.layers}
    assert by_layer["fc8"]["n_ccmas"] is None  # not "0 detectors": not measured there
    assert by_layer["fc7"]["n_ccmas"] == sum(
        _ratio(logits.activations["fc7"][:, u], logits.labels) > 0.9 for u in range(3)
    )

    from ingest import output, reporting

    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=False)
    original = output.console
    output.console = console
    try:
        reporting.print_report(report, 1.0)
    finally:
        output.console = original
    printed = buffer.getvalue()
    assert f"CCMAS undefined: fc8 6 ({NEGATIVE})." in printed


@pytest.fixture
def app(logits: LogitCatalogue, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    monkeypatch.setenv("DATABASE_URL", logits.url)
    app_file = Path(__file__).resolve().parents[1] / "ui" / "app.py"

    def run(page: str, **query: object) -> AppTest:
        at = AppTest.from_file(str(app_file), default_timeout=60)
        for name, value in query.items():
            at.query_params[name] = str(value)
        at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def test_the_pages_say_why_a_unit_has_no_ccmas(
    logits: LogitCatalogue, app: Callable[..., AppTest]
) -> None:
    unit = logits.unit_ids[("fc8", 4)]
    at = app("app_pages/unit.py", unit_id=unit, run_id=logits.score_run)
    table = next(d.value for d in at.dataframe if "Measure" in d.value.columns)
    values = dict(zip(table["Measure"], table["Value"], strict=True))
    assert [m for m, v in values.items() if v == "undefined"] == ["CCMAS"]
    text_ = _texts(at)
    assert f"CCMAS is undefined for this unit: {NEGATIVE}." in text_
    assert f"ccmas undefined ({NEGATIVE})" in text_
    assert "undefined for this unit" in text_
    assert "CCMAS of a class group is undefined too" in text_

    at = app("app_pages/layers.py", run_id=logits.score_run)
    assert f"CCMAS is undefined for 6 units, left out: fc8 6 ({NEGATIVE})." in _texts(at)
    boxes = [
        frame
        for element in at.get("vega_lite_chart")
        for frame in (
            pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in element.proto.datasets
        )
        if {"measure", "layer", "max"} <= set(frame.columns)
    ]
    assert boxes  # the box plot of the measures per layer
    ccmas = pd.concat(boxes).query("measure == 'ccmas'")
    assert set(ccmas["layer"]) <= {"fc7", "fc8"} and "fc7" in set(ccmas["layer"])
    assert ccmas["max"].dropna().between(0, 1).all()  # no box outside CCMAS's range
    assert ccmas.loc[ccmas["layer"] == "fc8", "max"].isna().all()  # and none for fc8

    assert "fc8: CCMAS > 0.9 undefined (no bar)." in _texts(at)
    bars = [
        frame
        for element in at.get("vega_lite_chart")
        for frame in (
            pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in element.proto.datasets
        )
        if {"criterion", "layer", "share", "n_units"} <= set(frame.columns)
    ]
    assert bars  # the detector counts: no CCMAS bar (not 0) for fc8
    drawn = pd.concat(bars)
    assert not ((drawn["layer"] == "fc8") & drawn["criterion"].str.startswith("CCMAS")).any()
    assert ((drawn["layer"] == "fc7") & drawn["criterion"].str.startswith("CCMAS")).any()

    at = app("app_pages/measures.py", run_id=logits.score_run)
    assert f"CCMAS is undefined for 6 units, left out: fc8 6 ({NEGATIVE})." in _texts(at)

    at = app("app_pages/search.py", layer="fc8")
    grid = next(d.value for d in at.dataframe if "ccmas_undefined" in d.value.columns)
    assert set(grid["ccmas_undefined"]) == {NEGATIVE} and grid["ccmas"].isna().all()


@pytest.mark.browser
def test_in_chromium_a_logit_unit_and_the_layers_page_say_why_there_is_no_ccmas(
    logits: LogitCatalogue, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from tests.test_browser import CHROMIUM_FLAGS, _goto, _start_app, _stop, ensure_chromium

    process, url = _start_app(logits.url, tmp_path)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(ensure_chromium()), args=CHROMIUM_FLAGS
            )
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            unit = logits.unit_ids[("fc8", 5)]
            _goto(
                page,
                f"{url}/unit?unit_id={unit}&run_id={logits.score_run}",
                "logitnet · fc8 · unit 5",
                "unit-logit-ccmas",
            )
            body = page.locator("body").inner_text()
            assert f"CCMAS is undefined for this unit: {NEGATIVE}." in body
            assert body.count("is undefined for this unit") == 1  # CCMAS alone
            assert f"undefined for this unit: ccmas undefined ({NEGATIVE})" in body
            _goto(page, f"{url}/layers?run_id={logits.score_run}", "Layers", "layers-logits")
            body = page.locator("body").inner_text()
            assert f"CCMAS is undefined for 6 units, left out: fc8 6 ({NEGATIVE})." in body
            browser.close()
    finally:
        _stop(process)


def test_undefined_counts_of_a_run_without_reasons_are_empty(
    logits: LogitCatalogue, logit_engine: Engine
) -> None:
    frame = undefined_counts(logit_engine, 999_999)
    assert list(frame.columns) == ["model", "layer", "layer_position", "measure", "reason", "n"]
    assert frame.empty and undefined_note(frame, "ccmas") is None
    assert isinstance(frame, pd.DataFrame)
