"""Path attribution engine: eq. 3-6 of the paper and the gradient baselines."""

from advpath_jax.attribution.adapters import features_and_head, resnet_gradcam, score_fn
from advpath_jax.attribution.methods import (
    gradcam, gradient_saliency, integrated_gradients, path_attribution, path_attribution_multi,
)
from advpath_jax.attribution.quadrature import NAMED_RULES, quadrature_rule
from advpath_jax.attribution.smoothing import gaussian_kernel, gaussian_smooth, paper_smoothing
from advpath_jax.attribution.weights import (parse_weight, register_weight, registered_weights, weight_v1,
                                             weight_v2)

__all__ = [
    "NAMED_RULES", "features_and_head", "gaussian_kernel", "gaussian_smooth",
    "gradcam", "gradient_saliency", "integrated_gradients", "paper_smoothing", "parse_weight", "path_attribution",
    "path_attribution_multi", "quadrature_rule", "register_weight", "registered_weights", "resnet_gradcam",
    "score_fn", "weight_v1", "weight_v2",
]
