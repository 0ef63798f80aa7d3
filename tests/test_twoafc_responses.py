"""2-AFC responses: imported in IMI's format all or nothing, recorded as given on the Rate
page, screened by the catch trials; the per-unit share correct and its Wilson interval
equal a hand computation, in `unit_catalogue` and `measure_correlations` too."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.errors import InputError
from catalogue.pipeline.twoafc.responses import import_responses
from catalogue.pipeline.twoafc.study import build_study, enrol, progress, record_response
from catalogue.query.twoafc import Trial, find_study, study_trials
from catalogue.twoafc.design import DesignOptions
from tests.cli import unitcat
from tests.twoafc_fixtures import TwoAFCCatalogue, build_twoafc_catalogue

Z = 1.959963984540054
HEADER = ["", "participant_id", "task_number", "corrected_trial_index", "choice", "correct",
          "confidence", "rt", "catch_trial", "is_demo"]  # fmt: skip
UNITS = [("conv5", None), ("fc6", [0, 1, 2, 3])]


@pytest.fixture(scope="module")
def afc(
    database_factory: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, TwoAFCCatalogue, str]]:
    url = database_factory()
    engine = create_engine(url, poolclass=NullPool)
    built = build_twoafc_catalogue(engine, tmp_path_factory.mktemp("afc"))
    yield engine, built, url
    engine.dispose()


def _study(engine: Engine, c: TwoAFCCatalogue, name: str) -> list[Trial]:
    built = build_study(
        engine, c.score_run, UNITS, name=name, options=DesignOptions(catch_trials=5, seed=1)
    )
    return study_trials(engine, built.study.id)


def _answers(trials: list[Trial], n_people: int, seed: int) -> list[dict]:
    """Seeded answers of `n_people` to every trial (main trials right with p = .7). Catch
    trials: p00 gets all 5 wrong and p04 2 (3/5 right: both fail the .8 bar); p03, p06 and
    p09 get 1 wrong (4/5 right: they pass); the others none."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_people):
        wrong_catch = 5 if i == 0 else (2 if i == 4 else (1 if i % 3 == 0 else 0))
        catch_seen = 0
        for t in trials:
            if t.catch:
                right = catch_seen >= wrong_catch
                catch_seen += 1
            else:
                right = bool(rng.random() < 0.7)
            rows.append({
                "participant_id": f"p{i:02d}", "task_number": t.task,
                "corrected_trial_index": t.position - 1, "choice": "b" if right else "a",
                "correct": "True" if right else "False", "confidence": int(rng.integers(1, 4)),
                "rt": round(float(rng.uniform(500, 4000)), 1),
                "catch_trial": "True" if t.catch else "False", "is_demo": "False",
            })  # fmt: skip
    return rows


def _write(path: Path, rows: list[dict], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore")
        writer.writeheader()
        for i, row in enumerate(rows):
            writer.writerow({"": i, **row})
        # a practice trial of IMI's experiment: skipped, whatever it names
        writer.writerow({"": len(rows), "participant_id": "p00", "task_number": 1,
                         "corrected_trial_index": 99, "choice": "b", "is_demo": "True"})  # fmt: skip
    return path


def _count(engine: Engine, study: str | None = None) -> int:
    sql = "SELECT count(*) FROM twoafc_response r JOIN twoafc_trial t ON t.id = r.trial_id"
    sql += " JOIN twoafc_study s ON s.id = t.study_id WHERE s.name = :s" if study else ""
    with engine.connect() as conn:
        return conn.execute(text(sql), {"s": study}).scalar_one()


def _wilson(k: int, n: int) -> tuple[float, float]:
    """By hand: (k + z²/2 ± z √(k(n−k)/n + z²/4)) / (n + z²)."""
    centre = k + Z * Z / 2
    half = Z * math.sqrt(k * (n - k) / n + Z * Z / 4)
    return max(0.0, (centre - half) / (n + Z * Z)), min(1.0, (centre + half) / (n + Z * Z))


def test_the_share_correct_and_its_interval_equal_a_hand_computation(afc, tmp_path) -> None:
    engine, c, _ = afc
    trials = _study(engine, c, "hand")
    rows = _answers(trials, 12, seed=4)
    done = import_responses(engine, find_study(engine, "hand"), _write(tmp_path / "r.csv", rows))
    assert done.n_responses == len(rows) == 12 * len(trials)
    assert done.failed_catch == ["p00", "p04"]  # 0/5 and 3/5 right; p03 (4/5) passes

    by_place = {(t.task, t.position): t for t in trials}
    counted: dict[int, list[bool]] = defaultdict(list)
    left_out: dict[int, int] = defaultdict(int)
    for r in rows:
        t = by_place[(r["task_number"], r["corrected_trial_index"] + 1)]
        if t.catch:
            continue
        if r["participant_id"] in ("p00", "p04"):
            left_out[t.unit_id] += 1
        else:
            counted[t.unit_id].append(r["choice"] == "b")
    with engine.connect() as conn:
        got = {r.unit_id: r for r in conn.execute(text("SELECT * FROM twoafc_unit_summary"))}
        catalogue = {
            r.unit_id: r
            for r in conn.execute(
                text("SELECT * FROM unit_catalogue WHERE run_id = :r"), {"r": c.score_run}
            )
        }
    assert set(got) == set(counted)
    for unit_id, answers in counted.items():
        k, n = sum(answers), len(answers)
        low, high = _wilson(k, n)
        scipy_ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        row = got[unit_id]
        assert (row.n_responses, row.n_correct, row.n_excluded) == (n, k, left_out[unit_id])
        assert row.n_participants == 10
        assert row.accuracy == pytest.approx(k / n, abs=1e-15)
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), abs=1e-12)
        assert (row.ci_low, row.ci_high) == pytest.approx((scipy_ci.low, scipy_ci.high), abs=1e-9)
        cat = catalogue[unit_id]
        assert cat.human_2afc_accuracy == row.accuracy and cat.human_2afc_n == n
        assert (cat.human_2afc_ci_low, cat.human_2afc_ci_high) == (row.ci_low, row.ci_high)
    fc6_5 = catalogue[c.unit_ids[("fc6", 5)]]
    assert fc6_5.human_2afc_accuracy is None and fc6_5.human_2afc_n is None


def test_measure_correlations_pair_2afc_accuracy_with_the_measures(afc, tmp_path) -> None:
    """Needs the "hand" study's answers (the test above)."""
    engine, c, _ = afc
    with engine.connect() as conn:
        units = conn.execute(
            text(
                "SELECT layer, precision, human_2afc_accuracy FROM unit_catalogue "
                "WHERE run_id = :r AND human_2afc_accuracy IS NOT NULL AND constant IS NOT TRUE"
            ),
            {"r": c.score_run},
        ).all()
        pairs = {
            r.layer: r
            for r in conn.execute(
                text(
                    "SELECT * FROM measure_correlations WHERE run_id = :r "
                    "AND measure_a = 'human_2afc_accuracy' AND measure_b = 'precision'"
                ),
                {"r": c.score_run},
            )
        }
    assert set(pairs) == {"conv5", "fc6"}
    for layer, pair in pairs.items():
        mine = [(u.human_2afc_accuracy, u.precision) for u in units if u.layer == layer]
        assert pair.n == len(mine) == 4
        x, y = np.array(mine).T
        if np.std(x) > 0 and np.std(y) > 0:
            assert pair.pearson == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-9)


def _refused(
    engine: Engine, c: TwoAFCCatalogue, tmp_path: Path, rows: list[dict], match: str, header=HEADER
) -> None:
    before = _count(engine)
    with pytest.raises(InputError, match=match) as info:
        import_responses(
            engine, find_study(engine, "faults"), _write(tmp_path / "bad.csv", rows, header)
        )
    assert "\n" not in str(info.value) and "nothing imported" in str(info.value)
    assert _count(engine) == before


def test_a_bad_response_file_imports_nothing(afc, tmp_path) -> None:
    engine, c, _ = afc
    trials = _study(engine, c, "faults")
    good = _answers(trials, 3, seed=2)
    main = next(i for i, r in enumerate(good) if r["catch_trial"] == "False")
    unit_header = [*HEADER, "model", "layer", "channel"]

    def edited(i: int, **change: object) -> list[dict]:
        rows = [dict(r) for r in good]
        rows[i].update(change)
        return rows

    _refused(engine, c, tmp_path, edited(main, choice="c"), "line 2: choice 'c' is not a")
    _refused(engine, c, tmp_path, edited(main, choice="a", correct="True"), "disagree")
    _refused(engine, c, tmp_path, edited(main, confidence=4), "confidence 4 is not 1, 2 or 3")
    _refused(
        engine, c, tmp_path, edited(main, corrected_trial_index=40), "has no trial 41 in task 1"
    )
    _refused(engine, c, tmp_path, edited(main, catch_trial="True"), "is not a catch trial")
    _refused(
        engine,
        c,
        tmp_path,
        edited(main, model="afcnet", layer="fc7", channel=0),
        "no unit afcnet fc7 0",
        unit_header,
    )
    t = next(
        t for t in trials if (t.task, t.position - 1) == (1, good[main]["corrected_trial_index"])
    )
    other = 1 if t.layer == "conv5" and t.unit == 0 else 0
    _refused(
        engine,
        c,
        tmp_path,
        edited(main, model="afcnet", layer="conv5", channel=other),
        f"shows afcnet {t.layer} unit {t.unit}",
        unit_header,
    )
    _refused(engine, c, tmp_path, [*good, good[main]], "answers task 1 trial .* twice")
    no_catch = [
        r for r in good if not (r["participant_id"] == "p01" and r["catch_trial"] == "True")
    ]
    _refused(engine, c, tmp_path, no_catch, "'p01' answered trial .* but not its catch trial")
    _refused(
        engine,
        c,
        tmp_path,
        good,
        "lacks the column.*corrected_trial_index",
        [h for h in HEADER if h != "corrected_trial_index"],
    )
    path = _write(tmp_path / "good.csv", good)
    assert import_responses(engine, find_study(engine, "faults"), path).n_responses == len(good)
    _refused(engine, c, tmp_path, good, "answered task 1 trial .* before")
    assert _count(engine, "faults") == len(good)


def test_the_cli_imports_and_refuses_with_one_line(afc, tmp_path) -> None:
    engine, c, url = afc
    trials = _study(engine, c, "cli")
    env = {"DATABASE_URL": url}
    rows = _answers(trials, 2, seed=8)
    bad = [dict(r) for r in rows]
    bad[3]["choice"] = "maybe"
    result = unitcat(
        "ingest", "study", "responses", "cli", str(_write(tmp_path / "bad.csv", bad)), env=env
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "choice 'maybe'" in lines[0] and "nothing imported" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert _count(engine, "cli") == 0
    result = unitcat(
        "ingest", "study", "responses", "cli", str(_write(tmp_path / "ok.csv", rows)), env=env
    )
    assert result.returncode == 0, result.stderr
    assert f"imported {len(rows)} responses by 2 participant(s)" in result.stdout
    assert "p00" in result.stdout  # fails the catch trials, named
    result = unitcat("ingest", "study", "show", "nope", env=env)
    assert result.returncode == 2 and "no 2-AFC study named 'nope'" in result.stderr


def test_the_rate_page_protocol_deals_tasks_and_resumes(afc) -> None:
    engine, c, _ = afc
    build_study(engine, c.score_run, UNITS, name="live", options=DesignOptions(task_size=4, seed=2))
    study = find_study(engine, "live")
    assert study.n_tasks == 2
    a = enrol(engine, study, " ana ")
    b = enrol(engine, study, "ben")
    assert (a.code, a.task, b.task) == ("ana", 1, 2)
    assert enrol(engine, study, "ana").task == 1  # known: the same task again
    state = progress(engine, a)
    first = state.next
    assert first is not None and first.position == 1 and state.n_done == 0
    record_response(engine, a, first, chose_max=True, confidence=3, rt_ms=1234.5)
    with pytest.raises(InputError, match="answered this trial already"):
        record_response(engine, a, first, chose_max=False)
    with pytest.raises(InputError, match="not in the participant's task"):
        record_response(engine, b, first, chose_max=True)
    again = progress(engine, enrol(engine, study, "ana"))  # a reload resumes
    assert again.n_done == 1 and again.next is not None and again.next.position == 2
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT chose_max, confidence, rt_ms, source FROM twoafc_response WHERE trial_id = :t"
            ),
            {"t": first.id},
        ).one()
    assert tuple(row) == (True, 3, 1234.5, "ui")
