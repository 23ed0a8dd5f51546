"""``advpath bench {attribution,torch,suite} ...``: dispatch to the benchmark modules."""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "attribution": ("advpath_jax.bench.attribution", "JAX engine: images/s, compile time, peak memory"),
    "torch": ("advpath_jax.bench.torch_bench", "JAX vs PyTorch (hand-written loop, torch.func, Captum)"),
    "suite": ("advpath_jax.bench.suite", "ResNet-50 224 px M=50 rows at fp32/TF32/bf16 vs PyTorch, FLOP utilisation"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, (module_name, help_text) in BENCHMARKS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_bench_module=module_name)
        importlib.import_module(module_name).add_arguments(sub_parser)


def main(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args._bench_module).main(args) or 0)
