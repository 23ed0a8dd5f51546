"""``advpath bench attribution`` (advpath_jax/bench/attribution.py): its rows, on a tiny ResNet."""

from __future__ import annotations

import json

from advpath_jax.cli import main as cli_main


def test_linear_and_manifold_rows_are_measured_and_written(tmp_path, capsys):
    out = tmp_path / "rows.json"
    code = cli_main(["bench", "attribution", "--model", "resnet18", "--width", "0.25", "--size", "32",
                     "--steps", "2,4", "--batch", "2", "--methods", "efi_v2,manifold_v2", "--repeats", "1",
                     "--json", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["method"], r["steps"]) for r in rows] == [("efi_v2", 2), ("efi_v2", 4), ("manifold_v2", 2),
                                                         ("manifold_v2", 4)]
    assert all(r["images_per_s"] > 0 and r["peak_mem_mb"] > 0 and r["batch"] == 2 for r in rows)
    shown = capsys.readouterr().out
    assert "manifold path vs linear path (batch 2, M=4)" in shown
    assert "efi_v2 batch 2: peak memory M=2 -> M=4" in shown
