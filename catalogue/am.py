"""Activation maximisation (AM): images that drive one hidden unit as hard as possible.

The paper (Gale et al., "Are there any 'object detectors' in the hidden layers
of CNNs trained to identify objects or scenes?", sec. 3.2 and appendix 5)
showed people 10 × 10 panels of 100 AM images per unit and asked whether the
images had an everyday object, place or animal in common. It generated them
with Plug & Play Generative Networks; that needs a generator network trained
on ImageNet, which we cannot ship or download. We use instead the generator-free
method of Olah, Mordvintsev & Schubert (2017, "Feature Visualization",
Distill; the `lucid`/`lucent` libraries), which needs nothing but the network:

- the image is parameterised in the Fourier domain, each frequency scaled by
  1/f so that gradient steps change low frequencies as readily as high ones
  (plain pixel ascent produces high-frequency noise);
- colours are decorrelated with the square root of ImageNet's colour
  covariance, and a sigmoid maps the result into [0, 1];
- at every step each image is jittered, scaled and rotated at random (one
  affine resampling), so the optimum must survive small transformations;
- Adam ascends the unit's activation; for conv units the objective is the
  channel's mean over the spatial map (lucent's ``channel`` objective) or its
  spatial maximum;
- for the first 16 steps ReLUs use lucid's "redirected" gradient, so that a
  unit that is silent on the grey starting image still gets a gradient.

We implement it here rather than depend on ``torch-lucent`` 0.1.8,
which pins old kornia and pulls ipython and coveralls, and applies one random
transform to a whole batch; ours draws every image's initialisation and
transforms from its own seeded stream, so a panel's images differ and a
unit's result does not depend on which other units shared its batch.

`maximise_units` optimises the images of several units in one batch (the
objective is the sum over images; since the network runs in eval mode and Adam
is element-wise, each image's optimisation is independent of the others);
`render_panel` / `save_panel` draw the 10 × 10 panel of the paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.overrides import TorchFunctionMode

from catalogue.config import resolve_device
from catalogue.errors import InputError, NotFound

METHOD = "fourier-decorrelated-gradient-ascent"

# Square root of the colour covariance of ImageNet, from lucid's
# `color_correlation_svd_sqrt` (Olah et al. 2017); columns are normalised to a
# maximum norm of 1 below, as lucid does.
COLOR_CORRELATION_SVD_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
INIT_SD = 0.01
FFT_DECAY_POWER = 1.0
# lucid's "magic" divisor of the inverse FFT: keeps the initial image close to grey.
FFT_MAGIC = 4.0

ProgressCallback = Callable[[int, int], None]
Normalise = tuple[Sequence[float], Sequence[float]] | Callable[[torch.Tensor], torch.Tensor] | None


@dataclass(frozen=True)
class RobustnessTransforms:
    """Random transforms applied to every image at every step (not at the final read-out).

    Lengths are fractions of the image side so that the same settings suit
    224-pixel ImageNet models and 32-pixel toy models; lucent's defaults at 224
    pixels are pad 12, jitter 8, scale 0.9–1.1, rotate ±10°, jitter 4, which
    these reproduce (pixels moved in from outside the image are grey).
    """

    jitter: float = 8 / 224
    scale: tuple[float, float] = (0.9, 1.1)
    rotate_degrees: float = 10.0
    jitter_after: float = 4 / 224
    fill: float = 0.5

    def as_params(self) -> dict[str, Any]:
        params = asdict(self)
        params["scale"] = list(self.scale)
        return params


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
    module: torch.nn.Module,
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
    tracer_kwargs: dict[str, Any] | None = None,
) -> AMResult:
    """Generate ``n_images`` AM images for each unit of ``layer_name``.

    Args:
        module: the classifier; run in eval mode and moved to ``device`` for the
            call (its devices and train/eval flags are restored afterwards).
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
        tracer_kwargs: passed to torchvision's ``create_feature_extractor``
            (e.g. ``leaf_modules``).

    Memory: the result holds every image (U × n_images × C × size² float32,
    60 MB per unit at 100 images of 224²), so for a whole layer call this for
    a few units at a time (e.g. ``batch_size // n_images`` units per call) and
    save each unit's panel before the next call.

    Raises:
        InputError: for a bad option value.
        NotFound: when the layer is not a node of the module or a unit index is
            outside the layer.
    """
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
    norm = _normaliser(normalise, in_channels, repeat=in_channels != channels)
    saved = _ModuleState.capture(module)
    extractor = _extractor(module, layer_name, tracer_kwargs)
    try:
        extractor.to(dev).eval()
        n_units, kind = _probe_layer(extractor, layer_name, channels, image_size, norm, dev)
        bad = [u for u in units if not 0 <= u < n_units]
        if bad:
            raise NotFound(
                f"unit {bad[0]} is not in layer {layer_name!r}, which has units 0–{n_units - 1}."
            )
        param = FourierImage(image_size, channels, decorrelate and channels == 3, dev)
        pairs = [(u_pos, k) for u_pos in range(len(units)) for k in range(n_images)]
        batches = [pairs[i : i + batch_size] for i in range(0, len(pairs), batch_size)]
        images = np.empty((len(units), n_images, channels, image_size, image_size), np.float32)
        acts = np.empty((len(units), n_images), np.float32)
        total = len(batches) * steps
        for b, batch in enumerate(batches):
            spectrum, thetas = _initial_state(
                batch, units, n_images, steps, seed, param, transforms
            )
            spectrum = spectrum.to(dev).requires_grad_(True)
            thetas = thetas.to(dev) if thetas is not None else None
            cols = torch.tensor([units[u_pos] for u_pos, _ in batch], device=dev)

            def unit_values(image: torch.Tensor, cols: torch.Tensor = cols) -> torch.Tensor:
                return _unit_values(extractor(norm(image))[layer_name], cols, kind, reduce)

            def progress(step: int, b: int = b) -> None:
                if on_progress is not None:
                    on_progress(b * steps + step, total)

            fill = transforms.fill if transforms is not None else 0.5
            _ascend(
                param, spectrum, thetas, fill, unit_values, steps, lr, redirect_relu_steps, progress
            )
            with torch.no_grad():
                final = param.images(spectrum)
                value = unit_values(final)
            u_idx = [u_pos for u_pos, _ in batch]
            k_idx = [k for _, k in batch]
            images[u_idx, k_idx] = final.float().cpu().numpy()
            acts[u_idx, k_idx] = value.float().cpu().numpy()
    finally:
        saved.restore(module)
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
        "parameterisation": {
            "fft": True,
            "decay_power": FFT_DECAY_POWER,
            "init_sd": INIT_SD,
            "decorrelate": decorrelate and channels == 3,
        },
        "transforms": transforms.as_params() if transforms is not None else None,
        "redirect_relu_steps": redirect_relu_steps,
        "normalise": _normalise_params(normalise),
        "reduce": reduce if kind == "conv" else None,
        "objective": f"channel {reduce}" if kind == "conv" else "unit",
    }
    return AMResult(layer_name, tuple(units), images, acts, params)


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


class _RedirectedReLU(torch.autograd.Function):
    """ReLU whose backward, for an image where no gradient gets through, passes what raises the input.

    Lucid's ``redirected_relu_grad`` (Olah et al. 2017): ``grad`` is the
    gradient of the loss (the negated objective) with respect to the output; an
    image whose ordinary ReLU gradient is zero everywhere gets ``grad`` except
    where the input is negative and ``grad`` would push it lower.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        negative = x < 0
        relu_grad = grad.masked_fill(negative, 0.0)
        if x.ndim < 2:
            return relu_grad
        redirected = grad.masked_fill(negative & (grad > 0), 0.0)
        alive = relu_grad.flatten(1).abs().amax(dim=1) > 0
        return torch.where(alive.view(-1, *([1] * (x.ndim - 1))), relu_grad, redirected)


_RELU_FUNCTIONS = frozenset(
    {torch.nn.functional.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}
)


class RedirectedReLUs(TorchFunctionMode):
    """Within this context every ReLU call (``nn.ReLU``, ``F.relu``, ``torch.relu``, in-place or
    not, also inside FX leaf modules) computes a `_RedirectedReLU`, out of place.

    Forward values are unchanged; only gradients differ. The model is not modified.
    """

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if func in _RELU_FUNCTIONS:
            return _RedirectedReLU.apply(args[0] if args else kwargs["input"])
        return func(*args, **(kwargs or {}))


def _unit_values(out: torch.Tensor, cols: torch.Tensor, kind: str, reduce: str) -> torch.Tensor:
    """Row i's activation of unit ``cols[i]`` (conv maps reduced over space)."""
    rows = torch.arange(out.shape[0], device=out.device)
    picked = out[rows, cols]
    if kind == "fc":
        return picked
    flat = picked.flatten(1)
    return flat.mean(dim=1) if reduce == "mean" else flat.amax(dim=1)


class FourierImage:
    """Fourier coefficients (real, imaginary) → decorrelated colours → sigmoid → [0, 1].

    A spectrum of shape B × C × size × (size // 2 + 1) × 2 (the real FFT of a
    size × size image) becomes B × C × size × size images: each frequency f is
    multiplied by 1 / max(f, 1 / size) (the 1/f scaling), inverted with the
    orthonormal real FFT, divided by lucid's constant 4, mixed across colours
    by the normalised square root of ImageNet's colour covariance (RGB only)
    and squashed by a sigmoid.
    """

    def __init__(
        self, size: int, channels: int, decorrelate: bool, device: torch.device | str = "cpu"
    ) -> None:
        self.size = size
        self.channels = channels
        fy = np.fft.fftfreq(size)[:, None]
        fx = np.fft.rfftfreq(size)[None, :]
        freqs = np.sqrt(fx * fx + fy * fy)
        scale = 1.0 / np.maximum(freqs, 1.0 / size) ** FFT_DECAY_POWER
        self.spectrum_shape = (channels, size, size // 2 + 1, 2)
        self.scale = torch.tensor(scale, dtype=torch.float32, device=device)[None, None, :, :, None]
        self.colour: torch.Tensor | None = None
        if decorrelate:
            matrix = COLOR_CORRELATION_SVD_SQRT / np.max(
                np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0)
            )
            self.colour = torch.tensor(matrix, dtype=torch.float32, device=device)

    def images(self, spectrum: torch.Tensor) -> torch.Tensor:
        scaled = torch.view_as_complex((self.scale * spectrum).contiguous())
        image = torch.fft.irfftn(scaled, s=(self.size, self.size), norm="ortho") / FFT_MAGIC
        if self.colour is not None:
            image = torch.einsum("bchw,dc->bdhw", image, self.colour)
        return torch.sigmoid(image)


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
        init = torch.randn((n_images, *param.spectrum_shape), generator=gen) * INIT_SD
        uniform = torch.rand((steps, n_images, 6), generator=gen)
        spectra.append(init[ks])
        draws.append(uniform[:, ks])
    spectrum = torch.cat(spectra)
    if transforms is None:
        return spectrum, None
    return spectrum, affine_matrices(torch.cat(draws, dim=1), transforms)


def unit_seed(seed: int, unit: int) -> int:
    """A well-mixed 32-bit seed for one unit's random stream."""
    return int(np.random.SeedSequence([seed, unit]).generate_state(1)[0])


def affine_matrices(uniform: torch.Tensor, transforms: RobustnessTransforms) -> torch.Tensor:
    """Map uniform draws (..., 6) to ``affine_grid`` matrices (..., 2, 3).

    The image content is shifted by t1, scaled by s and rotated by a about the
    centre, then shifted by t2: p_out = t2 + s·R(a)·(p_in + t1). ``affine_grid``
    wants the inverse, p_in = R(-a)·(p_out - t2)/s - t1, in coordinates where
    the image spans [-1, 1] (one pixel = 2 / size).
    """
    u = uniform.double()
    t1 = (2 * u[..., 0:2] - 1) * (2 * transforms.jitter)
    lo, hi = transforms.scale
    s = lo + (hi - lo) * u[..., 2]
    angle = (2 * u[..., 3] - 1) * math.radians(transforms.rotate_degrees)
    t2 = (2 * u[..., 4:6] - 1) * (2 * transforms.jitter_after)
    return affine_from(t1, s, angle, t2).float()


def affine_from(
    t1: torch.Tensor, s: torch.Tensor, angle: torch.Tensor, t2: torch.Tensor
) -> torch.Tensor:
    """``affine_grid`` matrices for shift t1, scale s, rotation ``angle`` (radians), shift t2."""
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    # R(-a)/s = [[cos, sin], [-sin, cos]] / s
    a = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    b = -(a @ t2.unsqueeze(-1)).squeeze(-1) - t1
    return torch.cat([a, b.unsqueeze(-1)], dim=-1)


def affine_resample(images: torch.Tensor, thetas: torch.Tensor, fill: float = 0.5) -> torch.Tensor:
    """Resample each image through its own affine matrix; outside pixels become ``fill``."""
    grid = torch.nn.functional.affine_grid(thetas, list(images.shape), align_corners=False)
    moved = torch.nn.functional.grid_sample(
        images - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return moved + fill


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
        (reduce in ("mean", "max"), f"reduce must be 'mean' or 'max', got {reduce!r}."),
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


def _normaliser(
    normalise: Normalise, channels: int, repeat: bool = False
) -> Callable[[torch.Tensor], torch.Tensor]:
    """[0, 1] image → network input: repeat grey to ``channels`` if asked, then normalise."""

    def widen(x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, channels, -1, -1) if repeat else x

    if normalise is None:
        return widen
    if callable(normalise):
        custom = normalise
        return lambda x: custom(widen(x))
    mean, std = (list(map(float, v)) for v in normalise)
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise InputError(
            f"normalise needs {channels} means and {channels} positive stds, got {mean} and {std}."
        )

    def apply(x: torch.Tensor) -> torch.Tensor:
        m = torch.tensor(mean, dtype=x.dtype, device=x.device)[None, :, None, None]
        s = torch.tensor(std, dtype=x.dtype, device=x.device)[None, :, None, None]
        return (widen(x) - m) / s

    return apply


def _normalise_params(normalise: Normalise) -> dict[str, Any] | str | None:
    if normalise is None:
        return None
    if callable(normalise):
        return f"callable:{getattr(normalise, '__qualname__', type(normalise).__name__)}"
    mean, std = normalise
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def _extractor(
    module: torch.nn.Module, layer_name: str, tracer_kwargs: dict[str, Any] | None
) -> torch.nn.Module:
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    try:
        return create_feature_extractor(
            module, return_nodes=[layer_name], tracer_kwargs=tracer_kwargs
        )
    except ValueError:
        nodes = get_graph_node_names(module, tracer_kwargs=tracer_kwargs)[1]
        shown = ", ".join(nodes[:40]) + (" …" if len(nodes) > 40 else "")
        raise NotFound(
            f"layer {layer_name!r} is not a node of the model; nodes are: {shown}"
        ) from None


def _probe_layer(
    extractor: torch.nn.Module,
    layer_name: str,
    channels: int,
    image_size: int,
    norm: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> tuple[int, str]:
    """Number of units and kind (fc: N × U, conv: N × U × H × W) of the layer."""
    probe = torch.full((1, channels, image_size, image_size), 0.5, device=device)
    try:
        with torch.no_grad():
            out = extractor(norm(probe))[layer_name]
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(
            f"the model does not accept {channels} × {image_size} × {image_size} images ({first}); "
            "check channels and image_size."
        ) from None
    if out.ndim == 2:
        return out.shape[1], "fc"
    if out.ndim == 4:
        return out.shape[1], "conv"
    raise InputError(
        f"layer {layer_name!r} outputs shape {tuple(out.shape)}; AM needs N × units or N × units × H × W."
    )


@dataclass
class _ModuleState:
    """Train/eval flags and device of a module, to put back after the call."""

    training: dict[torch.nn.Module, bool]
    device: torch.device | None

    @classmethod
    def capture(cls, module: torch.nn.Module) -> _ModuleState:
        first = next(iter(module.parameters()), None)
        return cls(
            {m: m.training for m in module.modules()}, first.device if first is not None else None
        )

    def restore(self, module: torch.nn.Module) -> None:
        if self.device is not None:
            module.to(self.device)
        for m, flag in self.training.items():
            m.training = flag


def render_panel(
    images: np.ndarray | torch.Tensor,
    rows: int = 10,
    cols: int = 10,
    *,
    gap: int = 2,
    tile_size: int | None = None,
    background: int = 255,
) -> Image.Image:
    """Tile images (N × C × H × W in [0, 1], C = 1 or 3) row by row into one picture.

    The paper's panels are 10 × 10 (100 AM images per unit); tiles are separated
    by ``gap`` pixels of ``background`` (white), with no outer border, so the
    panel is ``cols·T + (cols-1)·gap`` wide and ``rows·T + (rows-1)·gap`` high,
    where T is the image side, or ``tile_size`` when given (nearest-neighbour
    resize, for small images). Unused cells stay background.
    """
    array = (
        images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    )
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise InputError(
            f"panel images must be N × C × H × W with C = 1 or 3, got shape {array.shape}."
        )
    n, c, h, w = array.shape
    if rows < 1 or cols < 1 or gap < 0:
        raise InputError(f"a panel needs rows, cols ≥ 1 and gap ≥ 0, got {rows}, {cols}, {gap}.")
    if n > rows * cols:
        raise InputError(f"{n} images do not fit a {rows} × {cols} panel; raise rows or cols.")
    th, tw = (tile_size, tile_size) if tile_size else (h, w)
    mode = "L" if c == 1 else "RGB"
    fill = background if c == 1 else (background,) * 3
    panel = Image.new(mode, (cols * tw + (cols - 1) * gap, rows * th + (rows - 1) * gap), fill)
    pixels = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(0, 2, 3, 1)
    for i in range(n):
        tile = Image.fromarray(pixels[i, :, :, 0] if c == 1 else pixels[i], mode)
        if (th, tw) != (h, w):
            tile = tile.resize((tw, th), Image.Resampling.NEAREST)
        r, q = divmod(i, cols)
        panel.paste(tile, (q * (tw + gap), r * (th + gap)))
    return panel


def save_panel(images: np.ndarray | torch.Tensor, path: str | Path, **kwargs: Any) -> Path:
    """Render the panel (see `render_panel`) and write it as a PNG; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    render_panel(images, **kwargs).save(target, format="PNG")
    return target
