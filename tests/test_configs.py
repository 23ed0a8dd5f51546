"""The configs in configs/ are plain data that agree with the package's defaults."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import ml_collections
import pytest

from advpath_jax.config_utils import load_config
from advpath_jax.errors import AdvpathError
from advpath_jax.generators import DEFAULT_WEIGHTS
from advpath_jax.pipeline.eval_config import EVAL_DEFAULTS, check_eval_section

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"
CONFIGS = ["synth_brain", "synth_chest", "brain_tumor", "pneumonia"]
PAPER = ["brain_tumor", "pneumonia"]


def _common():
    spec = importlib.util.spec_from_file_location("configs_common_under_test", CONFIG_DIR / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def test_reading_every_config_loads_neither_jax_nor_the_package():
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(CONFIG_DIR)!r})\n"
        f"for name in {CONFIGS!r}:\n"
        "    __import__(name).get_config()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jax', 'jaxlib', 'flax', 'advpath_jax', 'numpy', 'tensorflow'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_literal_loss_weights_equal_the_packages_defaults():
    common = _common()
    assert common.CYCE_WEIGHTS == DEFAULT_WEIGHTS["cyce"]
    assert common.SYCE_WEIGHTS == DEFAULT_WEIGHTS["syce"]
    assert common.SAGEN_WEIGHTS == DEFAULT_WEIGHTS["sagen"]
    for name in CONFIGS:
        g = load_config(name).generators
        assert g.cyce_weights.to_dict() == DEFAULT_WEIGHTS["cyce"], name
        # the synthetic configs raise SyCE's stable-image terms (docs/training.md); the paper-size keep the paper's
        deviation = {} if name in PAPER else {"cls_self": 0.3 if name == "synth_chest" else 0.1, "rec_self": 20.0}
        assert g.syce_weights.to_dict() == {**DEFAULT_WEIGHTS["syce"], **deviation}, name
    for name in PAPER:  # the synthetic configs tune SAGen's (docs/training.md)
        assert load_config(name).generators.sagen_weights.to_dict() == DEFAULT_WEIGHTS["sagen"], name


def test_literal_eval_section_equals_the_packages_defaults():
    assert _common().EVAL == EVAL_DEFAULTS
    for name in CONFIGS:
        section = load_config(name).eval
        before = section.to_dict()
        assert check_eval_section(section).to_dict() == before, name  # complete: nothing filled in


def test_check_eval_section_fills_missing_fields_and_names_unknown_ones():
    section = ml_collections.ConfigDict({"steps": 7})
    filled = check_eval_section(section)
    assert filled.steps == 7 and filled.percentiles == (98, 99) and filled.rule == "midpoint"
    assert len(filled) == 20
    assert check_eval_section({"quality_bars": None}).explorer is True  # optional fields are known
    with pytest.raises(AdvpathError, match="stepz"):
        check_eval_section({"stepz": 3})
    with pytest.raises(AdvpathError, match="attribute_images must be one of"):
        check_eval_section({"attribute_images": "every"})


def test_paper_configs_are_the_cpu_ones_at_the_papers_size():
    brain, pneumonia = load_config("brain_tumor"), load_config("pneumonia")
    # the paper's settings (docs/training.md), written out here
    assert (brain.data.image_size, brain.classifier.depth, brain.classifier.width) == (224, 50, 1.0)
    assert brain.classifier.lr == brain.generators.lr == brain.mgen.lr == brain.translator.lr == 1e-4
    assert (brain.classifier.epochs, brain.generators.epochs, brain.generators.dropout) == (30, 40, 0.2)
    assert brain.generators.residual is False and brain.generators.sagen_class_input is False
    assert brain.eval.subset_size == 1000 and brain.eval.aopc_steps == 100
    assert brain.data.name == "msd_brain" and brain.data.manual_dir is None
    assert "num_train" not in brain.data and "steps_per_epoch" not in brain.generators
    assert brain.mgen.steps_per_epoch is None and brain.translator.steps_per_epoch is None
    # the local copy is given as a string
    assert load_config("brain_tumor", ["data.manual_dir=/data/brain"]).data.manual_dir == "/data/brain"
    # pneumonia: the brain task's settings but for the data and Table 1's thresholds
    a, b = _flat(brain.to_dict()), _flat(pneumonia.to_dict())
    assert set(a) == set(b)
    assert {k for k in a if a[k] != b[k]} == {"name", "data.name", "eval.percentiles"}
    assert (b["data.name"], tuple(b["eval.percentiles"])) == ("rsna_pneumonia", (90, 95, 98))
    # and the CPU-sized ones: chest differs from brain in the data, the thresholds and SyCE's stable-image
    # class weight (docs/training.md)
    c, d = _flat(load_config("synth_brain").to_dict()), _flat(load_config("synth_chest").to_dict())
    assert set(c) == set(d)
    assert {k for k in c if c[k] != d[k]} == {"name", "data.name", "data.positive_fraction", "data.lesion_size",
                                             "eval.percentiles", "generators.syce_weights.cls_self"}


def test_each_config_folder_imports_its_own_common(tmp_path):
    for value in (1, 2):
        folder = tmp_path / f"f{value}"
        folder.mkdir()
        (folder / "common.py").write_text(f"VALUE = {value}\n")
        (folder / "cfg.py").write_text("import common\nimport ml_collections\n\n\ndef get_config():\n"
                                       "    return ml_collections.ConfigDict({'name': 'x', 'v': common.VALUE})\n")
    assert load_config(str(tmp_path / "f1" / "cfg.py")).v == 1
    assert load_config(str(tmp_path / "f2" / "cfg.py")).v == 2
    assert "common" not in sys.modules and str(tmp_path / "f1") not in sys.path


def test_paper_size_smoke_overrides_apply_and_keep_the_paper_architecture():
    """eval/paper_size_smoke.py's overrides are valid fields of brain_tumor.py and change
    only step counts and evaluation sizes, never the models' shapes."""
    path = CONFIG_DIR.parent / "eval" / "paper_size_smoke.py"
    spec = importlib.util.spec_from_file_location("paper_size_smoke_under_test", path)
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    config = load_config("brain_tumor", list(smoke.OVERRIDES) + ["data.name=folder:/nowhere"])
    assert smoke.IMAGE_SIZE == config.data.image_size == 224
    assert (config.classifier.depth, config.classifier.width) == (50, 1.0)
    assert (config.generators.unet_base_channels, config.generators.unet_depth) == (32, 4)
    assert (config.generators.d_base_channels, config.generators.d_layers) == (32, 5)
    assert (config.mgen.base_channels, config.translator.base_channels) == (32, 32)
    assert config.eval.steps == 4 and config.classifier.epochs == 16
