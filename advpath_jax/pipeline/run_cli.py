"""``advpath run [--config FILE] [--workdir DIR] [--set key=value ...]``."""

from __future__ import annotations

import argparse

from advpath_jax import distributed
from advpath_jax.config_utils import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None,
                        help="config file or name (default: synth_brain, the embedded synthetic data)")
    parser.add_argument("--workdir", default=None, help="run directory (default: runs/<config name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set eval.steps=20 (repeatable)")
    parser.add_argument("--coordinator", default=None,
                        help="multi-process attribution: coordinator host:port (or $ADVPATH_COORDINATOR)")
    parser.add_argument("--num-processes", type=int, default=None, help="(or $ADVPATH_NUM_PROCESSES)")
    parser.add_argument("--process-id", type=int, default=None, help="(or $ADVPATH_PROCESS_ID)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated subset of the explainers (default: all of Table 1 + Random)")
    parser.add_argument("--retrain", default=None, metavar="MODEL[,MODEL...]",
                        help="train these models again although finished (e.g. after changing their "
                             "settings); the models trained against them and the maps are redone too")
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit status 2) when a model is under its quality bar (classifier AUC, "
                             "generator flip/keep rates, ...) instead of warning and going on")
    parser.add_argument("--train-workers", type=int, default=None, metavar="N",
                        help="models trained at the same time, one process each (default: 2 on a CPU with "
                             "2+ cores, 1 on an accelerator); 1: one after the other in this process")


def main(args: argparse.Namespace) -> int:
    distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    # imported after jax.distributed.initialize: the pipeline's modules may touch the devices
    from advpath_jax.explain.registry import parse_method_list
    from advpath_jax.pipeline.run import run

    config = load_config(args.config, args.overrides)
    workdir = args.workdir or f"runs/{config.name}"
    methods = parse_method_list(args.methods) if args.methods else None
    retrain = [m.strip() for m in args.retrain.split(",") if m.strip()] if args.retrain else []
    run(config, workdir, methods=methods, retrain=retrain, strict=args.strict, train_workers=args.train_workers)
    return 0
