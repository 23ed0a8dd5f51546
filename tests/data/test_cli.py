"""``advpath data prepare|show|list`` as a user runs them."""

from __future__ import annotations

import numpy as np
from PIL import Image

from advpath_jax.cli import main


def _tiny_args(tmp_path):
    return ["--data-dir", str(tmp_path / "prepared"), "--set", "num_train=24", "--set", "num_val=8",
            "--set", "data.num_test=8"]


def test_prepare_then_show(tmp_path, capsys):
    assert main(["data", "prepare", "synth_brain", *_tiny_args(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train: 24 examples" in out and "test: 8 examples" in out
    png = tmp_path / "grid.png"
    assert main(["data", "show", "synth_brain", *_tiny_args(tmp_path), "--out", str(png), "--num", "6"]) == 0
    assert "3 positive" in capsys.readouterr().out
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 50  # mask contours are drawn


def test_list_and_errors(tmp_path, capsys):
    assert main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    for name in ("synth_brain", "synth_chest", "msd_brain", "rsna_pneumonia", "folder:PATH"):
        assert name in listed
    assert main(["data", "prepare", "nosuchset"]) == 2
    assert "unknown data set 'nosuchset'" in capsys.readouterr().err
    assert main(["data", "prepare", "msd_brain", "--data-dir", str(tmp_path)]) == 2
    assert "manual_dir" in capsys.readouterr().err
    assert main(["data", "prepare", "synth_chest", "--config", "synth_brain"]) == 2
    assert "differs" in capsys.readouterr().err
