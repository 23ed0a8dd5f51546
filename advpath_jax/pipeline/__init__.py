"""advpath_jax.pipeline."""
