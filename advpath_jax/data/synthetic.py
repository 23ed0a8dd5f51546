"""Synthetic lesion benchmarks with exact ground-truth masks.

Two generators mimic the paper's tasks at any resolution (64-224 px):

* :func:`synth_brain` - axial-slice-like MR images: head ellipse, a bright skull ring,
  textured tissue, dark ventricles. Positives carry 1-3 irregular tumour blobs; the
  mask is the exact blob support.
* :func:`synth_chest` - frontal chest-radiograph-like images: two dark lung fields, ribs
  and clavicles as bright bands, a spine and a heart shadow. Positives carry 1-2 hazy
  opacities in the lungs; the mask is the rasterised bounding box of each opacity (as in
  the RSNA annotations).

In both, label-irrelevant bright structures (skull, ribs, spine) are present in every
image and a lesion's contrast varies, usually staying below those structures, so a
map that merely follows intensity does not localise the lesions.

Everything is vectorised numpy over chunks of images; the output depends only on
``(num, image_size, seed)`` and the knobs. All geometry lives in normalised
coordinates, so one seed gives the same scene at every resolution (up to sampling).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Bump when the generators change: prepared TFDS copies of the synthetic sets are keyed
# by it, so a stale copy is never read back.
GENERATOR_VERSION = 1

BRAIN_DEFAULTS: dict[str, float] = {
    "positive_fraction": 0.25,
    "lesion_contrast": 0.30,  # mean tumour intensity above the tissue level
    "lesion_size": 0.06,      # mean tumour radius as a fraction of the image width
    "noise": 0.03,            # std of the additive Gaussian pixel noise
}
CHEST_DEFAULTS: dict[str, float] = {
    "positive_fraction": 0.40,
    "lesion_contrast": 0.30,  # mean opacity intensity added onto the lung
    "lesion_size": 0.09,      # mean opacity radius as a fraction of the image width
    "noise": 0.03,
}

MIN_LESION_PIXELS = 10
_MIN_RADIUS_PX = 3.6         # with the shape wobble below, every lesion keeps >= 10 pixels
_PIXEL_BUDGET = 3_000_000    # pixels per chunk (bounds peak memory at 224 px)
_MAX_RESAMPLE_ROUNDS = 50


# ----------------------------------------------------------------------------- helpers
def _check_args(num: int, image_size: int, positive_fraction: float, lesion_contrast: float,
                lesion_size: float, noise: float) -> None:
    if int(num) != num or num < 0:
        raise ValueError(f"num must be a non-negative integer, got {num!r}")
    if int(image_size) != image_size or not 32 <= image_size <= 512:
        raise ValueError(f"image_size must be an integer in [32, 512] (64-224 intended), got {image_size!r}")
    if not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction!r}")
    if not 0.0 < lesion_contrast <= 1.0:
        raise ValueError(f"lesion_contrast must be in (0, 1], got {lesion_contrast!r}")
    if not 0.0 < lesion_size <= 0.3:
        raise ValueError(f"lesion_size must be in (0, 0.3], got {lesion_size!r}")
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"noise must be in [0, 0.5], got {noise!r}")


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1]: (y, x), each [H, W] (y grows downwards)."""
    c = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2.0 - 1.0
    return np.meshgrid(c, c, indexing="ij")


def _labels(num: int, positive_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Exactly round(num * fraction) positives, in a seeded random order. [N] int32."""
    labels = np.zeros(num, np.int32)
    labels[: int(round(num * positive_fraction))] = 1
    return rng.permutation(labels)


def _gaussian_matrix(size: int, sigma_px: float) -> np.ndarray:
    """[S, S] matrix of a Gaussian blur (rows renormalised to 1 at the borders)."""
    i = np.arange(size, dtype=np.float64)
    k = np.exp(-0.5 * ((i[:, None] - i[None, :]) / max(sigma_px, 1e-3)) ** 2)
    return (k / k.sum(axis=1, keepdims=True)).astype(np.float32)


def _separable(x: np.ndarray, kh: np.ndarray, kw: np.ndarray) -> np.ndarray:
    """``kh @ x @ kw.T`` for a batch x [n, h, w] as two large GEMMs. -> [n, H, W]."""
    n, h, w = x.shape
    t = (x.reshape(n * h, w) @ kw.T).reshape(n, h, -1)
    t = np.ascontiguousarray(t.transpose(0, 2, 1))
    t = (t.reshape(-1, h) @ kh.T).reshape(n, t.shape[1], -1)
    return np.ascontiguousarray(t.transpose(0, 2, 1))


def _smooth_noise(rng: np.random.Generator, n: int, size: int, sigma_px: float) -> np.ndarray:
    """Gaussian random field with unit std per image. [n, H, W] float32.

    White noise on a grid with spacing ~sigma/2 (coarser for smoother fields) is mapped
    to the pixel grid by a Gaussian kernel matrix K [S, G]: field = K W K^T, two batched
    matmuls, so the cost does not grow with sigma.
    """
    spacing = max(1.0, sigma_px / 2.0)
    g = int(np.ceil(size / spacing)) + 4
    fine = np.arange(size, dtype=np.float64) + 0.5
    coarse = (np.arange(g, dtype=np.float64) - 1.5) * spacing  # cover the borders
    k = np.exp(-0.5 * ((fine[:, None] - coarse[None, :]) / max(sigma_px, 0.5)) ** 2).astype(np.float32)
    white = rng.standard_normal((n, g, g), dtype=np.float32)
    field = _separable(white, k, k)
    field -= field.mean(axis=(1, 2), keepdims=True)
    field /= field.std(axis=(1, 2), keepdims=True) + 1e-6
    return field


def _soft_inside(signed: np.ndarray, width: float) -> np.ndarray:
    """Smooth indicator of ``signed < 0``: a linear ramp ``width`` wide (same units)."""
    return np.clip(0.5 - signed * (1.0 / max(width, 1e-6)), 0.0, 1.0)


def _uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return rng.uniform(lo, hi, n).astype(np.float32)


def _chunks(num: int, image_size: int) -> list[tuple[int, int]]:
    step = max(8, _PIXEL_BUDGET // (image_size * image_size))
    return [(s, min(num, s + step)) for s in range(0, num, step)]


def _seeded(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *tags]))


def _blob_geometry(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Shape parameters of ``count`` irregular blobs: radius wobble harmonics 2..4."""
    amps = rng.uniform(0.0, 0.075, size=(count, 3)).astype(np.float32)
    phases = rng.uniform(0.0, 2 * np.pi, size=(count, 3)).astype(np.float32)
    return {"amps": amps, "phases": phases}


def _blob_fields(yy: np.ndarray, xx: np.ndarray, cy: np.ndarray, cx: np.ndarray,
                 radius: np.ndarray, geom: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distance and boundary radius of irregular blobs.

    Args: grid yy, xx [H, W]; per-blob centre cy, cx and radius [L] (normalised units).
    Returns: (d, r) each [L, H, W]; the blob is ``d < r``.
    """
    dy = yy[None] - cy[:, None, None]
    dx = xx[None] - cx[:, None, None]
    d = np.sqrt(dy * dy + dx * dx)
    phi = np.arctan2(dy, dx)
    wobble = np.ones_like(d)
    for j, k in enumerate((2, 3, 4)):
        wobble += geom["amps"][:, j, None, None] * np.cos(k * phi + geom["phases"][:, j, None, None])
    return d, radius[:, None, None] * wobble


def _owner_index(counts: np.ndarray) -> np.ndarray:
    """Image index of each lesion given lesions-per-image counts. [L]."""
    return np.repeat(np.arange(len(counts)), counts)


def _blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of a batch [n, S, S]."""
    k = _gaussian_matrix(image.shape[-1], sigma_px)
    return _separable(image, k, k)


def _finish(image: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian pixel noise and clip to [0, 1]."""
    if noise > 0:
        image = image + noise * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _pack(images: list[np.ndarray], masks: list[np.ndarray], labels: np.ndarray, prefix: str,
          size: int) -> dict[str, np.ndarray]:
    n = len(labels)
    image = np.concatenate(images, axis=0) if images else np.zeros((0, size, size), np.float32)
    mask = np.concatenate(masks, axis=0) if masks else np.zeros((0, size, size), bool)
    return {
        "image": image[..., None].astype(np.float32),
        "label": labels.astype(np.int32),
        "mask": mask.astype(bool),
        "id": np.array([f"{prefix}-{i:06d}" for i in range(n)], dtype=str),
    }


# ------------------------------------------------------------------------------- brain
def _brain_chunk(rng: np.random.Generator, labels: np.ndarray, size: int, contrast: float,
                 lesion_size: float, noise: float) -> tuple[np.ndarray, np.ndarray]:
    n = len(labels)
    yy, xx = _grid(size)
    px = 2.0 / size  # one pixel in normalised units
    col = lambda a: a[:, None, None]  # noqa: E731  per-image scalar -> [n, 1, 1]

    # Head ellipse (slightly shifted and rotated) in head coordinates (u, v).
    cy, cx = _uniform(rng, -0.04, 0.04, n), _uniform(rng, -0.04, 0.04, n)
    semi_v, semi_u = _uniform(rng, 0.80, 0.88, n), _uniform(rng, 0.64, 0.72, n)
    theta = _uniform(rng, -0.15, 0.15, n)
    dy, dx = yy[None] - col(cy), xx[None] - col(cx)
    cos, sin = col(np.cos(theta)), col(np.sin(theta))
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    r = np.sqrt((u / col(semi_u)) ** 2 + (v / col(semi_v)) ** 2).astype(np.float32)

    skull_t = _uniform(rng, 0.07, 0.10, n)
    skull_val = _uniform(rng, 0.88, 1.0, n)
    scalp_val = _uniform(rng, 0.25, 0.35, n)
    tissue_val = _uniform(rng, 0.40, 0.48, n)
    edge = 0.8 * px
    head = _soft_inside(r - 1.06, edge)
    skull = _soft_inside(r - 1.0, edge) - _soft_inside(r - (1.0 - col(skull_t)), edge)
    inner = 1.0 - skull_t - 0.02  # [n] brain boundary radius
    brain = _soft_inside(r - col(inner), edge)

    coarse = _smooth_noise(rng, n, size, 0.06 * size)
    fine = _smooth_noise(rng, n, size, 0.015 * size)
    # Gyral folding: a wavy grey/white pattern strongest towards the cortex.
    folds = np.sin(9.0 * np.arctan2(v, u) + 6.0 * r + col(_uniform(rng, 0, 2 * np.pi, n)) + 1.5 * coarse)
    tissue = col(tissue_val) + 0.035 * coarse + 0.02 * fine + 0.03 * folds * np.clip(r / col(inner), 0, 1) ** 2

    # Ventricles: two tilted dark ellipses forming a butterfly around the midline.
    vent = np.zeros_like(r)
    v_off = _uniform(rng, 0.09, 0.13, n)
    v_a, v_b = _uniform(rng, 0.17, 0.24, n), _uniform(rng, 0.05, 0.08, n)
    v_y = _uniform(rng, -0.12, 0.02, n)
    for side in (-1.0, 1.0):
        tilt = side * 0.35
        du, dv = u - side * col(v_off), v - col(v_y)
        eu = du * np.cos(tilt) + dv * np.sin(tilt)
        ev = -du * np.sin(tilt) + dv * np.cos(tilt)
        er = np.sqrt((eu / col(v_b)) ** 2 + (ev / col(v_a)) ** 2)
        vent = np.maximum(vent, _soft_inside(er - 1.0, 0.15))
    vent_val = _uniform(rng, 0.08, 0.16, n)

    image = head * col(scalp_val)
    image = image * (1 - skull) + skull * col(skull_val)
    brain_img = tissue * (1 - vent) + vent * col(vent_val)
    image = image * (1 - brain) + brain * brain_img

    # Tumours: 1-3 irregular blobs per positive, fully inside the brain.
    mask = np.zeros((n, size, size), bool)
    pos = np.flatnonzero(labels == 1)
    if len(pos):
        counts = rng.choice([1, 2, 3], size=len(pos), p=[0.5, 0.3, 0.2])
        owner = pos[_owner_index(counts)]
        profile, lesion_mask = _place_brain_tumours(
            rng, owner, size, lesion_size, r, u, v, cy, cx, theta, semi_u, semi_v, inner)
        lesion_c = contrast * rng.uniform(0.6, 1.4, len(owner))
        # A third of the tumours are ring-enhancing (darker necrotic core).
        ring = rng.random(len(owner)) < 0.33
        level = (tissue_val[owner] + lesion_c)[:, None, None]
        texture = 1.0 + 0.08 * fine[owner]
        lesion_img = np.clip(level * texture * np.where(ring[:, None, None], 1.0 - 0.45 * profile["core"], 1.0), 0, 1)
        alpha = profile["edge"]
        for k in range(len(owner)):  # one blend per lesion, in place on its own image
            i = owner[k]
            image[i] = image[i] * (1 - alpha[k]) + alpha[k] * lesion_img[k]
            mask[i] |= lesion_mask[k]

    bias = 1.0 + 0.06 * _smooth_noise(rng, n, size, 0.25 * size)
    return _finish(image * bias, noise, rng), mask


def _place_brain_tumours(rng, owner, size, lesion_size, r, u, v, cy, cx, theta, semi_u, semi_v, inner):
    """Sample tumour blobs inside the brain, resampling any with < 10 pixels.

    Returns ({"edge": alpha [L,H,W], "core": [L,H,W]}, mask [L,H,W] bool).
    """
    yy, xx = _grid(size)
    px = 2.0 / size
    n_les = len(owner)
    edge = np.zeros((n_les, size, size), np.float32)
    core = np.zeros_like(edge)
    masks = np.zeros((n_les, size, size), bool)
    todo = np.arange(n_les)
    for _ in range(_MAX_RESAMPLE_ROUNDS):
        if not len(todo):
            break
        img = owner[todo]
        m = len(todo)
        radius_px = np.maximum(lesion_size * size * rng.uniform(0.7, 1.4, m), _MIN_RADIUS_PX)
        radius = radius_px * px
        # Centre in head coordinates, far enough from the skull for the blob to fit.
        rho_max = np.clip(inner[img] - 1.3 * radius / semi_u[img] - 0.05, 0.0, None)
        rho = rho_max * np.sqrt(rng.random(m))
        ang = rng.uniform(0, 2 * np.pi, m)
        cu, cv = rho * np.cos(ang) * semi_u[img], rho * np.sin(ang) * semi_v[img]
        th = theta[img]
        ccx = cx[img] + cu * np.cos(th) - cv * np.sin(th)
        ccy = cy[img] + cu * np.sin(th) + cv * np.cos(th)
        geom = _blob_geometry(rng, m)
        d, rb = _blob_fields(yy, xx, ccy.astype(np.float32), ccx.astype(np.float32), radius.astype(np.float32), geom)
        inside_brain = r[img] < inner[img][:, None, None]
        mk = (d < rb) & inside_brain
        edge[todo] = np.clip((rb - d) / (1.5 * px), 0, 1) * inside_brain
        core[todo] = np.clip(1.0 - d / (0.55 * rb), 0, 1)
        masks[todo] = mk
        todo = todo[mk.sum(axis=(1, 2)) < MIN_LESION_PIXELS]
    if len(todo):
        raise RuntimeError("could not place tumours of >= 10 pixels; lesion_size is too small for this image_size")
    return {"edge": edge, "core": core}, masks


def synth_brain(num: int, image_size: int = 64, seed: int = 0, *,
                positive_fraction: float = BRAIN_DEFAULTS["positive_fraction"],
                lesion_contrast: float = BRAIN_DEFAULTS["lesion_contrast"],
                lesion_size: float = BRAIN_DEFAULTS["lesion_size"],
                noise: float = BRAIN_DEFAULTS["noise"],
                id_prefix: str = "synth_brain") -> dict[str, np.ndarray]:
    """Brain-MR-like slices with tumour blobs.

    Args:
      num: number of images N.
      image_size: side S in pixels (64-224 intended).
      seed: any int; the output is a pure function of the arguments.
      positive_fraction: exactly ``round(N * fraction)`` images carry tumours.
      lesion_contrast: mean tumour intensity above tissue (each tumour draws 0.6-1.4x).
      lesion_size: mean tumour radius as a fraction of S (each draws 0.7-1.4x).
      noise: std of additive Gaussian pixel noise.

    Returns:
      ``image`` float32 [N, S, S, 1] in [0, 1]; ``label`` int32 [N] (1 = tumour);
      ``mask`` bool [N, S, S] (exact tumour pixels, >= 10 per tumour); ``id`` str [N].
    """
    return _generate(_brain_chunk, 11, num, image_size, seed, positive_fraction, lesion_contrast,
                     lesion_size, noise, id_prefix)


# ------------------------------------------------------------------------------- chest
def _chest_chunk(rng: np.random.Generator, labels: np.ndarray, size: int, contrast: float,
                 lesion_size: float, noise: float) -> tuple[np.ndarray, np.ndarray]:
    n = len(labels)
    yy, xx = _grid(size)
    px = 2.0 / size
    col = lambda a: a[:, None, None]  # noqa: E731
    Y, X = yy[None], xx[None]

    # Torso: a super-ellipse of soft tissue on a dark background.
    body_w = _uniform(rng, 0.86, 0.96, n)
    tx, ty = (X / col(body_w)) ** 2, ((Y - 0.25) / 1.3) ** 2
    torso = np.sqrt(np.sqrt(tx * tx + ty * ty))
    body = _soft_inside(torso - 1.0, 2 * px)
    soft_val = _uniform(rng, 0.42, 0.50, n)
    texture = _smooth_noise(rng, n, size, 0.05 * size)
    image = 0.04 + body * (col(soft_val) - 0.04 + 0.02 * texture)

    # Lungs: two egg shapes, wider at the base, dark with vascular markings.
    lung_cx = _uniform(rng, 0.38, 0.46, n)
    lung_cy = _uniform(rng, -0.08, 0.02, n)
    lung_a = _uniform(rng, 0.62, 0.72, n)   # vertical semi-axis
    lung_b = _uniform(rng, 0.31, 0.36, n)   # horizontal semi-axis at the centre
    lung_val = _uniform(rng, 0.14, 0.22, n)
    lung = np.zeros((n, size, size), np.float32)
    lung_sides = []
    for side in (-1.0, 1.0):
        ty = (Y - col(lung_cy)) / col(lung_a)
        width = col(lung_b) * (0.8 + 0.25 * np.clip(ty, -1, 1))
        lr = np.sqrt(((X - side * col(lung_cx)) / width) ** 2 + ty ** 2)
        lung_s = _soft_inside(lr - 1.0, 0.06)
        lung_sides.append(lung_s)
        lung = np.maximum(lung, lung_s)
    vessels = _smooth_noise(rng, n, size, 0.02 * size)
    lung_img = col(lung_val) + 0.03 * vessels + 0.05 * np.clip(1.0 - np.abs(X) / 0.7, 0, 1)
    image = image * (1 - lung) + lung * lung_img

    # Heart shadow over the medial lower left lung (image right).
    h_cx, h_cy = _uniform(rng, 0.08, 0.16, n), _uniform(rng, 0.22, 0.34, n)
    h_a, h_b = _uniform(rng, 0.20, 0.26, n), _uniform(rng, 0.26, 0.32, n)
    hr = np.sqrt(((X - col(h_cx)) / col(h_b)) ** 2 + ((Y - col(h_cy)) / col(h_a)) ** 2)
    heart = _soft_inside(hr - 1.0, 0.08)
    heart_val = _uniform(rng, 0.55, 0.62, n)
    image = image * (1 - heart) + heart * col(heart_val)

    # Spine: a bright vertical band with vertebrae.
    spine_w = _uniform(rng, 0.07, 0.09, n)
    spine = _soft_inside(np.abs(X) - col(spine_w), px) * body
    vert = 0.5 + 0.5 * np.cos(2 * np.pi * (Y / 0.16 + col(_uniform(rng, 0, 1, n))))
    spine_val = _uniform(rng, 0.60, 0.70, n)
    image = image * (1 - spine) + spine * col(spine_val) * (0.9 + 0.1 * vert)

    # Ribs: periodic curved bands on each side, plus clavicles; the brightest structures.
    rib_val = _uniform(rng, 0.36, 0.46, n)
    spacing = _uniform(rng, 0.16, 0.19, n)
    curve = _uniform(rng, 0.5, 0.8, n)
    top = _uniform(rng, -0.78, -0.70, n)
    thick = 0.45  # band width as a fraction of the rib spacing
    ribs = np.zeros((n, size, size), np.float32)
    for side in (-1.0, 1.0):
        bend = Y - col(curve) * (X - side * 0.30) ** 2 - col(top)
        phase = bend / col(spacing)
        frac = phase - np.floor(phase)
        band = np.clip(1.6 * (1.0 - np.abs(frac - 0.5 * thick) / (0.5 * thick)), 0, 1)
        band = band * (phase >= 0) * (phase < 9)
        lateral = (side * X > 0.06) & (side * X < 0.92)
        ribs = np.maximum(ribs, band * lateral)
        clav = np.abs(Y - (-0.72 + 0.25 * (side * X - 0.35) ** 2 - 0.12 * (side * X)))
        ribs = np.maximum(ribs, np.clip(1.0 - clav / 0.035, 0, 1) * ((side * X > 0.1) & (side * X < 0.7)))
    image = image + body * col(rib_val) * np.clip(ribs, 0, 1)
    image = _blur(image, 0.35 * size / 64)  # soft radiographic edges (before any lesion)

    # Opacities: 1-2 hazy blobs inside the lungs; the mask is each blob's bounding box.
    mask = np.zeros((n, size, size), bool)
    pos = np.flatnonzero(labels == 1)
    if len(pos):
        counts = rng.choice([1, 2], size=len(pos), p=[0.6, 0.4])
        owner = pos[_owner_index(counts)]
        haze, boxes = _place_opacities(rng, owner, size, lesion_size, lung_sides,
                                       lung_cx, lung_cy, lung_a, lung_b)
        lesion_c = contrast * rng.uniform(0.6, 1.4, len(owner))
        grain = 1.0 + 0.15 * _smooth_noise(rng, len(owner), size, 0.03 * size)
        for k in range(len(owner)):
            i = owner[k]
            image[i] = image[i] + lesion_c[k] * haze[k] * grain[k]
            mask[i] |= boxes[k]

    return _finish(image, noise, rng), mask


def _place_opacities(rng, owner, size, lesion_size, lung_sides, lung_cx, lung_cy, lung_a, lung_b):
    """Sample hazy blobs in a lung; returns (haze [L,H,W] float, box masks [L,H,W] bool)."""
    yy, xx = _grid(size)
    px = 2.0 / size
    n_les = len(owner)
    haze = np.zeros((n_les, size, size), np.float32)
    boxes = np.zeros((n_les, size, size), bool)
    todo = np.arange(n_les)
    for _ in range(_MAX_RESAMPLE_ROUNDS):
        if not len(todo):
            break
        img = owner[todo]
        m = len(todo)
        radius = np.maximum(lesion_size * size * rng.uniform(0.7, 1.4, m), _MIN_RADIUS_PX) * px
        side = rng.integers(0, 2, m)
        rho = 0.55 * np.sqrt(rng.random(m))
        ang = rng.uniform(0, 2 * np.pi, m)
        ccx = (2 * side - 1) * lung_cx[img] + rho * np.cos(ang) * lung_b[img]
        ccy = lung_cy[img] + rho * np.sin(ang) * lung_a[img]
        geom = _blob_geometry(rng, m)
        d, rb = _blob_fields(yy, xx, ccy.astype(np.float32), ccx.astype(np.float32),
                             radius.astype(np.float32), geom)
        in_lung = np.where(side[:, None, None] == 1, lung_sides[1][img], lung_sides[0][img])
        h = np.clip((rb - d) / (0.6 * rb), 0, 1) ** 0.7 * in_lung
        support = h > 0.05
        rows, cols = support.any(axis=2), support.any(axis=1)
        box = np.zeros_like(support)
        for k in range(m):  # rasterise each bounding box
            ry, rx = np.flatnonzero(rows[k]), np.flatnonzero(cols[k])
            if len(ry) and len(rx):
                box[k, ry[0]: ry[-1] + 1, rx[0]: rx[-1] + 1] = True
        haze[todo] = np.where(support, h, 0.0)
        boxes[todo] = box
        todo = todo[box.sum(axis=(1, 2)) < MIN_LESION_PIXELS]
    if len(todo):
        raise RuntimeError("could not place opacities of >= 10 pixels; lesion_size is too small for this image_size")
    return haze, boxes


def synth_chest(num: int, image_size: int = 64, seed: int = 0, *,
                positive_fraction: float = CHEST_DEFAULTS["positive_fraction"],
                lesion_contrast: float = CHEST_DEFAULTS["lesion_contrast"],
                lesion_size: float = CHEST_DEFAULTS["lesion_size"],
                noise: float = CHEST_DEFAULTS["noise"],
                id_prefix: str = "synth_chest") -> dict[str, np.ndarray]:
    """Chest-radiograph-like images with lung opacities annotated as boxes.

    Same arguments and return layout as :func:`synth_brain`; ``mask`` is the union of the
    rasterised bounding boxes of the opacities (1-2 per positive, >= 10 pixels each).
    """
    return _generate(_chest_chunk, 12, num, image_size, seed, positive_fraction, lesion_contrast,
                     lesion_size, noise, id_prefix)


def _generate(chunk_fn, stream: int, num: int, image_size: int, seed: int, positive_fraction: float,
              lesion_contrast: float, lesion_size: float, noise: float, id_prefix: str) -> dict[str, np.ndarray]:
    """Labels first, then images chunk by chunk, each chunk from its own seeded stream."""
    _check_args(num, image_size, positive_fraction, lesion_contrast, lesion_size, noise)
    labels = _labels(num, positive_fraction, _seeded(seed, stream, 0))
    images, masks = [], []
    for c, (a, b) in enumerate(_chunks(num, image_size)):
        img, mk = chunk_fn(_seeded(seed, stream, c + 1), labels[a:b], image_size,
                           lesion_contrast, lesion_size, noise)
        images.append(img)
        masks.append(mk)
    return _pack(images, masks, labels, id_prefix, image_size)


GENERATORS: dict[str, Any] = {"synth_brain": synth_brain, "synth_chest": synth_chest}
DEFAULTS: dict[str, dict[str, float]] = {"synth_brain": BRAIN_DEFAULTS, "synth_chest": CHEST_DEFAULTS}


def split_seed(seed: int, split: str) -> int:
    """Seed of one split of a synthetic set: train/val/test never share images."""
    codes = {"train": 1, "val": 2, "test": 3}
    if split not in codes:
        raise ValueError(f"unknown split {split!r}; choose from {sorted(codes)}")
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, codes[split]]).generate_state(1)[0])

