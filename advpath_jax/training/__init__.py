"""advpath_jax.training."""
