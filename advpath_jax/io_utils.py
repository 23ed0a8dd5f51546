"""The project's one way of writing files: to a temporary name in the same folder, then
``os.replace`` — a reader never sees a half-written file, and a failure leaves none."""

from __future__ import annotations

import io
import json
import os
import tempfile
from typing import Any

import numpy as np


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (creating the folder)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    return str(obj)


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> None:
    """JSON (numpy/JAX arrays as lists) written atomically."""
    text = json.dumps(obj, indent=indent, default=_json_default)
    write_bytes_atomic(path, text.encode("utf-8"))


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` written atomically."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    write_bytes_atomic(path, buf.getvalue())
