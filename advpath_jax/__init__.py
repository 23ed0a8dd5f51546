"""advpath-jax: explain image classifiers by integrating feature importance along the
path from an image to a generated adversary (Charachon et al.), in JAX/Flax."""

from advpath_jax.attribution import (
    gaussian_kernel, gaussian_smooth, gradcam, gradient_saliency, integrated_gradients,
    paper_smoothing, path_attribution, quadrature_rule, resnet_gradcam, score_fn,
)

__version__ = "0.1.0"

__all__ = [
    "gaussian_kernel", "gaussian_smooth", "gradcam", "gradient_saliency", "integrated_gradients",
    "paper_smoothing", "path_attribution", "quadrature_rule", "resnet_gradcam", "score_fn",
]
