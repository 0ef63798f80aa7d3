"""The Unit page on a paper-sized layer, against drawing every image, in the same run.

Builds a catalogue the way a user gets one: an HDF5 store of N = 721,536 images ×
U units (ImageNet-train scale, the paper's Figure 3; 1,000 classes; ReLU-like
activations, about 83 % zeros; unit 0 shaped like fc6.1199) written with
`catalogue.store`, an extraction run pointing at it, and a scoring run made by
the real scorer (`catalogue.pipeline.scoring.score_extraction`). Then it times:

1. the Unit page (ui/app.py, run headless with Streamlit's AppTest, so the time
   is the whole server-side script: queries, the HDF5 column read, the point
   selection of `ui.plots.jitter_points`, the charts and their serialisation),
   cold (caches cleared) and warm (cached activations, as when the highlighted
   class changes);
2. its stages one by one;
3. the baseline: the same jitter chart with every one of the N points (what
   plotting everything would send to the browser), through the same Streamlit
   serialisation; reported as time and payload ratios;
4. with --browser (Debian chromium): time from navigation until the page has
   drawn, in headless Chromium against a `streamlit run` server.

With --demo it times instead, in Chromium, the Unit page (opened by address, and by its
"next unit" button) on a catalogue the size of `make demo`'s against the app shell
(bench/ui_demo.py).

The store's chunks are 4,096 rows × min(U, 64) units; with U = 64 (default)
reading one unit decompresses the same 1 MiB chunks a 4,096-unit layer would.
The file sits in the OS page cache after writing (so "cold" excludes disk reads).

    .venv/bin/python bench/ui.py [--images 721536] [--units 64] [--repeats 5] [--browser]
    .venv/bin/python bench/ui.py --demo [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

PAPER_IMAGES = 721_536
CLASSES = 1_000
REPO = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall-clock seconds of `fn` over `repeats` calls, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def timed_cpu(fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """(median wall, minimum wall, median CPU seconds of this process) over `repeats` calls.

    The page's work is single-threaded, so its CPU time is what it would take on an idle
    core; the wall time also includes waiting for the other jobs on a shared machine.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def write_store(path: Path, n: int, units: int, seed: int = 0) -> np.ndarray:
    """A store of n images × units activations, written in bands (memory stays small)."""
    from catalogue.store import ActivationStore, LayerSpec

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    rng.shuffle(labels)
    keys = [f"n{c:04d}/img_{i:07d}.JPEG" for i, c in enumerate(labels.tolist())]
    band = 65_536
    with ActivationStore.create(
        path,
        [LayerSpec("fc6", units, kind="fc", position=0)],
        class_keys=[f"n{c:04d}" for c in range(CLASSES)],
        class_names=[f"class {c}" for c in range(CLASSES)],
        params={"bench": "ui"},
    ) as store:
        for start in range(0, n, band):
            y = labels[start : start + band]
            rows = y.size
            block = np.where(
                rng.random((rows, units)) < 0.83,
                0.0,
                rng.exponential(8.0, (rows, units)),
            ).astype(np.float32)
            mine = y == 0  # unit 0: class 0 spread over the whole range, 5.8 % zeros
            block[mine, 0] = np.where(
                rng.random(mine.sum()) < 0.058, 0.0, rng.uniform(0.0, 95.0, mine.sum())
            )
            store.append(
                {"fc6": block},
                labels=y,
                predictions=y,
                image_keys=keys[start : start + rows],
            )
        store.finish()
    return labels


def build_catalogue(engine, h5: Path, units: int) -> tuple[int, int]:
    """Register the model and dataset, record the extraction run, score it; (unit_id, run_id)."""
    from catalogue.db.identities import LayerSpec, register_dataset, register_model
    from catalogue.db.runs import recorded_run
    from catalogue.pipeline.scoring import score_extraction

    with engine.begin() as conn:
        model = register_model(
            conn,
            name="bench-net",
            architecture="synthetic",
            weights=None,
            checksum="bench",
            layers=[LayerSpec("fc6", "fc", units, 0)],
        )
        dataset = register_dataset(
            conn,
            name="bench-imagenet",
            kind="synthetic",
            source=None,
            class_keys=[f"n{c:04d}" for c in range(CLASSES)],
            class_names=[f"class {c}" for c in range(CLASSES)],
        )
    with recorded_run(
        engine,
        "extract",
        {"bench": "ui", "images": PAPER_IMAGES},
        model_id=model.id,
        dataset_id=dataset.id,
        h5_path=str(h5),
    ) as extract:
        pass
    score = score_extraction(engine, extract.id, block_units=min(units, 64))
    return int(model.layer("fc6").unit_ids[0]), score.run_id


def payload_bytes(at) -> int:
    return sum(len(d.data.data) for c in at.get("vega_lite_chart") for d in c.proto.datasets)


def naive_page(values, labels, mi, top60):
    """Every image as a point: the jitter chart without `jitter_points`' selection.

    (No annotations: AppTest runs this function's source on its own.)"""
    import numpy as np
    import pandas as pd
    import streamlit as st

    from ui import plots

    rng = np.random.default_rng(0)
    names = np.array([f"class {c}" for c in range(1000)], dtype=object)
    points = pd.DataFrame(
        {
            "activation": values.astype(np.float64),
            "jitter": rng.uniform(0, 1, values.size),
            "group": np.where(labels == 0, "class 0", plots.OTHER_LABEL),
            "class_name": names[labels],
            "image": np.arange(values.size),
        }
    )
    n_class = int(np.sum(labels == 0))
    data = plots.JitterData(
        points, "class 0", n_class, values.size - n_class, n_class, values.size - n_class, 0
    )
    st.altair_chart(plots.jitter_chart(data, mi_threshold=mi, top60_threshold=top60))


def bench_page(args: argparse.Namespace, unit_id: int, run_id: int, engine) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from catalogue.query.files import unit_activations
    from catalogue.query.units import unit_record
    from ui import plots

    at = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=600)
    at.query_params["unit_id"] = str(unit_id)
    at.query_params["run_id"] = str(run_id)
    at.switch_page("app_pages/unit.py")
    at.run()  # first run: imports, component discovery; not timed
    assert not at.exception, [e.value for e in at.exception]

    def cold() -> object:
        st.cache_data.clear()
        return at.run()

    t_cold, t_cold_min, cpu_cold = timed_cpu(cold, args.repeats)
    t_warm, _ = timed(at.run, args.repeats)
    assert not at.exception, [e.value for e in at.exception]
    ours_bytes = payload_bytes(at)

    t_read, acts = timed(lambda: unit_activations(engine, unit_id, run_id), args.repeats)
    record = unit_record(engine, unit_id, run_id)
    t_select, data = timed(
        lambda: plots.jitter_points(acts.values, acts.labels, 0, acts.class_names), args.repeats
    )
    import altair as alt

    with alt.data_transformers.disable_max_rows():  # Streamlit serialises data itself
        t_chart, _ = timed(
            lambda: plots.jitter_chart(
                data,
                mi_threshold=record["mi_threshold"],
                top60_threshold=record["top60_threshold"],
            ).to_dict(),
            args.repeats,
        )

    naive = AppTest.from_function(
        naive_page,
        kwargs={
            "values": acts.values,
            "labels": acts.labels,
            "mi": float(record["mi_threshold"]),
            "top60": float(record["top60_threshold"]),
        },
        default_timeout=600,
    )
    naive.run()
    t_naive, _ = timed(naive.run, max(1, args.repeats // 2))
    assert not naive.exception, [e.value for e in naive.exception]
    naive_bytes = payload_bytes(naive)

    n = acts.values.size
    print(f"\nUnit page, {n:,} scored images, unit fc6.0 (class 0 highlighted):")
    print(
        f"  page, cold (caches cleared)      {t_cold:7.2f} s   target < 2 s "
        f"(fastest {t_cold_min:.2f} s; CPU {cpu_cold:.2f} s)"
    )
    print(f"  page, warm (cached activations)  {t_warm:7.2f} s")
    print(f"    HDF5 column read (+labels)     {t_read:7.2f} s")
    print(f"    jitter_points selection        {t_select:7.3f} s   ({len(data.points):,} points)")
    print(f"    jitter chart spec              {t_chart:7.3f} s")
    print(f"  baseline: every point, same chart {t_naive:6.2f} s   ({n:,} points)")
    print(f"  time ratio baseline / cold page  {t_naive / t_cold:7.1f} x")
    print(
        f"  browser payload: {ours_bytes / 1e6:.2f} MB (page) vs {naive_bytes / 1e6:.1f} MB "
        f"(every point) = {naive_bytes / max(ours_bytes, 1):.0f} x less"
    )


NAIVE_SCRIPT = """
import os

import numpy as np
import pandas as pd
import streamlit as st

from catalogue.db.engine import get_engine
from catalogue.query.files import unit_activations
from catalogue.query.units import unit_record
from ui import plots

st.title("Every point")
engine = get_engine()
unit_id, run_id = int(os.environ["BENCH_UNIT"]), int(os.environ["BENCH_RUN"])
acts = unit_activations(engine, unit_id, run_id)
record = unit_record(engine, unit_id, run_id)
labels = acts.labels
points = pd.DataFrame({
    "activation": acts.values.astype(np.float64),
    "jitter": np.random.default_rng(0).uniform(0, 1, labels.size),
    "group": np.where(labels == 0, "class 0", plots.OTHER_LABEL),
    "class_name": np.asarray(acts.class_names, dtype=object)[labels],
    "image": np.arange(labels.size),
})
n_class = int(np.sum(labels == 0))
data = plots.JitterData(points, "class 0", n_class, labels.size - n_class, n_class,
                        labels.size - n_class, 0)
st.altair_chart(plots.jitter_chart(data, mi_threshold=record["mi_threshold"],
                                   top60_threshold=record["top60_threshold"]))
"""


def _serve(script: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        *(sys.executable, "-m", "streamlit", "run", str(script)),
        *("--server.headless", "true", "--server.port", str(port)),
        *("--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"),
        *("--server.fileWatcherType", "none"),
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    import urllib.request

    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the streamlit server did not start")


def _load_times(page, url: str, title: str, repeats: int, limit_s: float) -> list[float]:
    """Seconds from navigation until `title` shows and every chart and table has drawn."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from tests.test_browser import SETTLED

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            page.goto(url, timeout=limit_s * 1000)
            page.get_by_text(title).first.wait_for(timeout=limit_s * 1000)
            page.wait_for_function(SETTLED, timeout=limit_s * 1000)
        except PlaywrightTimeout:
            times.append(float("inf"))
            break
        times.append(time.perf_counter() - started)
    return times


def _class_switch_times(page, repeats: int) -> list[float]:
    """On the open Unit page: pick another highlighted class, until it has drawn again."""
    from tests.test_browser import SETTLED

    times = []
    for k in range(1, repeats + 1):
        box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Highlighted class")
        started = time.perf_counter()
        box.locator("input").click()
        page.keyboard.type(f"class {k}")
        page.keyboard.press("Enter")
        page.get_by_text(f"'class {k}' images;").first.wait_for(timeout=120_000)
        page.wait_for_function(SETTLED, timeout=120_000)
        times.append(time.perf_counter() - started)
    return times


def _fmt(seconds: float, limit_s: float) -> str:
    return f"> {limit_s:.0f} s (gave up)" if seconds == float("inf") else f"{seconds:.2f} s"


def bench_browser(args: argparse.Namespace, unit_id: int, run_id: int, url: str, tmp: Path) -> None:
    sys.path.insert(0, str(REPO))
    from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS, _free_port, _stop

    if not CHROMIUM.exists():
        print("\n(no /usr/bin/chromium: browser timing skipped)")
        return
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "DATABASE_URL": url, "BENCH_UNIT": str(unit_id), "BENCH_RUN": str(run_id)}
    naive_script = tmp / "every_point.py"
    naive_script.write_text(NAIVE_SCRIPT)
    app_port, naive_port = _free_port(), _free_port()
    app = _serve(REPO / "ui" / "serve.py", app_port, env)  # as `unitcat ui` serves it
    naive = _serve(naive_script, naive_port, env)
    base = f"http://127.0.0.1:{app_port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            shell = _load_times(page, base + "/runs", "Runs", args.repeats + 1, 120)
            unit = _load_times(
                page,
                f"{base}/unit?unit_id={unit_id}&run_id={run_id}",
                "bench-net · fc6 · unit 0",
                args.repeats + 1,
                120,
            )
            switch = _class_switch_times(page, args.repeats)  # still on the Unit page
            charts = _load_times(page, base + "/layers", "Layers", args.repeats + 1, 120)
            every = _load_times(
                page, f"http://127.0.0.1:{naive_port}/", "Every point", 1, args.naive_limit
            )
            browser.close()
    finally:
        _stop(app)
        _stop(naive)
    reload_unit = statistics.median(unit[1:])
    reload_shell = statistics.median(shell[1:])
    print("\nIn headless Chromium (navigation until every chart and table has drawn):")
    print(f"  Unit page, first load (cold server caches) {unit[0]:6.2f} s")
    print(f"  Unit page, reload, median                  {reload_unit:6.2f} s")
    print(f"  Runs page (the app shell, tiny table)      {reload_shell:6.2f} s")
    print(f"  Unit page minus shell                      {reload_unit - reload_shell:6.2f} s")
    print(f"  Layers page (shell + two small charts)     {statistics.median(charts[1:]):6.2f} s")
    print(f"  in the page: another highlighted class     {statistics.median(switch):6.2f} s")
    print(f"  baseline: every point in the browser       {_fmt(every[0], args.naive_limit)}")
    if every[0] != float("inf"):
        print(f"  ratio baseline / Unit page reload          {every[0] / reload_unit:6.1f} x")


def bench_demo(args: argparse.Namespace, engine, url: str, home: Path) -> None:
    """The Unit page on a demo-sized catalogue, in Chromium, against the app shell."""
    sys.path.insert(0, str(REPO))
    from bench.ui_demo import build_demo_catalogue, report, time_pages, time_script
    from tests.test_browser import CHROMIUM, _free_port, _stop

    if not CHROMIUM.exists():
        print("(no /usr/bin/chromium: nothing to time)")
        return
    started = time.perf_counter()
    visit = 2 * args.repeats + 2
    run_id, _units = build_demo_catalogue(engine, home, visit=visit + args.repeats + 1)
    print(f"demo-sized catalogue built and scored in {time.perf_counter() - started:.1f} s")
    port = _free_port()
    app = _serve(REPO / "ui" / "app.py", port, {**os.environ, "DATABASE_URL": url})
    try:
        times = time_pages(f"http://127.0.0.1:{port}", run_id, args.repeats)
    finally:
        _stop(app)
    script = time_script(REPO / "ui" / "app.py", run_id, range(visit + 1, visit + 1 + args.repeats))
    report(times, script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=PAPER_IMAGES)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also time headless Chromium")
    parser.add_argument(
        "--demo", action="store_true", help="only the Unit page on a demo-sized catalogue"
    )
    parser.add_argument(
        "--naive-limit", type=float, default=180.0, help="seconds to wait for the every-point page"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="unitcat-bench-ui-") as tmp:
        home = Path(tmp)
        os.environ["UNITCAT_HOME"] = str(home)
        os.environ.pop("DATABASE_URL", None)
        from sqlalchemy import create_engine

        from catalogue.config import normalise_database_url
        from catalogue.db import migrate, server

        url = normalise_database_url(server.start(home / "postgres"))
        os.environ["DATABASE_URL"] = url
        try:
            engine = create_engine(url)
            migrate.upgrade(engine)
            if args.demo:
                bench_demo(args, engine, url, home)
                return
            started = time.perf_counter()
            write_store(home / "bench.h5", args.images, args.units)
            size = (home / "bench.h5").stat().st_size
            print(
                f"store: {args.images:,} × {args.units} written in "
                f"{time.perf_counter() - started:.1f} s ({size / 1e6:.0f} MB)"
            )
            started = time.perf_counter()
            unit_id, run_id = build_catalogue(engine, home / "bench.h5", args.units)
            print(f"scored with the real scorer in {time.perf_counter() - started:.1f} s")
            bench_page(args, unit_id, run_id, engine)
            if args.browser:
                bench_browser(args, unit_id, run_id, url, home)
            engine.dispose()
        finally:
            server.stop(home / "postgres")


if __name__ == "__main__":
    main()
