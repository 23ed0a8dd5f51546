"""Every trained model of a run, loaded for inference: classifier, generators, MGen, translator.

A run directory ``WORKDIR`` keeps model NAME in ``WORKDIR/NAME`` (``classifier``, ``cyce``,
``syce``, ``sagen``, ``mgen``, ``translator``; :func:`~advpath_jax.store.checkpoint.model_dir`).
Each loader builds the architecture of the config (shapes only where possible: the
checkpoint supplies every array), checks the checkpoint's fingerprint and returns the
modules in eval mode. They raise ``FileNotFoundError`` when the model was not trained and
``ValueError`` for a checkpoint of another configuration (naming the fields).

The config -> spec builders and fingerprints of the classifier, MGen and translator live
here too (the generators' are in :mod:`advpath_jax.generators.spec`), so that training
(:mod:`advpath_jax.training`) and inference share one definition.
"""

from __future__ import annotations

from typing import Any

from flax import nnx

from advpath_jax.config_utils import fingerprint_of
from advpath_jax.generators.spec import build_generators, check_kind, generator_fingerprint, generator_names
from advpath_jax.models.discriminator import DiscriminatorSpec, make_discriminator
from advpath_jax.models.mgen import MGen, MGenSpec, make_mgen
from advpath_jax.models.resnet import ResNet, make_resnet
from advpath_jax.models.translator import Translator, TranslatorSpec, make_translator
from advpath_jax.store.checkpoint import load_models, model_dir

CLASSIFIER = "classifier"
MGEN = "mgen"
TRANSLATOR = "translator"
CLASSIFIER_ARCH_FIELDS = ("depth", "width", "dropout", "head_units")


# ----------------------------------------------------------------------------- classifier

def classifier_fingerprint(config: Any) -> dict[str, Any]:
    """The classifier's architecture fields (checked against its checkpoints)."""
    fp = fingerprint_of(config.classifier, CLASSIFIER_ARCH_FIELDS)
    fp["image_size"] = int(config.data.image_size)
    fp["model"] = "resnet"
    return fp


def build_classifier(config: Any) -> ResNet:
    """A freshly initialised ResNet of ``config.classifier`` (train mode)."""
    c = config.classifier
    return make_resnet(int(c.depth), width=float(c.width), in_channels=1, dropout=float(c.dropout),
                       head_units=int(c.head_units), seed=int(config.seed))


def load_classifier(workdir: str, config: Any, *, which: str = "best") -> ResNet:
    """The trained classifier of run directory ``workdir`` (eval mode; from ``WORKDIR/classifier``)."""
    # Built abstractly (shapes only): an eager initialisation of the ResNet would cost
    # seconds of op dispatch.
    build = lambda: nnx.eval_shape(lambda: {CLASSIFIER: build_classifier(config)})
    return load_models(model_dir(workdir, CLASSIFIER), build, classifier_fingerprint(config), which=which)[CLASSIFIER]


# ----------------------------------------------------------------------------- generators

def load_generators(workdir: str, config: Any, kind: str, *, which: str = "best") -> dict[str, nnx.Module]:
    """Trained generators of ``WORKDIR/<kind>`` in eval mode: ``{"G0","G1"}`` or ``{"G"}`` (SAGen).

    The checkpoint also holds CyCE's and SyCE's critics; only the generators are restored.
    """
    check_kind(kind)
    names = generator_names(kind)

    def build():  # shapes only: the checkpoint supplies every array
        return nnx.eval_shape(lambda: {n: m for n, m in build_generators(config, kind).items() if n in names})

    return load_models(model_dir(workdir, kind), build, generator_fingerprint(config, kind), which=which)


# ----------------------------------------------------------------------------- MGen

def mgen_spec(config: Any) -> MGenSpec:
    """MGen's architecture from ``config.mgen`` (input channels from ``config.data``)."""
    s = config.mgen
    return MGenSpec(base_channels=int(s.base_channels), depth=int(s.depth),
                    in_channels=int(config.data.get("channels", 1)), dropout=float(s.dropout))


def mgen_fingerprint(config: Any) -> dict[str, Any]:
    spec = mgen_spec(config)
    return {"model": "mgen", "base_channels": spec.base_channels, "depth": spec.depth, "dropout": spec.dropout,
            "image_size": int(config.data.image_size), "in_channels": spec.in_channels}


def load_mgen(workdir: str, config: Any, *, which: str = "best") -> MGen:
    """The trained MGen of run directory ``workdir`` (``WORKDIR/mgen``, eval mode)."""
    spec = mgen_spec(config)
    models = load_models(model_dir(workdir, MGEN), lambda: {MGEN: make_mgen(spec)},
                         mgen_fingerprint(config), which=which)
    return models[MGEN]


# ----------------------------------------------------------------------------- AOPC translator

def translator_spec(config: Any) -> TranslatorSpec:
    """The translator's architecture from ``config.translator``."""
    s = config.translator
    return TranslatorSpec(base_channels=int(s.base_channels), depth=int(s.depth),
                          in_channels=int(config.data.get("channels", 1)), dropout=float(s.dropout))


def critic_spec(config: Any) -> DiscriminatorSpec:
    """The translator's (unconditional) critic."""
    s = config.translator
    return DiscriminatorSpec(image_size=int(config.data.image_size), in_channels=int(config.data.get("channels", 1)),
                             base_channels=int(s.critic_channels), layers=int(s.critic_layers))


def translator_fingerprint(config: Any) -> dict[str, Any]:
    g, d = translator_spec(config), critic_spec(config)
    return {"model": "translator", "base_channels": g.base_channels, "depth": g.depth, "dropout": g.dropout,
            "in_channels": g.in_channels, "image_size": d.image_size, "critic_channels": d.base_channels,
            "critic_layers": d.layers}


def build_translator_models(config: Any, seed: int | None = None) -> dict[str, nnx.Module]:
    """Fresh ``{"G": Translator, "D": critic}`` (train mode)."""
    seed = int(config.seed) if seed is None else seed
    return {"G": make_translator(translator_spec(config), seed=seed),
            "D": make_discriminator(critic_spec(config), seed=seed + 100)}


def load_translator(workdir: str, config: Any, *, which: str = "best") -> Translator:
    """The trained translator of run directory ``workdir`` (``WORKDIR/translator``, eval mode)."""
    models = load_models(model_dir(workdir, TRANSLATOR), lambda: build_translator_models(config),
                         translator_fingerprint(config), which=which)
    return models["G"]
