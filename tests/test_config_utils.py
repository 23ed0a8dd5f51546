import pytest

from advpath_jax.config_utils import load_config
from advpath_jax.generators import loss_weights

CONFIGS = ["synth_brain", "synth_chest", "brain_tumor", "pneumonia"]


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_loads_with_the_sections_the_pipeline_needs(name):
    c = load_config(name)
    for section in ("data", "classifier", "generators", "mgen", "translator", "mpert", "eval"):
        assert section in c, (name, section)
    assert c.eval.steps >= 1 and len(c.eval.percentiles) >= 2


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_carries_the_papers_cyce_syce_loss_weights(name):
    c = load_config(name)
    # the authors' CyCE/SyCE loss weights (docs/training.md), written out here independently of the package's defaults
    assert loss_weights(c, "cyce") == {"adv": 0.2, "gan": 0.25, "rec": 10.0, "cls": 0.005}
    # the synthetic configs raise SyCE's stable-image terms (docs/training.md); the paper-size keep the paper's
    # (synth_chest's class term 0.3, synth_brain's 0.1)
    stable = ({"rec_self": 20.0, "cls_self": 0.3 if name == "synth_chest" else 0.1} if name.startswith("synth")
              else {"rec_self": 10.0, "cls_self": 0.01})
    assert loss_weights(c, "syce") == {"adv": 0.2, "gan": 0.25, **stable, "rec": 2.0, "cls": 0.005}
    changed = load_config(name, ["generators.syce_weights.cls_self=0.5"])  # overridable
    assert loss_weights(changed, "syce")["cls_self"] == 0.5


def test_a_derived_config_s_change_stays_in_that_config():
    chest = load_config("synth_chest")
    chest.generators.syce_weights.rec = 99.0
    chest.generators.cyce_weights.rec = 99.0
    for name in CONFIGS:
        assert loss_weights(load_config(name), "syce")["rec"] == 2.0, name
        assert loss_weights(load_config(name), "cyce")["rec"] == 10.0, name


def test_overrides_types_and_errors(tmp_path):
    c = load_config("synth_brain", ["eval.steps=7", "data.image_size=96", "eval.methods=('Gradient', 'Random')",
                                    "eval.rule=trapezoid"])
    assert c.eval.steps == 7 and c.data.image_size == 96 and c.eval.rule == "trapezoid"
    assert tuple(c.eval.methods) == ("Gradient", "Random")
    with pytest.raises(ValueError, match="no config field"):
        load_config("synth_brain", ["eval.stepz=3"])
    with pytest.raises(ValueError, match="no config section"):
        load_config("synth_brain", ["evaluation.steps=3"])
    with pytest.raises(ValueError, match="section.key=value"):
        load_config("synth_brain", ["eval.steps"])
    with pytest.raises(FileNotFoundError, match="no config named"):
        load_config("nonexistent_config")
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config(:\n")
    with pytest.raises(ValueError, match="broken.py"):
        load_config(str(broken))
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ValueError, match="get_config"):
        load_config(str(empty))
