"""Runs a schema downgrade touches: those it deletes, and those whose results it drops.

A downgrade can delete runs outright (a kind of run the older schema does not
know, such as `chance`) and drop the tables that hold other runs' results (the
ablation tables): those runs would then read `done` with no rows, and still
after the next upgrade, whose tables come back empty. So `unitcat db downgrade`
lists both kinds before it asks, and afterwards marks every run whose results
went with a dropped table `failed`, saying why: running the same command again
computes it again. Written against the `run` table's oldest columns (id, kind,
status, error), which every revision has.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

#: listed by id up to this many, then counted
SHOWN_RUNS = 20


def runs(conn: Connection) -> dict[int, tuple[str, str]]:
    """Every run: id → (kind, status); empty when there is no `run` table."""
    if not inspect(conn).has_table("run"):
        return {}
    rows = conn.execute(text("SELECT id, kind, status FROM run"))
    return {int(r.id): (str(r.kind), str(r.status)) for r in rows}


def runs_by_table(conn: Connection) -> dict[str, set[int]]:
    """For every table with a `run_id` column (but `run`): the runs it holds rows of."""
    found: dict[str, set[int]] = {}
    inspector = inspect(conn)
    for name in inspector.get_table_names():
        if name == "run" or "run_id" not in {c["name"] for c in inspector.get_columns(name)}:
            continue
        ids = conn.execute(text(f'SELECT DISTINCT run_id FROM "{name}"')).scalars()
        found[name] = {int(i) for i in ids if i is not None}
    return found


def emptied(
    before: dict[str, set[int]],
    after: dict[str, set[int]],
    runs_after: dict[int, tuple[str, str]],
) -> dict[int, str]:
    """Runs still recorded `done` that had rows in a table that is gone and have none in any
    table that is left: id → kind. (`before`, `after`: `runs_by_table` on either side. A
    run whose summary table went but whose own results stayed keeps its status.)"""
    gone = set().union(*(ids for name, ids in before.items() if name not in after))
    kept = set().union(*after.values())
    return {
        i: runs_after[i][0]
        for i in sorted(gone - kept)
        if i in runs_after and runs_after[i][1] == "done"
    }


def describe(ids: dict[int, str]) -> str:
    """`7, 8, 9 (ablate), 12 (chance)`: the runs by kind, at most `SHOWN_RUNS` ids."""
    by_kind: dict[str, list[int]] = {}
    for i, kind in sorted(ids.items()):
        by_kind.setdefault(kind, []).append(i)
    parts, shown = [], 0
    for kind, members in by_kind.items():
        room = SHOWN_RUNS - shown
        if room <= 0:
            parts.append(f"{len(members):,} more ({kind})")
            continue
        listed = ", ".join(str(i) for i in members[:room])
        more = f" and {len(members) - room:,} more" if len(members) > room else ""
        parts.append(f"{listed}{more} ({kind})")
        shown += min(room, len(members))
    return ", ".join(parts)


def mark_results_dropped(conn: Connection, ids: dict[int, str], revision: str) -> None:
    """Record the runs whose result tables a downgrade to `revision` dropped as failed."""
    if not ids:
        return
    conn.execute(
        text("UPDATE run SET status = 'failed', error = :why WHERE id = ANY(:ids)"),
        {
            "ids": list(ids),
            "why": f"its results were dropped by `unitcat db downgrade {revision}`; run the "
            "same command again to compute them again",
        },
    )
