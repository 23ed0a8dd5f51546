"""With a really trained tiny classifier: a 16-bit PNG is explained exactly like its 8-bit
twin, a work directory trained on other data (or other epochs) is refused and left
untouched, a constant image is explained with a warning, and explain's default method is
the report's best localiser."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from advpath_jax.cli import main as cli_main

TINY = ["data.image_size=32", "data.num_train=64", "data.num_val=16", "data.num_test=8",
        "classifier.epochs=1", "classifier.batch_size=32", "classifier.progress=False"]


def _sets(items):
    return [a for item in items for a in ("--set", item)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run directory with a tiny trained classifier (shared by the tests of this module)."""
    work = tmp_path_factory.mktemp("reliability") / "run"
    assert cli_main(["train", "classifier", "--workdir", str(work), *_sets(TINY)]) == 0
    (work / "config.txt").write_text("the record of the trained models\n")
    return work


def _explain(work, image, out, *extra):
    return ["explain", str(image), "--workdir", str(work), "--out", str(out), *_sets(TINY), *extra]


@pytest.mark.slow
def test_16_bit_png_is_explained_like_its_8_bit_twin(trained, tmp_path, capsys):
    rng = np.random.default_rng(0)
    img8 = (rng.random((40, 40)) * 180 + 40).astype(np.uint8)
    Image.fromarray(img8).save(tmp_path / "x8.png")
    Image.fromarray(img8.astype(np.uint16) * 257).save(tmp_path / "x16.png")
    scores = {}
    for bits in ("8", "16"):
        capsys.readouterr()
        assert cli_main(_explain(trained, tmp_path / f"x{bits}.png", tmp_path / f"o{bits}.png",
                                 "--method", "Gradient")) == 0
        scores[bits] = re.search(r"f\(x\) = ([0-9.]+)", capsys.readouterr().out).group(1)
    assert scores["8"] == scores["16"]
    assert (tmp_path / "o8.png").read_bytes() == (tmp_path / "o16.png").read_bytes()


@pytest.mark.slow
def test_a_work_directory_trained_on_other_data_is_refused_and_untouched(trained, capsys):
    before = sorted(p.relative_to(trained) for p in trained.rglob("*"))
    for change, field in (("data.noise=0.05", "data.noise: 0.03 -> 0.05"),
                          ("classifier.epochs=3", "classifier.epochs: 1 -> 3")):
        capsys.readouterr()
        code = cli_main(["run", "--workdir", str(trained), "--methods", "Gradient", *_sets(TINY + [change])])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
        assert f"{trained / 'classifier'} was trained under other settings" in err and field in err
        assert "--retrain classifier" in err and "--workdir" in err
    assert (trained / "config.txt").read_text() == "the record of the trained models\n"
    assert sorted(p.relative_to(trained) for p in trained.rglob("*")) == before   # nothing written
    code = cli_main(["train", "classifier", "--workdir", str(trained), *_sets(TINY + ["data.noise=0.05"])])
    assert code == 2 and "data.noise: 0.03 -> 0.05" in capsys.readouterr().err


@pytest.mark.slow
def test_constant_image_warns_and_default_method_follows_the_report(trained, tmp_path, capsys):
    np.save(tmp_path / "flat.npy", np.full((32, 32), 0.4, np.float32))
    capsys.readouterr()
    assert cli_main(_explain(trained, tmp_path / "flat.npy", tmp_path / "o.png", "--method", "Gradient")) == 0
    err = capsys.readouterr().err
    assert f"warning: {tmp_path / 'flat.npy'} is a constant image (every pixel 0.4)" in err

    # no report yet: the paper's default, and the command says why (SyCE is not trained here)
    code = cli_main(_explain(trained, tmp_path / "flat.npy", tmp_path / "o.png"))
    out, err = capsys.readouterr()
    assert "constant image" in err
    assert "method SyCE:E_FI,kσ^v2: the paper's default, because" in out and "results.json does not exist" in out
    assert code == 2 and "syce" in err

    # a report whose best localiser (highest mean IoU, Random excluded) is Gradient
    cell = lambda iou: {"iou": {"mean": iou}, "fnr": {"mean": 0.5}}
    table1 = {"Random": {"98": cell(0.9), "99": cell(0.9)},
              "Gradient": {"98": cell(0.30), "99": cell(0.20)},
              "SyCE:E": {"98": cell(0.40), "99": cell(0.05)}}
    (trained / "results.json").write_text(json.dumps({"table1": table1}))
    try:
        assert cli_main(_explain(trained, tmp_path / "flat.npy", tmp_path / "o.png")) == 0
        out = capsys.readouterr().out
        assert "method Gradient: best localiser of" in out and "mean IoU 0.250" in out
    finally:
        (trained / "results.json").unlink()
