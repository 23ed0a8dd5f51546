"""The ``advpath`` command line.

Each sub-command lives in its own module, imported only when it is used, so that
``advpath --help`` stays fast. A command module provides two functions:

* ``add_arguments(parser: argparse.ArgumentParser) -> None``
* ``main(args: argparse.Namespace) -> int | None``

Commands with sub-commands of their own (``bench``, ``data``, ``train``) do the second
level of parsing inside their module.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("advpath_jax.pipeline.run_cli", "data -> classifier -> generators -> maps -> metrics -> report"),
    "data": ("advpath_jax.data.cli", "prepare or show a data set (synth_brain, synth_chest, msd_brain, rsna_pneumonia, folder)"),
    "train": ("advpath_jax.training.cli", "train one model of a config (classifier, cyce, syce, sagen, mgen, translator)"),
    "explain": ("advpath_jax.pipeline.explain_cli", "heat-map overlay for one PNG/NPY/DICOM/NIfTI image"),
    "bench": ("advpath_jax.bench.cli", "benchmarks: 'attribution' (JAX engine) and 'torch' (JAX vs PyTorch/Captum)"),
    "sweep": ("advpath_jax.pipeline.sweep_cli", "score several weight functions F on the paper's metrics"),
}


def _top_level_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="advpath",
        description="Adversarial-path feature-importance explanations (JAX/Flax).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        _top_level_parser().print_help()
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        _top_level_parser().error(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"advpath {name}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    result = module.main(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
