"""advpath_jax.metrics."""
