"""``advpath sweep --weights v1,v2,sq,"expr:jnp.abs(g)*d**2" [--config] [--workdir]``."""

from __future__ import annotations

import argparse

from advpath_jax.config_utils import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True,
                        help="comma-separated weight functions: registered names (v1, v2, grad, sq, relu), "
                             "'expr:<expression in g, d, jnp>' or 'module:function'")
    parser.add_argument("--config", default=None, help="config file or name (default: synth_brain)")
    parser.add_argument("--workdir", default=None, help="run directory (default: runs/<config name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--generator", default="syce", choices=["cyce", "syce"])
    parser.add_argument("--no-smooth", action="store_true", help="skip the kσ-smoothed variant of each F")


def split_weights(text: str) -> list[str]:
    """Split on commas that are not inside brackets (expressions may contain commas)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return [p for p in parts if p]


def main(args: argparse.Namespace) -> int:
    from advpath_jax.pipeline.sweep import run_sweep  # the pipeline loads when the command runs, not for --help

    config = load_config(args.config, args.overrides)
    run_sweep(config, args.workdir or f"runs/{config.name}", split_weights(args.weights),
              kind=args.generator, smooth=not args.no_smooth)
    return 0
