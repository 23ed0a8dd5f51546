"""``advpath bench attribution``: throughput, compile time and peak memory of the engine.

Each row compiles the jitted attribution program ahead of time (``lower().compile()``:
``compile_s``), then times steady-state calls (median of ``--repeats``: ``images_per_s``).
``peak_mem_mb`` is XLA's static memory analysis of the compiled program
(arguments + outputs + temporaries − aliased bytes): deterministic, per device, and
independent of other processes on a shared machine.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

import advpath_jax as ap
from advpath_jax.attribution import core, manifold, methods, weights
from advpath_jax.bench.common import (int_list, machine_description, markdown_table, str_list,
                                      time_call)
from advpath_jax.io_utils import write_json_atomic
from advpath_jax.models import make_resnet
from advpath_jax.models.unet import UNetSpec, make_unet

METHODS = ("efi_v2", "efi_v1", "efi_v2_smooth", "ig", "gradient", "manifold_v2")
# manifold_v2: E_FI^v2 on SyCE's generator-manifold path (two U-Nets, dγ/dλ by jax.jvp)
COLUMNS = ("method", "model", "image_size", "steps", "chunk_size", "batch", "images_per_s",
           "compile_s", "peak_mem_mb")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="resnet18", choices=["resnet18", "resnet34", "resnet50"])
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    parser.add_argument("--channels", type=int, default=1, choices=[1, 3])
    parser.add_argument("--size", type=int, default=64, help="image size (pixels)")
    parser.add_argument("--steps", default="10,50,200", help="comma-separated path point counts M")
    parser.add_argument("--chunk", default="auto", help="path points per chunk, or 'auto'")
    parser.add_argument("--batch", default="4", help="comma-separated batch sizes")
    parser.add_argument("--methods", default="efi_v2", help=f"comma-separated, from {', '.join(METHODS)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")


def method_request(method: str, f, x, x_end, *, steps: int, chunk_size, image_size: int) -> dict:
    """The engine request (see :func:`methods.prepare_program`) for one benchmark method."""
    if method == "efi_v2":
        return methods.path_attribution_request(f, x, x_end, weight="v2", steps=steps, chunk_size=chunk_size)
    if method == "efi_v1":
        return methods.path_attribution_request(f, x, x_end, weight="v1", steps=steps, chunk_size=chunk_size)
    if method == "efi_v2_smooth":
        return methods.path_attribution_request(f, x, x_end, weight="v2", steps=steps, chunk_size=chunk_size,
                                                smoothing=ap.paper_smoothing(image_size))
    if method == "ig":
        return methods.integrated_gradients_request(f, x, steps=steps, chunk_size=chunk_size)
    if method == "gradient":
        return methods.integrated_gradients_request(f, x, rule=(np.zeros(1), np.ones(1)), chunk_size=1)
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def manifold_program(f, x, x_end, *, steps: int, chunk_size, unet_channels: int = 16):
    """SyCE's manifold path (two freshly initialised U-Nets) for the cost comparison."""
    spec = UNetSpec(base_channels=unet_channels, depth=3, in_channels=x.shape[-1], out_channels=x.shape[-1])
    gens = {"G0": make_unet(spec, seed=1), "G1": make_unet(spec, seed=2)}
    decode, z_start, z_end = manifold.syce_latents(gens, x_end, x, 0)  # every image predicted 0
    finish = methods.FinishMap(absolute=True)
    return manifold.prepare_latent_program(
        f, decode, z_start, z_end, methods.WeightedIntegrand(weights.weight_v2), finish, steps=steps,
        rule="midpoint", chunk_size=chunk_size, mesh=None)


def measure_row(method: str, f, x, x_end, *, steps: int, chunk_size, image_size: int,
                repeats: int) -> dict:
    if method == "manifold_v2":
        args, static, batch = manifold_program(f, x, x_end, steps=steps, chunk_size=chunk_size)
    else:
        request = method_request(method, f, x, x_end, steps=steps, chunk_size=chunk_size,
                                 image_size=image_size)
        args, static, batch = methods.prepare_program(**request)
    start = time.perf_counter()
    compiled = core.run_path_program.lower(*args, **static).compile()
    compile_s = time.perf_counter() - start
    mem = compiled.memory_analysis()
    peak = (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
            - mem.alias_size_in_bytes) if mem is not None else float("nan")
    jax.block_until_ready(compiled(*args))  # warm-up
    seconds = time_call(lambda: compiled(*args), repeats)
    return {"method": method, "steps": steps if method != "gradient" else 1,
            "chunk_size": static["chunk_size"], "batch": batch, "images_per_s": batch / seconds,
            "compile_s": compile_s, "peak_mem_mb": peak / 2 ** 20,
            "temp_mem_mb": (mem.temp_size_in_bytes / 2 ** 20) if mem is not None else float("nan")}


def main(args: argparse.Namespace) -> int:
    depth = int(args.model.removeprefix("resnet"))
    chunk = None if args.chunk == "auto" else int(args.chunk)
    method_names = str_list(args.methods)
    for name in method_names:
        if name not in METHODS:
            raise SystemExit(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    model = make_resnet(depth, width=args.width, in_channels=args.channels, seed=args.seed)
    f = ap.score_fn(model)
    rows = []
    plan = [(m, b, s) for m in method_names for b in int_list(args.batch) for s in int_list(args.steps)]
    for method, batch, steps in tqdm(plan, desc="bench attribution", unit="row"):
        key_x, key_a = jax.random.split(jax.random.key(args.seed + batch))
        shape = (batch, args.size, args.size, args.channels)
        x, xa = jax.random.uniform(key_x, shape), jax.random.uniform(key_a, shape)
        row = measure_row(method, f, x, xa, steps=steps, chunk_size=chunk, image_size=args.size,
                          repeats=args.repeats)
        row.update(model=args.model, width=args.width, image_size=args.size)
        rows.append(row)
    print(markdown_table(rows, COLUMNS))
    print("peak_mem_mb: XLA memory analysis of the compiled program (args + outputs + temporaries).")
    by_key = {(r["method"], r["batch"], r["steps"]): r for r in rows}
    for (method, batch, steps), row in by_key.items():
        linear = by_key.get(("efi_v2", batch, steps))
        if method == "manifold_v2" and linear:
            print(f"manifold path vs linear path (batch {batch}, M={steps}): "
                  f"{linear['images_per_s'] / row['images_per_s']:.2f}x the time per image")
    for method in method_names:
        for batch in int_list(args.batch):
            sel = [r for r in rows if r["method"] == method and r["batch"] == batch]
            if len(sel) > 1 and method != "gradient":
                lo, hi = sel[0], sel[-1]
                growth = hi["peak_mem_mb"] / lo["peak_mem_mb"] - 1.0
                print(f"{method} batch {batch}: peak memory M={lo['steps']} -> M={hi['steps']}: "
                      f"{100 * growth:+.1f}%")
    if args.json:
        write_json_atomic(args.json, {"benchmark": "attribution", "machine": machine_description(),
                                      "rows": rows})
        print(f"wrote {args.json}")
    return 0
