"""Attribution of a split's images as a resumable job that writes maps to disk in shards.

Layout: ``OUT/<method-slug>/shard_00000.npy`` (float32 ``[n, H, W]``), one file per
shard, written atomically. The images are cut into ``ceil(N / shard_size)`` shards of equal
size but for one image (:func:`shard_bounds`), and a shorter shard is padded to the longest
by repeating its last image, so every shard runs the same compiled programs. A re-run computes only the
missing files. Shards are distributed over processes (``s % process_count ==
process_index``) and each shard's batch is sharded over the local devices by the engine.
The images attributed may be some rows of a split (``advpath run`` attributes the test
images its metrics read); ``OUT/manifest.json`` then records them (``rows``) and
:class:`StoredMaps` reads maps by split row.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import time
from typing import Callable, Iterator, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

from advpath_jax.errors import AdvpathError
from advpath_jax.io_utils import read_json, save_npy_atomic, write_json_atomic
from advpath_jax.parallel import balanced_bounds, pad_batch
from advpath_jax.training.stage_record import differences


def method_slug(name: str) -> str:
    """A file-system friendly name: ``"CyCE:E_FI,kσ^v2"`` -> ``"CyCE-E_FI-ksigma-v2"``."""
    text = name.replace("σ", "sigma").replace(":", "-").replace(",", "-").replace("^", "-")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def shard_path(out_dir: str, name: str, shard: int) -> str:
    return os.path.join(out_dir, method_slug(name), f"shard_{shard:05d}.npy")


def load_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:  # truncated (ValueError/EOFError), pickled, unreadable
        raise AdvpathError(f"corrupt or unreadable map shard {path}: {' '.join(str(err).split())}; "
                           "delete it to recompute") from err


def n_shards(n_images: int, shard_size: int) -> int:
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    return math.ceil(n_images / shard_size)


def shard_bounds(n_images: int, shard_size: int) -> list[tuple[int, int]]:
    """``[(first, end), ...]`` of the ``ceil(n_images / shard_size)`` shards: sizes differ by at
    most one (the longer ones first), none above ``shard_size`` (:func:`balanced_bounds`)."""
    n_shards(n_images, shard_size)  # checks shard_size
    return balanced_bounds(n_images, shard_size)


def _legacy_layout(stored: dict) -> str:
    """The layout of a manifest written before ``layout`` was recorded: shards of exactly
    ``shard_size`` (the last shorter), the same as the balanced one when they divide evenly."""
    n, size = int(stored.get("n_images", 0)), int(stored.get("shard_size", 1))
    return LAYOUT if size < 1 or n % size == 0 else "fixed"


LAYOUT = "balanced"  # recorded in the manifest: see shard_bounds


def my_shards(total: int, process_index: int | None = None, process_count: int | None = None) -> list[int]:
    """The shards this process owns."""
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    return [s for s in range(total) if s % count == index]


MANIFEST = "manifest.json"


def check_manifest(out_dir: str, fingerprint: dict, *, write: bool = True) -> None:
    """Record what the shards of ``out_dir`` were computed from; refuse a different setting.

    Shards are reused across runs, so maps computed for other data or other settings must
    never be mixed in silently. A field only one side has (added or removed by another
    version of advpath_jax) is named on stderr and taken as unchanged, as for the models'
    settings records. ``fingerprint["models"]`` (``{model: which training}``) may
    name models the manifest does not have yet (methods added later); they are recorded.
    ``write=False`` only checks.
    """
    path = os.path.join(out_dir, MANIFEST)
    fingerprint = json.loads(json.dumps(fingerprint, default=str))
    if os.path.exists(path):
        try:
            stored = read_json(path, "map manifest")
        except AdvpathError as err:
            raise AdvpathError(f"{err}; delete {out_dir} to recompute") from err
        if "layout" in fingerprint and "layout" not in stored:
            stored["layout"] = _legacy_layout(stored)
        models = {**stored.get("models", {}), **fingerprint.get("models", {})}
        compared = {**stored, "models": {m: stored.get("models", {}).get(m, v) for m, v in models.items()}}
        if not write:  # a check before the data are loaded: only the fields given
            compared = {k: v for k, v in compared.items() if k in fingerprint}
        diffs = differences(compared, {**fingerprint, "models": models})
        one_sided = [d for d in diffs if "'<absent>'" in d.split(": ", 1)[1]]  # another version's fields
        diffs = [d for d in diffs if d not in one_sided]
        if one_sided and not diffs and write:
            print(f"note: {path}: fields present on one side only (another version of advpath_jax), taken as "
                  f"unchanged: {', '.join(d.split(':', 1)[0] for d in one_sided)}", file=sys.stderr)
        if diffs:
            shown = "; ".join(diffs[:6]) + (f"; ... ({len(diffs)} fields in all)" if len(diffs) > 6 else "")
            fields = ", ".join(d.split(":", 1)[0] for d in diffs[:6])
            raise AdvpathError(f"the map shards in {out_dir} were computed with other settings "
                               f"({fields} differ; stored -> now asked: {shown}); use another work directory, "
                               f"`advpath run --retrain MODEL` after retraining a model, or delete {out_dir} "
                               f"to recompute")
        if not write or models == stored.get("models", {}):
            return
        fingerprint = {**stored, "models": models}
    if write:
        write_json_atomic(path, fingerprint)


def attribute_split(explain: Callable[[np.ndarray, Sequence[str], jax.Array], dict],
                    images: np.ndarray, names: Sequence[str], out_dir: str, *, shard_size: int,
                    seed: int = 0, shards: Sequence[int] | None = None, desc: str = "attribution",
                    extra: dict[str, Callable[[np.ndarray, int], np.ndarray]] | None = None,
                    fingerprint: dict | None = None) -> dict:
    """Write every missing map shard of ``names`` for ``images [N, H, W, C]``.

    ``explain(x, names, key) -> {name: [b, H, W]}`` (e.g. :meth:`Explainers.explain`).
    ``extra`` maps additional array names to ``fn(x, shard) -> array`` stored the same way
    (e.g. the AOPC perturbation images). ``fingerprint``: the settings the maps depend on
    (recorded on first use, checked on every later one, see :func:`check_manifest`); the
    number of images, the shard size and the seed are always part of it.
    Returns counts and the throughput.
    """
    check_manifest(out_dir, {**(fingerprint or {}), "n_images": int(len(images)),
                             "image_shape": list(images.shape[1:]), "shard_size": int(shard_size),
                             "layout": LAYOUT, "seed": int(seed)})
    bounds = shard_bounds(len(images), shard_size)
    width = max((hi - lo for lo, hi in bounds), default=0)  # every shard runs at this batch size
    shards = my_shards(len(bounds)) if shards is None else list(shards)
    extra = extra or {}
    computed_maps, start = 0, time.perf_counter()
    for shard in tqdm(shards, desc=desc, unit="shard"):
        lo, hi = bounds[shard]
        x, _ = pad_batch(images[lo:hi], width)
        for name, fn in extra.items():
            path = shard_path(out_dir, name, shard)
            if not os.path.exists(path):
                save_npy_atomic(path, np.asarray(fn(x, shard), np.float32)[: hi - lo])
        todo = [n for n in names if not os.path.exists(shard_path(out_dir, n, shard))]
        if not todo:
            continue
        maps = explain(x, todo, jax.random.fold_in(jax.random.key(seed), shard))
        for name in todo:
            save_npy_atomic(shard_path(out_dir, name, shard), np.asarray(maps[name], np.float32)[: hi - lo])
        computed_maps += len(todo) * (hi - lo)
    seconds = time.perf_counter() - start
    rate = computed_maps / seconds if computed_maps else 0.0
    print(f"[attribution] {computed_maps} maps computed in {seconds:.1f} s "
          f"({rate:.1f} maps/s, {len(names)} methods, {len(images)} images, "
          f"{jax.device_count()} device(s))")
    return {"maps_computed": computed_maps, "seconds": seconds, "maps_per_s": rate}


def wait_for_shards(out_dir: str, names: Sequence[str], n_images: int, shard_size: int, *,
                    timeout_s: float = 3600.0, poll_s: float = 2.0) -> None:
    """Block until every shard of ``names`` exists (other processes are writing them)."""
    total = n_shards(n_images, shard_size)
    deadline = time.monotonic() + timeout_s
    while True:
        missing = [shard_path(out_dir, n, s) for n in names for s in range(total)
                   if not os.path.exists(shard_path(out_dir, n, s))]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(missing)} map shard(s) still missing after {timeout_s:.0f} s, "
                               f"e.g. {missing[0]}")
        time.sleep(poll_s)


def iter_shards(out_dir: str, name: str, n_images: int, shard_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first_index, maps)`` for every shard of ``name``; a missing shard is an error."""
    for shard, (lo, hi) in enumerate(shard_bounds(n_images, shard_size)):
        path = shard_path(out_dir, name, shard)
        if not os.path.exists(path):
            raise FileNotFoundError(f"map shard missing: {path} (run the attribution stage first)")
        maps = load_npy(path)
        if len(maps) != hi - lo:
            raise AdvpathError(f"map shard {path} holds {len(maps)} maps, expected {hi - lo} (images {lo}-{hi - 1}); "
                               "delete it to recompute")
        yield lo, maps


def gather_rows(out_dir: str, name: str, rows: np.ndarray, n_images: int, shard_size: int) -> np.ndarray:
    """The maps of the images ``rows`` (sorted positions among the ``n_images`` attributed), read shard by shard."""
    rows = np.asarray(rows)
    parts = []
    for first, maps in iter_shards(out_dir, name, n_images, shard_size):
        sel = rows[(rows >= first) & (rows < first + len(maps))] - first
        if len(sel):
            parts.append(maps[sel])
    return np.concatenate(parts) if parts else np.zeros((0,), np.float32)


def stored_rows(out_dir: str, n_split: int) -> np.ndarray:
    """The sorted split rows whose maps ``out_dir`` holds (its manifest's ``rows``; every row
    ``0 .. n_split - 1`` for a manifest without them, as written before rows were recorded)."""
    path = os.path.join(out_dir, MANIFEST)
    manifest = read_json(path, "map manifest") if os.path.exists(path) else {}
    if "rows" not in manifest:
        return np.arange(n_split)
    rows = np.asarray(manifest["rows"], np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= n_split or np.any(np.diff(rows) <= 0))):
        raise AdvpathError(f"{path}: 'rows' must be increasing row indices of the {n_split}-image split; "
                           f"delete {out_dir} to recompute")
    return rows


@dataclasses.dataclass(frozen=True)
class StoredMaps:
    """The map shards of ``out_dir``: maps of the split rows ``rows`` (sorted), in that order,
    ``shard_size`` images a shard."""

    out_dir: str
    rows: np.ndarray
    shard_size: int

    def positions(self, split_rows: np.ndarray) -> np.ndarray:
        """Where the split rows ``split_rows`` lie among the stored rows; a row without maps is an error."""
        split_rows = np.asarray(split_rows, np.int64)
        pos = np.searchsorted(self.rows, split_rows)
        found = (pos < len(self.rows)) & (self.rows[np.minimum(pos, len(self.rows) - 1)] == split_rows) \
            if len(self.rows) else np.zeros(split_rows.shape, bool)
        if not np.all(found):
            missing = split_rows[~found]
            raise AdvpathError(f"{self.out_dir} holds no maps of split row(s) {missing[:5].tolist()}"
                               f"{' ...' if len(missing) > 5 else ''} ({len(self.rows)} rows attributed); "
                               "run the attribution with eval.attribute_images = 'all' for every row")
        return pos

    def gather(self, name: str, split_rows: np.ndarray) -> np.ndarray:
        """The maps of method ``name`` for the sorted split rows ``split_rows``: ``[len(split_rows), ...]``."""
        return gather_rows(self.out_dir, name, self.positions(split_rows), len(self.rows), self.shard_size)
