"""The paper's metrics: localisation (IoU/FNR), AOPC, feature relevance R, balanced subsets.

Every function that evaluates the classifier takes a pure score function
``f: [N, H, W, C] -> [N]`` (probability of class 1; a ``jax.tree_util.Partial`` carrying
parameters works) and runs as one jitted program, batched over images.
"""

from advpath_jax.metrics.aopc import AOPCResult, aopc_curves, aopc_from_scores, aopc_random, aopc_relative
from advpath_jax.metrics.balanced import balanced_subset
from advpath_jax.metrics.localization import (
    iou_fnr,
    localization_metrics,
    n_keep,
    percentile_threshold_masks,
)
from advpath_jax.metrics.regions import (
    default_patch_size,
    perturbation_curve,
    random_region_order,
    rank_regions,
    region_grid,
    region_relevance,
)
from advpath_jax.metrics.relevance import (
    RelevanceResult,
    deletion_preservation,
    relevance_r,
    relevance_summary,
    replacement_counts,
    trapezoid_auc,
)
from advpath_jax.metrics.stats import (by_class, constant_map_share, mean_curves_by_class, paired_bootstrap,
                                       summarize)

__all__ = [
    "AOPCResult",
    "RelevanceResult",
    "aopc_curves",
    "aopc_from_scores",
    "aopc_random",
    "aopc_relative",
    "balanced_subset",
    "by_class",
    "constant_map_share",
    "default_patch_size",
    "deletion_preservation",
    "iou_fnr",
    "localization_metrics",
    "mean_curves_by_class",
    "n_keep",
    "paired_bootstrap",
    "percentile_threshold_masks",
    "perturbation_curve",
    "random_region_order",
    "rank_regions",
    "region_grid",
    "region_relevance",
    "relevance_r",
    "relevance_summary",
    "replacement_counts",
    "summarize",
    "trapezoid_auc",
]
