"""The extraction loop: values against a literal forward pass, skips, and resume after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from catalogue.data import ImageFolderDataset, load_digits
from catalogue.errors import InputError, NotFound
from catalogue.extraction import extract_activations
from catalogue.models import load_model, random_demo_model
from catalogue.store import ActivationStore

REPO = Path(__file__).resolve().parents[1]


def make_image_folder(
    root: Path, counts: dict[str, int], corrupt: dict[str, str] | None = None
) -> Path:
    rng = np.random.default_rng(2)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"img{i:02d}.{'jpg' if i % 2 else 'png'}")
    for rel, content in (corrupt or {}).items():
        (root / rel).write_bytes(content.encode())
    return root


def _literal(model, dataset, n: int):
    """One image at a time through the module's own blocks: the slow reference."""
    net = model.module
    rows = {"conv5_max": [], "conv5_mean": [], "fc7": [], "pred": [], "maps": []}
    with torch.inference_mode():
        for i in range(n):
            x = model.transform(dataset.load_image(i)).unsqueeze(0)
            conv5 = net.conv5(net.conv4(net.conv3(net.conv2(net.conv1(x)))))
            fc7 = net.fc7(net.fc6(conv5))
            logits = net.fc8(fc7)
            rows["conv5_max"].append(conv5.amax(dim=(2, 3))[0].numpy())
            rows["conv5_mean"].append(conv5.mean(dim=(2, 3))[0].numpy())
            rows["fc7"].append(fc7[0].numpy())
            rows["pred"].append(int(logits.argmax()))
            rows["maps"].append(conv5[0].numpy())
    return {k: np.array(v) for k, v in rows.items()}


def test_stored_values_match_a_literal_forward_pass(tmp_path):
    model = random_demo_model()
    dataset = load_digits("test", transform=model.transform)
    ref = _literal(model, dataset, 20)
    summary = extract_activations(
        model,
        dataset,
        ["conv5", "fc7"],
        tmp_path / "max.h5",
        limit=20,
        batch_size=6,
        keep_maps=True,
    )
    assert summary.n_images == 20
    assert summary.n_skipped == 0
    assert [layer.name for layer in summary.layers] == ["conv5", "fc7"]
    with ActivationStore.open(tmp_path / "max.h5") as store:
        np.testing.assert_allclose(
            store.read_units("conv5", 0, 32), ref["conv5_max"], rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(
            store.read_units("fc7", 0, 128), ref["fc7"], rtol=1e-4, atol=1e-5
        )
        np.testing.assert_array_equal(store.predictions, ref["pred"])
        np.testing.assert_array_equal(store.labels, dataset.labels[:20])
        assert store.image_keys == [dataset.key(i) for i in range(20)]
        assert summary.accuracy == pytest.approx(np.mean(ref["pred"] == dataset.labels[:20]))
        assert store.class_keys == dataset.class_keys
        assert store.layer_info("conv5")["reduce"] == "max"
        assert store.layer_info("fc7")["reduce"] == "none"
        np.testing.assert_allclose(
            store.read_maps("conv5").astype(np.float32), ref["maps"], rtol=2e-3, atol=2e-3
        )
        assert store.params["layers"] == ["conv5", "fc7"]
        assert store.params["checksum"] == model.checksum
        assert store.is_complete
    extract_activations(model, dataset, ["conv5"], tmp_path / "mean.h5", limit=20, reduce="mean")
    with ActivationStore.open(tmp_path / "mean.h5") as store:
        np.testing.assert_allclose(
            store.read_units("conv5", 0, 32), ref["conv5_mean"], rtol=1e-4, atol=1e-5
        )


def test_corrupt_images_are_skipped_and_listed(tmp_path):
    root = make_image_folder(
        tmp_path / "tree", {"cat": 3, "dog": 2, "eel": 2}, corrupt={"dog/zz_broken.jpg": "garbage"}
    )
    model = load_model("resnet18", num_classes=3, input_size=32)
    dataset = ImageFolderDataset(root, transform=model.transform)
    progress = []
    summary = extract_activations(
        model, dataset, ["layer4", "fc"], tmp_path / "run.h5", batch_size=3,
        on_progress=lambda done, total: progress.append((done, total)),
    )  # fmt: skip
    assert summary.n_images == 7
    assert summary.n_skipped == 1
    assert summary.skipped[0][0] == "dog/zz_broken.jpg"
    assert "UnidentifiedImageError" in summary.skipped[0][1]
    assert progress[0] == (0, 8)
    assert progress[-1] == (8, 8)
    with ActivationStore.open(tmp_path / "run.h5") as store:
        assert "dog/zz_broken.jpg" not in store.image_keys
        assert store.labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
        assert store.layer_shape("layer4") == (7, 512)
        assert store.layer_info("layer4")["output_shape"] == (512, 1, 1)
        assert store.skipped == summary.skipped
    with pytest.raises(InputError, match="zz_broken"):
        extract_activations(model, dataset, ["fc"], tmp_path / "strict.h5", strict=True)
    with pytest.raises(
        InputError, match=r"^cannot read image dog/zz_broken\.jpg .*--strict to skip it\.$"
    ):
        extract_activations(model, dataset, ["fc"], tmp_path / "workers.h5", strict=True, workers=1)


def test_class_count_mismatch_fails_before_any_work(tmp_path):
    root = make_image_folder(tmp_path / "tree", {"a": 1, "b": 1})
    model = load_model("resnet18", num_classes=3, input_size=32)
    with pytest.raises(InputError, match="3 outputs but dataset tree has 2 classes"):
        extract_activations(model, ImageFolderDataset(root), ["fc"], tmp_path / "run.h5")
    assert not (tmp_path / "run.h5").exists()


def test_model_and_dataset_classes_must_agree(tmp_path):
    model = random_demo_model()
    model.class_keys = [f"k{i}" for i in range(10)]
    with pytest.raises(InputError, match="trained on"):
        extract_activations(model, load_digits("test"), ["fc8"], tmp_path / "run.h5")


def test_unknown_layer_and_bad_options(tmp_path):
    model = random_demo_model()
    dataset = load_digits("test", transform=model.transform)
    with pytest.raises(NotFound, match="closest: conv5"):
        extract_activations(model, dataset, ["conv6"], tmp_path / "a.h5")
    with pytest.raises(InputError, match="reduce"):
        extract_activations(model, dataset, ["conv5"], tmp_path / "a.h5", reduce="median")
    with pytest.raises(InputError, match="no images"):
        extract_activations(model, dataset, ["conv5"], tmp_path / "a.h5", limit=0)
    with pytest.raises(InputError, match="conv layers"):
        extract_activations(model, dataset, ["fc7"], tmp_path / "a.h5", keep_maps=["fc7"])
    assert not (tmp_path / "a.h5").exists()


def test_rerun_with_other_parameters_is_refused_and_a_complete_run_is_kept(tmp_path):
    model = random_demo_model()
    dataset = load_digits("test", transform=model.transform)
    path = tmp_path / "run.h5"
    extract_activations(model, dataset, ["fc7"], path, limit=10)
    again = extract_activations(model, dataset, ["fc7"], path, limit=10)
    assert again.already_complete
    assert again.n_images == 10
    with pytest.raises(InputError, match=r"different parameters \(layers, reduce\)"):
        extract_activations(model, dataset, ["fc6"], path, limit=10, reduce="mean")


CHILD = """
import sys
import numpy as np
from catalogue.data import ArrayImageDataset
from catalogue.extraction import extract_activations
from catalogue.models import random_demo_model

model = random_demo_model()
rng = np.random.default_rng(0)
dataset = ArrayImageDataset(
    rng.integers(0, 256, (120, 32, 32), dtype=np.uint8), np.arange(120) % 10, [f"im{i:03d}" for i in range(120)],
    name="noise", class_keys=[str(i) for i in range(10)], class_names=[str(i) for i in range(10)],
    transform=model.transform,
)

def report(done, total):
    print(done, flush=True)
    if len(sys.argv) > 2 and done >= int(sys.argv[2]):
        sys.stdin.read()  # held mid-run until the parent kills us (or closes our stdin)

extract_activations(model, dataset, None, sys.argv[1], batch_size=8, chunk_rows=16, keep_maps=["conv5"],
                    on_progress=report)
"""


def _child(script: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(out), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def _datasets(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path) as h5:
        h5.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[...]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return out


def test_killed_extraction_resumes_to_identical_file(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    reference = tmp_path / "reference.h5"
    uninterrupted = _child(script, reference)
    killed = tmp_path / "killed.h5"
    child = _child(script, killed, "56")
    seen = 0
    for line in child.stdout:
        seen = int(line)
        if seen >= 56:  # several bands of 16 rows are on disk, the run is far from its end (120)
            break  # and the child waits there
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    with ActivationStore.open(killed) as partial:
        cut = partial.n_complete
        assert not partial.is_complete
        assert 0 < cut < 120
        assert cut % 16 == 0

    for _ in uninterrupted.stdout:
        pass
    assert uninterrupted.wait() == 0
    resumed = _child(script, killed)
    lines = [int(x) for x in resumed.stdout]
    assert resumed.wait() == 0
    assert lines[0] == cut  # progress restarts where the file stopped
    assert lines[-1] == 120

    want, got = _datasets(reference), _datasets(killed)
    assert sorted(want) == sorted(got)
    assert "layers/conv1" in got
    assert "maps/conv5" in got
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    with ActivationStore.open(killed) as store:
        assert store.is_complete
        assert store.n_complete == 120
