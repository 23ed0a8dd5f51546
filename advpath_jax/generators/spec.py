"""The three generator kinds of the paper, from a config: CyCE, SyCE and SAGen.

* ``cyce`` / ``syce``: two U-Nets G0 (for images predicted 0) and G1 (predicted 1) and two
  critics D0, D1 (training only);
* ``sagen``: one U-Net with two heads ``(x_s, x_a)``; with ``generators.sagen_class_input``
  it also takes the predicted class as a second input channel.

This module turns ``config.generators`` into module specs (:func:`unet_spec`,
:func:`disc_spec`), fresh modules (:func:`build_generators`), the checkpoint fingerprint
(:func:`generator_fingerprint`) and the loss weights (:func:`loss_weights`, defaults
:data:`DEFAULT_WEIGHTS`, the authors' values). Inference is in
:mod:`advpath_jax.generators.inference`, the losses in :mod:`advpath_jax.training.generator_losses`.
"""

from __future__ import annotations

from typing import Any

from flax import nnx

from advpath_jax.config_utils import fingerprint_of
from advpath_jax.models.discriminator import DiscriminatorSpec, make_discriminator
from advpath_jax.models.unet import UNetSpec, make_unet

KINDS = ("cyce", "syce", "sagen")
GAN_KINDS = ("cyce", "syce")  # the kinds trained with critics
UNET_FIELDS = ("unet_base_channels", "unet_depth", "dropout", "residual", "head_channels")
D_FIELDS = ("d_base_channels", "d_layers")
DEFAULT_WEIGHTS = {
    "cyce": {"adv": 0.2, "gan": 0.25, "rec": 10.0, "cls": 0.005},
    "syce": {"adv": 0.2, "gan": 0.25, "rec_self": 10.0, "cls_self": 0.01, "rec": 2.0, "cls": 0.005},
    "sagen": {"cls": 0.005, "adv": 0.2, "rec_s": 10.0, "rec_a": 10.0},
}


def check_kind(kind: str) -> None:
    """Raise ``ValueError`` unless ``kind`` is one of :data:`KINDS`."""
    if kind not in KINDS:
        raise ValueError(f"generator kind must be one of {KINDS}, got {kind!r}")


def generator_names(kind: str) -> tuple[str, ...]:
    """Names of ``kind``'s generators (the modules inference needs): ``("G0", "G1")`` or ``("G",)``."""
    check_kind(kind)
    return ("G",) if kind == "sagen" else ("G0", "G1")


def loss_weights(config: Any, kind: str) -> dict[str, float]:
    """The loss weights of ``kind`` (``config.generators.<kind>_weights`` overrides the defaults)."""
    check_kind(kind)
    weights = dict(DEFAULT_WEIGHTS[kind])
    section = config.generators.get(f"{kind}_weights")
    if section is not None:
        for k, v in (section.to_dict() if hasattr(section, "to_dict") else dict(section)).items():
            if k not in weights:
                raise ValueError(f"unknown {kind} loss weight {k!r}; known: {sorted(weights)}")
            weights[k] = float(v)
    return weights


def residual_for(config: Any, kind: str) -> bool:
    """Whether ``kind``'s U-Nets add the input before clipping: ``generators.residual`` is a
    bool (all kinds) or a tuple of kinds (e.g. ``("cyce", "sagen")``)."""
    r = config.generators.get("residual", False)
    if isinstance(r, (bool, int)) or r is None:
        return bool(r)
    kinds = (r,) if isinstance(r, str) else tuple(r)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"generators.residual names unknown kinds {unknown}; known: {KINDS}")
    return kind in kinds


def sagen_class_input(config: Any) -> bool:
    """Whether SAGen's U-Net takes the predicted class as a second input channel."""
    return bool(config.generators.get("sagen_class_input", False))


def unet_spec(config: Any, kind: str | None = None) -> UNetSpec:
    """The U-Net of ``kind`` (``None``: the shared fields only, residual from the bool setting)."""
    g = config.generators
    residual = residual_for(config, kind) if kind is not None else bool(g.get("residual", False))
    in_channels = 2 if kind == "sagen" and sagen_class_input(config) else 1
    return UNetSpec(base_channels=int(g.unet_base_channels), depth=int(g.unet_depth), in_channels=in_channels,
                    out_channels=1, dropout=float(g.dropout), residual=residual,
                    head_channels=tuple(int(c) for c in g.get("head_channels", (32, 16))))


def disc_spec(config: Any) -> DiscriminatorSpec:
    """The critics D0, D1 of CyCE and SyCE."""
    g = config.generators
    return DiscriminatorSpec(image_size=int(config.data.image_size), in_channels=1,
                             base_channels=int(g.d_base_channels), layers=int(g.d_layers))


def generator_epochs(config: Any, kind: str) -> int:
    """Training epochs of ``kind``: ``generators.<kind>_epochs`` where set, else ``generators.epochs``."""
    check_kind(kind)
    g = config.generators
    value = g.get(f"{kind}_epochs")
    epochs = int(g.epochs if value is None else value)
    if epochs < 1:
        raise ValueError(f"generators.{kind}_epochs / generators.epochs must be >= 1, got {epochs}")
    return epochs


def generator_fingerprint(config: Any, kind: str) -> dict[str, Any]:
    """The architecture fields of ``kind`` stored with (and checked against) its checkpoints."""
    check_kind(kind)
    fields = UNET_FIELDS + (D_FIELDS if kind in GAN_KINDS else ())
    fp = fingerprint_of(config.generators, fields)
    fp.update(kind=kind, image_size=int(config.data.image_size), residual=residual_for(config, kind))
    if kind == "sagen":
        fp["class_input"] = sagen_class_input(config)
    return fp


def build_generators(config: Any, kind: str, seed: int | None = None) -> dict[str, nnx.Module]:
    """Fresh modules of ``kind``: ``{"G0","G1","D0","D1"}`` (CyCE/SyCE) or ``{"G"}`` (SAGen), train mode."""
    check_kind(kind)
    seed = int(config.seed) if seed is None else seed
    if kind == "sagen":
        return {"G": make_unet(unet_spec(config, kind), two_heads=True, seed=seed + 100)}
    return {"G0": make_unet(unet_spec(config, kind), seed=seed + 100),
            "G1": make_unet(unet_spec(config, kind), seed=seed + 200),
            "D0": make_discriminator(disc_spec(config), seed=seed + 300),
            "D1": make_discriminator(disc_spec(config), seed=seed + 400)}
