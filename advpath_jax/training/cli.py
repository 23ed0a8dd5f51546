"""``advpath train MODEL --config FILE --workdir DIR [--set key=value ...]``.

MODEL is one of classifier, cyce, syce, sagen, mgen, translator. DIR is the run
directory: each model lives in ``DIR/MODEL``; generators, MGen and the translator need
``DIR/classifier`` trained first. Running the same command again resumes from the
latest checkpoint (or does nothing more when training is complete).
"""

from __future__ import annotations

import argparse
import sys

from advpath_jax.config_utils import load_config
from advpath_jax.training import classifier, generators, mgen, translator
from advpath_jax.training.stage_record import ensure_record
from advpath_jax.training.trainer import NonFiniteLossError

MODELS = ("classifier", "cyce", "syce", "sagen", "mgen", "translator")  # in training order


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", choices=MODELS, help="which model to train")
    parser.add_argument("--config", default="synth_brain",
                        help="config file or name (default: synth_brain)")
    parser.add_argument("--workdir", required=True, help="run directory (models go to WORKDIR/MODEL)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set classifier.epochs=3 (repeatable)")


def train(model: str, config, workdir: str):
    """Dispatch to the training function of ``model``; returns its summary dict."""
    if model == "classifier":
        return classifier.train_classifier(config, workdir)
    if model in ("cyce", "syce", "sagen"):
        return generators.train_generators(config, workdir, model)
    if model == "mgen":
        return mgen.train_mgen(config, workdir)
    if model == "translator":
        return translator.train_translator(config, workdir)
    raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")


def main(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, args.overrides)
        ensure_record(config, args.workdir, args.model)  # same settings as any earlier training here
        summary = train(args.model, config, args.workdir)
    except NonFiniteLossError as err:  # other errors: one line, exit 2 (advpath_jax.cli)
        print(f"error: {err}", file=sys.stderr)
        return 3
    if summary:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items())
        print(f"[{args.model}] done: {shown}")
    return 0
