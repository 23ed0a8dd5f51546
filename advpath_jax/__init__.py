"""advpath-jax: explain image classifiers by integrating feature importance along the
path from an image to a generated adversary (Charachon et al.), in JAX/Flax."""

__version__ = "0.1.0"
