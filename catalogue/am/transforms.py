"""What happens to an image between the parameterisation and the network.

- Robustness transforms (Olah et al. 2017; lucent's ``transform``): at every
  step each image is jittered, scaled and rotated at random — one affine
  resampling per image — so that the optimum must survive small
  transformations. Every image draws its own transform, from its unit's
  seeded stream (`catalogue.am.render`).
- Normalisation: the [0, 1] image becomes the network's input (a grey image
  repeated to three channels for a network trained on grey images stored as
  RGB, then a per-channel mean and std, or a custom callable).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from catalogue.errors import InputError

Normalise = tuple[Sequence[float], Sequence[float]] | Callable[[torch.Tensor], torch.Tensor] | None
N_DRAWS = 6  # uniform numbers per image and step: shift t1 (2), scale, angle, shift t2 (2)


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


def normaliser(
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


def normalise_params(normalise: Normalise) -> dict[str, Any] | str | None:
    """The normalisation as recorded in ``am_panel.params``."""
    if normalise is None:
        return None
    if callable(normalise):
        return f"callable:{getattr(normalise, '__qualname__', type(normalise).__name__)}"
    mean, std = normalise
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}
