"""The checkpoint store (Orbax), shared by every trained model: the bottom of :mod:`advpath_jax.store`.

Layout of a model's work directory::

    WORKDIR/
      checkpoints/latest/<step>/   the most recent state (resume after an interruption)
      checkpoints/best/<step>/     the state with the best validation metric (inference)
      metrics.jsonl                one JSON object per epoch (written by the trainer)

Each checkpoint holds two Orbax items:

* ``state``: the pytree ``{"models": {name: nnx.State}, "opt": {name: optax state}}``;
* ``meta``: JSON, with ``fingerprint`` (the architecture fields of the config that fix
  the parameter shapes and meaning) and the trainer's bookkeeping (epoch, step,
  best metric so far, ...; the learning-rate schedule's state is part of ``opt``).

Orbax writes to a temporary directory and renames it when complete, so a checkpoint
is either whole or absent; an interrupted save never damages the previous one.

Before any array is restored the stored fingerprint is compared with the expected one;
a checkpoint trained under another configuration is refused with a ``ValueError``
naming the directory and every mismatching field.

Typical use::

    store = CheckpointStore(workdir, fingerprint={"depth": 18, "width": 0.25})
    store.save("latest", step, state, meta)
    restored = store.restore("latest", abstract_state)   # None when there is none
    models = load_models(workdir, build_fn, fingerprint)   # inference: {name: module}

Loading each trained model of a run by name is :mod:`advpath_jax.store.models`.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import jax
import orbax.checkpoint as ocp
from flax import nnx

from advpath_jax.config_utils import fingerprint_of, jsonable  # noqa: F401  (fingerprint_of: part of this API)

KINDS = ("latest", "best")


def model_dir(workdir: str, name: str) -> str:
    """Directory of one model inside a run directory: ``WORKDIR/<name>``.

    Every training entry point (``train_classifier(config, workdir)``,
    ``train_generators(config, workdir, kind)``, ...) takes the *run* directory and
    keeps its model in ``WORKDIR/<name>`` (``classifier``, ``cyce``, ``syce``, ``sagen``,
    ``mgen``, ``translator``), so later models find the classifier in ``WORKDIR/classifier``.
    """
    return os.path.join(workdir, name)


def check_fingerprint(expected: Mapping[str, Any], found: Mapping[str, Any], directory: str) -> None:
    """Raise ``ValueError`` naming ``directory`` and each field where the two differ."""
    expected, found = jsonable(dict(expected)), jsonable(dict(found))
    diffs = [f"{k}: checkpoint has {found.get(k, '<absent>')!r}, config asks {expected.get(k, '<absent>')!r}"
             for k in sorted(set(expected) | set(found)) if expected.get(k) != found.get(k)]
    if diffs:
        raise ValueError(
            f"checkpoint in {directory} was trained with another configuration; "
            f"mismatching fields: {'; '.join(diffs)}. Use another --workdir or the matching config.")


class CheckpointStore:
    """Latest + best checkpoints of one model, guarded by a config fingerprint.

    Args:
      workdir: the model's work directory (created if needed).
      fingerprint: JSON-able dict of the architecture fields; stored with every
        checkpoint and checked on every restore.
      max_to_keep: how many checkpoints each of ``latest`` / ``best`` keeps (default 1).
    """

    def __init__(self, workdir: str, fingerprint: Mapping[str, Any], *, max_to_keep: int = 1):
        self.workdir = os.path.abspath(workdir)
        self.fingerprint = jsonable(dict(fingerprint))
        self._max_to_keep = max_to_keep
        self._managers: dict[str, ocp.CheckpointManager] = {}

    def directory(self, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"checkpoint kind must be one of {KINDS}, got {kind!r}")
        return os.path.join(self.workdir, "checkpoints", kind)

    def _manager(self, kind: str, create: bool) -> ocp.CheckpointManager | None:
        if kind in self._managers:
            return self._managers[kind]
        path = self.directory(kind)
        if not create and not os.path.isdir(path):
            return None
        options = ocp.CheckpointManagerOptions(max_to_keep=self._max_to_keep, create=create)
        manager = ocp.CheckpointManager(path, options=options, item_names=("state", "meta"))
        self._managers[kind] = manager
        return manager

    def latest_step(self, kind: str = "latest") -> int | None:
        """Step number of the newest checkpoint of ``kind``, or None when there is none."""
        manager = self._manager(kind, create=False)
        return None if manager is None else manager.latest_step()

    def save(self, kind: str, step: int, state: Any, meta: Mapping[str, Any]) -> None:
        """Write ``state`` (pytree of arrays) and ``meta`` (JSON) as checkpoint ``step`` of ``kind``.

        Blocks until the checkpoint is complete on disk (so a crash right after this
        call cannot leave it half written).
        """
        manager = self._manager(kind, create=True)
        meta = dict(jsonable(dict(meta)), fingerprint=self.fingerprint, step=int(step))
        manager.save(int(step), args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)
        manager.wait_until_finished()

    def read_meta(self, kind: str = "latest", step: int | None = None) -> dict[str, Any] | None:
        """The JSON metadata of a checkpoint (fingerprint checked), or None when there is none."""
        manager = self._manager(kind, create=False)
        if manager is None:
            return None
        step = manager.latest_step() if step is None else step
        if step is None:
            return None
        where = os.path.join(self.directory(kind), str(step))
        try:
            meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as exc:  # corrupt or foreign directory
            raise ValueError(f"cannot read checkpoint metadata in {where}: {exc}") from exc
        if not isinstance(meta, dict) or "fingerprint" not in meta:
            raise ValueError(f"checkpoint in {where} has no config fingerprint; it was not written by advpath_jax")
        check_fingerprint(self.fingerprint, meta["fingerprint"], where)
        return meta

    def restore(self, kind: str, abstract_state: Any, step: int | None = None
                ) -> tuple[Any, dict[str, Any]] | None:
        """Restore ``(state, meta)`` of ``kind`` (newest step unless given); None if absent.

        ``abstract_state`` is the target structure: a pytree of arrays or
        ``jax.ShapeDtypeStruct`` (with ``sharding`` to place the result), e.g.
        ``jax.eval_shape(init_fn)``. Refuses checkpoints of another config.
        """
        meta = self.read_meta(kind, step)
        if meta is None:
            return None
        manager = self._managers[kind]
        step = int(meta["step"])
        abstract = jax.tree.map(_as_abstract, abstract_state)
        where = os.path.join(self.directory(kind), str(step))
        try:
            restored = manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract)))
        except Exception as exc:
            raise ValueError(f"cannot restore checkpoint in {where}: {exc}") from exc
        return restored["state"], meta

    def close(self) -> None:
        for manager in self._managers.values():
            manager.close()
        self._managers.clear()

    def __enter__(self) -> "CheckpointStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _as_abstract(x: Any) -> Any:
    """The restore target of one array: its shape, dtype and sharding (the first local
    device when it has none, e.g. a model built with ``nnx.eval_shape``)."""
    sharding = getattr(x, "sharding", None)
    if sharding is None:
        sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)


def load_models(workdir: str, build: Callable[[], Mapping[str, nnx.Module]],
                fingerprint: Mapping[str, Any], *, which: str = "best") -> dict[str, nnx.Module]:
    """Load trained models for inference.

    Args:
      workdir: the model's work directory (the one given to training).
      build: returns freshly built modules ``{name: module}`` with the same names as in
        training (e.g. ``{"classifier": ResNet}`` or ``{"G0": ..., "G1": ...}``).
      fingerprint: the architecture fields expected (checked against the checkpoint).
      which: ``"best"`` (default) or ``"latest"``.

    Returns the modules with restored parameters and statistics, in eval mode.
    Raises FileNotFoundError when ``workdir`` holds no checkpoint of that kind and
    ValueError when it holds one from another configuration.
    """
    store = CheckpointStore(workdir, fingerprint)
    try:
        meta = store.read_meta(which)
        if meta is None:
            raise FileNotFoundError(f"no {which!r} checkpoint in {store.directory(which)}; train the model first")
        modules = dict(build())
        graphdefs, states = {}, {}
        for name, module in modules.items():
            graphdefs[name], states[name] = nnx.split(module)
        manager = store._managers[which]
        item_path = os.path.join(store.directory(which), str(meta["step"]), "state")
        # Restore only the models' subtree (optimizer state is not needed for inference).
        abstract = jax.tree.map(_as_abstract, {"models": states})
        restore_args = ocp.checkpoint_utils.construct_restore_args(abstract)  # shardings of the target
        try:
            restored = manager.restore(int(meta["step"]), args=ocp.args.Composite(
                state=ocp.args.PyTreeRestore(item=abstract, partial_restore=True, restore_args=restore_args)))["state"]
        except Exception as exc:
            raise ValueError(f"cannot restore models from {item_path}: {exc}") from exc
        out = {}
        for name in modules:
            model = nnx.merge(graphdefs[name], restored["models"][name])
            model.eval()
            out[name] = model
        return out
    finally:
        store.close()
