"""MSD Task01 brain tumour (T1gd slices) at the paper's size: 224 px, ResNet-50.

Sized for accelerators. The data set is read from a local copy:
``advpath train classifier --config configs/brain_tumor.py --workdir runs/brain
--set data.manual_dir=/path/to/Task01_BrainTumour``.
"""

import ml_collections

from advpath_jax.pipeline.eval_config import eval_section
from advpath_jax.training.generators import DEFAULT_WEIGHTS


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "brain_tumor"
    c.seed = 0

    # --- data (advpath_jax.data) ---
    c.data = ml_collections.ConfigDict()
    c.data.name = "msd_brain"
    c.data.image_size = 224
    c.data.manual_dir = ml_collections.config_dict.placeholder(str)

    # --- classifier (the paper, docs/training.md: ResNet-50, dropout 0.3, Dense 128, weighted BCE, Adam 1e-4) ---
    c.classifier = ml_collections.ConfigDict()
    c.classifier.depth = 50
    c.classifier.width = 1.0
    c.classifier.dropout = 0.3
    c.classifier.head_units = 128
    # "random", or "torchvision:PATH": start from a torchvision ResNet-50 state_dict the user has
    # locally (the paper's ImageNet backbone, e.g. resnet50-11ad3fa6.pth); the head stays fresh
    # and the stem's RGB filters are summed for the grey images (docs/pretrained.md).
    c.classifier.init = "random"
    c.classifier.epochs = 30
    c.classifier.batch_size = 64
    c.classifier.lr = 1e-4
    c.classifier.lr_schedule = "plateau"
    c.classifier.augment = True
    c.classifier.eval_batch_size = 256
    c.classifier.progress = True

    # --- generators (the authors' code, docs/training.md: Adam 1e-4 for G and D, GP weight 1) ---
    c.generators = ml_collections.ConfigDict()
    c.generators.unet_base_channels = 32
    c.generators.unet_depth = 4
    c.generators.dropout = 0.2
    c.generators.residual = False
    c.generators.sagen_class_input = False  # True: [x, c] input (what the synthetic configs use)
    c.generators.head_channels = (32, 16)
    c.generators.d_base_channels = 32
    c.generators.d_layers = 5
    c.generators.epochs = 40
    c.generators.batch_size = 16  # per predicted class
    c.generators.lr = 1e-4
    c.generators.lr_schedule = "plateau"  # ReduceLROnPlateau-like: x0.3, patience 4, floor 1e-5
    c.generators.gp_weight = 1.0
    c.generators.augment = True
    # Loss weights (the authors' code, docs/training.md); SAGen's loss is inferred and uses the CyCE-like weights.
    c.generators.cyce_weights = ml_collections.ConfigDict(DEFAULT_WEIGHTS["cyce"])
    c.generators.syce_weights = ml_collections.ConfigDict(DEFAULT_WEIGHTS["syce"])
    c.generators.sagen_weights = ml_collections.ConfigDict(DEFAULT_WEIGHTS["sagen"])
    c.generators.eval_batch_size = 128
    c.generators.progress = True

    # --- MGen (Dabkowski & Gal), AOPC translator (Fixed-Point GAN style), MPert (Fong & Vedaldi) ---
    c.mgen = ml_collections.ConfigDict()
    c.mgen.base_channels = 32
    c.mgen.depth = 4
    c.mgen.dropout = 0.0
    c.mgen.epochs = 20
    c.mgen.steps_per_epoch = None        # the whole train split
    c.mgen.batch_size = 32
    c.mgen.lr = 1e-4
    c.mgen.area_weight = 8.0
    c.mgen.area_power = 0.3
    c.mgen.smooth_weight = 0.5
    c.mgen.preserver_weight = 0.3
    c.mgen.destroyer_margin = 1.0
    c.mgen.preserver_margin = 1.0
    c.mgen.blur_sigma = None             # 10 px at 224
    c.mgen.progress = True

    c.translator = ml_collections.ConfigDict()
    c.translator.base_channels = 32
    c.translator.depth = 4
    c.translator.dropout = 0.0
    c.translator.critic_channels = 32
    c.translator.critic_layers = 5
    c.translator.epochs = 40
    c.translator.steps_per_epoch = None
    c.translator.batch_size = 32
    c.translator.lr = 1e-4
    c.translator.beta1 = 0.5
    c.translator.beta2 = 0.999
    c.translator.n_critic = 1
    c.translator.gp_weight = 10.0
    c.translator.cls_weight = 1.0
    c.translator.rec_weight = 10.0
    c.translator.id_weight = 0.1   # the translator paper: 0.1 for brain data (docs/baselines.md)
    c.translator.progress = True

    c.mpert = ml_collections.ConfigDict()
    c.mpert.steps = 150
    c.mpert.lr = 0.1
    c.mpert.mask_size = None             # 56 at 224 px
    c.mpert.mask_sigma = None            # 3 at 224 px
    c.mpert.blur_sigma = None            # 5 at 224 px
    c.mpert.lambda1 = 0.05
    c.mpert.lambda2 = 0.2
    c.mpert.beta = 3.0
    c.mpert.noise_std = 0.0
    c.mpert.objective = "log_complement"  # -log(1 - p_c) of the predicted class (docs/baselines.md); "probability": F&V's p_c
    c.mpert.lambda_grid = ((0.025, 0.1), (0.05, 0.2), (0.1, 0.4))  # (lambda1, lambda2) tried on validation images
    c.mpert.select_images = 32           # validation images (balanced by predicted class) for the choice; None grid: no choice
    c.mpert.select_min_flip = 0.8        # largest lambda1 whose deletion still flips this share of them
    c.mpert.batch_size = 64

    # --- evaluation ---
    c.eval = eval_section(percentiles=(98, 99), subset_size=1000, aopc_steps=100, shard_size=256,
                          relevance_steps=56, random_repeats=5, figure_examples=6)
    return c
