"""RSNA pneumonia detection (Normal vs Lung Opacity) at the paper's size: 224 px, ResNet-50.

Sized for accelerators. The data set is read from a local copy:
``advpath train classifier --config configs/pneumonia.py --workdir runs/pneumonia
--set data.manual_dir=/path/to/rsna-pneumonia-detection-challenge``.
"""

import ml_collections

from advpath_jax.pipeline.eval_config import eval_section


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "pneumonia"
    c.seed = 0

    # --- data (advpath_jax.data) ---
    c.data = ml_collections.ConfigDict()
    c.data.name = "rsna_pneumonia"
    c.data.image_size = 224
    c.data.manual_dir = ml_collections.config_dict.placeholder(str)

    # --- classifier (DESIGN §6: ResNet-50, dropout 0.3, Dense 128, weighted BCE, Adam 1e-4) ---
    c.classifier = ml_collections.ConfigDict()
    c.classifier.depth = 50
    c.classifier.width = 1.0
    c.classifier.dropout = 0.3
    c.classifier.head_units = 128
    c.classifier.epochs = 30
    c.classifier.batch_size = 64
    c.classifier.lr = 1e-4
    c.classifier.augment = True
    c.classifier.eval_batch_size = 256
    c.classifier.progress = True

    # --- generators (DESIGN §3: Adam 1e-4 for G and D, GP weight 1) ---
    c.generators = ml_collections.ConfigDict()
    c.generators.unet_base_channels = 32
    c.generators.unet_depth = 4
    c.generators.dropout = 0.2
    c.generators.residual = False
    c.generators.head_channels = (32, 16)
    c.generators.d_base_channels = 32
    c.generators.d_layers = 5
    c.generators.epochs = 40
    c.generators.batch_size = 16  # per predicted class
    c.generators.lr = 1e-4
    c.generators.gp_weight = 1.0
    c.generators.augment = True
    c.generators.eval_batch_size = 128
    c.generators.progress = True

    # --- evaluation ---
    c.eval = eval_section(percentiles=(90, 95, 98), subset_size=1000, aopc_steps=100, shard_size=256,
                          relevance_steps=50, random_repeats=5, figure_examples=6)
    return c
