"""The project's one way of writing files, and its one JSON reader and writer.

Writing: :func:`atomic_write` gives a temporary name in the target's folder and, when the
block ends without an exception, moves it over the target with ``os.replace`` — a reader
never sees a half-written file, and a failure leaves neither the file nor the temporary.
The file gets the mode ``open()`` would give it (0666 minus the process's umask), not the
private 0600 of the temporary file. :func:`write_bytes_atomic`, :func:`write_text_atomic`,
:func:`write_json_atomic` and :func:`save_npy_atomic` are built on it.

JSON: :func:`to_jsonable` is the one conversion of numpy/JAX values (arrays as lists,
scalars as numbers, anything else as its ``str``); :func:`read_json` reads a file and
names it in the error when it is missing or damaged.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from typing import Any, Iterator

import numpy as np

from advpath_jax.errors import AdvpathError


def current_umask() -> int:
    """The process's umask (read from /proc where possible, so no thread sees it changed)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[str]:
    """``with atomic_write(path) as tmp:`` write the whole file to ``tmp`` (any writer: ``open``,
    ``np.save``, ``fig.savefig``...); on a clean exit it becomes ``path`` (folder created),
    on an exception both are gone and the exception propagates."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # The temporary keeps the target's extension: writers such as np.save and savefig go by it.
    suffix = ".tmp" + os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (creating the folder)."""
    with atomic_write(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "__array__"):   # numpy and JAX arrays
        return np.asarray(obj).tolist()
    return str(obj)


def _json_default_strict(obj: Any) -> Any:
    if isinstance(obj, np.generic) or hasattr(obj, "__array__"):
        return _json_default(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def dumps_json(obj: Any, *, indent: int | None = 2, strict: bool = False, **kwargs: Any) -> str:
    """``json.dumps`` with numpy/JAX arrays as lists and numpy scalars as numbers; any other
    unknown object becomes its ``str`` (``strict=False``) or raises ``TypeError`` (``strict``).
    ``kwargs``: ``sort_keys``, ``allow_nan``, ``ensure_ascii``, ``separators``..."""
    return json.dumps(obj, indent=indent, default=_json_default_strict if strict else _json_default, **kwargs)


def to_jsonable(obj: Any) -> Any:
    """A copy of ``obj`` made of JSON types only (what :func:`write_json_atomic` would store)."""
    return json.loads(dumps_json(obj, indent=None))


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, **kwargs: Any) -> None:
    """JSON (see :func:`dumps_json`, which takes ``kwargs``) written atomically."""
    write_text_atomic(path, dumps_json(obj, indent=indent, **kwargs))


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """The JSON value stored in ``path``; ``FileNotFoundError`` or :class:`AdvpathError`
    (damaged or unreadable file), both naming ``what`` and the file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise AdvpathError(f"cannot read {what} {path}: {err}") from err


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` written atomically."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    write_bytes_atomic(path, buf.getvalue())
