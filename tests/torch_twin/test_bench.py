"""``advpath bench torch`` end to end on a tiny ResNet: rows, ratios, map agreement, JSON."""

from __future__ import annotations

import argparse
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("captum")

from advpath_jax.bench import torch_bench  # noqa: E402

REQUIRED = ("framework", "impl", "model", "image_size", "steps", "batch", "images_per_s",
            "peak_mem_mb", "ratio_vs_jax", "max_rel_diff")
RATE_KEYS = ("gflops", "pct_matmul")  # rows with a timed call


def _args(tmp_path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    torch_bench.add_arguments(parser)
    return parser.parse_args(["--model", "resnet18", "--width", "0.125", "--size", "32", "--steps", "4",
                              "--repeats", "1", "--json", str(tmp_path / "bench.json"), *extra])


def _check_rows(rows, impls):
    jax_rows = {(r["method"], r["batch"], r["steps"]): r for r in rows if r["framework"] == "jax"}
    assert {r["impl"] for r in rows} == impls
    for r in rows:
        assert not r.get("error"), r.get("error")
        assert all(k in r for k in REQUIRED), sorted(set(REQUIRED) - set(r))
        ref = jax_rows[(r["method"], r["batch"], r["steps"])]
        assert r["max_rel_diff"] < 1e-4
        if r["images_per_s"] is not None:
            assert r["ratio_vs_jax"] == pytest.approx(ref["images_per_s"] / r["images_per_s"])
            assert all(k in r for k in RATE_KEYS), sorted(set(RATE_KEYS) - set(r))


def test_bench_in_process_all_impls(tmp_path, capsys):
    args = _args(tmp_path, "--batch", "2", "--methods", "efi_v2_smooth", "--isolation", "none",
                 "--memory-steps", "4")
    assert torch_bench.main(args) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    rows = report["rows"]
    assert [r["impl"] for r in rows] == ["engine", "loop", "vmap", "captum"]  # interleaved, JAX first
    _check_rows(rows, {"engine", "loop", "vmap", "captum"})
    assert rows[0]["ratio_vs_jax"] == 1.0 and rows[0]["compile_s"] > 0
    assert [r["steps"] for r in report["memory_curve"]] == [4] * 4
    _check_rows(report["memory_curve"], {"engine", "loop", "vmap", "captum"})
    assert report["meta"]["machine"]["cpu_count"] >= 1
    assert report["meta"]["matmul_gflops"] > 0 and isinstance(report["meta"]["machine"]["cpu_flags"], list)
    assert "load_warning" in report["meta"] and len(report["meta"]["load_average_start"]) == 3
    assert 0.0 <= report["meta"]["other_cpu_share"] <= 1.0 and "other_cpu_warning" in report["meta"]
    assert "| torch | captum | efi_v2_smooth | 2 | 4 |" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_subprocess_rows_report_memory(tmp_path):
    args = _args(tmp_path, "--batch", "1", "--methods", "ig", "--impls", "loop")
    assert torch_bench.main(args) == 0
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    _check_rows(rows, {"engine", "loop"})
    for r in rows:
        assert r["peak_mem_mb"] > 0 and r["peak_mem_total_mb"] >= r["peak_mem_mb"]


def test_bad_options_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="tf32"):
        torch_bench.main(_args(tmp_path, "--precision", "tf32"))
    with pytest.raises(SystemExit):
        _args(tmp_path, "--methods", "efi_v3")
    with pytest.raises(SystemExit):
        _args(tmp_path, "--batch", "0")
