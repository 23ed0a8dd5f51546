"""advpath_jax.explain."""
