"""advpath_jax.torch_twin."""
