"""The image parameterisation: Fourier coefficients → decorrelated colours → sigmoid → [0, 1].

Olah, Mordvintsev & Schubert (2017, "Feature Visualization", Distill): plain
pixel ascent produces high-frequency noise, so the optimiser works on the
image's real FFT with each frequency f scaled by 1/f (gradient steps change
low frequencies as readily as high ones); colours are mixed by the square
root of ImageNet's colour covariance, and a sigmoid maps the result into
[0, 1]. The same split as lucent's ``param.spatial`` (``fft_image``) and
``param.color`` (``to_valid_rgb``).
"""

from __future__ import annotations

import numpy as np
import torch

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

    def random_spectra(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` starting spectra (normal, sd `INIT_SD`): images close to grey."""
        return torch.randn((n, *self.spectrum_shape), generator=generator) * INIT_SD

    def images(self, spectrum: torch.Tensor) -> torch.Tensor:
        scaled = torch.view_as_complex((self.scale * spectrum).contiguous())
        image = torch.fft.irfftn(scaled, s=(self.size, self.size), norm="ortho") / FFT_MAGIC
        if self.colour is not None:
            image = torch.einsum("bchw,dc->bdhw", image, self.colour)
        return torch.sigmoid(image)

    def as_params(self) -> dict[str, object]:
        """The parameterisation as recorded in ``am_panel.params``."""
        return {
            "fft": True,
            "decay_power": FFT_DECAY_POWER,
            "init_sd": INIT_SD,
            "decorrelate": self.colour is not None,
        }
