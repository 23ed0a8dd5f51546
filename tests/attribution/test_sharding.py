"""8 simulated CPU devices give the same maps as 1 device (run in a fresh process)."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import jax
    jax.config.update("jax_num_cpu_devices", 8)
    import jax.numpy as jnp
    import numpy as np
    from jax.tree_util import Partial
    import advpath_jax as ap
    from advpath_jax.parallel import data_mesh
    assert jax.device_count() == 8, jax.devices()

    def cnn(params, x):   # a small smooth CNN: [B,H,W,1] -> [B]
        dn = ("NHWC", "HWIO", "NHWC")
        h = jnp.tanh(jax.lax.conv_general_dilated(x, params[0], (2, 2), "SAME", dimension_numbers=dn))
        return jax.nn.sigmoid(jnp.einsum("bhwk,k->b", h, params[1]) / h.shape[1])

    rng = np.random.default_rng(0)
    f = Partial(cnn, (jnp.asarray(rng.normal(size=(3, 3, 1, 4)), jnp.float32),
                      jnp.asarray(rng.normal(size=(4,)), jnp.float32)))
    x = rng.uniform(size=(5, 16, 16, 1)).astype(np.float32)   # 5: not divisible by 8
    xa = rng.uniform(size=(5, 16, 16, 1)).astype(np.float32)
    one, eight = data_mesh(jax.devices()[:1]), data_mesh()
    for kwargs in ({"weight": "v2", "steps": 6, "chunk_size": 4},
                   {"weight": "v1", "steps": 3, "smoothing": (3, 0.8)}):
        a = np.asarray(ap.path_attribution(f, x, xa, mesh=one, **kwargs))
        b = np.asarray(ap.path_attribution(f, x, xa, mesh=eight, **kwargs))
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6 * np.abs(a).max())
    a = np.asarray(ap.integrated_gradients(f, x, steps=4, mesh=one))
    b = np.asarray(ap.integrated_gradients(f, x, steps=4, mesh=eight))
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6 * np.abs(a).max())
    print("SHARDING-OK")
""")


def test_eight_simulated_devices_equal_one():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "SHARDING-OK" in proc.stdout
