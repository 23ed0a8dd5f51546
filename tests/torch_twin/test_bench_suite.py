"""``advpath bench suite`` on CPU with the tiny preset; the FLOP-rate and machine fields."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("captum")

from advpath_jax.bench import common, peaks  # noqa: E402
from advpath_jax.cli import main as cli_main  # noqa: E402


def test_suite_tiny_on_cpu_writes_rows_and_summary(tmp_path, capsys):
    out = tmp_path / "suite.json"
    assert cli_main(["bench", "suite", "--device", "cpu", "--model", "tiny", "--precisions", "fp32",
                     "--methods", "ig", "--impls", "loop", "--repeats", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows, summary, meta = report["rows"], report["summary"], report["meta"]["fp32"]
    assert {(r["framework"], r["impl"]) for r in rows} == {("jax", "engine"), ("torch", "loop")}
    assert [(s["method"], s["precision"]) for s in summary] == [("ig", "fp32")]
    assert meta["matmul_gflops"] > 0 and meta["gflop_per_point_per_image"] > 0
    assert meta["machine"]["cpu_model"] and isinstance(meta["machine"]["cpu_flags"], list)
    for r in rows:
        assert r["max_rel_diff"] < 1e-4
        # FLOP rate = XLA's FLOPs per path point x M x images/s, share = rate / matmul rate
        assert r["gflops"] == pytest.approx(meta["gflop_per_point_per_image"] * 4 * r["images_per_s"])
        assert r["pct_matmul"] == pytest.approx(100 * r["gflops"] / meta["matmul_gflops"])
    for s in summary:
        jax_row = next(r for r in rows if r["framework"] == "jax" and r["method"] == s["method"])
        loop_row = next(r for r in rows if r["impl"] == "loop" and r["method"] == s["method"])
        assert s["jax_vs_loop"] == pytest.approx(jax_row["images_per_s"] / loop_row["images_per_s"])
        assert s["jax_pct_of_peak"] == jax_row["pct_matmul"] and s["share_of"] == "measured fp32 matmul"
    assert "suite summary" in capsys.readouterr().out


def test_suite_rejects_tf32_on_cpu(tmp_path, capsys):
    assert cli_main(["bench", "suite", "--device", "cpu", "--model", "tiny", "--precisions", "tf32",
                     "--json", str(tmp_path / "x.json")]) == 2
    assert "tf32 exists on GPUs only" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_gradient_flops_per_point_are_about_twice_the_forward():
    """Input gradient of a conv net ~ one more forward's worth of convolution FLOPs."""
    import argparse
    import tempfile

    from advpath_jax.bench import torch_bench

    parser = argparse.ArgumentParser()
    torch_bench.add_arguments(parser)
    args = parser.parse_args(["--model", "resnet18", "--width", "0.125", "--size", "32", "--device", "gpu"])
    with tempfile.TemporaryDirectory() as work:
        meta = torch_bench.prepare(args, work)   # device gpu: no matmul timing, FLOP counts only
    assert 1.6 < meta["gflop_per_point_per_image"] / meta["forward_gflop_per_image"] < 2.6
    assert "matmul_gflops" not in meta


def test_known_peaks_and_load_warning():
    assert peaks.known_peak("NVIDIA H100 80GB HBM3", "bf16")[0] == pytest.approx(989.4)
    assert peaks.known_peak("NVIDIA H200", "tf32")[0] == pytest.approx(494.7)
    assert peaks.known_peak("NVIDIA H100 PCIe", "fp32")[0] == pytest.approx(51.2)
    assert peaks.known_peak("Some Other Chip", "fp32") == (None, None)
    assert common.load_warning(0.4) is None
    assert "load average 0.60 > 0.5" in common.load_warning(0.6, cores=2)
