"""advpath_jax.bench."""
