"""PNG tiles of the explorer: images, colour-mapped maps, contours and thresholded regions.

Colour scale rule (the same for every method): each map is divided by its own 99th
percentile, clipped to [0, 1] and drawn with matplotlib's ``inferno`` colour map; a map
whose 99th percentile is 0 is drawn black. Pure numpy in, PNG bytes out.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
from PIL import Image

SCALE_PERCENTILE = 99.0
COLOR_RULE = ("each map is divided by its own 99th percentile, clipped to [0, 1] and drawn with "
              "the inferno colour map (black = 0, yellow = at or above the 99th percentile); "
              "the same rule for every method")
CONTOUR_RGBA = (255, 40, 40, 255)        # ground truth
REGION_EDGE_RGBA = (0, 230, 255, 255)    # thresholded region B
REGION_FILL_RGBA = (0, 230, 255, 90)

_INFERNO = (matplotlib.colormaps["inferno"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG of ``uint8 [H, W]`` (grey), ``[H, W, 3]`` (RGB) or ``[H, W, 4]`` (RGBA)."""
    pixels = np.ascontiguousarray(pixels, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def grey_image(image: np.ndarray) -> np.ndarray:
    """``uint8 [H, W]`` of an image ``[H, W]`` or ``[H, W, C]`` in [0, 1] (channel 0 for C > 1)."""
    image = np.asarray(image, np.float32)
    if image.ndim == 3:
        image = image[..., 0]
    return (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def normalise_map(m: np.ndarray) -> np.ndarray:
    """``m [H, W]`` divided by its own 99th percentile and clipped to [0, 1] (0 where that is 0)."""
    m = np.asarray(m, np.float64)
    top = float(np.percentile(m, SCALE_PERCENTILE))
    if not np.isfinite(top) or top <= 0.0:
        return np.zeros(m.shape, np.float64)
    return np.clip(m / top, 0.0, 1.0)


def colour_map(m: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]``: the map under the explorer's colour scale rule."""
    index = (normalise_map(m) * 255.0).round().astype(np.int64)
    return _INFERNO[index]


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask [H, W]`` with a 4-neighbour outside it (the image border counts as outside)."""
    mask = np.asarray(mask, bool)
    padded = np.pad(mask, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def contour_overlay(mask: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 4]``: the mask's boundary in red, transparent elsewhere."""
    out = np.zeros((*np.shape(mask), 4), np.uint8)
    out[boundary(mask)] = CONTOUR_RGBA
    return out


def region_overlay(region: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 4]``: region B filled translucent cyan with an opaque cyan edge."""
    region = np.asarray(region, bool)
    out = np.zeros((*region.shape, 4), np.uint8)
    out[region] = REGION_FILL_RGBA
    out[boundary(region)] = REGION_EDGE_RGBA
    return out


def strip(cells: list[np.ndarray]) -> np.ndarray:
    """Cells ``uint8 [H, W]`` or ``[H, W, 3]`` side by side as one RGB image ``[H, n*W, 3]``."""
    rgb = [np.repeat(c[..., None], 3, axis=-1) if c.ndim == 2 else c for c in cells]
    return np.concatenate(rgb, axis=1)
