"""``advpath bench suite``: the paper-size rows of ``advpath bench torch`` at every precision.

One command runs, for each precision (GPU: fp32 with TF32 off, TF32, bf16; CPU: fp32,
bf16), the ResNet-50 224 px M = 50 rows of E_FI^v2, E_FI,kσ^v2 and IG in JAX against the
PyTorch loop and Captum (:mod:`advpath_jax.bench.torch_bench`, rows in one process per
precision to fit the time budget: no peak memory), and prints one summary with JAX's
speed-up and FLOP utilisation against the chip's peak (:mod:`advpath_jax.bench.peaks`) or,
on CPU, against the fp32 matmul rate measured in the same run. ``--model tiny`` is a
ResNet-18 ×0.125 at 32 px with M = 4, to test the command on a CPU in seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from advpath_jax.bench import common, torch_bench
from advpath_jax.io_utils import read_json, write_json_atomic

#: ``--model`` presets: torch_bench options
PRESETS = {
    "resnet50": ["--model", "resnet50", "--size", "224", "--steps", "50"],
    "tiny": ["--model", "resnet18", "--width", "0.125", "--size", "32", "--steps", "4"],
}
DEFAULT_PRECISIONS = {"gpu": "fp32,tf32,bf16", "cpu": "fp32,bf16"}
BUDGET_S = 480.0
SUMMARY_COLUMNS = ("precision", "method", "batch", "jax_images_per_s", "loop_images_per_s",
                   "captum_images_per_s", "jax_vs_loop", "jax_vs_captum", "jax_tflops",
                   "jax_pct_of_peak", "loop_pct_of_peak", "max_rel_diff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=torch_bench.DEVICES, default="gpu")
    parser.add_argument("--model", choices=sorted(PRESETS), default="resnet50",
                        help="resnet50: the paper size (224 px, M = 50); tiny: a CPU smoke test")
    parser.add_argument("--precisions", default=None,
                        help="comma-separated subset of fp32,tf32,bf16 (default: all the device has)")
    parser.add_argument("--methods", default="efi_v2,efi_v2_smooth,ig")
    parser.add_argument("--impls", default="loop,captum", help="PyTorch implementations to compare")
    parser.add_argument("--batch", default=None, help="batch sizes (default: 8 on GPU, 1 on CPU)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", dest="json_path", required=True, help="write every row and the summary here")


def _precisions(args) -> list[str]:
    values = common.str_list(args.precisions or DEFAULT_PRECISIONS[args.device])
    bad = [p for p in values if p not in torch_bench.PRECISIONS]
    if not values or bad:
        raise ValueError(f"--precisions: choose from {', '.join(torch_bench.PRECISIONS)}; got {args.precisions!r}")
    if args.device != "gpu" and "tf32" in values:
        raise ValueError("--precisions: tf32 exists on GPUs only")
    return values


def _bench_args(args, precision: str, json_path: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    torch_bench.add_arguments(parser)
    batch = args.batch or ("8" if args.device == "gpu" else "1")
    return parser.parse_args([*PRESETS[args.model], "--device", args.device, "--precision", precision,
                              "--methods", args.methods, "--impls", args.impls, "--batch", batch,
                              "--repeats", str(args.repeats), "--isolation", "none",
                              "--json", json_path])


def summarize(rows: list[dict]) -> list[dict]:
    """One line per (precision, method, batch): JAX vs the loop and Captum, FLOP shares."""
    out = []
    for r in rows:
        if r["framework"] != "jax" or r.get("error"):
            continue
        others = {o["impl"]: o for o in rows if o["framework"] == "torch" and not o.get("error")
                  and (o["precision"], o["method"], o["batch"]) == (r["precision"], r["method"], r["batch"])}
        loop, captum = others.get("loop", {}), others.get("captum", {})
        share = "pct_of_peak" if r.get("pct_of_peak") is not None else "pct_matmul"
        out.append({"precision": r["precision"], "method": r["method"], "batch": r["batch"],
                    "jax_images_per_s": r.get("images_per_s"),
                    "loop_images_per_s": loop.get("images_per_s"),
                    "captum_images_per_s": captum.get("images_per_s"),
                    "jax_vs_loop": loop.get("ratio_vs_jax"), "jax_vs_captum": captum.get("ratio_vs_jax"),
                    "jax_tflops": r.get("achieved_tflops"), "jax_pct_of_peak": r.get(share),
                    "loop_pct_of_peak": loop.get(share),
                    "max_rel_diff": max([o["max_rel_diff"] for o in others.values()
                                         if o.get("max_rel_diff") is not None], default=None),
                    "share_of": "chip peak" if share == "pct_of_peak" else "measured fp32 matmul"})
    return out


def main(args: argparse.Namespace) -> int:
    precisions = _precisions(args)
    start = time.perf_counter()
    rows, metas, failed = [], {}, 0
    with tempfile.TemporaryDirectory(prefix="advpath_suite_") as tmp:
        for precision in precisions:
            path = os.path.join(tmp, f"{precision}.json")
            print(f"[suite] {args.model} {args.device} {precision}", file=sys.stderr, flush=True)
            failed += torch_bench.main(_bench_args(args, precision, path)) != 0
            report = read_json(path, "benchmark report")
            rows += report["rows"]
            metas[precision] = report["meta"]
    seconds = time.perf_counter() - start
    summary = summarize(rows)
    print(f"\nsuite summary ({args.model}, {args.device}; share of: "
          f"{summary[0]['share_of'] if summary else '-'}; {seconds:.0f} s):\n")
    print(common.markdown_table(summary, SUMMARY_COLUMNS))
    if args.device == "gpu" and seconds > BUDGET_S:
        print(f"warning: the suite took {seconds:.0f} s, over its {BUDGET_S:.0f} s budget", file=sys.stderr)
    write_json_atomic(args.json_path, {"benchmark": "suite", "model": args.model, "device": args.device,
                                       "seconds": seconds, "summary": summary, "meta": metas, "rows": rows})
    print(f"wrote {args.json_path}")
    return 1 if failed else 0
