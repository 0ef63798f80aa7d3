"""Benchmark of the catalogue database at a million units and more.

Builds a generated catalogue through the project's own writers — `register_model`,
`register_dataset`, `register_concepts`, `recorded_run` with `write_unit_metrics`
(one scoring run per model), `write_dissection` (one dissection run per model, its
conv layers, rows from `label_units`), `write_ratings` — and times the query surface
a user meets:

- writing the scores (unit rows/s, each scoring run in its one transaction),
- the headline query (`catalogue.query.report.HEADLINE_SQL`, the "misleading"
  criterion of the registry): its `count(*)` and its first 100 rows,
- one unit: the Unit page's record (`find_unit` by model/layer/unit, then `unit_record`),
- `layer_detectors` for every model and for one model,

against baselines measured in the same run: a plain `SELECT count(*) FROM unit_metrics`
(the cost of touching every scored unit once), the same queries through the views of
an earlier revision (`--previous`, created from that revision's literal SQL in a schema
of their own, over the same rows), and the previous COPY writer (text COPY with a
Python conversion of every value, kept below) on the first `--baseline-models` models.

The default size: 100 models × 10 layers (5 conv, 5 fc) × 1,000 units = 1,000,000 units,
1,000 classes, conv layers dissected against 200 concepts (5 per unit). `--units N` sets
the size (from 5 million, layers of 5,000 units: `--units 10000000` is 200 models × 10
layers × 5,000 units, a zoo of models), `--quick` is 20,000 units. The database's size
per million units and its largest tables are printed after the build. The embedded server runs with
its default settings in a temporary folder (`--home DIR` keeps it, and a later run with
the same `--home` and size reuses the catalogue). After building, the tables are
VACUUM ANALYZEd, as autovacuum would do shortly after a bulk load.

    .venv/bin/python bench/db.py                    # 1,000,000 units (about 1 GB of disk)
    .venv/bin/python bench/db.py --units 10000000   # 10 million units (about 10 GB of disk)
    .venv/bin/python bench/db.py --quick            # 20,000 units
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

N_CLASSES = 1_000
N_CONCEPTS = 200
LAYERS = (
    *((f"conv{i}", "conv") for i in range(1, 6)),
    *((f"fc{i}", "fc") for i in range(6, 11)),
)
PARTICIPANTS = 6


# ------------------------------------------------------------------------ the data


def synthetic_scores(rng: np.random.Generator, n: int, depth: float) -> dict[str, np.ndarray]:
    """Every measure of `UNIT_MEASURES` for `n` units of a layer at `depth` (0 = first, 1 =
    last): deeper layers are more selective, as in the paper's Figure 2; about 3 % of the
    units are constant (dead), some of them with precision and false alarms that would make
    them "misleading" if they were not left out; NaN where the scorer gives NaN."""
    constant = rng.random(n) < 0.02 + 0.02 * depth
    precision = rng.beta(1.2 + 3.0 * depth, 4.5 - 2.0 * depth, n)
    far = 1.0 - (1.0 - rng.beta(6.0, 1.0, n)) * (0.5 + precision)
    far = np.clip(far, 0.0, 1.0)
    cls = rng.integers(0, N_CLASSES, n)
    same = rng.random(n) < 0.7
    mi_class = np.where(same, cls, rng.integers(0, N_CLASSES, n))
    localist = rng.random(n) < 0.004 * depth
    mean = rng.gamma(1.0, 0.5, n)
    scores: dict[str, np.ndarray] = {
        "localist": localist,
        "localist_class": np.where(localist, cls, -1),
        "precision": precision,
        "precision_class": cls,
        "top60_threshold": rng.gamma(2.0, 1.0, n),
        "classes_in_top100": 1.0 + np.round((1.0 - precision) * 60.0, 2),
        "ccmas": rng.beta(2.0, 3.0, n),
        "ccmas_class": np.where(rng.random(n) < 0.6, cls, rng.integers(0, N_CLASSES, n)),
        "recall_at_p100": rng.beta(0.5, 20.0, n),
        "recall_at_p95": rng.beta(0.5, 10.0, n),
        "max_informedness": rng.beta(2.0 + 3.0 * depth, 4.0, n),
        "mi_class": mi_class,
        "mi_threshold": rng.gamma(2.0, 1.0, n),
        "recall_at_mi": rng.beta(5.0, 2.0, n),
        "specificity_at_mi": rng.beta(8.0, 2.0, n),
        "false_alarm_rate": far,
        "frac_zero": rng.beta(4.0, 1.0, n),
        "mean_activation": mean,
        "max_activation": mean * rng.uniform(5.0, 20.0, n),
        "class_selectivity_index": rng.beta(2.0, 2.0, n),
        "constant": constant,
        "detector_bar": rng.beta(1.5, 5.0 - 2.0 * depth, n),
        "detector_bar_class": mi_class,
    }
    # a dead unit: every activation 0; its scores describe the class sizes
    k = int(constant.sum())
    scores["precision"][constant] = rng.uniform(0.0, 1.0, k)
    scores["false_alarm_rate"][constant] = rng.uniform(0.9, 1.0, k)
    for name in ("max_informedness", "recall_at_mi", "mean_activation", "max_activation"):
        scores[name][constant] = 0.0
    scores["frac_zero"][constant] = 1.0
    scores["ccmas"][constant] = math.nan
    scores["localist"][constant] = False
    scores["localist_class"][constant] = -1
    # a few NaN where the scorer gives them (e.g. no threshold reaches 95 % precision)
    scores["recall_at_p95"][rng.random(n) < 0.01] = math.nan
    return scores


def synthetic_iou(rng: np.random.Generator, n: int, depth: float) -> np.ndarray:
    """Unit × concept IoU with three decimals (so that best IoUs tie), deeper = higher."""
    iou = rng.beta(0.6, 30.0 - 15.0 * depth, (n, N_CONCEPTS))
    return np.round(iou, 3)


# ------------------------------------------------------------------------ timing


def timed(fn: Callable[[], Any], repeats: int, budget_s: float = 20.0) -> tuple[float, Any]:
    """Median wall time of `fn` over `repeats` calls (fewer when one call is slow), and
    its last result. One untimed call first warms the caches; when that call alone takes
    a quarter of the budget (a baseline view over ten million units), it is the figure."""
    started = time.perf_counter()
    result = fn()
    first = time.perf_counter() - started
    if first > budget_s / 4:
        return first, result
    times = []
    spent = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
        if spent > budget_s:
            break
    return statistics.median(times), result


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms" if seconds < 10 else f"{seconds:9.2f} s "


# ------------------------------------------------------------------------ the previous writer


def previous_copy_columns(conn: Any, table: str, columns: Mapping[str, Any]) -> int:
    """The previous COPY writer: text COPY, every value converted in Python."""
    from psycopg import sql

    def plain(value: Any) -> Any:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    names = list(columns)
    lengths = {len(v) for v in columns.values() if not np.isscalar(v) and v is not None}
    (n,) = lengths
    arrays = [
        [columns[c]] * n
        if np.isscalar(columns[c]) or columns[c] is None
        else np.asarray(columns[c]).tolist()
        for c in names
    ]
    raw = conn.connection.driver_connection
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in names)
    )
    with raw.cursor() as cur, cur.copy(statement) as copy:
        for row in zip(*arrays, strict=True):
            copy.write_row([plain(v) for v in row])
    return n


def previous_write_unit_metrics(
    conn: Any, run_id: int, unit_ids: np.ndarray, metrics: Mapping[str, np.ndarray], n_images: int
) -> int:
    """`write_unit_metrics` as it was before binary COPY (same columns, previous COPY)."""
    from catalogue.measures import UNIT_MEASURES

    columns: dict[str, object] = {"run_id": run_id, "unit_id": unit_ids, "n_images": n_images}
    for m in UNIT_MEASURES:
        values = np.asarray(metrics[m.name])
        if m.kind == "class":
            columns[m.name] = [None if v < 0 else int(v) for v in values.tolist()]
        elif m.kind == "bool":
            columns[m.name] = values.astype(bool)
        else:
            columns[m.name] = values.astype(np.float64)
    return previous_copy_columns(conn, "unit_metrics", columns)


# ------------------------------------------------------------------------ building


def model_name(i: int) -> str:
    return f"net{i:03d}"


def build(engine: Any, n_models: int, layer_units: int, baseline_models: int, seed: int) -> dict:
    """The catalogue, through the writers; the write figures."""
    from catalogue.db.identities import (
        LayerSpec,
        register_concepts,
        register_dataset,
        register_model,
    )
    from catalogue.db.ratings import RatingRecord, ensure_participants, write_ratings
    from catalogue.db.results import write_dissection, write_unit_metrics
    from catalogue.db.runs import recorded_run
    from catalogue.dissection.labels import label_units
    from catalogue.dissection.tally import ConceptIoU
    from catalogue.probe.broden import Concept

    rng = np.random.default_rng(seed)
    figures: dict[str, Any] = {}
    start = time.perf_counter()
    with engine.begin() as conn:
        dataset = register_dataset(
            conn,
            name="bench-classes",
            kind="generated",
            source=None,
            class_keys=[f"c{i:04d}" for i in range(N_CLASSES)],
            class_names=[f"class {i}" for i in range(N_CLASSES)],
        )
        categories = ("object", "part", "scene", "material", "texture", "color")
        concepts = [
            Concept(i + 1, f"concept{i:03d}", categories[i % len(categories)])
            for i in range(N_CONCEPTS)
        ]
        concept_ids = register_concepts(
            conn, "bench-probe", [(c.number, c.name, c.category) for c in concepts]
        )
    records = []
    for i in range(n_models):
        with engine.begin() as conn:
            records.append(
                register_model(
                    conn,
                    name=model_name(i),
                    architecture="generated",
                    weights=f"seed {i}",
                    checksum=f"bench-{i}",
                    layers=[
                        LayerSpec(name, kind, layer_units, position)
                        for position, (name, kind) in enumerate(LAYERS)
                    ],
                )
            )
    figures["register_s"] = time.perf_counter() - start

    write_time = {"previous": 0.0, "current": 0.0}
    write_rows = {"previous": 0, "current": 0}
    for i, record in enumerate(records):
        scores = {
            name: synthetic_scores(rng, layer_units, position / (len(LAYERS) - 1))
            for position, (name, _) in enumerate(LAYERS)
        }
        writer = previous_write_unit_metrics if i < baseline_models else write_unit_metrics
        which = "previous" if i < baseline_models else "current"
        with recorded_run(
            engine,
            "score",
            {"model": record.name, "bench": True},
            label=f"{record.name} scored",
            model_id=record.id,
            dataset_id=dataset.id,
        ) as run:

            def write(
                conn: Any, run_id: int, scores: dict = scores, record: Any = record, writer=writer
            ) -> None:
                for name, _ in LAYERS:
                    writer(conn, run_id, record.layer(name).unit_ids, scores[name], n_images=50_000)

            start = time.perf_counter()
            run.complete(write)
            write_time[which] += time.perf_counter() - start
            write_rows[which] += layer_units * len(LAYERS)
    figures["write"] = (write_time, write_rows)

    dissect_time = 0.0
    dissect_rows = 0
    for record in records:
        rows = {}
        for position, (name, kind) in enumerate(LAYERS):
            if kind != "conv":
                continue
            iou = synthetic_iou(rng, layer_units, position / (len(LAYERS) - 1))
            empty = np.zeros((layer_units, N_CONCEPTS), dtype=np.int64)
            scores = ConceptIoU(
                thresholds=rng.gamma(2.0, 1.0, layer_units).astype(np.float32),
                iou=iou,
                intersection=empty,
                union=empty,
                unit_pixels=np.zeros((layer_units, 1), dtype=np.int64),
                concept_pixels=np.zeros(N_CONCEPTS, dtype=np.int64),
                n_images=1000,
                quantile=0.005,
            )
            rows[name] = label_units(name, scores, concepts).rows()
        with recorded_run(
            engine, "dissect", {"model": record.name, "bench": True}, model_id=record.id
        ) as run:

            def write_d(conn: Any, run_id: int, rows: dict = rows, record: Any = record) -> None:
                for name, layer_rows in rows.items():
                    write_dissection(
                        conn, run_id, record.layer(name).unit_ids, layer_rows, concept_ids
                    )

            start = time.perf_counter()
            run.complete(write_d)
            dissect_time += time.perf_counter() - start
            dissect_rows += sum(len(r) for r in rows.values())
    figures["dissect"] = (dissect_time, dissect_rows)

    # ratings: 6 people rate 500 units of the last model's fc layers (5 answers make a consensus)
    start = time.perf_counter()
    with engine.begin() as conn:
        people = ensure_participants(conn, [f"p{i}" for i in range(PARTICIPANTS)])
        rated = np.concatenate(
            [records[-1].layer(n).unit_ids[:100] for n, k in LAYERS if k == "fc"]
        )
        names = ["dog", "car", "tree", "face", "wheel"]
        ratings = []
        for code, pid in people.items():
            answers = rng.random(len(rated)) < 0.7
            for unit_id, answer in zip(rated.tolist(), answers.tolist(), strict=True):
                ratings.append(
                    RatingRecord(
                        participant_id=pid,
                        unit_id=unit_id,
                        panel_id=None,
                        answer=answer,
                        estimate="60-80" if answer else None,
                        names=[names[(unit_id + len(code)) % len(names)]] if answer else [],
                        source="import",
                    )
                )
        write_ratings(conn, ratings)
    figures["ratings"] = (time.perf_counter() - start, len(ratings))
    return figures


# ------------------------------------------------------------------------ queries


def create_previous_views(engine: Any, revision: str) -> list[str]:
    """The views of `revision` (its literal SQL) in schema `previous`, over the same tables."""
    from sqlalchemy import text

    from catalogue.db import migrate

    selects = migrate.revision_views(revision)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS previous CASCADE"))
        conn.execute(text("CREATE SCHEMA previous"))
        conn.execute(text("SET LOCAL search_path TO previous, public"))
        for name, select in selects.items():
            conn.execute(text(f"CREATE VIEW previous.{name} AS {select}"))
            _pad_with_later_columns(conn, name, select)
    return list(selects)


def _pad_with_later_columns(conn: Any, name: str, select: str) -> None:
    """Give a previous view the columns later revisions appended to it, as NULLs, so that
    the reads (which name every current column) run on both; its own columns are unchanged."""
    from sqlalchemy import text

    columns = (
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = CAST(:view AS regclass) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum"
    )
    now = conn.execute(text(columns), {"view": f"public.{name}"}).all()
    then = {r[0] for r in conn.execute(text(columns), {"view": f"previous.{name}"})}
    later = [f"NULL::{type_} AS {column}" for column, type_ in now if column not in then]
    if later:
        conn.execute(
            text(
                f"CREATE OR REPLACE VIEW previous.{name} AS "
                f"SELECT p.*, {', '.join(later)} FROM ({select}) AS p"
            )
        )


def query_times(
    engine: Any, schema: str, model: str, units: Sequence[tuple[str, str, int]], repeats: int
) -> dict:
    """Median times of the query surface with `schema` first on the search path."""
    from sqlalchemy import event, text

    from catalogue.query.report import HEADLINE_SQL
    from catalogue.query.units import find_unit, unit_record

    @event.listens_for(engine, "connect")
    def _path(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET search_path TO {schema}, public")
        dbapi_conn.commit()

    engine.dispose()
    try:

        def scalar(sql: str, **params: Any) -> Callable[[], Any]:
            def run() -> Any:
                with engine.connect() as conn:
                    return conn.execute(text(sql), params).scalar_one()

            return run

        def rows(sql: str, **params: Any) -> Callable[[], Any]:
            def run() -> Any:
                with engine.connect() as conn:
                    return [tuple(r) for r in conn.execute(text(sql), params)]

            return run

        turn = iter(range(10**9))

        def one_unit() -> Any:
            m, layer, u = units[next(turn) % len(units)]
            return unit_record(engine, find_unit(engine, m, layer, u))["unit_id"]

        out = {
            "count": timed(scalar(f"SELECT count(*) FROM ({HEADLINE_SQL}) AS headline"), repeats),
            "first100": timed(rows(f"{HEADLINE_SQL}\nLIMIT 100"), repeats),
            "unit": timed(one_unit, repeats),
            "ld_all": timed(rows("SELECT * FROM layer_detectors ORDER BY run_id, layer"), repeats),
            "ld_one": timed(
                rows(
                    "SELECT * FROM layer_detectors WHERE model = :m ORDER BY run_id, layer",
                    m=model,
                ),
                repeats,
            ),
        }
    finally:
        event.remove(engine, "connect", _path)
        engine.dispose()
    return out


def same_rows(a: Iterable[tuple], b: Iterable[tuple]) -> bool:
    def key(row: tuple) -> tuple:
        return tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in row)

    return [key(r) for r in a] == [key(r) for r in b]


# ------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1_000_000, help="units in all (default 1e6)")
    parser.add_argument("--quick", action="store_true", help="20,000 units")
    parser.add_argument(
        "--layer-units", type=int, help="units per layer (default 1,000; 5,000 from 5 million)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--baseline-models", type=int, default=5, help="models written by the previous writer"
    )
    parser.add_argument("--previous", default="0013", help="revision whose views are the baseline")
    parser.add_argument("--home", type=Path, help="keep the server and catalogue here (reused)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    units = 20_000 if args.quick else args.units
    if args.layer_units is None:
        args.layer_units = 5_000 if units >= 5_000_000 else 1_000
    n_models = max(1, units // (len(LAYERS) * args.layer_units))
    total = n_models * len(LAYERS) * args.layer_units
    baseline_models = min(args.baseline_models, max(n_models - 1, 0))

    with tempfile.TemporaryDirectory(prefix="unitcat-bench-db-") as tmp:
        home = args.home or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        os.environ["UNITCAT_HOME"] = str(home)
        os.environ.pop("DATABASE_URL", None)
        from sqlalchemy import create_engine, text

        from catalogue.config import normalise_database_url
        from catalogue.db import migrate, server

        url = normalise_database_url(server.start(home / "postgres"))
        engine = create_engine(url)
        try:
            migrate.upgrade(engine)
            with engine.connect() as conn:
                have = conn.execute(text("SELECT count(*) FROM unit_metrics")).scalar_one()
            print(
                f"catalogue: {n_models} models × {len(LAYERS)} layers × {args.layer_units:,} "
                f"units = {total:,} units; load average {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            if have != total:
                if have:
                    raise SystemExit(
                        f"{home} holds another catalogue ({have:,} rows); use a new --home"
                    )
                figures = build(engine, n_models, args.layer_units, baseline_models, args.seed)
                report_build(figures)
                start = time.perf_counter()
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE"))
                print(f"VACUUM ANALYZE: {time.perf_counter() - start:.1f} s", flush=True)
            else:
                print("(reusing the catalogue in --home)")
            report_disk(engine, total)
            if not report_queries(engine, args, n_models):
                raise SystemExit("the views answered differently from the previous ones")
        finally:
            engine.dispose()
            server.stop(home / "postgres")  # --home keeps the data folder, not the server


def report_disk(engine: Any, total: int) -> None:
    """The database's size, per million units, and its largest tables (with their indexes)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        tables = conn.execute(
            text(
                "SELECT relname, pg_total_relation_size(oid), pg_indexes_size(oid) FROM pg_class "
                "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
                "ORDER BY 2 DESC LIMIT 6"
            )
        ).all()
    per_million = size / (total / 1e6)
    print(
        f"database size: {size / 1e9:.2f} GB, {per_million / 1e6:,.0f} MB per million units; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    for name, table_bytes, index_bytes in tables:
        print(f"  {name:22s} {table_bytes / 1e6:9,.0f} MB (indexes {index_bytes / 1e6:,.0f} MB)")


def report_build(figures: dict) -> None:
    print(f"registration (models, layers, units, classes, concepts): {figures['register_s']:.1f} s")
    (times, rows) = figures["write"]
    rate = {k: rows[k] / times[k] for k in times if rows[k]}
    for k in ("previous", "current"):
        if rows[k]:
            print(
                f"scores written, {k:8s} writer: {rows[k]:>9,} unit rows in {times[k]:6.1f} s "
                f"= {rate[k]:>9,.0f} rows/s"
            )
    if len(rate) == 2:
        print(f"  ratio current / previous writer: {rate['current'] / rate['previous']:.2f}×")
    t, n = figures["dissect"]
    print(f"dissection written: {n:,} rows in {t:.1f} s = {n / t:,.0f} rows/s")
    t, n = figures["ratings"]
    print(f"ratings written: {n:,} in {t:.2f} s", flush=True)


def report_queries(engine: Any, args: argparse.Namespace, n_models: int) -> bool:
    """Print the query figures; whether both view definitions answered the same."""
    from sqlalchemy import text

    model = model_name(n_models // 2)
    units = [
        (model_name(i % n_models), LAYERS[(3 * i) % len(LAYERS)][0], (37 * i) % args.layer_units)
        for i in range(16)
    ]

    def plain_count() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM unit_metrics")).scalar_one()

    base = timed(plain_count, args.repeats)[0]
    create_previous_views(engine, args.previous)
    current = query_times(engine, "public", model, units, args.repeats)
    previous = query_times(engine, "previous", model, units, args.repeats)
    print(f"\nload average {os.getloadavg()[0]:.2f}; medians of {args.repeats} warm runs")
    print(f"baseline: SELECT count(*) FROM unit_metrics  {fmt(base)}")
    labels = {
        "count": ("headline query, count(*)", 0.1),
        "first100": ("headline query, first 100 rows", 0.1),
        "unit": ("one unit (find_unit + unit_record)", 0.01),
        "ld_all": ("layer_detectors, all models", 1.0),
        "ld_one": ("layer_detectors, one model", 0.1),
    }
    print(
        f"{'query':38s} {'now':>12s} {'rev ' + args.previous:>12s} {'speed-up':>9s} "
        f"{'÷ count(*)':>10s} {'target':>8s}"
    )
    all_agree = True
    for key, (label, target) in labels.items():
        now, prev = current[key][0], previous[key][0]
        agreed = agree(key, current[key][1], previous[key][1])
        all_agree &= agreed
        same = "" if agreed else "  DIFFERENT ROWS"
        ok = "ok" if now < target else "MISSED"
        print(
            f"{label:38s} {fmt(now)} {fmt(prev)} {prev / now:8.1f}× {now / base:9.2f}× "
            f"{'<' + fmt(target).strip():>8s} {ok}{same}"
        )
    return all_agree


def agree(key: str, now: Any, before: Any) -> bool:
    """Whether both designs answered the same (the first 100 rows of a query without ORDER
    BY may be any 100 of them: only their number is compared)."""
    if key == "first100":
        return len(now) == len(before)
    if isinstance(now, list):
        return same_rows(now, before)
    return bool(now == before)


if __name__ == "__main__":
    main()
