"""``advpath bench torch``: the JAX engine against PyTorch and Captum on the same work.

One run measures, interleaved (for each batch size, for each method: JAX, then each
PyTorch implementation), the same maps on the same inputs with the same weights:

* the model: a seeded Flax ResNet whose BatchNorm statistics are calibrated on a batch of
  synthetic images (so scores are not saturated), converted to the PyTorch twin;
* JAX: :func:`advpath_jax.path_attribution` (E_FI^v2, optionally smoothed) or
  :func:`advpath_jax.integrated_gradients` on :func:`advpath_jax.score_fn`;
* PyTorch: :mod:`advpath_jax.torch_twin.attribution` (``loop``, ``vmap``, ``captum``).

Every row runs in a fresh Python process (``--isolation subprocess``, the default) so that
its peak memory is its own: on CPU the peak resident set size (Linux ``VmHWM``, reset
through ``/proc/self/clear_refs`` once the model and inputs are loaded) minus the RSS at
that moment; on GPU the peak device memory (``memory_stats()['peak_bytes_in_use']`` for
JAX, ``torch.cuda.max_memory_allocated()`` for PyTorch) minus the memory in use then.
Speed: the first call (for JAX: tracing and XLA compilation plus one run, with the
compilation time itself read from ``jax.monitoring``) and ``--warmup`` calls in all are
untimed; images/s is the batch size over the median of ``--repeats`` timed calls.
``ratio_vs_jax`` is the JAX row's images/s over the row's; ``max_rel_diff`` is
``max |map - map_jax| / max |map_jax|``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

import advpath_jax as ap
from advpath_jax.attribution.core import default_chunk_size
from advpath_jax.attribution.smoothing import paper_smoothing
from advpath_jax.bench import common
from advpath_jax.bench.common import int_list, str_list
from advpath_jax.bench.peaks import known_peak
from advpath_jax.io_utils import read_json, write_bytes_atomic, write_json_atomic
from advpath_jax.models.resnet import ResNetSpec, make_resnet

MODELS = {"resnet18": 18, "resnet34": 34, "resnet50": 50}
METHODS = ("efi_v2", "efi_v2_smooth", "ig")
IMPLS = ("jax", "loop", "vmap", "captum")
PRECISIONS = ("fp32", "tf32", "bf16")
DEVICES = ("cpu", "gpu")
CALIBRATION_IMAGES = 8
MB = 1024.0 * 1024.0
TABLE_COLUMNS = ("framework", "impl", "method", "batch", "steps", "images_per_s", "compile_s",
                 "first_call_s", "peak_mem_mb", "ratio_vs_jax", "max_rel_diff", "images_per_cpu_s",
                 "gflops", "pct_matmul", "pct_of_peak")


# ---------------------------------------------------------------------------- arguments


def _int_list(text: str) -> list[int]:
    try:
        return int_list(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _choice_list(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = str_list(text)
        bad = [v for v in values if v not in choices]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}; got {text!r}")
        return values
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``advpath bench torch``."""
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=1, help="image channels")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=50, help="M, path points")
    parser.add_argument("--batch", type=_int_list, default=[1, 4, 8], help="batch sizes, e.g. 1,4,8")
    parser.add_argument("--methods", type=_choice_list(METHODS), default=list(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--impls", type=_choice_list(IMPLS), default=list(IMPLS),
                        help=f"comma-separated subset of {','.join(IMPLS)} (jax is always run)")
    parser.add_argument("--chunk", type=int, default=None,
                        help="path points per model call for every implementation "
                             "(default: the engine's, about 64 images in flight)")
    parser.add_argument("--device", choices=DEVICES, default="cpu")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32 (full precision), tf32 (GPU only), bf16 (network in bfloat16, "
                             "path and sums in float32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per row (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per row (>= 1)")
    parser.add_argument("--memory-steps", type=_int_list, default=None,
                        help="also measure peak memory against M at these step counts "
                             "(method efi_v2, the first batch size, one call per row)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="PyTorch intra-op threads (default: all cores, as XLA uses)")
    parser.add_argument("--isolation", choices=("subprocess", "none"), default="subprocess",
                        help="run each row in a fresh process (needed for peak memory)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak TFLOP/s at the chosen precision, to report %% of peak")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_path", default=None, help="write rows to this JSON file")
    parser.add_argument("--markdown", default=None, help="also write the tables to this Markdown file")


def _validate(args: argparse.Namespace) -> None:
    if args.size < 32:
        raise ValueError(f"--size must be at least 32, got {args.size}")
    if args.width <= 0:
        raise ValueError(f"--width must be positive, got {args.width}")
    if args.steps < 2:
        raise ValueError(f"--steps must be at least 2 (Captum's Riemann rules), got {args.steps}")
    if args.repeats < 1 or args.warmup < 1:
        raise ValueError("--repeats and --warmup must be at least 1")
    if args.chunk is not None and args.chunk < 1:
        raise ValueError(f"--chunk must be positive, got {args.chunk}")
    if args.precision == "tf32" and args.device != "gpu":
        raise ValueError("--precision tf32 exists on GPUs only")
    if args.threads is None or args.threads < 1:
        raise ValueError(f"--threads must be positive, got {args.threads}")
    if args.memory_steps and min(args.memory_steps) < 2:
        raise ValueError("--memory-steps values must be at least 2")


# ---------------------------------------------------------------------------- shared inputs


def smooth_images(rng: np.random.Generator, n: int, size: int, channels: int) -> np.ndarray:
    """Deterministic smooth random images ``[n, size, size, channels]`` in [0, 1]."""
    from scipy import ndimage

    coarse = rng.uniform(size=(n, max(2, size // 8), max(2, size // 8), channels))
    zoom = (1, size / coarse.shape[1], size / coarse.shape[2], 1)
    images = ndimage.zoom(coarse, zoom, order=1)[:, :size, :size]
    return np.clip(images, 0.0, 1.0).astype(np.float32)


def benchmark_inputs(seed: int, n: int, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Images x and stand-in adversaries x_a (x plus a smooth perturbation), ``[n,H,W,C]``."""
    rng = np.random.default_rng(seed)
    x = smooth_images(rng, n, size, channels)
    bump = smooth_images(rng, n, size, channels) - 0.5
    return x, np.clip(x + 0.6 * bump, 0.0, 1.0).astype(np.float32)


def benchmark_model(depth: int, width: float, channels: int, size: int, seed: int):
    """A seeded Flax ResNet (eval mode) whose BatchNorm statistics are those of a batch of
    synthetic images and whose output bias centres that batch's logits on 0."""
    import jax.numpy as jnp
    from flax import nnx

    model = make_resnet(depth, width=width, in_channels=channels, seed=seed)
    calib, _ = benchmark_inputs(seed + 1000, CALIBRATION_IMAGES, size, channels)
    norms = [node for _, node in nnx.iter_graph(model) if isinstance(node, nnx.BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.momentum = 0.0  # running statistics := this batch's statistics
    model.train()
    model.features(jnp.asarray(calib))
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
    model.eval()
    logits = model(jnp.asarray(calib))
    model.fc2.bias[...] = model.fc2.bias[...] - jnp.mean(logits)
    return model


def _flax_arrays(model) -> dict[str, np.ndarray]:
    from flax import nnx

    flat = nnx.to_flat_state(nnx.state(model, (nnx.Param, nnx.BatchStat)))
    return {"/".join(map(str, path)): np.asarray(var.get_value()) for path, var in flat}


def _load_flax_arrays(model, arrays: dict[str, np.ndarray]) -> None:
    import jax.numpy as jnp
    from flax import nnx

    flat = nnx.to_flat_state(nnx.state(model, (nnx.Param, nnx.BatchStat)))
    names = {"/".join(map(str, path)) for path, _ in flat}
    if names != set(arrays):
        raise ValueError("benchmark weights do not match the model's parameters")
    for path, var in flat:
        var.set_value(jnp.asarray(arrays["/".join(map(str, path))]))


def prepare(args: argparse.Namespace, work: str) -> dict[str, Any]:
    """Write the shared weights (Flax and converted PyTorch) and inputs into ``work``."""
    import jax
    import torch

    from advpath_jax.torch_twin.convert import torch_resnet_from_flax  # needs torch (optional)

    depth = MODELS[args.model]
    model = benchmark_model(depth, args.width, args.channels, args.size, args.seed)
    np.savez(os.path.join(work, "flax_weights.npz"), **_flax_arrays(model))
    torch.save(torch_resnet_from_flax(model).state_dict(), os.path.join(work, "torch_weights.pt"))
    x, x_adv = benchmark_inputs(args.seed, max(args.batch), args.size, args.channels)
    np.savez(os.path.join(work, "inputs.npz"), x=x, x_adv=x_adv)
    one = jax.ShapeDtypeStruct((1, args.size, args.size, args.channels), np.float32)
    from flax import nnx

    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda s, xb: nnx.merge(graphdef, s)(xb)).lower(state, one).compile()
    # one path point = one forward and one input gradient: XLA's count for the compiled
    # gradient program (a lax.scan body is counted once by the cost analysis, so the whole
    # engine program would under-count by the number of chunks)
    f = ap.score_fn(model)
    point = jax.jit(jax.grad(lambda fn, xb: jax.numpy.sum(fn(xb)), argnums=1)).lower(f, one).compile()
    meta = {"forward_gflop_per_image": common.compiled_flops(forward) / 1e9,
            "gflop_per_point_per_image": common.compiled_flops(point) / 1e9,
            "flops_source": "XLA cost analysis of jit(grad(sum f)) at batch 1, times M"}
    if args.device == "cpu":
        meta["matmul_gflops"] = common.matmul_peak_gflops()
        meta["matmul_measure"] = "best of 5 jitted 2048x2048 fp32 matmuls in XLA, this run"
    return meta


# ---------------------------------------------------------------------------- measurement


class _MemoryProbe:
    """Peak memory of the current process from ``start()`` on, in MB above the level at ``start()``."""

    def __init__(self, kind: str, framework: str):
        self.kind, self.framework = kind, framework
        self.base = 0.0

    def start(self) -> None:
        if self.kind == "cpu":
            self.base = _rss_mb()
            with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM to the current RSS
                fh.write("5")
        elif self.framework == "jax":
            import jax
            self.base = jax.devices()[0].memory_stats()["bytes_in_use"] / MB
        else:
            import torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated() / MB

    def peak(self) -> tuple[float, float]:
        """(peak above the start level, absolute peak) in MB."""
        if self.kind == "cpu":
            absolute = _status_mb("VmHWM")
        elif self.framework == "jax":
            import jax
            absolute = jax.devices()[0].memory_stats()["peak_bytes_in_use"] / MB
        else:
            import torch
            absolute = torch.cuda.max_memory_allocated() / MB
        return absolute - self.base, absolute


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _rss_mb() -> float:
    import psutil
    return psutil.Process().memory_info().rss / MB


class _CompileClock:
    """Sums JAX's tracing, lowering and XLA compilation durations while active."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, name: str, duration: float, **_: Any) -> None:
        if name.startswith("/jax/core/compile/"):
            self.seconds += duration


def _time_calls(call: Callable[[], Any], sync: Callable[[Any], Any], warmup: int, repeats: int,
                probe: _MemoryProbe, clock: _CompileClock | None) -> dict[str, Any]:
    probe.start()
    if clock is not None:
        import jax.monitoring
        jax.monitoring.register_event_duration_secs_listener(clock)
    t0 = time.perf_counter()
    out = sync(call())
    first = time.perf_counter() - t0
    if clock is not None:
        jax.monitoring.unregister_event_duration_listener(clock)
    for _ in range(warmup - 1):
        sync(call())
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = sync(call())
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    peak, absolute = probe.peak()
    return {"out": out, "first_call_s": first, "times_s": times, "cpu_times_s": cpu_times,
            "compile_s": None if clock is None else clock.seconds,
            "peak_mem_mb": peak, "peak_mem_total_mb": absolute}


# ---------------------------------------------------------------------------- one row


def _smoothing(spec: dict[str, Any]):
    return paper_smoothing(spec["image_size"]) if spec["method"] == "efi_v2_smooth" else None


def _cast_score(f, x):
    import jax.numpy as jnp
    return f(x.astype(jnp.bfloat16)).astype(jnp.float32)


def _jax_row(spec: dict[str, Any], work: str) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    from flax import nnx
    from jax.tree_util import Partial

    if spec["device"] == "gpu" and jax.default_backend() != "gpu":
        raise RuntimeError(f"--device gpu but JAX's backend is {jax.default_backend()!r}")
    if spec["device"] == "gpu":
        jax.config.update("jax_default_matmul_precision",
                          {"fp32": "highest", "tf32": "tensorfloat32", "bf16": "default"}[spec["precision"]])
    model = make_resnet(MODELS[spec["model"]], width=spec["width"], in_channels=spec["channels"],
                        seed=spec["seed"])
    with np.load(os.path.join(work, "flax_weights.npz")) as data:
        _load_flax_arrays(model, dict(data))
    model.eval()
    if spec["precision"] == "bf16":
        state = nnx.state(model, (nnx.Param, nnx.BatchStat))
        nnx.update(model, jax.tree.map(lambda a: a.astype(jnp.bfloat16), state))
    f = ap.score_fn(model, "prob")
    if spec["precision"] == "bf16":
        f = Partial(_cast_score, f)
    with np.load(os.path.join(work, "inputs.npz")) as data:
        x = jax.device_put(data["x"][: spec["batch"]])
        x_adv = jax.device_put(data["x_adv"][: spec["batch"]])
    smoothing = _smoothing(spec)
    if spec["method"] == "ig":
        def call():
            return ap.integrated_gradients(f, x, steps=spec["steps"], chunk_size=spec["chunk"])
    else:
        def call():
            return ap.path_attribution(f, x, x_adv, weight="v2", steps=spec["steps"],
                                                smoothing=smoothing, chunk_size=spec["chunk"])
    result = _time_calls(call, jax.block_until_ready, spec["warmup"], spec["repeats"],
                         _MemoryProbe(spec["device"], "jax"), _CompileClock())
    result["out"] = np.asarray(result["out"], np.float32)
    return result


def _torch_row(spec: dict[str, Any], work: str) -> dict[str, Any]:
    import torch

    from advpath_jax.torch_twin import attribution as ta  # needs torch (optional), as below
    from advpath_jax.torch_twin.resnet import TorchResNet, images_to_torch

    torch.set_num_threads(spec["threads"])
    device = "cuda" if spec["device"] == "gpu" else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device gpu but torch.cuda.is_available() is False")
        tf32 = spec["precision"] == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
    twin = TorchResNet(ResNetSpec(depth=MODELS[spec["model"]], width=spec["width"],
                                  in_channels=spec["channels"]))
    twin.load_state_dict(torch.load(os.path.join(work, "torch_weights.pt"), weights_only=True))
    twin = twin.to(device)
    f = ta.torch_score_fn(twin, "prob")
    if spec["precision"] == "bf16":
        twin.to(torch.bfloat16)

        def f(x, _score=f):  # network in bfloat16, path and sums in float32
            return _score(x.to(torch.bfloat16)).float()
    with np.load(os.path.join(work, "inputs.npz")) as data:
        x = images_to_torch(data["x"][: spec["batch"]], device=device)
        x_adv = images_to_torch(data["x_adv"][: spec["batch"]], device=device)
    smoothing = _smoothing(spec)
    if spec["method"] == "ig":
        def call():
            return ta.integrated_gradients(f, x, steps=spec["steps"], chunk_size=spec["chunk"],
                                           impl=spec["impl"])
    else:
        def call():
            return ta.efi_v2(f, x, x_adv, steps=spec["steps"], smoothing=smoothing,
                             chunk_size=spec["chunk"], impl=spec["impl"])

    def sync(out):
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    result = _time_calls(call, sync, spec["warmup"], spec["repeats"],
                         _MemoryProbe(spec["device"], "torch"), None)
    result["out"] = result["out"].detach().float().cpu().numpy()
    return result


def run_row(spec: dict[str, Any], work: str) -> dict[str, Any]:
    """Measure one row; writes its map to ``work/<name>.npy``; returns the row without it."""
    runner = _jax_row if spec["framework"] == "jax" else _torch_row
    result = runner(spec, work)
    np.save(os.path.join(work, spec["name"] + ".npy"), result.pop("out"))
    times = result["times_s"]
    median = statistics.median(times) if times else None
    result["time_per_call_s"] = median
    result["images_per_s"] = spec["batch"] / median if median else None
    # Process CPU time (all threads): less sensitive than wall time to other load on a
    # shared machine, but it counts idle spinning of thread pools too.
    cpu = statistics.median(result["cpu_times_s"]) if result["cpu_times_s"] else None
    result["images_per_cpu_s"] = spec["batch"] / cpu if cpu else None
    return result


def _run_isolated(spec: dict[str, Any], work: str) -> dict[str, Any]:
    spec_path = os.path.join(work, spec["name"] + ".spec.json")
    write_json_atomic(spec_path, spec, indent=None)
    env = dict(os.environ)
    if spec["device"] == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
    else:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    proc = subprocess.run([sys.executable, "-m", "advpath_jax.bench.torch_bench", "--worker", spec_path],
                          env=env, capture_output=True, text=True)
    result_path = os.path.join(work, spec["name"] + ".result.json")
    if proc.returncode != 0 or not os.path.exists(result_path):
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        return {"error": f"worker exited with {proc.returncode}: {' | '.join(tail)}"}
    return read_json(result_path, "benchmark worker result")


def _worker(spec_path: str) -> int:
    spec = read_json(spec_path, "benchmark worker spec")
    work = os.path.dirname(spec_path)
    result = run_row(spec, work)
    write_json_atomic(os.path.join(work, spec["name"] + ".result.json"), result, indent=None)
    return 0


# ---------------------------------------------------------------------------- the run


def _framework(impl: str) -> str:
    return "jax" if impl == "jax" else "torch"


def _impl_name(impl: str) -> str:
    return "engine" if impl == "jax" else impl


def plan_rows(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    """(speed rows, memory-curve rows), in the order they run: interleaved by batch and method."""
    impls = ["jax"] + [i for i in args.impls if i != "jax"]
    common = {"model": args.model, "width": args.width, "channels": args.channels,
              "image_size": args.size, "device": args.device, "precision": args.precision,
              "seed": args.seed, "threads": args.threads}

    def row(kind, impl, method, batch, steps, warmup, repeats):
        chunk = args.chunk if args.chunk is not None else default_chunk_size(steps, batch)
        name = f"{kind}_{method}_b{batch}_m{steps}_{impl}"
        return dict(common, name=name, kind=kind, framework=_framework(impl), impl=_impl_name(impl),
                    method=method, batch=batch, steps=steps, chunk=min(chunk, steps),
                    warmup=warmup, repeats=repeats)

    speed = [row("speed", impl, method, batch, args.steps, args.warmup, args.repeats)
             for batch in args.batch for method in args.methods for impl in impls]
    memory = [row("memory", impl, "efi_v2", args.batch[0], steps, 1, 0)
              for steps in (args.memory_steps or []) for impl in impls]
    return speed, memory


def _finish_rows(rows: list[dict], work: str, meta: dict[str, Any]) -> None:
    """Add ratio_vs_jax, max_rel_diff and FLOP/s, comparing each row with its JAX row."""
    reference: dict[tuple, dict] = {}
    for r in rows:
        key = (r["kind"], r["method"], r["batch"], r["steps"])
        if r["framework"] == "jax":
            reference[key] = r
        ref = reference.get(key)
        r["ratio_vs_jax"] = None
        r["max_rel_diff"] = None
        if ref is None or r.get("error") or ref.get("error"):
            continue
        ref_map = np.load(os.path.join(work, ref["name"] + ".npy"))
        this_map = np.load(os.path.join(work, r["name"] + ".npy"))
        scale = float(np.max(np.abs(ref_map)))
        r["max_rel_diff"] = float(np.max(np.abs(this_map - ref_map)) / scale) if scale > 0 else None
        if r.get("images_per_s") and ref.get("images_per_s"):
            r["ratio_vs_jax"] = ref["images_per_s"] / r["images_per_s"]
        add_flop_rates(r, meta)


def add_flop_rates(r: dict, meta: dict[str, Any]) -> None:
    """``gflops`` (XLA's FLOP count of the work ÷ time), its share of the measured matmul
    rate (``pct_matmul``, CPU) and of the chip's peak (``pct_of_peak``, with a known peak)."""
    gflop = meta["gflop_per_point_per_image"] * r["steps"]
    r["gflop_per_image"] = gflop
    if not (r.get("images_per_s") and math.isfinite(gflop)):
        return
    r["gflops"] = gflop * r["images_per_s"]
    r["achieved_tflops"] = r["gflops"] / 1e3
    if meta.get("matmul_gflops"):
        r["pct_matmul"] = 100.0 * r["gflops"] / meta["matmul_gflops"]
    if meta.get("peak_tflops"):
        r["pct_of_peak"] = 100.0 * r["achieved_tflops"] / meta["peak_tflops"]


def machine_description() -> dict[str, Any]:
    """The project's machine description plus the CPU model, memory and library versions."""
    import psutil
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return dict(common.machine_description(), cpu=cpu,
                memory_gb=round(psutil.virtual_memory().total / 1e9, 1),
                torch=torch.__version__, captum=_captum_version(), os=platform.platform())


def _captum_version() -> str | None:
    try:
        import captum
        return captum.__version__
    except ImportError:
        return None


def markdown_table(rows: list[dict], columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """Rows as a Markdown table; a failed row shows its error in place of its numbers."""
    shown = []
    for r in rows:
        cells = {c: ("-" if r.get(c) is None else r.get(c)) for c in columns}
        if r.get("error"):
            cells = {c: cells[c] if c in ("framework", "impl", "method", "batch", "steps") else ""
                     for c in columns}
            cells[columns[5]] = f"failed: {r['error'][:100]}"
        shown.append(cells)
    return common.markdown_table(shown, columns)


def _write_text(path: str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def main(args: argparse.Namespace) -> int:
    """Run the benchmark; print Markdown tables; write JSON (``--json``)."""
    try:
        import captum  # noqa: F401
        import torch
    except ImportError as err:
        raise SystemExit(f"advpath bench torch needs PyTorch and Captum: pip install 'advpath-jax[torch]' ({err})")
    _validate(args)
    # This process only prepares weights and inputs; it must not hold accelerator memory
    # while the row processes run.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    torch.set_num_threads(args.threads)
    # Before any work of ours: the 1-minute load average includes this process's own threads.
    load_start, cpu_start = os.getloadavg(), common.cpu_snapshot()
    speed, memory = plan_rows(args)
    if args.isolation == "none":
        print("note: --isolation none: rows share one process, peak memory is not reported", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="advpath_bench_") as work:
        meta = prepare(args, work)
        meta.update(machine=machine_description(), device=args.device, precision=args.precision,
                    isolation=args.isolation, peak_tflops=args.peak_tflops, threads=args.threads,
                    load_average_start=load_start,
                    load_warning=common.load_warning(load_start[0]),
                    memory_measure=("peak RSS (VmHWM) above the RSS after loading, fresh process per row"
                                    if args.device == "cpu" else
                                    "peak device memory above the memory in use after loading, fresh process per row"))
        if meta["load_warning"]:
            print(meta["load_warning"], file=sys.stderr)
        if meta["peak_tflops"] is None and args.device == "gpu":
            meta["peak_tflops"], meta["peak_source"] = known_peak(meta["machine"]["device_kind"], args.precision)
        rows = []
        plan = speed + memory
        for i, spec in enumerate(plan, 1):
            print(f"[{i}/{len(plan)}] {spec['framework']}:{spec['impl']} {spec['method']} "
                  f"batch={spec['batch']} M={spec['steps']} chunk={spec['chunk']}", file=sys.stderr, flush=True)
            if args.isolation == "subprocess":
                result = _run_isolated(spec, work)
            else:
                result = run_row(spec, work)
                result["peak_mem_mb"] = result["peak_mem_total_mb"] = None
            row = {k: v for k, v in spec.items() if k not in ("name",)}
            row.update(result)
            row["name"] = spec["name"]
            rows.append(row)
            if row.get("error"):
                print(f"  failed: {row['error']}", file=sys.stderr)
        _finish_rows(rows, work, meta)
        # The load average at the end counts the bench's own rows; other processes' CPU time
        # over the whole run is the measure of contention.
        meta["load_average_end"] = os.getloadavg()
        meta["other_cpu_share"] = common.other_cpu_share(cpu_start, common.cpu_snapshot())
        meta["other_cpu_warning"] = common.other_cpu_warning(meta["other_cpu_share"])
        if meta["other_cpu_warning"]:
            print(meta["other_cpu_warning"], file=sys.stderr)
    speed_rows = [r for r in rows if r["kind"] == "speed"]
    memory_rows = [r for r in rows if r["kind"] == "memory"]
    header = (f"{args.model} width {args.width}, {args.size}x{args.size}x{args.channels}, M={args.steps}, "
              f"{args.device} {args.precision}, chunk={'engine default' if args.chunk is None else args.chunk}; "
              f"{meta['machine']['cpu']} ({', '.join(meta['machine']['cpu_flags']) or 'no AVX flags'}), "
              f"{meta['machine']['cpu_count']} cores, load average {meta['load_average_start'][0]:.2f} at start")
    if meta["other_cpu_share"] is not None:
        header += f", other processes {100 * meta['other_cpu_share']:.1f}% of the machine during the run"
    if meta.get("matmul_gflops"):
        header += f"; fp32 matmul rate measured in this run: {meta['matmul_gflops']:.1f} GFLOP/s"
    if meta.get("peak_tflops"):
        header += f"; chip peak {meta['peak_tflops']} TFLOP/s ({meta.get('peak_source', '--peak-tflops')})"
    text = f"{header}\n\n{markdown_table(speed_rows)}\n"
    if memory_rows:
        text += ("\nPeak memory against M (efi_v2, batch "
                 f"{memory_rows[0]['batch']}, one call):\n\n"
                 + markdown_table(memory_rows, ("framework", "impl", "steps", "chunk", "peak_mem_mb",
                                                "peak_mem_total_mb", "first_call_s")) + "\n")
    print(text)
    for r in rows:
        r.pop("name", None)
    if args.json_path:
        write_json_atomic(args.json_path, {"benchmark": "torch", "meta": meta, "rows": speed_rows,
                                           "memory_curve": memory_rows})
    if args.markdown:
        _write_text(args.markdown, text)
    failed = [r for r in rows if r.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker(sys.argv[2]))
    parser = argparse.ArgumentParser(prog="advpath bench torch", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
