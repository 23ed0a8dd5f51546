"""The project's one image reader: PNG/JPEG, NPY, DICOM and NIfTI files -> 2-D arrays.

Every command that reads a user's image file (``advpath explain``, the ``folder`` data
set) goes through :func:`read_grey`, so a file means the same image everywhere:

* PNG/JPEG: scaled by the bit depth into [0, 1] (8-bit /255, 16-bit /65535, 1-bit as
  0/1; colour converted to luminance). A 16-bit PNG is never clipped to 8 bits.
* NPY: the stored array as is (2-D or [H, W, 1]); never unpickled (``allow_pickle=False``).
* DICOM: the pixel data (MONOCHROME1 inverted), see :func:`advpath_jax.data.rsna.load_dicom`.
* NIfTI: one axial slice (default: the middle one) of the volume.

A missing file raises ``FileNotFoundError`` and a damaged, truncated, pickled or
wrongly shaped file an :class:`~advpath_jax.errors.AdvpathError`; both name the file.
"""

from __future__ import annotations

import pathlib

import numpy as np

from advpath_jax.data.rsna import load_dicom
from advpath_jax.errors import AdvpathError

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


def _suffix(path: pathlib.Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_npy(path: str | pathlib.Path, what: str = "array") -> np.ndarray:
    """An NPY file's array (never unpickled); damaged/truncated files name ``path``."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises ValueError/OSError/EOFError/UnpicklingError
        raise AdvpathError(f"cannot read {what} file {path}: {' '.join(str(err).split())}") from err


def _read_pil(path: pathlib.Path) -> np.ndarray:
    """PNG/JPEG as float64 in [0, 1], scaled by the bit depth."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        if img.mode in SIXTEEN_BIT_MODES:
            arr = np.asarray(img, np.float64)
            if arr.min() < 0 or arr.max() > 65535:
                raise ValueError(f"values in [{arr.min():.0f}, {arr.max():.0f}] do not fit 16 bits")
            return arr / 65535.0
        if img.mode == "1":
            return np.asarray(img, bool).astype(np.float64)
        return np.asarray(img.convert("L"), np.float64) / 255.0


def _read_nifti_slice(path: pathlib.Path, slice_index: int | None) -> np.ndarray:
    import nibabel

    vol = np.asarray(nibabel.load(str(path)).get_fdata(), np.float32)
    if vol.ndim == 4:
        vol = vol[..., 0]
    if vol.ndim == 2:
        return vol
    if vol.ndim != 3:
        raise AdvpathError(f"NIfTI file {path}: expected a 3-D volume, got shape {vol.shape}")
    k = vol.shape[2] // 2 if slice_index is None else slice_index
    if not 0 <= k < vol.shape[2]:
        raise AdvpathError(f"NIfTI file {path}: slice {k} outside the volume's {vol.shape[2]} axial slices")
    return vol[:, :, k]


def read_grey(path: str | pathlib.Path, *, what: str = "image", slice_index: int | None = None) -> np.ndarray:
    """One grey image ``[H, W]`` from a PNG/JPEG, NPY, DICOM or NIfTI file (see the module
    docstring for the scaling of each format). ``what`` names the file in errors."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    suffix = _suffix(path)
    if suffix == ".npy":
        arr = read_npy(path, what)
    elif suffix in (".dcm", ".dicom"):
        arr = load_dicom(path)
    elif suffix in (".nii", ".nii.gz"):
        try:
            arr = _read_nifti_slice(path, slice_index)
        except AdvpathError:
            raise
        except Exception as err:
            raise AdvpathError(f"cannot read {what} file {path}: {' '.join(str(err).split())}") from err
    else:
        try:
            arr = _read_pil(path)
        except Exception as err:  # Pillow raises OSError, SyntaxError, zlib/struct errors...
            raise AdvpathError(f"cannot read {what} file {path}: {' '.join(str(err).split())}") from err
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise AdvpathError(f"{what} file {path} has shape {arr.shape}; expected [H, W] or [H, W, 1]")
    return arr
