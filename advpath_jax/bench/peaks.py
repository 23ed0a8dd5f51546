"""Dense peak TFLOP/s of known accelerators, to express a benchmark row as a share of the chip.

Numbers are NVIDIA's datasheet figures for dense math (the datasheets' tensor-core figures
"with sparsity" halved): H100 SXM / H200 SXM (H100 and H200 datasheets: FP32 67 TFLOP/s,
TF32 989 and BF16 1,979 with sparsity), H100 PCIe (51 / 756 / 1,513 with sparsity),
A100 SXM/PCIe (A100 datasheet: FP32 19.5, TF32 156, BF16 312 dense), L4 (FP32 30.3,
TF32 120 and BF16 242.5 with sparsity). Boost clocks; sustained rates are lower.
"""

from __future__ import annotations

#: (substring of jax's device_kind, {precision: dense TFLOP/s}); the first match wins
GPU_PEAKS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.5}),
    ("H100", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),
    ("H200", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),
    ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}),
    ("L4", {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0}),
)
SOURCE = "NVIDIA datasheet, dense (advpath_jax.bench.peaks)"


def known_peak(device_kind: str, precision: str) -> tuple[float | None, str | None]:
    """``(TFLOP/s, source)`` for a device kind such as ``"NVIDIA H100 80GB HBM3"``; ``(None, None)``
    when the chip is not in :data:`GPU_PEAKS` (pass ``--peak-tflops`` then)."""
    for name, peaks in GPU_PEAKS:
        if name.lower() in str(device_kind).lower():
            return peaks.get(precision), SOURCE
    return None, None
