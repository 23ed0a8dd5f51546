"""One error style for every sub-command: an expected problem is one line
``error: <message>`` on stderr naming the file or argument, exit status 2; a bug is one
line saying so (exit 1), with ``--debug`` to see its traceback."""

import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from advpath_jax import cli
from advpath_jax.config_utils import load_config
from advpath_jax.training import stage_record as sr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    img = (np.arange(24 * 24).reshape(24, 24) % 200).astype(np.uint8)
    Image.fromarray(img).save(root / "good.png")
    (root / "corrupt.png").write_bytes((root / "good.png").read_bytes()[:60])
    np.save(root / "good.npy", img / 255.0)
    data = (root / "good.npy").read_bytes()
    (root / "trunc.npy").write_bytes(data[: len(data) // 2])
    np.save(root / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (root / "empty_run").mkdir()
    # folder data sets with one bad image each
    for name, writer in (("folder_png", lambda p: p.with_suffix(".png").write_bytes(b"\x89PNG junk")),
                         ("folder_trunc", lambda p: p.with_suffix(".npy").write_bytes(data[:100])),
                         ("folder_pickled", lambda p: np.save(p.with_suffix(".npy"), np.array([None], object),
                                                             allow_pickle=True))):
        (root / name / "images").mkdir(parents=True)
        (root / name / "labels.csv").write_text("id,label\na,0\nb,1\nc,0\nd,1\n")
        for ident in "abc":
            Image.fromarray(img).save(root / name / "images" / f"{ident}.png")
        writer(root / name / "images" / "d")
    (root / "folder_nolabels").mkdir()
    # a work directory whose classifier was trained on other data (noise 0.03 vs 0.05 asked)
    work = root / "trained"
    record = sr.new_record(sr.model_fingerprint(load_config("synth_brain"), "classifier", {}))
    sr.write_record(str(work), "classifier", record)
    (work / "classifier" / "DONE.json").write_text(json.dumps({"instance": record["instance"]}))
    return root


def _explain(f, image, *extra):
    return ["explain", str(f / image), "--workdir", str(f / "empty_run"), "--method", "Gradient",
            "--out", str(f / "out.png"), *extra]


CASES = [  # (label, argv builder, text the one line must contain)
    ("explain: missing image", lambda f: _explain(f, "nofile.png"), "nofile.png"),
    ("explain: corrupt PNG", lambda f: _explain(f, "corrupt.png"), "corrupt.png"),
    ("explain: truncated NPY", lambda f: _explain(f, "trunc.npy"), "trunc.npy"),
    ("explain: pickled NPY", lambda f: _explain(f, "pickled.npy"), "pickled.npy"),
    ("explain: bad --set value", lambda f: _explain(f, "good.png", "--set", "data.image_size=(1,"), "data.image_size"),
    ("explain: unknown key", lambda f: _explain(f, "good.png", "--set", "data.nope=1"), "data.nope"),
    ("explain: missing config", lambda f: _explain(f, "good.png", "--config", str(f / "none.py")), "none.py"),
    ("explain: unknown method", lambda f: _explain(f, "good.png")[:-4] + ["--method", "Nope:E", "--out", "o.png"],
     "Nope:E"),
    ("explain: missing run directory", lambda f: ["explain", str(f / "good.png"), "--workdir", str(f / "norun"),
                                                  "--method", "Gradient", "--out", "o.png"], "norun"),
    ("explain: run directory without models", lambda f: _explain(f, "good.png"), "empty_run"),
    ("run: bad --set value", lambda f: ["run", "--workdir", str(f / "r"), "--set", "classifier.epochs=[1"],
     "classifier.epochs"),
    ("run: unknown key", lambda f: ["run", "--workdir", str(f / "r"), "--set", "classifier.nope=3"], "classifier.nope"),
    ("run: missing config", lambda f: ["run", "--workdir", str(f / "r"), "--config", str(f / "none.py")], "none.py"),
    ("run: refused work directory", lambda f: ["run", "--workdir", str(f / "trained"), "--methods", "Gradient",
                                               "--set", "data.noise=0.05"], "trained/classifier"),
    ("run: unknown --retrain model", lambda f: ["run", "--workdir", str(f / "r"), "--methods", "Gradient",
                                                "--retrain", "resnet"], "resnet"),
    ("train: missing config", lambda f: ["train", "classifier", "--workdir", str(f / "r"), "--config",
                                         str(f / "none.py")], "none.py"),
    ("train: unknown key", lambda f: ["train", "classifier", "--workdir", str(f / "r"), "--set", "x.y=1"], "x.y"),
    ("train: refused work directory", lambda f: ["train", "classifier", "--workdir", str(f / "trained"),
                                                 "--set", "data.noise=0.05"], "trained/classifier"),
    ("train: generator without a classifier", lambda f: ["train", "cyce", "--workdir", str(f / "r")],
     "r/classifier"),
    ("data prepare: corrupt PNG", lambda f: ["data", "prepare", f"folder:{f / 'folder_png'}", "--data-dir",
                                             str(f / "dd")], "folder_png/images/d.png"),
    ("data prepare: truncated NPY", lambda f: ["data", "prepare", f"folder:{f / 'folder_trunc'}", "--data-dir",
                                               str(f / "dd")], "folder_trunc/images/d.npy"),
    ("data prepare: pickled NPY", lambda f: ["data", "prepare", f"folder:{f / 'folder_pickled'}", "--data-dir",
                                             str(f / "dd")], "folder_pickled/images/d.npy"),
    ("data prepare: no labels.csv", lambda f: ["data", "prepare", f"folder:{f / 'folder_nolabels'}", "--data-dir",
                                               str(f / "dd")], "labels.csv"),
    ("data show: missing config", lambda f: ["data", "show", "--config", str(f / "none.py"), "--out", "x.png"],
     "none.py"),
    ("sweep: missing config", lambda f: ["sweep", "--weights", "v1", "--config", str(f / "none.py")], "none.py"),
    ("sweep: bad weight", lambda f: ["sweep", "--weights", "nosuch", "--workdir", str(f / "r")], "nosuch"),
    ("sweep: bad eval setting", lambda f: ["sweep", "--weights", "v1", "--workdir", str(f / "r"), "--set",
                                           "eval.attribute_images=every"], "attribute_images"),
    ("run: bad eval setting", lambda f: ["run", "--workdir", str(f / "r"), "--set", "eval.attribute_images=every"],
     "attribute_images"),
]


@pytest.mark.parametrize("label, argv, named", CASES, ids=[c[0] for c in CASES])
def test_expected_errors_are_one_line_naming_the_problem(files, capsys, label, argv, named):
    code = cli.main(argv(files))
    err = capsys.readouterr().err
    progress = re.compile(r"\d+ examples \[|it/s\]")         # TFDS/tqdm progress bars, not errors
    lines = [line for line in err.splitlines() if line.strip() and not progress.search(line)]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert named in lines[0] and "Traceback" not in err, err


def test_a_failed_prepare_leaves_the_data_dir_as_it_was(files, capsys):
    data_dir = files / "fresh_data_dir"
    assert cli.main(["data", "prepare", f"folder:{files / 'folder_png'}", "--data-dir", str(data_dir)]) == 2
    assert not data_dir.exists()
    data_dir.mkdir()
    (data_dir / "keep.txt").write_text("someone else's file")
    assert cli.main(["data", "prepare", f"folder:{files / 'folder_png'}", "--data-dir", str(data_dir)]) == 2
    assert sorted(os.listdir(data_dir)) == ["keep.txt"]


def test_a_bug_is_reported_as_one(monkeypatch, capsys):
    from advpath_jax.pipeline import run_cli

    def broken(args):
        raise KeyError("oops")

    monkeypatch.setattr(run_cli, "main", broken)
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (a bug" in err and "--debug" in err and "KeyError" in err
    with pytest.raises(KeyError):
        cli.main(["run", "--debug"])
