"""The ``advpath`` command line.

Each sub-command lives in its own module, imported only when it is used, so that
``advpath --help`` stays fast. A command module provides two functions:

* ``add_arguments(parser: argparse.ArgumentParser) -> None``
* ``main(args: argparse.Namespace) -> int | None``

Commands with sub-commands of their own (``bench``, ``data``, ``train``) do the second
level of parsing inside their module.

Errors: an expected problem (:data:`advpath_jax.errors.EXPECTED_ERRORS`: a missing or
damaged file, a bad ``--set`` value, a refused work directory, ...) is printed as one line
``error: <message>`` on stderr with exit status 2; anything else is a bug, reported in one
line with exit status 1 (``--debug`` anywhere on the command line shows the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from advpath_jax.compile_cache import enable_compile_cache
from advpath_jax.errors import EXPECTED_ERRORS, one_line

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("advpath_jax.pipeline.run_cli", "data -> classifier -> generators -> maps -> metrics -> report"),
    "data": ("advpath_jax.data.cli", "prepare or show a data set (synth_brain, synth_chest, msd_brain, rsna_pneumonia, folder)"),
    "train": ("advpath_jax.training.cli", "train one model of a config (classifier, cyce, syce, sagen, mgen, translator)"),
    "explain": ("advpath_jax.pipeline.explain_cli", "heat-map overlay for one PNG/NPY/DICOM/NIfTI image"),
    "bench": ("advpath_jax.bench.cli", "benchmarks: 'attribution' (JAX engine) and 'torch' (JAX vs PyTorch/Captum)"),
    "sweep": ("advpath_jax.pipeline.sweep_cli", "score several weight functions F on the paper's metrics"),
    "import-classifier": ("advpath_jax.pipeline.import_classifier",
                          "make a classifier trained elsewhere (torchvision/twin state_dict) the run's classifier"),
    "view": ("advpath_jax.view.cli", "map explorer of a finished run in the browser (static HTML; --serve)"),
}
# Commands whose compiled programs are kept on disk (advpath_jax/compile_cache.py); the
# benchmarks compile afresh, since they report compile times.
COMPILE_CACHED = ("run", "train", "explain", "sweep", "import-classifier")


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
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        return _dispatch(argv)
    except KeyboardInterrupt:
        print("advpath: interrupted", file=sys.stderr)
        return 130
    except SystemExit as done:  # argparse's usage errors (exit 2) and --help (exit 0)
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except Exception as err:  # the one handler of the command line
        return _report_error(err, argv, debug)


def _report_error(err: Exception, argv: list[str], debug: bool) -> int:
    """Print ``err`` in the project's style; the exit status (2 expected, 1 a bug)."""
    if debug:
        raise err
    if isinstance(err, EXPECTED_ERRORS):
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    command = f"advpath {argv[0]}" if argv else "advpath"
    print(f"{command}: internal error (a bug, please report it): {type(err).__name__}: {one_line(err)}; "
          "rerun with --debug to see the traceback", file=sys.stderr)
    return 1


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        _top_level_parser().print_help()
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        _top_level_parser().error(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    module_name, help_text = COMMANDS[name]
    if name in COMPILE_CACHED and not any(a in ("-h", "--help") for a in rest):
        enable_compile_cache()
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"advpath {name}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    result = module.main(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
