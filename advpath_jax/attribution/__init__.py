"""Path attribution engine: eq. 3-6 of the paper and the gradient baselines."""

from advpath_jax.attribution.adapters import features_and_head, resnet_gradcam, score_fn
from advpath_jax.attribution.methods import (
    NAMED_WEIGHTS, gradcam, gradient_saliency, integrated_gradients, path_attribution, path_attribution_multi,
    resolve_weight, weight_v1, weight_v2,
)
from advpath_jax.attribution.quadrature import NAMED_RULES, quadrature_rule
from advpath_jax.attribution.smoothing import gaussian_kernel, gaussian_smooth, paper_smoothing

__all__ = [
    "NAMED_RULES", "NAMED_WEIGHTS", "features_and_head", "gaussian_kernel", "gaussian_smooth",
    "gradcam", "gradient_saliency", "integrated_gradients", "paper_smoothing", "path_attribution", "path_attribution_multi",
    "quadrature_rule", "resnet_gradcam", "resolve_weight", "score_fn", "weight_v1", "weight_v2",
]
