"""Independent numpy reference implementations used by several tests."""

import numpy as np


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
