"""A small AlexNet-shaped CNN that trains on the CPU in minutes: the offline stand-in.

Why: the catalogue is about the hidden units of trained classifiers, and here
(CI, development) there are no pretrained weights. This network has AlexNet's
shape — five convolutional and three fully connected layers, ReLU after each
but the last (Krizhevsky et al. 2012; the layers the object-detector paper
scores are AlexNet's conv and fc layers) — at 32 × 32 input, so that it trains
on Fashion-MNIST in a couple of minutes on two cores and conv5 still has an
8 × 8 spatial map for dissection.

Its feature-extraction node names are ``conv1`` … ``conv5``, ``fc6``, ``fc7``
and ``fc8`` (the logits); each conv/fc node is the post-ReLU output of its
block. Each block is a `DemoBlock`, which the feature extractor treats as a
leaf (see `catalogue.models.tracer_kwargs`); without that, torchvision's
prefix rule resolves ``conv5`` to the same post-ReLU node.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from catalogue.config import get_settings
from catalogue.data import resolve_dataset
from catalogue.errors import InputError

ARCHITECTURE = "demo_cnn"
INPUT_SIZE = 32
CONV_WIDTHS = (16, 24, 32, 32, 32)
FC_WIDTHS = (128, 128)
DEMO_DATASETS = ("digits", "fashion-mnist", "fashion-mnist-colours")
DEFAULT_EPOCHS = {"digits": 8, "fashion-mnist": 2, "fashion-mnist-colours": 2}
CHECKPOINT_VERSION = 1


class DemoBlock(nn.Sequential):
    """One named layer (conv or fc) whose output is post-ReLU: a leaf for feature extraction."""


class DemoCNN(nn.Module):
    """conv1–conv5 (3 × 3, ReLU; max-pool before conv2, conv3 and fc6), fc6, fc7 (ReLU), fc8 (logits)."""

    def __init__(
        self,
        num_classes: int = 10,
        conv_widths: tuple[int, ...] = CONV_WIDTHS,
        fc_widths: tuple[int, ...] = FC_WIDTHS,
    ) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = conv_widths
        f6, f7 = fc_widths
        self.conv1 = DemoBlock(nn.Conv2d(3, c1, 3, padding=1), nn.ReLU())
        self.conv2 = DemoBlock(nn.MaxPool2d(2), nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU())
        self.conv3 = DemoBlock(nn.MaxPool2d(2), nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU())
        self.conv4 = DemoBlock(nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU())
        self.conv5 = DemoBlock(nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU())
        self.fc6 = DemoBlock(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c5 * 4 * 4, f6), nn.ReLU())
        self.fc7 = DemoBlock(nn.Linear(f6, f7), nn.ReLU())
        self.fc8 = nn.Linear(f7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))
        return self.fc8(self.fc7(self.fc6(x)))


def resize_gray(image: Image.Image, size: int = INPUT_SIZE) -> np.ndarray:
    """Grayscale, bilinear resize to ``size``² (when needed), as uint8: the one resampling step."""
    gray = image.convert("L")
    if gray.size != (size, size):
        gray = gray.resize((size, size), Image.Resampling.BILINEAR)
    return np.array(gray, dtype=np.uint8)  # a writable copy for torch


def normalise(gray_uint8: np.ndarray | torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 (…, H, W) → float (…, 3, H, W): scaled to [0, 1], standardised, replicated to 3 channels."""
    x = torch.as_tensor(gray_uint8).float().div_(255.0).sub_(mean).div_(std)
    return x.unsqueeze(-3).expand(*x.shape[:-2], 3, *x.shape[-2:]).contiguous()


@dataclass(frozen=True)
class DemoTransform:
    """PIL image → normalised 3 × 32 × 32 tensor, exactly as in training (picklable for workers)."""

    size: int
    mean: float
    std: float

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return normalise(resize_gray(image, self.size), self.mean, self.std)


def normalise_rgb(
    rgb_uint8: np.ndarray | torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """uint8 (…, H, W, 3) → float (…, 3, H, W): scaled to [0, 1], standardised per channel."""
    x = torch.as_tensor(rgb_uint8).float().div_(255.0)
    m = torch.tensor(mean, dtype=x.dtype)
    s = torch.tensor(std, dtype=x.dtype)
    return x.sub_(m).div_(s).movedim(-1, -3).contiguous()


@dataclass(frozen=True)
class DemoRGBTransform:
    """PIL image → normalised 3 × 32 × 32 tensor for a demo CNN trained on colour images
    (per-channel mean and std; bilinear resize when the image is not already 32 × 32)."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, image: Image.Image) -> torch.Tensor:
        rgb = image.convert("RGB")
        if rgb.size != (self.size, self.size):
            rgb = rgb.resize((self.size, self.size), Image.Resampling.BILINEAR)
        return normalise_rgb(np.array(rgb, dtype=np.uint8), self.mean, self.std)


@dataclass(frozen=True)
class DemoTrainResult:
    checkpoint: Path
    dataset: str
    epochs: int
    n_train: int
    n_test: int
    test_accuracy: float
    seconds: float


def checkpoint_path(dataset: str) -> Path:
    """Where the demo checkpoint for ``dataset`` lives: ``$UNITCAT_HOME/checkpoints/demo-<dataset>.pt``."""
    return get_settings().checkpoints_dir / f"demo-{dataset}.pt"


def _rgb_arrays(dataset: Any, size: int) -> tuple[np.ndarray, np.ndarray]:
    """All images of a colour dataset (`catalogue.data.fashion_colours`) as uint8 (N, size, size, 3)."""
    images = dataset.rgb_images()
    if images.shape[1:3] != (size, size):
        images = np.stack(
            [
                np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BILINEAR))
                for im in images
            ]
        )
    return np.ascontiguousarray(images, dtype=np.uint8), np.asarray(dataset.labels, dtype=np.int64)


def _gray_arrays(dataset: Any, size: int) -> tuple[np.ndarray, np.ndarray]:
    """All images of an array-backed dataset as uint8 (N, size, size), plus labels."""
    images = dataset.images
    if images.shape[1:] != (size, size):
        images = np.stack([resize_gray(Image.fromarray(im), size) for im in images])
    return np.ascontiguousarray(images, dtype=np.uint8), np.asarray(dataset.labels, dtype=np.int64)


@torch.inference_mode()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512
) -> float:
    """Top-1 accuracy of ``model`` on preprocessed images (N, 3, H, W)."""
    model.eval()
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        logits = model(images[start : start + batch_size])
        correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    return correct / max(1, images.shape[0])


def train_demo(
    dataset: str = "digits",
    *,
    epochs: int | None = None,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    limit: int | None = None,
    out_path: str | Path | None = None,
    fashion_mnist_dir: str | Path | None = None,
    threads: int = 1,
    on_progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> DemoTrainResult:
    """Train the demo CNN on ``digits``, ``fashion-mnist`` or ``fashion-mnist-colours`` (train
    split), test it, save a checkpoint.

    Deterministic for a given seed (fixed initialisation and batch order; CPU).
    ``limit`` trains on the first ``limit`` training images (for quick tests).
    ``on_progress(step, total_steps, {"loss": …, "epoch": …})`` is called after
    every optimisation step. ``threads``: torch CPU threads while training
    (0: torch's default). One is the default because this network's
    convolutions are too small to gain from a second thread, and on a busy
    machine OpenMP's barriers made two threads 3–8× slower than one (1,694 vs
    200 images/s measured on the shared 2-core box). The checkpoint holds the
    weights, class keys and names, input size, channels (grey images are repeated to
    3 channels; colour images are normalised per channel) and normalisation;
    `catalogue.models.load_model("demo:<dataset>")` reads it back.
    """
    if threads < 0:
        raise InputError(f"--threads must be 0 (torch's default) or more, got {threads}.")
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(
            dataset, epochs, batch_size, lr, seed, limit, out_path, fashion_mnist_dir, on_progress
        )
    finally:
        torch.set_num_threads(previous)


def _train(
    dataset: str,
    epochs: int | None,
    batch_size: int,
    lr: float,
    seed: int,
    limit: int | None,
    out_path: str | Path | None,
    fashion_mnist_dir: str | Path | None,
    on_progress: Callable[[int, int, dict[str, float]], None] | None,
) -> DemoTrainResult:
    if dataset not in DEMO_DATASETS:
        raise InputError(f"the demo CNN trains on {' or '.join(DEMO_DATASETS)}, not {dataset!r}.")
    epochs = DEFAULT_EPOCHS[dataset] if epochs is None else int(epochs)
    if epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {epochs}.")
    train_set = resolve_dataset(f"{dataset}:train", fashion_mnist_dir=fashion_mnist_dir)
    test_set = resolve_dataset(f"{dataset}:test", fashion_mnist_dir=fashion_mnist_dir)
    started = time.perf_counter()
    colour = hasattr(train_set, "rgb_images")
    arrays = _rgb_arrays if colour else _gray_arrays
    train_x, train_y = arrays(train_set, INPUT_SIZE)
    if limit is not None:
        train_x, train_y = train_x[:limit], train_y[:limit]
    test_x, test_y = arrays(test_set, INPUT_SIZE)
    mean: float | tuple[float, ...]
    std: float | tuple[float, ...]
    if colour:  # per channel, as torchvision's ImageNet transforms
        mean = tuple(float(v) for v in train_x.reshape(-1, 3).mean(0) / 255.0)
        std = tuple(float(v) / 255.0 or 1.0 for v in train_x.reshape(-1, 3).std(0))
    else:
        mean = float(train_x.mean() / 255.0)
        std = float(train_x.std() / 255.0) or 1.0

    def prepare(images: torch.Tensor) -> torch.Tensor:
        if colour:
            return normalise_rgb(images, mean, std)  # type: ignore[arg-type]
        return normalise(images, mean, std)  # type: ignore[arg-type]

    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DemoCNN(num_classes=len(train_set.class_keys))
    model = model.to(memory_format=torch.channels_last)  # oneDNN's fast path on CPUs
    n = train_x.shape[0]
    steps_per_epoch = max(1, -(-n // batch_size))
    total = steps_per_epoch * epochs
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=lr, total_steps=total, pct_start=0.2
    )
    x_all = torch.from_numpy(train_x)
    y_all = torch.from_numpy(train_y)
    step = 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            x = prepare(x_all[idx]).contiguous(memory_format=torch.channels_last)
            loss = nn.functional.cross_entropy(model(x), y_all[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            if on_progress is not None:
                on_progress(step, total, {"loss": float(loss.detach()), "epoch": epoch + 1})
    accuracy = evaluate(model, prepare(torch.from_numpy(test_x)), torch.from_numpy(test_y))
    path = Path(out_path) if out_path is not None else checkpoint_path(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": "unitcat-demo-cnn",
        "version": CHECKPOINT_VERSION,
        "architecture": ARCHITECTURE,
        "state_dict": {k: v.contiguous() for k, v in model.state_dict().items()},
        "num_classes": len(train_set.class_keys),
        "conv_widths": list(CONV_WIDTHS),
        "fc_widths": list(FC_WIDTHS),
        "class_keys": list(train_set.class_keys),
        "class_names": list(train_set.class_names),
        "input_size": INPUT_SIZE,
        "channels": 3 if colour else 1,
        "mean": list(mean) if colour else mean,  # type: ignore[arg-type]
        "std": list(std) if colour else std,  # type: ignore[arg-type]
        "dataset": dataset,
        "epochs": epochs,
        "seed": seed,
        "n_train": int(n),
        "test_accuracy": accuracy,
    }
    tmp = path.with_suffix(".pt.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return DemoTrainResult(
        checkpoint=path,
        dataset=dataset,
        epochs=epochs,
        n_train=int(n),
        n_test=int(test_x.shape[0]),
        test_accuracy=accuracy,
        seconds=time.perf_counter() - started,
    )
