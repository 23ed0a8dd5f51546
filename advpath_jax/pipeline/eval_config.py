"""The ``c.eval`` section of every config: one definition, with per-data-set overrides."""

from __future__ import annotations

import ml_collections


def eval_section(**overrides) -> ml_collections.ConfigDict:
    """Evaluation settings of ``advpath run`` (defaults sized for the 2-core CPU default).

    Fields:
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
    """
    c = ml_collections.ConfigDict()
    c.methods = None
    c.percentiles = (98, 99)
    c.ties = "percentile"
    c.steps = 50
    c.rule = "midpoint"
    c.chunk_size = None
    c.smoothing = None
    c.gradcam_stage = None
    c.shard_size = 100
    c.subset_size = 100
    c.aopc_steps = 50
    c.patch_size = None
    c.relevance_group = None
    c.relevance_steps = 16
    c.random_repeats = 2
    c.metric_chunk = 32
    c.figure_examples = 4
    c.bootstrap_resamples = 2000
    c.explorer = True
    for key, value in overrides.items():
        if key not in c:
            raise ValueError(f"unknown eval setting {key!r}")
        c[key] = value
    return c
