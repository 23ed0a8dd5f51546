"""Settings records of trained models: a model is reused only under the settings it was trained with.

Each model directory ``WORKDIR/<model>`` holds ``fingerprint.json``, written before its
training starts::

    {"fingerprint": {...}, "instance": "<random id of this training>"}

The fingerprint holds everything the trained parameters depend on:

* ``seed`` (the config's top-level seed) and ``data`` (the data section, without the
  location fields ``data_dir`` / ``manual_dir``);
* the model's own section (``classifier``, ``generators``, ``mgen`` or ``translator``;
  for one generator kind, without the other kinds' loss weights and epoch counts);
* ``trained_against``: the fingerprint digest and the instance id of each model it was
  trained against (every model but the classifier is trained against the classifier).

Fields that do not change the result (``progress``, ``eval_batch_size``) are left out.
A model trained by an older version (no ``fingerprint.json``) is checked against the
config its training saved (``WORKDIR/<model>/config.json``, :func:`legacy_record`).
Training again (``--retrain``) draws a new instance id, so a model trained against the
previous classifier no longer matches. :func:`check_record` raises an
:class:`~advpath_jax.errors.AdvpathError` naming every differing field.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from typing import Any, Mapping

from advpath_jax.config_utils import jsonable
from advpath_jax.errors import AdvpathError
from advpath_jax.io_utils import read_json, write_json_atomic

RECORD = "fingerprint.json"
MODEL_SECTION = {"classifier": "classifier", "cyce": "generators", "syce": "generators",
                 "sagen": "generators", "mgen": "mgen", "translator": "translator"}
DEPENDS_ON = {"classifier": (), "cyce": ("classifier",), "syce": ("classifier",),
              "sagen": ("classifier",), "mgen": ("classifier",), "translator": ("classifier",)}
NOT_RESULT_FIELDS = ("progress", "eval_batch_size")
LOCATION_FIELDS = ("data_dir", "manual_dir")
GENERATOR_KINDS = ("cyce", "syce", "sagen")


def record_path(workdir: str, model: str) -> str:
    return os.path.join(workdir, model, RECORD)


def _section(config, name: str, drop: tuple[str, ...]) -> dict[str, Any]:
    if name not in config:
        return {}
    section = jsonable(config[name])
    return {k: v for k, v in section.items() if k not in drop}


def model_fingerprint(config, model: str, trained_against: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What ``model``'s parameters depend on; ``trained_against``: ``{model: record}`` of its
    dependencies (their ``fingerprint.json`` contents)."""
    if model not in MODEL_SECTION:
        raise AdvpathError(f"unknown model {model!r}; choose from {', '.join(MODEL_SECTION)}")
    section = MODEL_SECTION[model]
    drop = NOT_RESULT_FIELDS
    if section == "generators":
        others = [k for k in GENERATOR_KINDS if k != model]
        drop = (drop + tuple(f"{k}_weights" for k in others) + tuple(f"{k}_epochs" for k in others)
                + (() if model == "sagen" else ("sagen_class_input",)))
    missing = [d for d in DEPENDS_ON[model] if d not in trained_against]
    if missing:
        raise AdvpathError(f"{model} needs the record of {', '.join(missing)} to be fingerprinted")
    return {
        "model": model,
        "seed": jsonable(config.get("seed")),
        "data": _section(config, "data", NOT_RESULT_FIELDS + LOCATION_FIELDS),
        section: _section(config, section, drop),
        "trained_against": {d: {"digest": digest(trained_against[d]["fingerprint"]),
                                "instance": trained_against[d]["instance"]} for d in DEPENDS_ON[model]},
    }


def digest(fingerprint: Mapping[str, Any]) -> str:
    """A short stable hash of a fingerprint (canonical JSON)."""
    text = json.dumps(jsonable(dict(fingerprint)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_record(workdir: str, model: str) -> dict[str, Any] | None:
    """``WORKDIR/<model>/fingerprint.json``, or None when absent."""
    path = record_path(workdir, model)
    if not os.path.exists(path):
        return None
    record = read_json(path, "the settings record")
    if not isinstance(record, dict) or not {"fingerprint", "instance"} <= set(record):
        raise AdvpathError(f"settings record {path} is not one written by advpath_jax")
    return record


def new_record(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    return {"fingerprint": jsonable(dict(fingerprint)), "instance": uuid.uuid4().hex}


def write_record(workdir: str, model: str, record: Mapping[str, Any]) -> None:
    write_json_atomic(record_path(workdir, model), dict(record))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: value}


def differences(stored: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """``"field: stored -> expected"`` for every dotted field where the two differ."""
    a, b = _flatten(jsonable(dict(stored))), _flatten(jsonable(dict(expected)))
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k, "<absent>") != b.get(k, "<absent>")]


def check_record(record: Mapping[str, Any], expected: Mapping[str, Any], workdir: str, model: str) -> None:
    """Refuse (AdvpathError) when ``record`` was made under other settings than ``expected``.

    A field that only one side has (a config field added or removed by another version of
    advpath_jax, e.g. a new option whose default is the old behaviour) is not a refusal;
    it is named on stderr as taken unchanged."""
    diffs = differences(record["fingerprint"], expected)
    one_sided = [d for d in diffs if "'<absent>'" in d.split(": ", 1)[1]]
    diffs = [d for d in diffs if d not in one_sided]
    if one_sided and not diffs:
        import sys

        print(f"note: {os.path.join(workdir, model)}: fields present on one side only (another version of "
              f"advpath_jax), taken as unchanged: {', '.join(d.split(':', 1)[0] for d in one_sided)}",
              file=sys.stderr)
    if diffs:
        shown = "; ".join(diffs[:8]) + (f"; ... ({len(diffs)} fields in all)" if len(diffs) > 8 else "")
        raise AdvpathError(
            f"{os.path.join(workdir, model)} was trained under other settings (trained -> now asked: {shown}); "
            f"use another --workdir, or `advpath run --retrain {model}` to train it again "
            f"(this also retrains the models trained against it and recomputes the maps)")


def ensure_record(config, workdir: str, model: str) -> dict[str, Any]:
    """Before training ``model`` in ``WORKDIR/<model>`` (``advpath train``): check its record
    against the config (refusing other settings, or checkpoints without a record) or write a
    new one. Returns the record."""
    deps = {}
    for dep in DEPENDS_ON.get(model, ()):
        deps[dep] = read_record(workdir, dep)
        if deps[dep] is None:
            raise AdvpathError(f"{model} is trained against {dep}, but {os.path.join(workdir, dep)} has no "
                               f"settings record ({RECORD}); train {dep} first (advpath train {dep} / advpath run)")
    expected = model_fingerprint(config, model, deps)
    stored = read_record(workdir, model)
    if stored is not None:
        check_record(stored, expected, workdir, model)
        return stored
    if os.path.isdir(os.path.join(workdir, model, "checkpoints")):
        legacy = legacy_record(workdir, model, deps)
        if legacy is None:
            raise AdvpathError(f"{os.path.join(workdir, model)} holds checkpoints without a settings record "
                               f"({RECORD}) or saved config (config.json), so their data and settings cannot "
                               "be checked; use another --workdir")
        check_record(legacy, expected, workdir, model)
        record = {k: legacy[k] for k in ("fingerprint", "instance")}
        write_record(workdir, model, record)
        return record
    record = new_record(expected)
    write_record(workdir, model, record)
    return record


def legacy_record(workdir: str, model: str, trained_against: Mapping[str, Mapping[str, Any]]
                  ) -> dict[str, Any] | None:
    """The record of a model trained by an older version (no ``fingerprint.json``), rebuilt
    from the config its training saved (``WORKDIR/<model>/config.json``); None without one.
    Its instance id is derived from that file, so it is the same on every call."""
    path = os.path.join(workdir, model, "config.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        saved = json.loads(raw)
    except (OSError, ValueError) as err:
        raise AdvpathError(f"cannot read the saved training config {path}: {err}") from err
    if not isinstance(saved, dict):
        raise AdvpathError(f"saved training config {path} is not a JSON object")
    fingerprint = model_fingerprint(saved, model, trained_against)
    return {"fingerprint": fingerprint, "instance": "legacy-" + hashlib.sha256(raw).hexdigest()[:16],
            "rebuilt_from": path}
