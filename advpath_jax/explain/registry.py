"""Every explainer of the paper's Table 1 (plus Random) behind one interface, and their registry.

``Explainers.explain(x, names, key) -> {name: maps [B, H, W]}`` for images ``[B, H, W, C]``
in [0, 1]. Each explainer is one function ``fn(batch: ExplainBatch) -> maps [B, H, W]``
registered with :func:`register_explainer` (a decorator, like
:func:`advpath_jax.attribution.register_weight`) under its name with the trained models it
needs; :func:`required_models`, :func:`check_method_names`, :func:`default_methods` and
:func:`paper_methods` read the registry when called, so a new explainer is one function and
one decorator::

    @register_explainer("MyMap", models=("syce",))
    def my_map(batch):
        x_s, x_a, c = batch.generator_outputs("syce")
        return jnp.abs(x_a - x_s)[..., 0]

Work shared by several maps is computed once per batch by :class:`ExplainBatch`: a
generator's ``(x_s, x_a, c)`` (one forward program, :mod:`advpath_jax.generators.inference`)
serves its four maps (E, E_FI^v1, E_FI^v2, E_FI,kσ^v2); E_FI^v1 and E_FI^v2 come from one pass
of gradients (:func:`advpath_jax.attribution.path_attribution_multi`) and E_FI,kσ^v2 is
E_FI^v2 smoothed by the project's Gaussian (convolution is linear; docs/method.md).
``SyCE:M_FI^*`` are the same weights on SyCE's generator-manifold path
(:mod:`advpath_jax.attribution.manifold`), from x_s to x_a through the U-Net's codes.

Map conventions: all maps are non-negative, channel-summed. IG is shown and scored as
|IG| (the signed map is :func:`advpath_jax.integrated_gradients`); GradCAM is upsampled
bilinearly from the feature map of :attr:`Explainers.gradcam_stage` for the predicted class's
logit; MPert and MGen maps are their masks (1 = salient); Random is uniform noise.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from advpath_jax.attribution.adapters import default_gradcam_stage, resnet_gradcam, score_fn
from advpath_jax.attribution.manifold import syce_manifold_path_attribution
from advpath_jax.attribution.methods import (gradient_saliency, integrated_gradients, path_attribution,
                                             path_attribution_multi)
from advpath_jax.attribution.smoothing import gaussian_smooth, paper_smoothing
from advpath_jax.explain.mpert import mpert_maps, mpert_settings
from advpath_jax.generators.inference import generator_outputs
from advpath_jax.generators.mgen import mgen_maps
from advpath_jax.models.resnet import stage_hw

GENERATOR_LABELS = {"cyce": "CyCE", "syce": "SyCE"}
MAP_KINDS = ("E", "E_FI^v1", "E_FI^v2", "E_FI,kσ^v2")
#: beyond the paper: SyCE's maps on the generator manifold (advpath_jax.attribution.manifold)
MANIFOLD_METHODS: tuple[str, ...] = ("SyCE:M_FI^v1", "SyCE:M_FI^v2", "SyCE:M_FI,kσ^v2")
#: the maps shown in Figure 1
FIGURE_METHODS = ("Gradient", "IG", "GradCAM", "MPert", "MGen", "SAGen",
                  "CyCE:E", "CyCE:E_FI,kσ^v2", "SyCE:E", "SyCE:E_FI,kσ^v2", "SyCE:M_FI,kσ^v2")


def generator_method_names(kind: str) -> list[str]:
    """The four path maps of generator ``kind`` (``"cyce"`` or ``"syce"``)."""
    return [f"{GENERATOR_LABELS[kind]}:{m}" for m in MAP_KINDS]


# ----------------------------------------------------------------------------- the registry

ExplainerFn = Callable[["ExplainBatch"], jax.Array]


@dataclasses.dataclass(frozen=True)
class ExplainerSpec:
    """One explainer: its ``name``, the trained ``models`` it needs besides the classifier
    (``"cyce"``, ``"syce"``, ``"sagen"``, ``"mgen"``), its function ``fn(batch) -> [B, H, W]``,
    whether it is one of the paper's Table 1 (``paper``) and whether ``advpath run`` evaluates
    it by default (``default``)."""

    name: str
    fn: ExplainerFn
    models: tuple[str, ...] = ()
    paper: bool = False
    default: bool = True


_REGISTRY: dict[str, ExplainerSpec] = {}


def register_explainer(name: str, fn: ExplainerFn | None = None, *, models: Iterable[str] = (),
                       paper: bool = False, default: bool = True, overwrite: bool = False):
    """Register ``fn`` as explainer ``name`` (usable as ``@register_explainer("name", models=(...))``).

    Explainers are listed in registration order. Returns ``fn`` unchanged.
    """
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"invalid explainer name {name!r}")
    spec_models = tuple(str(m) for m in models)

    def add(f: ExplainerFn) -> ExplainerFn:
        if not callable(f):
            raise ValueError(f"explainer {name!r} must be callable fn(batch) -> maps [B, H, W]")
        if name in _REGISTRY and not overwrite and _REGISTRY[name].fn is not f:
            raise ValueError(f"an explainer named {name!r} is already registered (pass overwrite=True)")
        _REGISTRY[name] = ExplainerSpec(name=name, fn=f, models=spec_models, paper=bool(paper),
                                        default=bool(default))
        return f

    return add if fn is None else add(fn)


def unregister_explainer(name: str) -> ExplainerSpec:
    """Remove explainer ``name`` from the registry; returns its spec."""
    if name not in _REGISTRY:
        raise ValueError(f"no explainer named {name!r} is registered")
    return _REGISTRY.pop(name)


def registered_explainers() -> dict[str, ExplainerSpec]:
    """``{name: spec}`` of every explainer registered so far, in registration order (a copy)."""
    return dict(_REGISTRY)


def explainer_spec(name: str) -> ExplainerSpec:
    """The spec of a registered explainer (``ValueError`` naming the available ones otherwise)."""
    check_method_names([name])
    return _REGISTRY[name]


def paper_methods() -> tuple[str, ...]:
    """The paper's Table 1 (plus Random), in registration order."""
    return tuple(n for n, s in _REGISTRY.items() if s.paper)


def default_methods() -> tuple[str, ...]:
    """What ``advpath run`` evaluates by default."""
    return tuple(n for n, s in _REGISTRY.items() if s.default)


def __getattr__(name: str) -> tuple[str, ...]:
    # PAPER_METHODS / DEFAULT_METHODS are read from the registry at each access, so they
    # include explainers registered after this module was imported.
    if name == "PAPER_METHODS":
        return paper_methods()
    if name == "DEFAULT_METHODS":
        return default_methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def required_models(name: str) -> tuple[str, ...]:
    """Trained models explainer ``name`` needs besides the classifier (``()`` for an unknown name)."""
    spec = _REGISTRY.get(name)
    return () if spec is None else spec.models


def check_method_names(names: Iterable[str]) -> list[str]:
    """``names`` as a list; ``ValueError`` naming every unregistered one and the available ones."""
    names = list(names)
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise ValueError(f"unknown explainer(s) {unknown}; available: {', '.join(_REGISTRY)}")
    return names


def parse_method_list(text: str) -> list[str]:
    """Split a comma-separated list of method names, keeping the comma inside names such as
    ``"SyCE:E_FI,kσ^v2"`` (``ksigma`` is accepted for ``kσ``)."""
    names: list[str] = []
    for token in (t.strip() for t in text.replace("ksigma", "kσ").split(",")):
        if not token:
            continue
        if token.startswith("kσ") and names and names[-1].endswith("_FI"):
            names[-1] = f"{names[-1]},{token}"
        else:
            names.append(token)
    return check_method_names(names)


# ----------------------------------------------------------------------------- the models and one batch

@dataclasses.dataclass
class Explainers:
    """Trained models and settings needed to produce maps.

    Attributes:
      f: classifier score ``[B,H,W,C] -> [B]`` (probability of class 1).
      classifier: the ResNet (for GradCAM and the generators' predicted class).
      generators: ``{"cyce"|"syce"|"sagen": {name: module}}`` as returned by
        :func:`advpath_jax.store.models.load_generators`.
      mgen: the trained MGen model, or None.
      steps, rule, chunk_size: path quadrature (paper: M = 50, midpoint).
      smoothing: ``(size, sigma)`` of E_FI,kσ^v2 (paper: 28, 2 at 224 px).
      mpert_kwargs: keyword arguments of :func:`advpath_jax.explain.mpert.mpert_maps`.
      mpert_selection: how λ1/λ2 were chosen (:func:`advpath_jax.explain.mpert.select_lambdas`), or None.
      gradcam_stage: ResNet stage of GradCAM's feature map (None: the deepest at least 7×7).
      image_hw: the images' size, for :meth:`describe`.
    """

    f: Callable
    classifier: Any
    generators: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    mgen: Any = None
    steps: int = 50
    rule: Any = "midpoint"
    chunk_size: int | None = None
    smoothing: tuple[int, float] | None = None
    mpert_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    mpert_selection: Mapping[str, Any] | None = None
    gradcam_stage: int | None = None
    image_hw: tuple[int, int] | None = None

    def describe(self) -> dict[str, Any]:
        """Settings of the explainers as run: path quadrature, GradCAM's stage, MPert's objective and λ's."""
        out: dict[str, Any] = {"path": {"steps": int(self.steps), "rule": str(self.rule)},
                               "score": "stable sigmoid of the logit (gradient σ(z)σ(−z)·∇z)"}
        if self.image_hw is not None:
            hw = tuple(int(v) for v in self.image_hw)
            stage = self.gradcam_stage or default_gradcam_stage(hw)
            out["gradcam"] = {"stage": int(stage), "feature_hw": list(stage_hw(hw)[stage - 1]),
                              "rule": "deepest stage at least 7x7" if self.gradcam_stage is None else "configured",
                              "score": "(2c-1)*logit of the predicted class c"}
            s = mpert_settings(hw, **{k: v for k, v in dict(self.mpert_kwargs).items() if k != "key"})
            out["mpert"] = {"objective": s.objective, "lambda1": s.lambda1, "lambda2": s.lambda2,
                            "steps": s.steps, "lr": s.lr, "mask_hw": list(s.mask_hw),
                            "selection": None if self.mpert_selection is None else dict(self.mpert_selection)}
        return out

    @property
    def logit_f(self) -> Callable:
        """The classifier's logit ``[B,H,W,C] -> [B]`` (eval mode), built once."""
        if getattr(self, "_logit_f", None) is None:
            self._logit_f = score_fn(self.classifier, output="logit")
        return self._logit_f

    def generator_outputs(self, kind: str, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(x_s, x_a, c)`` of the loaded generator ``kind`` for images ``x``."""
        if kind not in self.generators:
            raise ValueError(f"no trained {kind} generator loaded")
        return generator_outputs(kind, self.generators[kind], self.classifier, x)

    def pair(self, kind: str, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(x_s, x_a)`` of the loaded generator ``kind`` for images ``x``."""
        x_s, x_a, _ = self.generator_outputs(kind, x)
        return x_s, x_a

    def explain(self, x, names, key: jax.Array) -> dict[str, np.ndarray]:
        """Maps ``{name: [B, H, W]}`` (numpy float32) for every method in ``names``."""
        names = check_method_names(names)
        batch = ExplainBatch(self, jnp.asarray(x, jnp.float32), key)
        out: dict[str, np.ndarray] = {}
        for name in names:
            if name not in out:
                out[name] = np.asarray(_REGISTRY[name].fn(batch), np.float32)
        return out


class ExplainBatch:
    """One batch being explained: ``explainers`` (models, settings), images ``x [B,H,W,C]``,
    the PRNG ``key`` and ``smoothing`` (of E_FI,kσ^v2), plus the work several explainers share,
    computed at most once per batch (:meth:`shared`)."""

    def __init__(self, explainers: Explainers, x: jax.Array, key: jax.Array):
        self.explainers = explainers
        self.x = x
        self.key = key
        self.smoothing = explainers.smoothing or paper_smoothing(x.shape[1])
        self._memo: dict[Any, Any] = {}

    def shared(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for in this batch, the stored value after."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def generator_outputs(self, kind: str) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(x_s, x_a, c)`` of generator ``kind`` on this batch."""
        return self.shared(("outputs", kind), lambda: self.explainers.generator_outputs(kind, self.x))

    def path_fi(self, kind: str) -> dict[str, jax.Array]:
        """``{"v1", "v2"}``: E_FI^v1 and E_FI^v2 on ``kind``'s path from x_s to x_a (one gradient pass)."""
        def compute():
            x_s, x_a, _ = self.generator_outputs(kind)
            ex = self.explainers
            return path_attribution_multi(ex.f, x_s, x_a, weights=("v1", "v2"), steps=ex.steps, rule=ex.rule,
                                          chunk_size=ex.chunk_size)
        return self.shared(("path_fi", kind), compute)

    def manifold_fi(self) -> dict[str, jax.Array]:
        """``{"v1", "v2"}`` on SyCE's generator-manifold path (one gradient pass)."""
        def compute():
            _, x_a, c = self.generator_outputs("syce")
            ex = self.explainers
            return syce_manifold_path_attribution(ex.f, ex.generators["syce"], self.x, x_a, c, multi=True,
                                                  weights=("v1", "v2"), steps=ex.steps, rule=ex.rule,
                                                  chunk_size=ex.chunk_size)
        return self.shared("manifold_fi", compute)


# ----------------------------------------------------------------------------- the built-in explainers
# Registration order is the order of default_methods() and paper_methods().

@register_explainer("Gradient", paper=True)
def gradient_map(batch: ExplainBatch) -> jax.Array:
    return gradient_saliency(batch.explainers.f, batch.x)


@register_explainer("IG", paper=True)
def ig_map(batch: ExplainBatch) -> jax.Array:
    ex = batch.explainers
    return jnp.abs(integrated_gradients(ex.f, batch.x, steps=ex.steps, rule=ex.rule, chunk_size=ex.chunk_size))


@register_explainer("GradCAM", paper=True)
def gradcam_map(batch: ExplainBatch) -> jax.Array:
    return resnet_gradcam(batch.explainers.classifier, batch.x, stage=batch.explainers.gradcam_stage)


@register_explainer("MPert", paper=True)
def mpert_map(batch: ExplainBatch) -> jax.Array:
    ex = batch.explainers
    return mpert_maps(ex.logit_f, batch.x, key=jax.random.fold_in(batch.key, 1), **dict(ex.mpert_kwargs))


@register_explainer("MGen", models=("mgen",), paper=True)
def mgen_map(batch: ExplainBatch) -> jax.Array:
    if batch.explainers.mgen is None:
        raise ValueError("no trained MGen model loaded")
    return mgen_maps(batch.explainers.mgen, batch.explainers.f, batch.x)


@register_explainer("SAGen", models=("sagen",), paper=True)
def sagen_map(batch: ExplainBatch) -> jax.Array:
    x_s, x_a, _ = batch.generator_outputs("sagen")
    return path_attribution(batch.explainers.f, x_s, x_a, weight="delta")


def _path_e(kind: str, batch: ExplainBatch) -> jax.Array:
    x_s, x_a, _ = batch.generator_outputs(kind)
    return path_attribution(batch.explainers.f, x_s, x_a, weight="delta")


def _path_fi(kind: str, weight: str, batch: ExplainBatch) -> jax.Array:
    return batch.path_fi(kind)[weight]


def _path_fi_smoothed(kind: str, batch: ExplainBatch) -> jax.Array:
    return gaussian_smooth(batch.path_fi(kind)["v2"], *batch.smoothing)


def _manifold_fi(weight: str, batch: ExplainBatch) -> jax.Array:
    return batch.manifold_fi()[weight]


def _manifold_fi_smoothed(batch: ExplainBatch) -> jax.Array:
    return gaussian_smooth(batch.manifold_fi()["v2"], *batch.smoothing)


for _kind, _label in GENERATOR_LABELS.items():
    _models = (_kind,)
    register_explainer(f"{_label}:E", functools.partial(_path_e, _kind), models=_models, paper=True)
    register_explainer(f"{_label}:E_FI^v1", functools.partial(_path_fi, _kind, "v1"), models=_models, paper=True)
    register_explainer(f"{_label}:E_FI^v2", functools.partial(_path_fi, _kind, "v2"), models=_models, paper=True)
    register_explainer(f"{_label}:E_FI,kσ^v2", functools.partial(_path_fi_smoothed, _kind), models=_models,
                       paper=True)

register_explainer("SyCE:M_FI^v1", functools.partial(_manifold_fi, "v1"), models=("syce",))
register_explainer("SyCE:M_FI^v2", functools.partial(_manifold_fi, "v2"), models=("syce",))
register_explainer("SyCE:M_FI,kσ^v2", _manifold_fi_smoothed, models=("syce",))
del _kind, _label, _models


@register_explainer("Random", paper=True)
def random_map(batch: ExplainBatch) -> jax.Array:
    return jax.random.uniform(jax.random.fold_in(batch.key, 2), batch.x.shape[:3])
