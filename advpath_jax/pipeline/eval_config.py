"""The ``c.eval`` section: the package's defaults and the check of what a config gives.

Configs are plain data (``configs/common.py`` writes the same values out as ``EVAL``;
``tests/test_configs.py`` checks they agree). Fields (documented once, here):

  methods: None (every method of Table 1, the manifold-path variants and Random) or a tuple.
  percentiles: Table 1 thresholds (paper: brain 98/99, pneumonia 90/95/98).
  ties: thresholding rule: "percentile" (B = pixels >= np.percentile(map, p), ties kept, the
    authors' code) or "index" (exactly the top ceil(N (100 - p) / 100) pixels).
  steps: M, path points (paper: 50). rule: quadrature rule (paper: midpoint, eq. 6).
  chunk_size: path points per vmap chunk (None: automatic).
  smoothing: (size, sigma) of E_FI,kσ^v2; None: 28 px, σ 2 at 224 px, scaled.
  gradcam_stage: ResNet stage (1-4) of GradCAM's feature map; None: the deepest stage at
    least 7x7 (the last, 7x7, at 224 px; stage 2, 8x8, at 64 px).
  shard_size: images per attribution shard on disk.
  attribute_images: which test images get maps: "scored" (the images the metrics read: the
    positives of Table 1 and the balanced subset of AOPC and R) or "all" (every test image, for
    the explorer). The tables are the same either way.
  subset_size: balanced subset (by predicted class) for AOPC and R (paper: 1000).
  aopc_steps: L, regions replaced in the AOPC curve (paper's Figure 2: about 100).
  patch_size: AOPC region side in pixels, a divisor of the image side; None: the divisor
    nearest to 9 px at 224 px, scaled (8 at 224, 2 at 64).
  relevance_group: pixels replaced per step of the deletion / preservation curves
    (None: W, the image width, as Lim et al.'s 224 at 224 x 224).
  relevance_steps: intervals of those curves (f evaluated after every (groups / steps)-th
    group; must divide the H*W / group groups); None: every group. 16 at 64 px: every 4th.
  bootstrap_resamples: resamples of the paired bootstrap of the findings.
  random_repeats: random orderings averaged for the AOPC reference.
  metric_chunk: images per chunk in the metric programs.
  figure_examples: positives shown in Figure 1.
  explorer: write the browser explorer (``WORKDIR/explorer/index.html``, see docs/explorer.md).
Optional (read only when present): quality_bars (:mod:`advpath_jax.pipeline.quality`),
wait_timeout_s (multi-process runs: how long to wait for the other processes' shards).
"""

from __future__ import annotations

from typing import Any, Mapping

import ml_collections

from advpath_jax.errors import AdvpathError

# Defaults sized for the 2-core CPU default (the values of configs/synth_brain.py).
EVAL_DEFAULTS: dict[str, Any] = {
    "methods": None,
    "percentiles": (98, 99),
    "ties": "percentile",
    "steps": 50,
    "rule": "midpoint",
    "chunk_size": None,
    "smoothing": None,
    "gradcam_stage": None,
    "shard_size": 100,
    "attribute_images": "scored",
    "subset_size": 100,
    "aopc_steps": 50,
    "patch_size": None,
    "relevance_group": None,
    "relevance_steps": 16,
    "random_repeats": 2,
    "metric_chunk": 32,
    "figure_examples": 4,
    "bootstrap_resamples": 2000,
    "explorer": True,
}
OPTIONAL_EVAL_FIELDS = ("quality_bars", "wait_timeout_s")
ATTRIBUTE_IMAGES = ("scored", "all")  # the values of attribute_images


def check_eval_section(section: ml_collections.ConfigDict | Mapping[str, Any]) -> ml_collections.ConfigDict:
    """``section`` with every missing field of :data:`EVAL_DEFAULTS` filled in (in place for a
    ConfigDict); a field the package does not know, or an ``attribute_images`` other than
    :data:`ATTRIBUTE_IMAGES`, is an :class:`AdvpathError` naming it."""
    given = section.to_dict() if hasattr(section, "to_dict") else dict(section)
    unknown = sorted(set(given) - set(EVAL_DEFAULTS) - set(OPTIONAL_EVAL_FIELDS))
    if unknown:
        raise AdvpathError(f"config eval: unknown setting(s) {unknown}; known: "
                         f"{sorted(EVAL_DEFAULTS) + list(OPTIONAL_EVAL_FIELDS)}")
    choice = given.get("attribute_images", EVAL_DEFAULTS["attribute_images"])
    if choice not in ATTRIBUTE_IMAGES:
        raise AdvpathError(f"config eval.attribute_images must be one of {ATTRIBUTE_IMAGES}, got {choice!r}")
    if not isinstance(section, ml_collections.ConfigDict):
        section = ml_collections.ConfigDict(given)
    with section.unlocked():
        for key, value in EVAL_DEFAULTS.items():
            if key not in section:
                section[key] = value
    return section
