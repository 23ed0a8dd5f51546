"""Loading ml_collections configs from Python files, with ``key=value`` overrides.

A config file defines ``get_config() -> ml_collections.ConfigDict``. A config may be
named by path (``configs/synth_chest.py``) or by bare name (``synth_chest``), which is
looked up in ``./configs`` and then in the ``configs/`` folder beside the package. A config
file imports only ``ml_collections`` and the ``common.py`` beside it (plain data: reading a
config loads neither JAX nor this package).

:func:`jsonable` and :func:`fingerprint_of` turn config sections into plain JSON values
(the checkpoint fingerprints and the settings records compare those).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import pathlib
import sys
from typing import Any, Iterator, Mapping, Sequence

import ml_collections

PACKAGE_ROOT = pathlib.Path(__file__).resolve().parent
DEFAULT_CONFIG = "synth_brain"


def config_search_dirs() -> list[pathlib.Path]:
    return [pathlib.Path.cwd() / "configs", PACKAGE_ROOT.parent / "configs"]


def resolve_config_path(path_or_name: str | None) -> pathlib.Path:
    """Path of a config file given its path or bare name (default: the synthetic brain)."""
    name = DEFAULT_CONFIG if path_or_name is None else str(path_or_name)
    candidate = pathlib.Path(name)
    if candidate.suffix == ".py" or candidate.exists():
        if not candidate.is_file():
            raise FileNotFoundError(f"config file not found: {candidate}")
        return candidate.resolve()
    for folder in config_search_dirs():
        path = folder / f"{name}.py"
        if path.is_file():
            return path.resolve()
    searched = ", ".join(str(d) for d in config_search_dirs())
    raise FileNotFoundError(f"no config named {name!r} (looked in {searched})")


def load_config(path_or_name: str | None = None,
                overrides: list[str] | None = None) -> ml_collections.ConfigDict:
    """Load ``get_config()`` from a file and apply ``section.key=value`` overrides."""
    path = resolve_config_path(path_or_name)
    spec = importlib.util.spec_from_file_location(f"advpath_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    with config_folder_importable(path.parent):
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # a broken config file: say which
            raise ValueError(f"could not execute config file {path}: {err}") from err
        if not hasattr(module, "get_config"):
            raise ValueError(f"config file {path} defines no get_config()")
        config = module.get_config()
    apply_overrides(config, overrides or [])
    return config


@contextlib.contextmanager
def config_folder_importable(folder: pathlib.Path) -> Iterator[None]:
    """Let a config file ``import common`` (and its other siblings) from its own folder.

    The folder is first on ``sys.path`` meanwhile; modules of the same names imported before
    are set aside and restored after, and the siblings imported meanwhile are forgotten, so two
    config folders with their own ``common.py`` never see each other's."""
    siblings = {p.stem for p in folder.glob("*.py")}
    set_aside = {name: sys.modules.pop(name) for name in siblings if name in sys.modules}
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in siblings:
            sys.modules.pop(name, None)
        sys.modules.update(set_aside)


def parse_value(text: str):
    """Python literal if it parses as one (numbers, tuples, True/None), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]) -> None:
    """Apply ``a.b.c=value`` assignments in place; unknown keys are an error."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        dotted, raw = item.split("=", 1)
        *parents, leaf = dotted.strip().split(".")
        node = config
        for part in parents:
            if part not in node:
                raise ValueError(f"override {item!r}: no config section {part!r}")
            node = node[part]
        if leaf not in node:
            raise ValueError(f"override {item!r}: no config field {dotted!r}")
        value = parse_value(raw)
        current = node[leaf]
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        try:
            node[leaf] = value
        except TypeError as err:
            raise ValueError(f"override {item!r}: {err}") from err


def jsonable(value: Any) -> Any:
    """Config values -> plain JSON values (tuples become lists, ConfigDicts and mappings sorted dicts)."""
    if isinstance(value, Mapping) or hasattr(value, "to_dict"):
        items = value.to_dict().items() if hasattr(value, "to_dict") else value.items()
        return {str(k): jsonable(v) for k, v in sorted(items)}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return str(value)


def fingerprint_of(section: Any, fields: Sequence[str]) -> dict[str, Any]:
    """The named fields of a config section as a JSON-able dict (missing fields -> None)."""
    get = section.get if hasattr(section, "get") else lambda name: getattr(section, name, None)
    return {name: jsonable(get(name)) for name in fields}
