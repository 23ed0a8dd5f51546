"""The classifier's scores over many images, and the cache of its predicted classes.

:func:`predict_in_batches` applies any jitted ``fn(state, x)`` over an image array in
fixed-size batches sharded over the local devices; :func:`classifier_scores` is the
classifier's probability ``f(x)`` ``[N]``; :func:`predicted_classes` caches
``c = 1[f(x) >= 0.5]`` of a split in ``WORKDIR/classifier`` (the three generators, MGen
and reruns predict each split once).
"""

from __future__ import annotations

import functools
import io
import json
import os
from typing import Any, Callable

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from advpath_jax.io_utils import write_bytes_atomic
from advpath_jax.models.probability import predicted_class
from advpath_jax.parallel import batch_sharding, data_mesh, pad_batch, replicate
from advpath_jax.store.checkpoint import CheckpointStore, model_dir
from advpath_jax.store.models import CLASSIFIER, classifier_fingerprint


@functools.lru_cache(maxsize=32)
def make_score_fn(graphdef: Any) -> Callable[[Any, jax.Array], jax.Array]:
    """Jitted ``(state, images [B,H,W,1]) -> probabilities [B]`` for a model split in eval mode (cached)."""
    @jax.jit
    def score(state, x):
        return jax.nn.sigmoid(nnx.merge(graphdef, state, copy=True)(x))
    return score


def predict_in_batches(fn: Callable[[Any, jax.Array], Any], state: Any, images: np.ndarray,
                       batch_size: int = 256, mesh: Mesh | None = None) -> Any:
    """Apply a jitted ``fn(state, x [B,...]) -> [B, ...]`` (or a pytree of those) over ``images``
    in fixed-size sharded batches; returns numpy arrays with a leading axis ``[N]``.

    The last batch is padded (so one compiled shape serves all) and the padding dropped.
    """
    mesh = data_mesh() if mesh is None else mesh
    n_dev = mesh.devices.size
    batch_size = max(n_dev, (batch_size // n_dev) * n_dev)
    sharding = batch_sharding(mesh)
    state = replicate(state, mesh)
    outs = []
    for start in range(0, len(images), batch_size):
        chunk = np.asarray(images[start:start + batch_size])
        padded, n = pad_batch(chunk, batch_size) if len(chunk) < batch_size else (chunk, len(chunk))
        out = fn(state, jax.device_put(padded, sharding))
        outs.append(jax.tree.map(lambda a: np.asarray(a)[:n], out))
    if not outs:
        raise ValueError("predict_in_batches: no images")
    return jax.tree.map(lambda *a: np.concatenate(a, axis=0), *outs)


def classifier_scores(model: nnx.Module, images: np.ndarray, *, batch_size: int = 256,
                      mesh: Mesh | None = None) -> np.ndarray:
    """Probabilities f(x) = sigmoid(logit) ``[N]`` of a classifier (put in eval mode) on ``images [N,H,W,1]``."""
    model.eval()
    graphdef, state = nnx.split(model)
    return predict_in_batches(make_score_fn(graphdef), state, images, batch_size, mesh)


def predict_classes(classifier: nnx.Module, images: np.ndarray, mesh: Mesh | None = None) -> np.ndarray:
    """The classifier's predicted classes ``[N]`` (int32) of ``images [N,H,W,1]``."""
    return np.asarray(predicted_class(classifier_scores(classifier, images, mesh=mesh)), np.int32)


def _cache_key(config: Any, meta: dict | None, n: int) -> str:
    as_dict = lambda section: section.to_dict() if hasattr(section, "to_dict") else dict(section)
    return json.dumps({"step": None if meta is None else meta.get("step"), "n": int(n),
                       "data": as_dict(config.data), "classifier": as_dict(config.classifier)},
                      sort_keys=True, default=str)


def predicted_classes(config: Any, workdir: str, split: str, classifier: nnx.Module, images: np.ndarray,
                      mesh: Mesh | None = None) -> np.ndarray:
    """The classifier's predicted classes ``[N]`` (int32) of ``split``, cached in ``WORKDIR/classifier``.

    The cache (``predicted_<split>.npz``) is keyed by the best classifier checkpoint's
    step and the data and classifier configs (training is deterministic given those);
    any mismatch recomputes it. Without a best checkpoint nothing is cached.
    """
    clf_dir = model_dir(workdir, CLASSIFIER)
    with CheckpointStore(clf_dir, classifier_fingerprint(config)) as store:
        meta = store.read_meta("best")
    key = _cache_key(config, meta, len(images))
    path = os.path.join(clf_dir, f"predicted_{split}.npz")
    if meta is not None and os.path.exists(path):
        try:
            with np.load(path) as z:
                if str(z["key"]) == key and z["pred"].shape == (len(images),):
                    return z["pred"].astype(np.int32)
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: recompute
    pred = predict_classes(classifier, np.asarray(images, np.float32), mesh)
    if meta is not None:
        buf = io.BytesIO()
        np.savez(buf, pred=pred, key=np.asarray(key))
        write_bytes_atomic(path, buf.getvalue())
    return pred
