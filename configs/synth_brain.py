"""Embedded default: synthetic brain-like slices, sized for 2 CPU cores.

Override any field from the command line, e.g.
``advpath run --config configs/synth_brain.py --set classifier.epochs=3``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "synth_brain"
    c.seed = 0

    # --- data (advpath_jax.data) ---
    c.data = ml_collections.ConfigDict()
    c.data.name = "synth_brain"
    c.data.image_size = 64

    # --- classifier (advpath_jax.training) ---
    c.classifier = ml_collections.ConfigDict()
    c.classifier.depth = 18
    c.classifier.width = 0.25

    # --- generators, MGen, translator (advpath_jax.training) ---

    # --- evaluation (advpath_jax.metrics / pipeline) ---
    c.eval = ml_collections.ConfigDict()
    c.eval.percentiles = (98, 99)
    c.eval.steps = 50
    return c
