"""The pipelines' default options, in a module that imports nothing.

The command line shows these defaults in its help and must not import torch or
the database to do so (it starts every command); the pipelines take their
defaults from here too, so each number is written once.
"""

from __future__ import annotations

#: the paper's AM panels: 10 × 10 images per unit (Gale et al., sec. 3.2)
AM_PANEL_SIDE = 10
AM_MAX_IMAGES = AM_PANEL_SIDE * AM_PANEL_SIDE
AM_STEPS = 256
AM_LR = 0.05
#: units optimised together (one batch of units × images; memory grows with it)
AM_UNITS_PER_BATCH = 4

#: label permutations of the chance baseline
CHANCE_REPEATS = 10

#: units scored at a time (one Ray task with a cluster); bounds memory
SCORE_BLOCK_UNITS = 256

#: images per forward pass
EXTRACT_BATCH_SIZE = 64
DISSECT_BATCH_SIZE = 32
