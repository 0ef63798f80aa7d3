"""The Unit page on a catalogue the size of `make demo`'s, in headless Chromium (`bench/ui.py --demo`).

The catalogue is built the way the demo builds its own, minus training: an HDF5 store of
60,000 images × the demo CNN's eight layers (conv1–conv5, fc6–fc8 at the widths of
`catalogue.models.demo_cnn`; ReLU-like values, fc8 signed like logits) over the 100
Fashion-MNIST colour classes, 49,117 of them correctly classified as in the demo, an
extraction run pointing at it, scoring by the real scorer (`score_extraction`), 32 × 32
image files for the top images of the units visited, and an AM panel for each of them.
Then it times, in the same run and the same browser:

- the baseline: the app shell (the Runs page, a tiny table), navigation until drawn;
- the Unit page opened by its address, a unit not visited before (the server's caches
  for that unit cold), navigation until every chart and table has drawn;
- "next unit": the › button on the open Unit page, until the next unit has drawn;
- a Unit page visited before (its cached reads warm).

and prints each against the shell. The Unit page's first screen (summary, top images, AM
panel) is what a researcher clicking through units reads; the target is under 2 s.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from catalogue.data.fashion_colours import class_keys, class_names
from catalogue.models.demo_cnn import CONV_WIDTHS, FC_WIDTHS

MODEL = "demo-like"
N_IMAGES = 60_000
N_CORRECT = 49_117  # what `make demo` scores (its trained network's correct images)
LAYERS = (
    *((f"conv{i + 1}", "conv", w) for i, w in enumerate(CONV_WIDTHS)),
    ("fc6", "fc", FC_WIDTHS[0]),
    ("fc7", "fc", FC_WIDTHS[1]),
    ("fc8", "fc", len(class_keys())),
)
LAYER = "conv5"
WAIT_MS = 120_000


def write_demo_store(path: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The store; (labels, predictions, image keys)."""
    from catalogue.store import ActivationStore, LayerSpec

    rng = np.random.default_rng(seed)
    n_classes = len(class_keys())
    labels = rng.integers(0, n_classes, N_IMAGES)
    predictions = labels.copy()
    wrong = rng.choice(N_IMAGES, N_IMAGES - N_CORRECT, replace=False)
    predictions[wrong] = (labels[wrong] + 1) % n_classes
    folders = class_keys()
    keys = [f"{folders[c]}/{i:05d}.png" for i, c in enumerate(labels.tolist())]
    activations = {}
    for name, _kind, units in LAYERS:
        if name == "fc8":
            block = rng.normal(0.0, 3.0, (N_IMAGES, units))
        else:
            block = np.where(
                rng.random((N_IMAGES, units)) < 0.6, 0.0, rng.exponential(2.0, (N_IMAGES, units))
            )
            own = rng.integers(0, n_classes, units)  # each unit prefers one class
            for u, c in enumerate(own.tolist()):
                block[labels == c, u] += rng.exponential(4.0, int(np.sum(labels == c)))
        activations[name] = block.astype(np.float32)
    with ActivationStore.create(
        path,
        [
            LayerSpec(n, u, kind=k, position=i, reduce="max" if k == "conv" else "none")
            for i, (n, k, u) in enumerate(LAYERS)
        ],
        class_keys=class_keys(),
        class_names=class_names(),
        params={"bench": "ui-demo"},
    ) as store:
        store.append(activations, labels=labels, predictions=predictions, image_keys=keys)
        store.finish()
    return labels, predictions, keys


def build_demo_catalogue(engine: Any, folder: Path, visit: int) -> tuple[int, dict[int, int]]:
    """Store, extraction run, scoring run, image files and AM panels of the first `visit`
    conv5 units (and the one before them); (scoring run id, conv5 unit index → unit id)."""
    from PIL import Image
    from sqlalchemy import insert, text

    from catalogue.db import schema
    from catalogue.db.identities import LayerSpec, register_dataset, register_model
    from catalogue.db.runs import recorded_run
    from catalogue.pipeline.scoring import score_extraction

    h5, root = folder / "demo-like.h5", folder / "images"
    _labels, _predictions, keys = write_demo_store(h5)
    with engine.begin() as conn:
        model = register_model(
            conn,
            name=MODEL,
            architecture="demo-cnn",
            weights=None,
            checksum="bench",
            layers=[LayerSpec(n, k, u, i) for i, (n, k, u) in enumerate(LAYERS)],
        )
        dataset = register_dataset(
            conn,
            name="demo-like-colours",
            kind="ImageFolderDataset",
            source=str(root),
            class_keys=class_keys(),
            class_names=class_names(),
        )
    params = {"model": MODEL, "dataset": "demo-like-colours", "dataset_source": str(root)}
    with recorded_run(
        engine, "extract", params, model_id=model.id, dataset_id=dataset.id, h5_path=str(h5)
    ) as extract:
        pass
    score = score_extraction(engine, extract.id)
    units = {i: int(u) for i, u in enumerate(model.layer(LAYER).unit_ids[:visit])}
    with engine.connect() as conn:
        shown = conn.execute(
            text("SELECT DISTINCT image_index FROM unit_top_image WHERE unit_id = ANY(:u)"),
            {"u": list(units.values())},
        ).scalars()
        rng = np.random.default_rng(1)
        for i in shown:
            path = root / keys[i]
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path)
    panels = folder / "am"
    panels.mkdir()

    def write_am(conn: Any, run_id: int) -> None:
        rows = []
        for index, unit_id in units.items():
            path = panels / f"{LAYER}_{index}.png"
            Image.fromarray(rng.integers(0, 256, (34, 170, 3), dtype=np.uint8)).save(path)
            rows.append(
                {
                    **{"run_id": run_id, "unit_id": unit_id, "method": "bench-am"},
                    **{"params": {}, "path": str(path), "activations": [1.0] * 5},
                    "dataset_max": 2.0,
                }
            )
        conn.execute(insert(schema.AMPanel.__table__), rows)

    with recorded_run(engine, "am", {"layers": [LAYER]}, model_id=model.id) as am:
        am.complete(write_am)
    return score.run_id, units


def time_script(app: Path, run_id: int, units: range) -> tuple[float, float]:
    """The Unit page's server-side script alone (Streamlit's AppTest), each unit once, not
    seen before: (median wall seconds, median CPU seconds of this process)."""
    from streamlit.testing.v1 import AppTest

    walls, cpus = [], []
    for k in [units.start - 1, *units]:  # the first run imports and discovers: not counted
        at = AppTest.from_file(str(app), default_timeout=600)
        for name, value in {"model": MODEL, "layer": LAYER, "unit": k, "run_id": run_id}.items():
            at.query_params[name] = str(value)
        at.switch_page("app_pages/unit.py")
        wall, cpu = time.perf_counter(), time.process_time()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if k >= units.start:
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _drawn(page: Any, title: str) -> None:
    from tests.test_browser import SETTLED

    page.get_by_text(title, exact=True).first.wait_for(timeout=WAIT_MS)
    page.wait_for_function(SETTLED, timeout=WAIT_MS)


def _timed(action: Any, page: Any, title: str) -> float:
    started = time.perf_counter()
    action()
    _drawn(page, title)
    return time.perf_counter() - started


def time_pages(base: str, run_id: int, repeats: int) -> dict[str, list[float]]:
    """Seconds until drawn: the shell, Unit pages by address, "next unit", revisits."""
    from playwright.sync_api import sync_playwright

    from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS

    def unit_url(k: int) -> str:
        return f"{base}/unit?model={MODEL}&layer={LAYER}&unit={k}&run_id={run_id}"

    def title(k: int) -> str:
        return f"{MODEL} · {LAYER} · unit {k}"

    out: dict[str, list[float]] = {"shell": [], "unit": [], "next": [], "revisit": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        _timed(lambda: page.goto(base + "/runs"), page, "Runs")  # warm-up: not counted
        _timed(lambda: page.goto(unit_url(0)), page, title(0))
        for _ in range(repeats):
            out["shell"].append(_timed(lambda: page.goto(base + "/runs"), page, "Runs"))
        for k in range(1, repeats + 1):  # units not visited before
            out["unit"].append(_timed(lambda k=k: page.goto(unit_url(k)), page, title(k)))
        for k in range(repeats + 1, 2 * repeats + 1):  # on unit k-1: its › button
            button = page.get_by_role("button", name=f"{LAYER}.{k} ›")
            out["next"].append(_timed(button.click, page, title(k)))
        for k in range(1, repeats + 1):
            out["revisit"].append(_timed(lambda k=k: page.goto(unit_url(k)), page, title(k)))
        browser.close()
    return out


def report(times: dict[str, list[float]], script: tuple[float, float]) -> None:
    shell = statistics.median(times["shell"])
    print(
        f"\nUnit page server-side script (AppTest, units not seen before): {script[0]:.2f} s "
        f"wall, {script[1]:.2f} s CPU (medians)"
    )
    print("\nDemo-sized catalogue in headless Chromium (1400 × 900), until every chart has drawn:")
    print(f"  baseline: app shell (Runs page)        {shell:6.2f} s   (median)")
    for name, label in (
        ("unit", "Unit page, a unit not seen before"),
        ("next", 'Unit page, "next unit" (› button)'),
        ("revisit", "Unit page, a unit seen before"),
    ):
        values = times[name]
        median = statistics.median(values)
        print(
            f"  {label:38s} {median:6.2f} s   ({min(values):.2f}–{max(values):.2f} s; "
            f"{median / shell:4.1f} × the shell)   target < 2 s"
        )
