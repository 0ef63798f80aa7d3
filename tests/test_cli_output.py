"""Output that fits where it goes: whole headers and one line per row in a file or a pipe,
and `--format csv|tsv|json` rows that parse back to what the catalogue holds."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime

import pytest
from sqlalchemy import Engine

from catalogue.db.runs import recorded_run
from catalogue.query.report import HEADLINE_SQL, RunReport
from catalogue.query.runs import run_records
from ingest.output import OutputFormat
from ingest.reporting import COUNTED, print_report
from tests.cli import unitcat

RUN_HEADERS = (
    "id", "kind", "label", "status", "model", "dataset", "from run", "started", "took",
    "error or owner",
)  # fmt: skip
LONG_ERROR = "RuntimeError: disk full" + " and a long explanation of it" * 6


def record_runs(engine: Engine) -> None:
    """Three runs with long labels, one of them failed with an error longer than a terminal."""
    for i, kind in enumerate(("extract", "score", "score")):
        try:
            with recorded_run(engine, kind, {"i": i}, label=f"a label long enough to wrap {i}"):
                if i == 2:
                    raise RuntimeError(LONG_ERROR.removeprefix("RuntimeError: "))
        except RuntimeError:
            pass


def piped(*args: str, database_url: str) -> str:
    """`unitcat ARGS` run from an 80-column terminal with stdout a pipe (as `> file` does)."""
    result = unitcat(*args, env={"DATABASE_URL": database_url, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_piped_runs_shows_every_header_whole_and_a_row_per_line(
    engine: Engine, database_url: str
) -> None:
    record_runs(engine)
    out = piped("runs", database_url=database_url)
    assert "…" not in out
    header = next(line for line in out.splitlines() if "error or owner" in line)
    cells = [cell.strip() for cell in header.strip("┃ ").split("┃")]
    assert cells == list(RUN_HEADERS)
    for record in run_records(engine):
        (line,) = [li for li in out.splitlines() if record["label"] in li]
        assert record["status"] in line and record["kind"] in line
        assert record["started_at"].strftime("%Y-%m-%d %H:%M") in line
    failed = next(li for li in out.splitlines() if "wrap 2" in li)
    assert LONG_ERROR[:80] in failed  # the table's note: the first 80 characters


def _runs_expected(engine: Engine) -> list[dict]:
    return [
        {
            "id": r["id"],
            "kind": r["kind"],
            "label": r["label"],
            "status": r["status"],
            "parent_id": r["parent_id"],
            "started_at": r["started_at"],
            "duration_s": r["duration_s"],
            "error": r["error"],
            "owner_pid": r["owner_pid"],
        }
        for r in run_records(engine)
    ]


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_runs_as_csv_or_tsv_parse_back_to_the_runs(
    fmt: str, engine: Engine, database_url: str
) -> None:
    record_runs(engine)
    out = piped("runs", "--format", fmt, database_url=database_url)
    rows = list(csv.DictReader(io.StringIO(out), delimiter="," if fmt == "csv" else "\t"))
    parsed = [
        {
            "id": int(r["id"]),
            "kind": r["kind"],
            "label": r["label"],
            "status": r["status"],
            "parent_id": int(r["parent_id"]) if r["parent_id"] else None,
            "started_at": datetime.fromisoformat(r["started_at"]),
            "duration_s": float(r["duration_s"]),
            "error": r["error"] or None,
            "owner_pid": int(r["owner_pid"]),
        }
        for r in rows
    ]
    assert parsed == _runs_expected(engine)
    assert [r["error"] for r in parsed if r["error"]] == [LONG_ERROR]  # whole, not cut at 80


def test_runs_as_json_parse_back_to_the_runs(engine: Engine, database_url: str) -> None:
    record_runs(engine)
    out = json.loads(piped("runs", "--format", "json", database_url=database_url))
    expected = _runs_expected(engine)
    parsed = [
        {k: datetime.fromisoformat(r[k]) if k == "started_at" else r[k] for k in expected[0]}
        for r in out
    ]
    assert parsed == expected
    assert {r["model"] for r in out} == {None}


def test_no_runs_is_an_empty_list_for_programs(database_url: str) -> None:
    assert json.loads(piped("runs", "--format", "json", database_url=database_url)) == []
    csv_out = piped("runs", "--format", "csv", database_url=database_url)
    assert csv_out.splitlines() == [
        "id,kind,label,status,model,dataset,parent_id,started_at,finished_at,duration_s,"
        "error,owner_host,owner_pid"
    ]
    assert "no runs yet" in piped("runs", database_url=database_url)


STATEMENT = (
    "SELECT 1 AS n, 'a,b' AS comma, NULL::integer AS nothing, 0.1::float8 AS x, "
    "'NaN'::float8 AS nan, 'tab\there' AS tab, true AS yes"
)


def test_query_rows_in_each_format_parse_back(database_url: str) -> None:
    (row,) = json.loads(piped("query", STATEMENT, "--format", "json", database_url=database_url))
    assert row == {
        "n": 1, "comma": "a,b", "nothing": None, "x": 0.1, "nan": None, "tab": "tab\there",
        "yes": True,
    }  # fmt: skip
    (tsv,) = csv.DictReader(
        io.StringIO(piped("query", STATEMENT, "--format", "tsv", database_url=database_url)),
        delimiter="\t",
    )
    assert tsv == {
        "n": "1", "comma": "a,b", "nothing": "", "x": "0.1", "nan": "NaN", "tab": "tab\there",
        "yes": "t",
    }  # fmt: skip
    csv_flag = piped("query", STATEMENT, "--csv", database_url=database_url)
    assert csv_flag == piped("query", STATEMENT, "--format", "csv", database_url=database_url)


def test_piped_query_table_keeps_long_headers_whole(database_url: str) -> None:
    names = [f"a_rather_long_column_name_number_{i}" for i in range(6)]
    out = piped(
        "query", "SELECT " + ", ".join(f"{i} AS {n}" for i, n in enumerate(names)),
        database_url=database_url,
    )  # fmt: skip
    assert "…" not in out
    header = next(line for line in out.splitlines() if names[0] in line)
    assert all(name in header for name in names)
    assert out.splitlines()[-1] == "1 row"


def test_query_json_refuses_two_columns_of_one_name(database_url: str) -> None:
    result = unitcat("query", "SELECT 1, 2", "--format", "json", env={"DATABASE_URL": database_url})
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "more than one column named '?column?'" in line and "AS name" in line


# ------------------------------------------------------------ the demo's and the paper's report


def _report(misleading: int = 1) -> RunReport:
    def counts(base: int) -> dict:
        return {
            c.count_column: (None if c.key == "iou" else base + i) for i, c in enumerate(COUNTED)
        }

    layers = [
        {"layer": "conv1", "n_units": 64, "n_constant": 0, **counts(0),
         "median_max_informedness": 0.123, "median_false_alarm_rate": float("nan")},
        {"layer": "fc6", "n_units": 4096, "n_constant": 17, **counts(10),
         "median_max_informedness": 0.5, "median_false_alarm_rate": 0.93},
    ]  # fmt: skip
    unit = {"layer": "fc6", "unit": 7, "precision": 0.9, "precision_class": "a very long class name",
            "false_alarm_rate": 0.95, "max_informedness": 0.2, "recall_at_mi": 0.4}  # fmt: skip
    return RunReport(
        model="demo:fashion-mnist-colours",
        layers=layers,
        misleading=[unit] * misleading,
        n_misleading=misleading,
        worst_precision_detectors=[{**unit, "unit": 8}],
        undefined=[UNDEFINED],
    )


#: a layer of logits: CCMAS undefined for its units (`catalogue.query.layers.undefined_counts`)
UNDEFINED = {
    "model": "demo:fashion-mnist-colours",
    "layer": "fc6",
    "layer_position": 1,
    "measure": "ccmas",
    "reason": "activations can be negative",
    "n": 4079,
}


def test_report_in_a_file_keeps_every_header_whole(capsys: pytest.CaptureFixture[str]) -> None:
    print_report(_report(), 61.0)
    out = capsys.readouterr().out
    assert "…" not in out
    layer_header = next(line for line in out.splitlines() if "median max informedness" in line)
    for label in (*(c.label for c in COUNTED), "units", "constant", "median false-alarm rate"):
        assert label in layer_header, label
    assert sum("conv1" in line for line in out.splitlines()) == 1  # one line per layer
    assert HEADLINE_SQL.splitlines()[-1] in out.splitlines()
    assert "CCMAS undefined: fc6 4,079 (activations can be negative)." in out.splitlines()
    assert "a very long class name" in next(li for li in out.splitlines() if "│ fc6   │ 7 " in li)


@pytest.mark.parametrize("misleading", [0, 1])
def test_report_as_json_holds_the_reports_rows(
    misleading: int, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _report(misleading)
    print_report(report, 61.04, OutputFormat.json)
    data = json.loads(capsys.readouterr().out)
    nan_free = [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in report.layers
    ]
    assert data["layers"] == nan_free
    assert data["misleading"] == report.misleading
    assert data["worst_precision_detectors"] == report.worst_precision_detectors
    assert data["undefined"] == [{k: UNDEFINED[k] for k in ("layer", "measure", "reason", "n")}]
    assert data["n_misleading"] == misleading
    assert (data["model"], data["headline_sql"], data["seconds"]) == (
        report.model, HEADLINE_SQL, 61.0,
    )  # fmt: skip


def test_report_as_csv_sections_parse_back(capsys: pytest.CaptureFixture[str]) -> None:
    report = _report()
    print_report(report, 5.0, OutputFormat.csv)
    head, *tables = capsys.readouterr().out.split("\n\n")
    values = dict(line.removeprefix("# ").split(": ", 1) for line in head.splitlines())
    assert values["model"] == report.model and values["n_misleading"] == "1"
    assert values["headline_sql"] == " ".join(HEADLINE_SQL.split())
    sections = {t.splitlines()[0].removeprefix("# "): t.splitlines()[1:] for t in tables}
    assert list(sections) == ["layers", "misleading", "worst_precision_detectors", "undefined"]
    assert list(csv.DictReader(sections["undefined"])) == [
        {"layer": "fc6", "measure": "ccmas", "reason": "activations can be negative", "n": "4079"}
    ]
    layers = list(csv.DictReader(sections["layers"]))
    assert [r["layer"] for r in layers] == ["conv1", "fc6"]
    for row, expected in zip(layers, report.layers, strict=True):
        for c in COUNTED:
            value = expected[c.count_column]
            assert row[c.count_column] == ("" if value is None else str(value))
    assert layers[0]["median_false_alarm_rate"] == "NaN"
    (unit,) = list(csv.DictReader(sections["misleading"]))
    assert unit["precision_class"] == "a very long class name" and unit["unit"] == "7"


def test_a_piped_ingest_table_is_drawn_whole_on_a_narrow_terminal(database_url: str) -> None:
    """The ingest commands' tables (layers, AM panels, ablation, baselines, dissection, the
    2-AFC study) go through the same full-width drawing as `runs` and `query`."""
    from catalogue.models import list_layers, load_model

    result = unitcat(
        "ingest", "layers", "resnet18", "--weights", "none",
        env={"DATABASE_URL": database_url, "COLUMNS": "40"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "…" not in out
    header = next(line for line in out.splitlines() if "output shape" in line)
    cells = [cell.strip() for cell in header.strip("┃ ").split("┃")]
    assert cells == ["#", "layer", "kind", "output shape", "units", "default"]
    rows = [
        [cell.strip() for cell in line.strip("│ ").split("│")]
        for line in out.splitlines()
        if line.startswith("│")
    ]
    assert [row[1:5] for row in rows] == [
        [layer.name, layer.kind, " × ".join(map(str, layer.output_shape)), f"{layer.n_units:,}"]
        for layer in list_layers(load_model("resnet18", weights="none"))
    ]
