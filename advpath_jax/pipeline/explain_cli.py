"""``advpath explain IMAGE --workdir DIR --out overlay.png``: one image, one heat-map overlay.

IMAGE may be a PNG/JPEG, an NPY array (2-D, or [H, W, 1]), a DICOM file, or a NIfTI
volume (``--slice`` picks the axial slice; default: the middle one). The image is
normalised to [0, 1] and resized to the config's image size, as in the data sets.
The trained models are read from the run directory of ``advpath run``.
"""

from __future__ import annotations

import argparse
import os
import pathlib

import numpy as np

from advpath_jax.config_utils import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="PNG/JPEG, NPY, DICOM (.dcm) or NIfTI (.nii/.nii.gz) file")
    parser.add_argument("--workdir", required=True, help="run directory of `advpath run`")
    parser.add_argument("--config", default=None, help="config of that run (default: synth_brain)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--method", default="SyCE:E_FI,kσ^v2", help="explainer name (see `advpath run`)")
    parser.add_argument("--slice", type=int, default=None, help="NIfTI: axial slice index")
    parser.add_argument("--out", required=True, help="output PNG")


def read_image(path: str, *, slice_index: int | None = None) -> np.ndarray:
    """A 2-D float32 image from PNG/JPEG, NPY, DICOM or NIfTI (not yet normalised)."""
    p = pathlib.Path(path)
    if not p.exists():
        raise FileNotFoundError(f"image file not found: {p}")
    name = p.name.lower()
    try:
        if name.endswith(".npy"):
            img = np.load(p)
        elif name.endswith((".dcm", ".dicom")):
            from advpath_jax.data.rsna import load_dicom

            return load_dicom(p)
        elif name.endswith((".nii", ".nii.gz")):
            import nibabel

            vol = np.asarray(nibabel.load(str(p)).get_fdata(), np.float32)
            if vol.ndim == 4:
                vol = vol[..., 0]
            if vol.ndim == 2:
                return vol
            if vol.ndim != 3:
                raise ValueError(f"expected a 3-D volume, got shape {vol.shape}")
            k = vol.shape[2] // 2 if slice_index is None else slice_index
            if not 0 <= k < vol.shape[2]:
                raise ValueError(f"slice {k} outside the volume's {vol.shape[2]} axial slices")
            return vol[:, :, k]
        else:
            from PIL import Image

            img = np.asarray(Image.open(p).convert("L"), np.float32)
    except (OSError, EOFError) as err:
        raise ValueError(f"cannot read image file {p}: {err}") from err
    img = np.asarray(img, np.float32)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise ValueError(f"{p}: expected a 2-D grey image, got shape {img.shape}")
    return img


def prepare_image(raw: np.ndarray, image_size: int, where: str) -> np.ndarray:
    """Normalise to [0, 1] and resize: ``[1, S, S, 1]``."""
    from advpath_jax.data.preprocess import minmax_normalise, resize_image

    try:
        img = resize_image(minmax_normalise(raw), image_size)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from err
    return np.clip(img, 0.0, 1.0)[None, :, :, None]


def save_overlay(image: np.ndarray, heat: np.ndarray, out: str, title: str) -> None:
    """Grey image with the map as a translucent heat map, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from advpath_jax.io_utils import write_bytes_atomic

    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("image")
    axes[1].imshow(image, cmap="gray", vmin=0, vmax=1)
    scale = heat.max() if heat.max() > 0 else 1.0
    axes[1].imshow(heat / scale, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[1].set_title(title)
    for ax in axes:
        ax.axis("off")
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=120)
    plt.close(fig)
    write_bytes_atomic(out, buf.getvalue())


def main(args: argparse.Namespace) -> int:
    import jax

    from advpath_jax.explain.registry import check_method_names
    from advpath_jax.pipeline.run import build_explainers

    config = load_config(args.config, args.overrides)
    (method,) = check_method_names([args.method])
    if not os.path.isdir(args.workdir):
        raise FileNotFoundError(f"run directory not found: {args.workdir} (run `advpath run` first)")
    x = prepare_image(read_image(args.image, slice_index=args.slice), int(config.data.image_size), args.image)
    explainers = build_explainers(config, args.workdir, [method])
    score = float(explainers.f(jax.numpy.asarray(x))[0])
    heat = explainers.explain(x, [method], jax.random.key(int(config.seed)))[method][0]
    title = f"{method}  (f = {score:.3f}, predicted {'1' if score >= 0.5 else '0'})"
    save_overlay(x[0, :, :, 0], np.asarray(heat), args.out, title)
    print(f"[explain] {args.image}: f(x) = {score:.4f}; wrote {args.out}")
    return 0
