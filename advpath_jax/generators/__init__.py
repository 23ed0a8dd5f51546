"""Inference of the trained image-generating networks: the paper's adversarial generators
(CyCE, SyCE, SAGen), the AOPC translator and MGen's mask generator.

* :mod:`~advpath_jax.generators.spec`: kinds, U-Net/critic specs from a config,
  fingerprints, fresh modules, loss weights;
* :mod:`~advpath_jax.generators.inference`: one jitted forward program per kind giving
  ``(x_s, x_a, c)``; ``generator_pair``, ``cyce_pair``, ``syce_pair``, ``sagen_pair``; the
  per-image quality program used by evaluation;
* :mod:`~advpath_jax.generators.translator`: the AOPC translator's inference
  (``translate_to_opposite``, flip statistics);
* :mod:`~advpath_jax.generators.mgen`: MGen's masks (``mgen_maps``).

Training lives in :mod:`advpath_jax.training.generators` (losses in
:mod:`advpath_jax.training.generator_losses`); loading trained modules in :mod:`advpath_jax.store`.
"""

from advpath_jax.generators.inference import (cyce_pair, generator_outputs, generator_pair, sagen_heads,
                                              sagen_pair, syce_pair)
from advpath_jax.generators.mgen import mgen_maps
from advpath_jax.generators.spec import (DEFAULT_WEIGHTS, GAN_KINDS, KINDS, build_generators,
                                         generator_fingerprint, loss_weights)
from advpath_jax.generators.translator import translate_to_opposite

__all__ = ["DEFAULT_WEIGHTS", "GAN_KINDS", "KINDS", "build_generators", "cyce_pair", "generator_fingerprint",
           "generator_outputs", "generator_pair", "loss_weights", "mgen_maps", "sagen_heads", "sagen_pair",
           "syce_pair", "translate_to_opposite"]
