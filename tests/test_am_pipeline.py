"""AM panels into the catalogue, end to end: the seeded demo CNN extracted and scored on
digits, real AM runs on the CPU, real PNG files, a real database and the real CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sqlalchemy import Engine, create_engine, text
from torchvision.models.feature_extraction import create_feature_extractor

from catalogue.am import maximise_units
from catalogue.config import get_settings
from catalogue.data import load_digits
from catalogue.db.engine import database_identity
from catalogue.errors import InputError, NotFound
from catalogue.models import ModelInfo, load_demo_checkpoint, random_demo_model, renamed
from catalogue.models.demo_cnn import train_demo
from catalogue.pipeline.am import am_defaults, am_into_catalogue, panel_grid, parse_units
from catalogue.pipeline.extract import extract_into_catalogue
from catalogue.pipeline.scoring import score_extraction
from ingest.options import cli_message
from tests.cli import unitcat

LAYERS = ["conv5", "fc6"]
FAST = {"n_images": 4, "steps": 8, "lr": 0.1, "device": "cpu", "units_per_batch": 2}
STRONG = {**FAST, "steps": 64, "lr": 0.2}  # enough ascent to beat every digit clearly
TILE, GAP = 32, 2


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The demo CNN is tiny: one thread beats two on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own artifacts folder: run ids restart in every test database."""
    home = tmp_path / "home"
    monkeypatch.setenv("UNITCAT_HOME", str(home))
    return home


@pytest.fixture
def model() -> ModelInfo:
    return random_demo_model()


@pytest.fixture
def scored(engine: Engine, model: ModelInfo, tmp_path: Path) -> int:
    """The demo CNN's conv5 and fc6 extracted on 120 digits and scored over all of them."""
    data = load_digits("test", transform=model.transform)
    extract = extract_into_catalogue(
        engine, model, data, LAYERS, limit=120, out_path=tmp_path / "acts.h5"
    )
    return score_extraction(engine, extract.run_id, all_images=True).run_id


def _dataset_max(engine: Engine, run_id: int, layer: str) -> np.ndarray:
    with engine.connect() as conn:
        values = conn.execute(
            text(
                "SELECT um.max_activation FROM unit_metrics um JOIN unit u ON u.id = um.unit_id "
                "JOIN layer l ON l.id = u.layer_id WHERE um.run_id = :r AND l.name = :l "
                "ORDER BY u.unit_index"
            ),
            {"r": run_id, "l": layer},
        ).scalars()
        return np.array(list(values))


def _panels(engine: Engine) -> list:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT p.*, u.unit_index, l.name AS layer FROM am_panel p "
                "JOIN unit u ON u.id = p.unit_id JOIN layer l ON l.id = u.layer_id "
                "ORDER BY l.position, u.unit_index"
            )
        ).all()


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _tiles(path: Path, n: int) -> torch.Tensor:
    """Cut a grey panel back into its n tiles, as [0, 1] floats (n × 1 × 32 × 32)."""
    pixels = np.asarray(Image.open(path))
    _rows, cols = panel_grid(n)
    tiles = []
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = r * (TILE + GAP), c * (TILE + GAP)
        tiles.append(pixels[y : y + TILE, x : x + TILE])
    return torch.tensor(np.stack(tiles), dtype=torch.float32)[:, None] / 255.0


def test_panels_beat_every_digit_and_match_their_pngs(
    engine: Engine, model: ModelInfo, scored: int
) -> None:
    conv_max = _dataset_max(engine, scored, "conv5")
    fc_max = _dataset_max(engine, scored, "fc6")
    conv_units = [int(u) for u in np.argsort(-conv_max)[:2]]  # the two most active: not dead
    fc_unit = int(np.argmax(fc_max))
    conv = am_into_catalogue(engine, model, "conv5", conv_units, **STRONG)
    fc = am_into_catalogue(engine, model, "fc6", [fc_unit], **STRONG)
    assert conv.reduce == "max" and fc.reduce is None  # conv maps reduced as when scored
    assert conv.score_run_id == scored

    rows = _panels(engine)
    assert [(r.layer, r.unit_index) for r in rows] == sorted(
        [("conv5", u) for u in conv_units] + [("fc6", fc_unit)],
        key=lambda k: (LAYERS.index(k[0]), k[1]),
    )
    home = get_settings().artifacts_dir
    database = database_identity(engine)
    for row in rows:
        reference = (conv_max if row.layer == "conv5" else fc_max)[row.unit_index]
        assert row.dataset_max == pytest.approx(reference)
        assert reference > 0
        activations = np.array(row.activations)
        assert activations.shape == (4,)
        assert activations.mean() > 1.4 * reference  # well above the most active digit
        assert row.method == "fourier-decorrelated-gradient-ascent"
        assert row.params["unit"] == row.unit_index and row.params["channels"] == 1
        run_id = conv.run_id if row.layer == "conv5" else fc.run_id
        assert row.run_id == run_id
        path = home / row.path
        assert (
            path
            == home
            / "am"
            / database
            / "demo_cnn-random-seed0"
            / row.layer
            / f"unit-{row.unit_index}-run{run_id}.png"
        )
        with Image.open(path) as image:
            assert image.size == (2 * TILE + GAP, 2 * TILE + GAP)  # 4 images: a 2 × 2 panel
            assert image.mode == "L"

    # the stored activations are those of the images in the PNG: recompute them literally
    extractor = create_feature_extractor(model.module, LAYERS, tracer_kwargs=model.tracer_kwargs)
    transform = model.transform
    for row in rows:
        grey = _tiles(home / row.path, 4).expand(-1, 3, -1, -1)
        with torch.no_grad():
            out = extractor((grey - transform.mean) / transform.std)[row.layer]
        values = out[:, row.unit_index]
        if row.layer == "conv5":
            values = values.amax(dim=(1, 2))
        np.testing.assert_allclose(values.numpy(), row.activations, rtol=0.05)


def test_pipeline_passes_the_models_input_format_to_maximise_units(
    engine: Engine, model: ModelInfo, scored: int
) -> None:
    """Same activations as a direct call with the demo CNN's grey input and normalisation."""
    result = am_into_catalogue(engine, model, "conv5", [3, 5], **FAST)
    direct = maximise_units(
        model,
        "conv5",
        [3, 5],
        n_images=4,
        steps=8,
        lr=0.1,
        image_size=32,
        channels=1,
        input_channels=3,
        normalise=([model.transform.mean] * 3, [model.transform.std] * 3),
        reduce="max",
        device="cpu",
    )
    for position, panel in enumerate(result.panels):
        np.testing.assert_allclose(panel.activations, direct.activations[position], rtol=1e-5)
    defaults = am_defaults(model)
    assert (defaults.image_size, defaults.channels, defaults.input_channels) == (32, 1, 3)


def test_rerunning_replaces_the_runs_panels(engine: Engine, model: ModelInfo, scored: int) -> None:
    first = am_into_catalogue(engine, model, "fc6", [0, 1, 2], **FAST)
    ids_before = {r.id for r in _panels(engine)}
    second = am_into_catalogue(engine, model, "fc6", [0, 1, 2], **FAST)
    rows = _panels(engine)
    assert second.run_id == first.run_id
    assert len(rows) == 3 and ids_before.isdisjoint({r.id for r in rows})
    np.testing.assert_allclose(
        [p.activations for p in second.panels], [p.activations for p in first.panels]
    )
    database = database_identity(engine)
    folder = get_settings().artifacts_dir / "am" / database / "demo_cnn-random-seed0" / "fc6"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"unit-{u}-run{first.run_id}.png" for u in (0, 1, 2)
    ]  # no staging files left
    other = am_into_catalogue(engine, model, "fc6", [0], **{**FAST, "seed": 1})
    assert other.run_id != first.run_id and len(_panels(engine)) == 4


def test_without_a_scoring_run_there_is_no_dataset_max(
    engine: Engine, model: ModelInfo, tmp_path: Path
) -> None:
    data = load_digits("test", transform=model.transform)
    extract_into_catalogue(engine, model, data, ["conv5"], limit=20, out_path=tmp_path / "a.h5")
    result = am_into_catalogue(engine, model, "conv5", [0], **FAST)
    assert result.score_run_id is None and result.reduce == "max"
    assert [r.dataset_max for r in _panels(engine)] == [None]


def test_bad_requests_are_refused_before_anything_is_recorded(
    engine: Engine, model: ModelInfo, scored: int
) -> None:
    n_runs = _count(engine, "run")
    with pytest.raises(
        NotFound, match=r"no layer 'conv9' in the catalogue \(registered: conv5, fc6\)"
    ):
        am_into_catalogue(engine, model, "conv9", [0], **FAST)
    with pytest.raises(NotFound, match=r"no layer 'fc7'") as unextracted:  # a node, not extracted
        am_into_catalogue(engine, model, "fc7", [0], **FAST)
    assert re.search(r"no layer 'fc7'.*--layers fc7", cli_message(unextracted.value))
    with pytest.raises(NotFound, match="units 0–31; there is no unit 32"):
        am_into_catalogue(engine, model, "conv5", [0, 32], **FAST)
    # the extracted model's name, other weights (random weights are named by their seed)
    other = renamed(random_demo_model(seed=1), model.name)
    with pytest.raises(InputError, match="other weights"):
        am_into_catalogue(engine, other, "conv5", [0], **FAST)
    with pytest.raises(InputError, match="n_images must be 1–100") as too_many:
        am_into_catalogue(engine, model, "conv5", [0], **{**FAST, "n_images": 101})
    assert cli_message(too_many.value).startswith("--images must be 1–100")
    with pytest.raises(InputError, match="reduce") as median:
        am_into_catalogue(engine, model, "conv5", [0], **{**FAST, "reduce": "median"})
    assert "--reduce" in cli_message(median.value)
    assert _count(engine, "run") == n_runs
    assert _count(engine, "am_panel") == 0


def test_an_unregistered_model_is_refused_with_the_command_to_run(
    engine: Engine, model: ModelInfo
) -> None:
    with pytest.raises(NotFound, match=r"not in the catalogue; extract it first") as unknown:
        am_into_catalogue(engine, model, "conv5", [0], **FAST)
    assert "not in the catalogue; run `unitcat ingest extract" in cli_message(unknown.value)
    assert _count(engine, "run") == 0


@pytest.mark.parametrize(
    ("text_", "expected"),
    [
        ("0,1,5", [0, 1, 5]),
        ("0-3", [0, 1, 2, 3]),
        (" 7, 0-1 ", [7, 0, 1]),
        ("", None),
        (None, None),
    ],
)
def test_unit_lists_parse(text_: str | None, expected: list[int] | None) -> None:
    assert parse_units(text_) == expected


@pytest.mark.parametrize(
    ("text_", "message"),
    [("1,x", "'x' is not a unit index"), ("5-2", "runs backwards"), ("1,0-2", "unit 1 twice")],
)
def test_bad_unit_lists_are_refused(text_: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_units(text_)


def test_panel_grid_is_ten_by_ten_for_a_hundred_images() -> None:
    assert panel_grid(100) == (10, 10)
    assert panel_grid(1) == (1, 1)
    assert panel_grid(4) == (2, 2)
    assert panel_grid(10) == (3, 4)


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real demo checkpoint (one quick epoch on 200 digits): a model file the CLI can load."""
    out = tmp_path_factory.mktemp("checkpoint") / "demo.pt"
    return train_demo("digits", epochs=1, limit=200, out_path=out).checkpoint


def test_cli_makes_panels_of_an_extracted_model(
    engine: Engine, database_url: str, checkpoint: Path, tmp_path: Path
) -> None:
    info = load_demo_checkpoint(checkpoint)
    data = load_digits("test", transform=info.transform)
    extract_into_catalogue(engine, info, data, ["fc6"], limit=40, out_path=tmp_path / "a.h5")
    result = unitcat(
        "ingest", "am", "--model", str(checkpoint), "--layer", "fc6", "--units", "0-1",
        "--images", "4", "--steps", "4", "--device", "cpu",
        env={"DATABASE_URL": database_url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 panels on cpu" in result.stdout
    assert "unit-1-run" in result.stdout
    rows = _panels(engine)
    assert [(r.layer, r.unit_index, len(r.activations)) for r in rows] == [
        ("fc6", 0, 4),
        ("fc6", 1, 4),
    ]
    assert all((get_settings().artifacts_dir / r.path).is_file() for r in rows)


def test_cli_refuses_an_unextracted_model_in_one_line(database_url: str, checkpoint: Path) -> None:
    result = unitcat(
        "ingest", "am", "--model", str(checkpoint), "--layer", "fc6", "--units", "0",
        env={"DATABASE_URL": database_url},
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'demo:digits' is not in the catalogue; run `unitcat ingest extract" in lines[0]
    engine = create_engine(database_url)
    assert _count(engine, "run") == 0
    engine.dispose()
