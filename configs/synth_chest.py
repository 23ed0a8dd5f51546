"""Synthetic chest-radiograph-like images with lung opacities, sized for 2 CPU cores.

Every model and evaluation setting is the embedded default's (``configs/synth_brain.py``);
only the data and Table 1's thresholds (the pneumonia task's 90/95/98) differ.
Override any field from the command line, e.g.
``advpath run --config configs/synth_chest.py --set classifier.epochs=3``.
"""

import common
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = common.derive("synth_brain")
    c.name = "synth_chest"
    c.data.name = "synth_chest"
    c.data.positive_fraction = 0.40      # exact share of images with opacities
    c.data.lesion_contrast = 0.30        # mean opacity intensity added to the lung (0.6-1.4x each)
    c.data.lesion_size = 0.09            # mean opacity radius / image width (0.7-1.4x each)
    c.eval.percentiles = (90, 95, 98)    # chest-like: the pneumonia thresholds
    return c
