"""``advpath view WORKDIR [--out DIR] [--serve [--port N]]``: the map explorer of a finished run."""

from __future__ import annotations

import argparse
import os
import sys

from advpath_jax.view.serve import serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workdir", help="work directory of a finished `advpath run`")
    parser.add_argument("--out", default=None, help="output folder (default: WORKDIR/explorer)")
    parser.add_argument("--serve", action="store_true",
                        help="after building, serve the explorer on 127.0.0.1 and print the address")
    parser.add_argument("--port", type=int, default=8000, help="port of --serve (default 8000; 0: any free port)")


def main(args: argparse.Namespace) -> int:
    # the models and the data load when the command runs, not for ``advpath view --help``
    from advpath_jax.view.build import ExplorerInputError, build_explorer

    if args.port and not (0 <= args.port <= 65535):
        print(f"error: --port must be in 0..65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        summary = build_explorer(args.workdir, args.out)
    except ExplorerInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for text in summary["missing"]:
        print(f"[view] missing: {text}")
    print(f"[view] explorer of {summary['n_images']} images x {len(summary['methods'])} methods "
          f"written in {summary['seconds']:.1f} s: {summary['index']}")
    if args.serve:
        serve(os.path.dirname(summary["index"]), args.port)
    return 0
