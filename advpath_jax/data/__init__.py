"""advpath_jax.data."""
