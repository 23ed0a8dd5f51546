"""Every explainer of the paper's Table 1 (plus Random) behind one interface.

``Explainers.explain(x, names, key) -> {name: maps [B, H, W]}`` for images ``[B, H, W, C]``
in [0, 1]. Generator pairs are computed once per batch and shared by the four maps of a
generator (E, E_FI^v1, E_FI^v2, E_FI,kσ^v2); E_FI^v1 and E_FI^v2 come from one pass of
gradients (:func:`advpath_jax.attribution.path_attribution_multi`) and E_FI,kσ^v2 is
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
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

import advpath_jax as ap
from advpath_jax.attribution.methods import path_attribution_multi

GENERATOR_LABELS = {"cyce": "CyCE", "syce": "SyCE"}
MAP_KINDS = ("E", "E_FI^v1", "E_FI^v2", "E_FI,kσ^v2")


def generator_method_names(kind: str) -> list[str]:
    return [f"{GENERATOR_LABELS[kind]}:{m}" for m in MAP_KINDS]


PAPER_METHODS: tuple[str, ...] = (
    "Gradient", "IG", "GradCAM", "MPert", "MGen", "SAGen",
    *generator_method_names("cyce"), *generator_method_names("syce"), "Random",
)
#: beyond the paper: SyCE's maps on the generator manifold (advpath_jax.attribution.manifold)
MANIFOLD_METHODS: tuple[str, ...] = ("SyCE:M_FI^v1", "SyCE:M_FI^v2", "SyCE:M_FI,kσ^v2")
#: what `advpath run` evaluates by default
DEFAULT_METHODS: tuple[str, ...] = PAPER_METHODS[:-1] + MANIFOLD_METHODS + ("Random",)
#: the maps shown in Figure 1
FIGURE_METHODS = ("Gradient", "IG", "GradCAM", "MPert", "MGen", "SAGen",
                  "CyCE:E", "CyCE:E_FI,kσ^v2", "SyCE:E", "SyCE:E_FI,kσ^v2", "SyCE:M_FI,kσ^v2")


def required_models(name: str) -> tuple[str, ...]:
    """Trained models a method needs besides the classifier."""
    if name.startswith("CyCE:"):
        return ("cyce",)
    if name.startswith("SyCE:"):
        return ("syce",)
    return {"SAGen": ("sagen",), "MGen": ("mgen",)}.get(name, ())


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


def check_method_names(names) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in DEFAULT_METHODS and not n.startswith(("CyCE:", "SyCE:"))]
    if unknown:
        raise ValueError(f"unknown explainer(s) {unknown}; available: {', '.join(DEFAULT_METHODS)}")
    return names


@dataclasses.dataclass
class Explainers:
    """Trained models and settings needed to produce maps.

    Attributes:
      f: classifier score ``[B,H,W,C] -> [B]`` (probability of class 1).
      classifier: the ResNet (for GradCAM).
      generators: ``{"cyce"|"syce"|"sagen": {name: module}}`` as returned by
        :func:`advpath_jax.training.generators.load_generator`.
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
        from advpath_jax.attribution.adapters import default_gradcam_stage
        from advpath_jax.explain.mpert import mpert_settings
        from advpath_jax.models.resnet import stage_hw

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
            self._logit_f = ap.score_fn(self.classifier, output="logit")
        return self._logit_f

    def pair(self, kind: str, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        from advpath_jax.training.generators import generator_pair

        if kind not in self.generators:
            raise ValueError(f"no trained {kind} generator loaded")
        return generator_pair(kind, self.generators[kind], self.classifier, x)

    def explain(self, x, names, key: jax.Array) -> dict[str, np.ndarray]:
        """Maps ``{name: [B, H, W]}`` (numpy float32) for every method in ``names``."""
        names = check_method_names(names)
        x = jnp.asarray(x, jnp.float32)
        smoothing = self.smoothing or ap.paper_smoothing(x.shape[1])
        out: dict[str, np.ndarray] = {}
        for kind, label in GENERATOR_LABELS.items():
            wanted = [n for n in names if n.startswith(label + ":")]
            if wanted:
                out.update(self._generator_maps(kind, x, wanted, smoothing))
        for name in names:
            if name in out:
                continue
            out[name] = np.asarray(self._single(name, x, key), np.float32)
        return {n: out[n] for n in names}

    def _generator_maps(self, kind, x, wanted, smoothing) -> dict[str, np.ndarray]:
        label = GENERATOR_LABELS[kind]
        x_start, x_adv = self.pair(kind, x)
        maps = {f"{label}:E": ap.path_attribution(self.f, x_start, x_adv, weight="delta")}
        if kind == "syce" and any(n.startswith("SyCE:M_") for n in wanted):
            maps.update(self._manifold_maps(x, x_adv, smoothing))
        if any(n.startswith(f"{label}:E_FI") for n in wanted):
            fi = path_attribution_multi(self.f, x_start, x_adv, weights=("v1", "v2"), steps=self.steps,
                                        rule=self.rule, chunk_size=self.chunk_size)
            maps[f"{label}:E_FI^v1"] = fi["v1"]
            maps[f"{label}:E_FI^v2"] = fi["v2"]
            maps[f"{label}:E_FI,kσ^v2"] = ap.gaussian_smooth(fi["v2"], *smoothing)
        unknown = [n for n in wanted if n not in maps]
        if unknown:
            known = generator_method_names(kind) + (list(MANIFOLD_METHODS) if kind == "syce" else [])
            raise ValueError(f"unknown {label} map(s) {unknown}; choose from {known}")
        return {n: np.asarray(maps[n], np.float32) for n in wanted}

    def _manifold_maps(self, x, x_adv, smoothing) -> dict[str, jax.Array]:
        from advpath_jax.attribution.manifold import syce_manifold_path_attribution

        c = (self.f(x) >= 0.5).astype(jnp.int32)
        fi = syce_manifold_path_attribution(self.f, self.generators["syce"], x, x_adv, c, multi=True,
                                            weights=("v1", "v2"), steps=self.steps, rule=self.rule,
                                            chunk_size=self.chunk_size)
        return {"SyCE:M_FI^v1": fi["v1"], "SyCE:M_FI^v2": fi["v2"],
                "SyCE:M_FI,kσ^v2": ap.gaussian_smooth(fi["v2"], *smoothing)}

    def _single(self, name: str, x: jax.Array, key: jax.Array) -> jax.Array:
        if name == "Gradient":
            return ap.gradient_saliency(self.f, x)
        if name == "IG":
            return jnp.abs(ap.integrated_gradients(self.f, x, steps=self.steps, rule=self.rule,
                                                   chunk_size=self.chunk_size))
        if name == "GradCAM":
            return ap.resnet_gradcam(self.classifier, x, stage=self.gradcam_stage)
        if name == "MPert":
            from advpath_jax.explain.mpert import mpert_maps

            return mpert_maps(self.logit_f, x, key=jax.random.fold_in(key, 1), **dict(self.mpert_kwargs))
        if name == "MGen":
            from advpath_jax.explain.mgen import mgen_maps

            if self.mgen is None:
                raise ValueError("no trained MGen model loaded")
            return mgen_maps(self.mgen, self.f, x)
        if name == "SAGen":
            x_s, x_a = self.pair("sagen", x)
            return ap.path_attribution(self.f, x_s, x_a, weight="delta")
        if name == "Random":
            return jax.random.uniform(jax.random.fold_in(key, 2), x.shape[:3])
        raise ValueError(f"unknown explainer {name!r}")
