"""``advpath explain IMAGE --workdir DIR --out overlay.png``: one image, one heat-map overlay.

IMAGE may be a PNG/JPEG (8- or 16-bit), an NPY array (2-D, or [H, W, 1]), a DICOM file,
or a NIfTI volume (``--slice`` picks the axial slice; default: the middle one), read by
the project's one image reader (:mod:`advpath_jax.data.imageio`). The image is
normalised to [0, 1] and resized to the config's image size, as in the data sets; a
constant image is explained with a warning (its map says nothing about its content).
The trained models are read from the run directory of ``advpath run``.

``--method`` defaults to the best localiser of the run directory's own report (highest
mean IoU over the report's percentiles in ``results.json``, Random excluded); without a
report, to the paper's SyCE:E_FI,kσ^v2, and the command says so.
"""

from __future__ import annotations

import argparse
import os

import sys

import numpy as np

from advpath_jax.config_utils import load_config
from advpath_jax.data.imageio import read_grey
from advpath_jax.data.preprocess import minmax_normalise, resize_image
from advpath_jax.errors import AdvpathError
from advpath_jax.io_utils import read_json, write_bytes_atomic
from advpath_jax.models.probability import predicted_class

PAPER_METHOD = "SyCE:E_FI,kσ^v2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="PNG/JPEG, NPY, DICOM (.dcm) or NIfTI (.nii/.nii.gz) file")
    parser.add_argument("--workdir", required=True, help="run directory of `advpath run`")
    parser.add_argument("--config", default=None, help="config of that run (default: synth_brain)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--method", default=None,
                        help="explainer name (see `advpath run`; default: the best localiser of the "
                             f"run's report, else {PAPER_METHOD})")
    parser.add_argument("--slice", type=int, default=None, help="NIfTI: axial slice index")
    parser.add_argument("--out", required=True, help="output PNG")


def best_localiser(workdir: str) -> tuple[str | None, str]:
    """``(method, reason)``: the method of ``WORKDIR/results.json`` with the highest mean IoU
    over the report's percentiles (Random excluded), or ``(None, why not)``."""
    path = os.path.join(workdir, "results.json")
    if not os.path.isfile(path):
        return None, f"{path} does not exist (no finished `advpath run` report)"
    try:
        table1 = read_json(path, "report").get("table1") or {}
        means = {}
        for name, per_percentile in table1.items():
            values = [cell["iou"]["mean"] for cell in per_percentile.values()
                      if isinstance(cell.get("iou"), dict) and cell["iou"].get("mean") is not None]
            if name != "Random" and values:
                means[name] = float(np.mean(values))
    except (ValueError, AttributeError, TypeError, KeyError) as err:
        raise AdvpathError(f"cannot read the report's Table 1 in {path}: {err}") from err
    if not means:
        return None, f"{path} has no IoU in its Table 1"
    best = max(means, key=means.get)
    return best, f"best localiser of {path} (mean IoU {means[best]:.3f} over its percentiles)"


def warn_if_constant(raw: np.ndarray, where: str) -> None:
    """A constant image has no content to explain: say so on stderr."""
    finite = raw[np.isfinite(raw)]
    if finite.size and float(finite.min()) == float(finite.max()):
        print(f"warning: {where} is a constant image (every pixel {float(finite.min()):.4g}); "
              "its map carries no information about image content", file=sys.stderr)


def prepare_image(raw: np.ndarray, image_size: int, where: str) -> np.ndarray:
    """Normalise to [0, 1] and resize: ``[1, S, S, 1]``."""
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

    # the pipeline (models, checkpoints) loads when the command runs, not for ``advpath explain --help``
    from advpath_jax.explain.registry import check_method_names
    from advpath_jax.pipeline.run import build_explainers

    config = load_config(args.config, args.overrides)
    if not os.path.isdir(args.workdir):
        raise FileNotFoundError(f"run directory not found: {args.workdir} (run `advpath run` first)")
    if args.method is None:
        best, reason = best_localiser(args.workdir)
        method_name = best or PAPER_METHOD
        print(f"[explain] method {method_name}: " + (reason if best else f"the paper's default, because {reason}"))
    else:
        method_name = args.method
    (method,) = check_method_names([method_name])
    raw = read_grey(args.image, slice_index=args.slice)
    warn_if_constant(raw, args.image)
    x = prepare_image(raw, int(config.data.image_size), args.image)
    explainers = build_explainers(config, args.workdir, [method])
    score = float(explainers.f(jax.numpy.asarray(x))[0])
    heat = explainers.explain(x, [method], jax.random.key(int(config.seed)))[method][0]
    title = f"{method}  (f = {score:.3f}, predicted {int(predicted_class(score))})"
    save_overlay(x[0, :, :, 0], np.asarray(heat), args.out, title)
    print(f"[explain] {args.image}: f(x) = {score:.4f}; wrote {args.out}")
    return 0
