"""advpath_jax.attribution."""
