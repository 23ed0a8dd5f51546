"""The ``c.eval`` section of every config: one definition, with per-data-set overrides."""

from __future__ import annotations

import ml_collections


def eval_section(**overrides) -> ml_collections.ConfigDict:
    """Evaluation settings of ``advpath run`` (defaults sized for the 2-core CPU default).

    Fields:
      methods: None (every method of Table 1, the manifold-path variants and Random) or a tuple.
      percentiles: Table 1 thresholds (paper: brain 98/99, pneumonia 90/95/98).
      steps: M, path points (paper: 50). rule: quadrature rule (paper: midpoint, eq. 6).
      chunk_size: path points per vmap chunk (None: automatic).
      smoothing: (size, sigma) of E_FI,kσ^v2; None: 28 px, σ 2 at 224 px, scaled.
      shard_size: images per attribution shard on disk.
      subset_size: balanced subset (by predicted class) for AOPC and R (paper: 1000).
      aopc_steps: L, regions replaced in the AOPC curve (paper's Figure 2: about 100).
      patch_size: AOPC/R regions in pixels; None: 9 px at 224 px, scaled.
      relevance_steps: points of the deletion / preservation curves (None: every region).
      random_repeats: random orderings averaged for the AOPC reference.
      metric_chunk: images per chunk in the metric programs.
      figure_examples: positives shown in Figure 1.
    """
    c = ml_collections.ConfigDict()
    c.methods = None
    c.percentiles = (98, 99)
    c.steps = 50
    c.rule = "midpoint"
    c.chunk_size = None
    c.smoothing = None
    c.shard_size = 100
    c.subset_size = 100
    c.aopc_steps = 50
    c.patch_size = None
    c.relevance_steps = 20
    c.random_repeats = 2
    c.metric_chunk = 32
    c.figure_examples = 4
    for key, value in overrides.items():
        if key not in c:
            raise ValueError(f"unknown eval setting {key!r}")
        c[key] = value
    return c
