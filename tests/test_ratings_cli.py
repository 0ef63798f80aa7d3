"""`unitcat ingest ratings` and `analyse-ratings` through the real executable, on a real catalogue."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.catalogue_builders import register_toy
from tests.cli import unitcat

HEADER = "participant,model,layer,unit,answer,estimate,names"

# conv5 unit 0: 5 of 5 say yes (consensus); four name a dog, one a cat.
# conv5 unit 1: 2 of 5 yes. fc6 unit 2: 1 of 3 yes.
GOOD = [
    "p1,toy,conv5,0,yes,80-100,dog",
    "p2,toy,conv5,0,yes,60-80%,Dogs;puppy",
    "p3,toy,conv5,0,yes,80-100,dog",
    "p4,toy,conv5,0,yes,80-100,cat",
    "p5,toy,conv5,0,yes,40-60,dog",
    "p1,toy,conv5,1,no,,",
    "p2,toy,conv5,1,yes,0-20,fish",
    "p3,toy,conv5,1,no,,",
    "p4,toy,conv5,1,yes,,",
    "p5,toy,conv5,1,no,,",
    "p1,toy,fc6,2,no,,",
    "p2,toy,fc6,2,no,,",
    "p3,toy,fc6,2,yes,20-40,tree",
]


def _csv(tmp_path: Path, lines: list[str], name: str = "ratings.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _literal_share_yes(lines: list[str], layer: str) -> tuple[float, float | None]:
    """Table 1a by hand: mean over units of their share of yes, SE = sample SD / √units."""
    answers: dict[int, list[bool]] = defaultdict(list)
    for line in lines:
        _, _, lay, unit, answer, _, _ = line.split(",")
        if lay == layer:
            answers[int(unit)].append(answer == "yes")
    shares = [sum(a) / len(a) for a in answers.values()]
    mean = sum(shares) / len(shares)
    if len(shares) < 2:
        return mean, None
    sd = math.sqrt(sum((s - mean) ** 2 for s in shares) / (len(shares) - 1))
    return mean, sd / math.sqrt(len(shares))


def _row(stdout: str, layer: str) -> str:
    rows = [line for line in stdout.splitlines() if re.search(rf"\btoy\b.*\b{layer}\b", line)]
    assert len(rows) == 1, stdout
    return rows[0]


def test_import_prints_counts_and_table_1(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    register_toy(engine)
    result = unitcat(
        "ingest", "ratings", str(_csv(tmp_path, GOOD)), "--no-wordnet",
        env={"DATABASE_URL": database_url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "imported 13 ratings by 5 participants of 3 units" in out
    assert "analysed 3 rated units" in out and "plain words (no WordNet)" in out
    assert "WordNet is not available" in out  # says what the fallback means

    conv5 = _row(out, "conv5")
    share, se = _literal_share_yes(GOOD, "conv5")
    assert (share, se) == pytest.approx((0.7, 0.3))
    assert f"{share:.1%} (±{se:.1%})" in conv5  # (a) 70.0% (±30.0%)
    assert "50.0% (±35.4%)" in conv5  # (b) one of two units, SE √(.5·.5/2)
    # (c) unit 0's named raters: dog, dogs/puppy, dog, cat, dog → 6 of 10 pairs agree
    assert "60.0%" in conv5
    fc6 = _row(out, "fc6")
    share, se = _literal_share_yes(GOOD, "fc6")
    assert se is None and f"{share:.1%}" in fc6  # one unit: no SE

    assert _count(engine, "rating") == 13
    with engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT r.estimate, r.names FROM rating r JOIN participant p ON p.id = r.participant_id "
                "JOIN unit u ON u.id = r.unit_id WHERE p.code = 'p2' AND u.unit_index = 0"
            )
        ).one()
        analysed = conn.execute(text("SELECT count(*) FROM unit_rating_analysis")).scalar_one()
    assert tuple(stored) == ("60-80", ["dogs", "puppy"])
    assert analysed == 3

    again = unitcat(
        "ingest", "ratings", str(_csv(tmp_path, GOOD)), "--no-wordnet",
        env={"DATABASE_URL": database_url},
    )  # fmt: skip
    assert again.returncode != 0
    assert "line 2: participant 'p1' already rated toy conv5 unit 0" in again.stderr
    assert _count(engine, "rating") == 13


def test_every_kind_of_bad_line_is_named_and_nothing_is_imported(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    register_toy(engine)
    lines = [
        "p1,toy,conv5,0,yes,80-100,dog",  # line 2: fine
        "p1,toy,conv5,1,maybe,,",
        "p1,toy,conv5,2,yes,55,dog",
        "p1,toy,conv5,3,no,20-40,",
        "p1,toy,fc6,0,no,,dog",
        "p1,toy,fc6,1,yes,,a;b;c",
        "p1,toy,fc6,x,no,,",
        ",toy,fc6,2,no,,",
        "p1,toy,fc6,3,no",
        "p1,toy,conv5,0,no,,",  # p1 rated conv5 0 on line 2
    ]
    result = unitcat(
        "ingest", "ratings", str(_csv(tmp_path, lines)), "--no-wordnet",
        env={"DATABASE_URL": database_url},
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())  # rich may wrap the one long line
    assert "9 bad line(s), nothing imported" in message
    expected = [
        "line 3: answer 'maybe' is not yes or no",
        "line 4: estimate '55' is not one of 0-20, 20-40, 40-60, 60-80, 80-100",
        "line 5: estimate given with answer no",
        "line 6: names given with answer no",
        "line 7: 3 names given; at most 2",
        "line 8: unit 'x' is not a whole number",
        "line 9: participant is empty",
        "line 10: 5 fields, the header has 7",
        "line 11: participant 'p1' already rated toy conv5 unit 0 on line 2",
    ]
    for problem in expected:
        assert problem in message, problem
    assert (_count(engine, "rating"), _count(engine, "participant")) == (0, 0)


def test_lines_naming_units_the_catalogue_lacks_refuse_the_file(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    register_toy(engine)
    lines = ["p1,toy,conv5,0,yes,,dog", "p1,toy,conv5,99,no,,", "p1,alexnet,fc6,0,no,,"]
    result = unitcat(
        "ingest", "ratings", str(_csv(tmp_path, lines)), "--no-wordnet",
        env={"DATABASE_URL": database_url},
    )  # fmt: skip
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert "line 3: no unit toy conv5 99 in the catalogue" in message
    assert "line 4: no unit alexnet fc6 0 in the catalogue" in message
    assert len(result.stderr.strip().splitlines()) <= 3 and "Traceback" not in result.stderr
    assert _count(engine, "rating") == 0


def test_analyse_ratings_says_how_names_were_matched(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    register_toy(engine)
    empty = unitcat("ingest", "analyse-ratings", env={"DATABASE_URL": database_url})
    assert empty.returncode == 0 and "no ratings in the catalogue yet" in empty.stdout

    with engine.begin() as conn:  # ratings collected on the Rate page, say: in the tables
        pid = conn.execute(text("INSERT INTO participant (code) VALUES ('w') RETURNING id"))
        unit_id = conn.execute(
            text(
                "SELECT u.id FROM unit u JOIN layer l ON l.id = u.layer_id "
                "WHERE l.name = 'fc6' AND u.unit_index = 4"
            )
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO rating (participant_id, unit_id, answer, estimate, names, source) "
                "VALUES (:p, :u, true, '80-100', ARRAY['bus'], 'ui')"
            ),
            {"p": pid.scalar_one(), "u": unit_id},
        )
    result = unitcat(
        "ingest", "analyse-ratings", "--no-wordnet", env={"DATABASE_URL": database_url}
    )
    assert result.returncode == 0, result.stderr
    assert "analysed 1 rated unit (1 rating by 1 participant)" in result.stdout
    assert "names matched by plain words (no WordNet)" in result.stdout
    assert "100.0%" in _row(result.stdout, "fc6")
    with engine.connect() as conn:
        used = conn.execute(text("SELECT used_wordnet FROM unit_rating_analysis")).scalar_one()
    assert used is False
