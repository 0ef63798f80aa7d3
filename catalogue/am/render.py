"""The render loop: `maximise_units` assembles the parts and runs Adam on the images' spectra.

Parts (as in lucent's ``render_vis``): a parameterisation
(`catalogue.am.param.FourierImage`), an objective
(`catalogue.am.objectives.UnitObjective`), transforms
(`catalogue.am.transforms`: random affine resampling, then the network's
normalisation) and the optimiser (Adam on the Fourier coefficients, with
`catalogue.am.relu.RedirectedReLUs` for the first steps). The model is
borrowed through `catalogue.models.prepared`: on the device, in eval mode,
and back as it was given afterwards.

Randomness: every unit has its own stream, seeded by ``(seed, unit)``, which
yields all its images' starting spectra and then all their transform draws;
a batch slices out the images it holds, so a unit's images are the same
whichever other units (or how many of its own images) share its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from catalogue.am.objectives import REDUCTIONS, UnitObjective, layer_units
from catalogue.am.panel import render_panel
from catalogue.am.param import FourierImage
from catalogue.am.relu import RedirectedReLUs
from catalogue.am.transforms import (
    N_DRAWS,
    Normalise,
    RobustnessTransforms,
    affine_matrices,
    affine_resample,
    normalise_params,
    normaliser,
)
from catalogue.config import resolve_device
from catalogue.errors import InputError, NotFound
from catalogue.models import ModelInfo, prepared, require_model_info

METHOD = "fourier-decorrelated-gradient-ascent"

ProgressCallback = Callable[[int, int], None]


@dataclass
class AMResult:
    """The AM images of some units of one layer.

    ``images[u, k]`` is image k of unit ``unit_indices[u]`` (C × H × W, float32
    in [0, 1]); ``activations[u, k]`` is that unit's activation on it (reduced
    as in ``params["reduce"]`` for conv units), measured on the final image
    without the robustness transforms. ``params`` is the plain dict to store as
    ``am_panel.params``.
    """

    layer_name: str
    unit_indices: tuple[int, ...]
    images: np.ndarray
    activations: np.ndarray
    params: dict[str, Any]

    def panel(self, position: int, **kwargs: Any) -> Image.Image:
        """The panel of the unit at ``position`` in ``unit_indices``."""
        return render_panel(self.images[position], **kwargs)


def maximise_units(
    model: ModelInfo,
    layer_name: str,
    unit_indices: Sequence[int],
    *,
    n_images: int = 100,
    steps: int = 256,
    image_size: int = 224,
    lr: float = 0.05,
    seed: int = 0,
    device: str | None = None,
    normalise: Normalise = None,
    channels: Literal[1, 3] = 3,
    input_channels: int | None = None,
    reduce: Literal["mean", "max"] = "mean",
    transforms: RobustnessTransforms | None = RobustnessTransforms(),
    decorrelate: bool = True,
    redirect_relu_steps: int = 16,
    batch_size: int = 256,
    on_progress: ProgressCallback | None = None,
) -> AMResult:
    """Generate ``n_images`` AM images for each unit of ``layer_name``.

    Args:
        model: the classifier (`catalogue.models.ModelInfo`; a bare module
            through `ModelInfo.from_module`). It runs on ``device`` in eval
            mode and comes back as it was given (`catalogue.models.prepared`).
        layer_name: a torchvision feature-extraction node name (``features.10``,
            ``conv5`` …) whose output is N × U (fc) or N × U × H × W (conv).
        unit_indices: units (channels) of that layer, distinct.
        n_images: images per unit (the paper's panels hold 100).
        steps: Adam steps.
        image_size: side of the square image given to the network.
        lr: Adam learning rate on the Fourier coefficients.
        seed: image k of unit u starts from a noise stream seeded by
            ``(seed, u)``, so results do not depend on batching.
        device: ``auto``/``cpu``/``cuda`` (None: the configured default).
        normalise: maps the [0, 1] image to the network's input: ``(mean, std)``
            per channel, a differentiable callable, or None (identity).
        channels: 3 (RGB, colour-decorrelated) or 1 (grey).
        input_channels: channels the network takes (default ``channels``); a
            grey image is repeated to 3 channels for a network trained on grey
            images stored as RGB (the demo CNN).
        reduce: conv units only: the objective and the reported activation are
            the channel's spatial ``mean`` (default) or ``max``.
        transforms: random jitter/scale/rotation per step; None to switch off.
        decorrelate: apply the ImageNet colour decorrelation (RGB only).
        redirect_relu_steps: for the first steps, a ReLU whose gradient is zero
            for an image lets through the gradient that would raise its input
            (lucid's "redirected ReLU"), so a unit that is off on the grey start
            image can still take off; 0 switches this off.
        batch_size: images per forward pass (several units share a batch); it
            changes speed and memory, not the result.
        on_progress: called as ``on_progress(steps_done, steps_total)``.

    Memory: the result holds every image (U × n_images × C × size² float32,
    60 MB per unit at 100 images of 224²), so for a whole layer call this for
    a few units at a time (e.g. ``batch_size // n_images`` units per call) and
    save each unit's panel before the next call.

    Raises:
        InputError: for a bad option value.
        NotFound: when the layer is not a node of the model or a unit index is
            outside the layer.
    """
    model = require_model_info(model)
    units = _check_options(
        unit_indices,
        n_images,
        steps,
        image_size,
        lr,
        channels,
        reduce,
        batch_size,
        seed,
        redirect_relu_steps,
    )
    dev = torch.device(resolve_device(device))
    in_channels = channels if input_channels is None else input_channels
    if in_channels != channels and (channels, in_channels) != (1, 3):
        raise InputError(
            f"input_channels {in_channels} needs channels 1 (repeated to 3) or {in_channels}."
        )
    norm = normaliser(normalise, in_channels, repeat=in_channels != channels)
    with prepared(model, device=dev, requires_grad=False) as ready:
        extractor = ready.extractor([layer_name], with_logits=False)
        n_units, kind = layer_units(extractor, layer_name, channels, image_size, norm, dev)
        bad = [u for u in units if not 0 <= u < n_units]
        if bad:
            raise NotFound(
                f"unit {bad[0]} is not in layer {layer_name!r}, which has units 0–{n_units - 1}."
            )
        objective = UnitObjective(layer_name, kind, reduce)
        param = FourierImage(image_size, channels, decorrelate and channels == 3, dev)

        def unit_values(image: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
            return objective(extractor(norm(image)), cols)

        images, acts = _render(
            param, unit_values, units, n_images, steps, lr, seed, transforms,
            redirect_relu_steps, batch_size, dev, on_progress,
        )  # fmt: skip
    params = {
        "method": METHOD,
        "n_images": n_images,
        "steps": steps,
        "lr": lr,
        "optimizer": "adam",
        "image_size": image_size,
        "channels": channels,
        "input_channels": in_channels,
        "seed": seed,
        "parameterisation": param.as_params(),
        "transforms": transforms.as_params() if transforms is not None else None,
        "redirect_relu_steps": redirect_relu_steps,
        "normalise": normalise_params(normalise),
        "reduce": reduce if kind == "conv" else None,
        "objective": objective.description,
    }
    return AMResult(layer_name, tuple(units), images, acts, params)


def _render(
    param: FourierImage,
    unit_values: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    units: list[int],
    n_images: int,
    steps: int,
    lr: float,
    seed: int,
    transforms: RobustnessTransforms | None,
    redirect_relu_steps: int,
    batch_size: int,
    dev: torch.device,
    on_progress: ProgressCallback | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Optimise every (unit, image) pair, ``batch_size`` pairs at a time; images and activations."""
    pairs = [(u_pos, k) for u_pos in range(len(units)) for k in range(n_images)]
    batches = [pairs[i : i + batch_size] for i in range(0, len(pairs), batch_size)]
    images = np.empty((len(units), n_images, param.channels, param.size, param.size), np.float32)
    acts = np.empty((len(units), n_images), np.float32)
    total = len(batches) * steps
    fill = transforms.fill if transforms is not None else 0.5
    for b, batch in enumerate(batches):
        spectrum, thetas = _initial_state(batch, units, n_images, steps, seed, param, transforms)
        spectrum = spectrum.to(dev).requires_grad_(True)
        thetas = thetas.to(dev) if thetas is not None else None
        cols = torch.tensor([units[u_pos] for u_pos, _ in batch], device=dev)

        def batch_values(image: torch.Tensor, cols: torch.Tensor = cols) -> torch.Tensor:
            return unit_values(image, cols)

        def progress(step: int, b: int = b) -> None:
            if on_progress is not None:
                on_progress(b * steps + step, total)

        _ascend(
            param, spectrum, thetas, fill, batch_values, steps, lr, redirect_relu_steps, progress
        )
        with torch.no_grad():
            final = param.images(spectrum)
            value = batch_values(final)
        u_idx = [u_pos for u_pos, _ in batch]
        k_idx = [k for _, k in batch]
        images[u_idx, k_idx] = final.float().cpu().numpy()
        acts[u_idx, k_idx] = value.float().cpu().numpy()
    return images, acts


def _ascend(
    param: FourierImage,
    spectrum: torch.Tensor,
    thetas: torch.Tensor | None,
    fill: float,
    unit_values: Callable[[torch.Tensor], torch.Tensor],
    steps: int,
    lr: float,
    redirect_relu_steps: int,
    progress: Callable[[int], None],
) -> None:
    """Adam on the spectrum, maximising the sum over images of each image's unit value."""
    optimiser = torch.optim.Adam([spectrum], lr=lr)
    with torch.enable_grad():
        for step in range(steps):
            optimiser.zero_grad(set_to_none=True)
            image = param.images(spectrum)
            if thetas is not None:
                image = affine_resample(image, thetas[step], fill)
            if step < redirect_relu_steps:
                with RedirectedReLUs():
                    loss = -unit_values(image).sum()
            else:
                loss = -unit_values(image).sum()
            loss.backward(inputs=[spectrum])
            optimiser.step()
            progress(step + 1)


def _initial_state(
    batch: list[tuple[int, int]],
    units: list[int],
    n_images: int,
    steps: int,
    seed: int,
    param: FourierImage,
    transforms: RobustnessTransforms | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Initial spectra and per-step affine matrices of a batch of (unit position, image) pairs.

    Each unit's stream (seeded by ``(seed, unit)``) yields all its ``n_images``
    initialisations, then all its transform draws; a batch slices out the images
    it holds, so a unit's images are the same whichever batch holds them.
    """
    spectra, draws = [], []
    for u_pos in sorted({u_pos for u_pos, _ in batch}):
        ks = [k for p, k in batch if p == u_pos]
        gen = torch.Generator().manual_seed(unit_seed(seed, units[u_pos]))
        init = param.random_spectra(n_images, gen)
        uniform = torch.rand((steps, n_images, N_DRAWS), generator=gen)
        spectra.append(init[ks])
        draws.append(uniform[:, ks])
    spectrum = torch.cat(spectra)
    if transforms is None:
        return spectrum, None
    return spectrum, affine_matrices(torch.cat(draws, dim=1), transforms)


def unit_seed(seed: int, unit: int) -> int:
    """A well-mixed 32-bit seed for one unit's random stream."""
    return int(np.random.SeedSequence([seed, unit]).generate_state(1)[0])


def _check_options(
    unit_indices: Sequence[int],
    n_images: int,
    steps: int,
    image_size: int,
    lr: float,
    channels: int,
    reduce: str,
    batch_size: int,
    seed: int,
    redirect_relu_steps: int,
) -> list[int]:
    units = [int(u) for u in unit_indices]
    if not units:
        raise InputError("no units given to maximise; pass at least one unit index.")
    if len(set(units)) != len(units):
        raise InputError(f"unit indices repeat ({units}); give each unit once.")
    checks = [
        (n_images >= 1, f"n_images must be at least 1, got {n_images}."),
        (steps >= 0, f"steps must be 0 or more, got {steps}."),
        (image_size >= 2, f"image_size must be at least 2 pixels, got {image_size}."),
        (lr > 0, f"lr must be positive, got {lr}."),
        (channels in (1, 3), f"channels must be 1 or 3, got {channels}."),
        (reduce in REDUCTIONS, f"reduce must be 'mean' or 'max', got {reduce!r}."),
        (batch_size >= 1, f"batch_size must be at least 1, got {batch_size}."),
        (seed >= 0, f"seed must be 0 or more, got {seed}."),
        (
            redirect_relu_steps >= 0,
            f"redirect_relu_steps must be 0 or more, got {redirect_relu_steps}.",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)
    return units
