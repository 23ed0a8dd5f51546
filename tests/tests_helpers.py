"""Independent numpy reference implementations and small stand-in models used by several tests."""

import jax.numpy as jnp
import numpy as np
from flax import nnx


def numpy_gaussian_smooth(maps: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Direct zero-padded cross-correlation of ``[B,H,W]`` maps (pad (k-1)//2 before, k//2 after)."""
    k = kernel.shape[0]
    lo, hi = (k - 1) // 2, k // 2
    out = np.zeros(maps.shape, np.float64)
    padded = np.pad(maps.astype(np.float64), ((0, 0), (lo, hi), (lo, hi)))
    for i in range(k):
        for j in range(k):
            out += kernel[i, j] * padded[:, i:i + maps.shape[1], j:j + maps.shape[2]]
    return out


def numpy_bilinear_resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize of ``[h, w]`` with edge clamping (upsampling)."""
    h, w = img.shape

    def coords(n_out, n_in):
        src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        src = np.clip(src, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    r0, r1, rw = coords(out_h, h)
    c0, c1, cw = coords(out_w, w)
    top = img[r0][:, c0] * (1 - cw) + img[r0][:, c1] * cw
    bottom = img[r1][:, c0] * (1 - cw) + img[r1][:, c1] * cw
    return top * (1 - rw)[:, None] + bottom * rw[:, None]


#: settings of the one tiny end-to-end `advpath run` the suite makes (32 px, one epoch each)
TINY_RUN_SETTINGS = [
    "data.image_size=32", "data.num_train=96", "data.num_val=32", "data.num_test=24",
    "classifier.epochs=1", "generators.epochs=1", "translator.epochs=1", "translator.steps_per_epoch=2",
    "eval.steps=3", "eval.shard_size=16", "eval.subset_size=8", "eval.aopc_steps=4",
    "eval.relevance_steps=4", "eval.random_repeats=1", "eval.figure_examples=2",
]
TINY_RUN_METHODS = ["Gradient", "CyCE:E", "CyCE:E_FI^v2", "CyCE:E_FI,kσ^v2", "Random"]


def tiny_run_argv(workdir) -> list[str]:
    argv = ["run", "--workdir", str(workdir), "--methods", ",".join(TINY_RUN_METHODS)]
    for item in TINY_RUN_SETTINGS:
        argv += ["--set", item]
    return argv


class TinyLogit(nnx.Module):
    """A stand-in classifier logit ``[B,H,W,1] -> [B]``: a linear read-out of the mean intensity."""

    def __init__(self, rngs):
        self.fc = nnx.Linear(1, 1, rngs=rngs)

    def __call__(self, x):
        return self.fc(jnp.mean(x, axis=(1, 2)))[:, 0]
