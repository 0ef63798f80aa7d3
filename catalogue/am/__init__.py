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

`maximise_units` takes a `catalogue.models.ModelInfo` and optimises the
images of several units in one batch (each image's optimisation is
independent of the others); `render_panel` / `save_panel` draw the 10 × 10
panel of the paper.

The parts, as in lucent's ``optvis`` (``param``, ``objectives``,
``transform``, ``render``): `param` (the Fourier, colour-decorrelated
parameterisation), `objectives` (unit / channel objectives), `transforms`
(random jitter, scale and rotation; the network's normalisation), `relu`
(the redirected-ReLU gradient), `render` (the optimiser loop and
`maximise_units`), `panel` (the 10 × 10 panels).
"""

from catalogue.am.objectives import UnitObjective
from catalogue.am.panel import render_panel, save_panel
from catalogue.am.param import (
    COLOR_CORRELATION_SVD_SQRT,
    FFT_DECAY_POWER,
    FFT_MAGIC,
    INIT_SD,
    FourierImage,
)
from catalogue.am.relu import RedirectedReLUs
from catalogue.am.render import METHOD, AMResult, ProgressCallback, maximise_units, unit_seed
from catalogue.am.transforms import (
    Normalise,
    RobustnessTransforms,
    affine_from,
    affine_matrices,
    affine_resample,
)

__all__ = [
    "COLOR_CORRELATION_SVD_SQRT",
    "FFT_DECAY_POWER",
    "FFT_MAGIC",
    "INIT_SD",
    "METHOD",
    "AMResult",
    "FourierImage",
    "Normalise",
    "ProgressCallback",
    "RedirectedReLUs",
    "RobustnessTransforms",
    "UnitObjective",
    "affine_from",
    "affine_matrices",
    "affine_resample",
    "maximise_units",
    "render_panel",
    "save_panel",
    "unit_seed",
]
