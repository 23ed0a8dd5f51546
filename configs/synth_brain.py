"""Embedded default: synthetic brain-like slices, sized for 2 CPU cores.

Override any field from the command line, e.g.
``advpath run --config configs/synth_brain.py --set classifier.epochs=3``.
"""

import common
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "synth_brain"
    c.seed = 0

    # --- data (advpath_jax.data) ---
    c.data = ml_collections.ConfigDict()
    c.data.name = "synth_brain"          # synth_brain | synth_chest | msd_brain | rsna_pneumonia | folder:PATH
    c.data.image_size = 64               # square side in pixels (64-224)
    c.data.seed = 0                      # synthetic generation and patient splits
    c.data.num_train = 2000              # synthetic split sizes (real sets: their own sizes)
    c.data.num_val = 300
    c.data.num_test = 300
    c.data.positive_fraction = 0.25      # synthetic: exact share of images with lesions
    c.data.lesion_contrast = 0.30        # synthetic: mean lesion intensity above tissue (0.6-1.4x each)
    c.data.lesion_size = 0.06            # synthetic: mean lesion radius / image width (0.7-1.4x each)
    c.data.noise = 0.03                  # synthetic: std of the Gaussian pixel noise
    c.data.data_dir = None               # prepared copies; None: $ADVPATH_DATA_DIR or ~/.cache/advpath_jax/data
    c.data.manual_dir = None             # msd_brain / rsna_pneumonia: the local copy of the raw data
    c.data.split_fractions = None        # real sets: (train, val, test) by patient; None: the set's default
    c.data.min_lesion_pixels = 10        # msd_brain: positive slice threshold at 240 px (area-scaled)
    c.data.body_min_fraction = 0.01      # msd_brain: drop slices whose body covers less of the image
    c.data.aug_flip = True               # augmentation: random left-right flip
    c.data.aug_rotation = 10.0           # augmentation: max rotation in degrees
    c.data.aug_zoom = 0.1                # augmentation: scale in [1 - zoom, 1 + zoom]
    c.data.aug_translation = 0.1         # augmentation: max shift as a fraction of the image size

    # --- classifier (advpath_jax.training) ---
    c.classifier = ml_collections.ConfigDict()
    c.classifier.depth = 18
    c.classifier.width = 0.25
    c.classifier.dropout = 0.3
    c.classifier.head_units = 128
    c.classifier.init = "random"  # or "torchvision:PATH" (a torchvision ResNet state_dict; docs/pretrained.md)
    c.classifier.epochs = 10
    c.classifier.batch_size = 32
    c.classifier.lr = 1e-3  # the paper's 1e-4 needs many more epochs than a CPU budget allows
    c.classifier.lr_schedule = "cosine"  # plateau | cosine: settles the 0.5 threshold (docs/training.md)
    c.classifier.monitor = "auc"  # validation metric of the best checkpoint and of early stopping
    c.classifier.early_stop_patience = 4  # stop after 4 epochs without a better one (epochs: the maximum; 0: off)
    c.classifier.augment = True
    c.classifier.eval_batch_size = 256
    c.classifier.progress = True

    # --- generators: CyCE, SyCE, SAGen (advpath_jax.generators; trained by advpath_jax.training.generators) ---
    c.generators = ml_collections.ConfigDict()
    c.generators.unet_base_channels = 8
    c.generators.unet_depth = 3
    c.generators.dropout = 0.0          # the paper's 0.2 slows the few CPU steps (docs/training.md)
    c.generators.residual = ("cyce", "sagen")  # x + G(x) before clipping (these kinds): start at the identity
    c.generators.update_scheme = "authors"  # CyCE/SyCE: one update per half, the authors' code; "joint": one on both
    c.generators.val_criterion = "quality"  # fixed objective + (1 - min(flip, keep)); "own_loss": the authors' (docs/training.md)
    c.generators.head_channels = (32, 16)
    c.generators.sagen_class_input = True  # SAGen's U-Net also gets the predicted class ([x, c])
    c.generators.d_base_channels = 8
    c.generators.d_layers = 3
    c.generators.epochs = 6
    c.generators.cyce_epochs = None     # per-kind epoch counts (None: generators.epochs)
    c.generators.syce_epochs = 10       # SyCE's stable image needs more steps than CyCE/SAGen (docs/training.md)
    c.generators.sagen_epochs = None
    c.generators.steps_per_epoch = 50   # cap on steps per epoch (None: the whole train split)
    c.generators.batch_size = 8         # per predicted class: each step sees 8 + 8 images
    c.generators.lr = 3e-3              # the paper's 1e-4 is too slow for a CPU budget
    c.generators.lr_schedule = "cosine"  # times the plateau decay below
    c.generators.lr_patience = 1        # x0.3 after an epoch without a better validation objective
    c.generators.gp_weight = 1.0
    c.generators.augment = False
    c.generators.eval_batch_size = 64
    c.generators.progress = True
    # Loss weights (the authors' code, docs/training.md). CyCE: the paper's. SyCE: the paper's but for its
    # stable image G_c(x_a), 10x cls_self (0.01) and 2x rec_self (10): with the paper's it lost the class
    # for 18-26% of the test images; measured in docs/training.md. SAGen's loss is inferred; its weights are
    # tuned here (docs/training.md). The paper-size configs keep the paper's (configs/common.py).
    c.generators.cyce_weights = ml_collections.ConfigDict(common.CYCE_WEIGHTS)
    c.generators.syce_weights = ml_collections.ConfigDict({**common.SYCE_WEIGHTS, "cls_self": 0.1, "rec_self": 20.0})
    c.generators.sagen_weights = ml_collections.ConfigDict(
        {"cls": 0.1, "adv": 0.2, "rec_s": 10.0, "rec_a": 2.0})

    # --- MGen (advpath_jax.training.mgen; Dabkowski & Gal) ---
    c.mgen = ml_collections.ConfigDict()
    c.mgen.base_channels = 8             # U-Net trunk width (architecture: part of the checkpoint fingerprint)
    c.mgen.depth = 3                     # U-Net down-samplings
    c.mgen.dropout = 0.0
    c.mgen.epochs = 3
    c.mgen.steps_per_epoch = 50          # cap on batches per epoch (None: the whole train split)
    c.mgen.batch_size = 32
    c.mgen.lr = 3e-3                     # Adam
    c.mgen.area_weight = 8.0             # loss = destroyer + 8 area + smooth_weight smooth + 0.3 preserver
    c.mgen.area_power = 0.3              # area = mean((m + 5e-4)^0.3)
    c.mgen.smooth_weight = 0.5           # w_s of the squared total variation
    c.mgen.preserver_weight = 0.3
    c.mgen.destroyer_margin = 1.0        # hinge margins on the classifier logit
    c.mgen.preserver_margin = 1.0
    c.mgen.blur_sigma = None             # perturbation blur; None: 10 px at 224 scaled to the image size
    c.mgen.progress = True

    # --- AOPC translator (advpath_jax.training.translator; Fixed-Point GAN style) ---
    c.translator = ml_collections.ConfigDict()
    c.translator.base_channels = 8       # U-Net trunk width (architecture)
    c.translator.depth = 3
    c.translator.dropout = 0.0
    c.translator.critic_channels = 8     # WGAN critic (architecture)
    c.translator.critic_layers = 4
    c.translator.epochs = 2
    c.translator.steps_per_epoch = 30    # cap on batches per epoch (None: the whole train split)
    c.translator.batch_size = 32         # half predicted 0, half predicted 1
    c.translator.lr = 1e-3               # Adam for G and the critic
    c.translator.beta1 = 0.5
    c.translator.beta2 = 0.999
    c.translator.n_critic = 1            # critic updates per generator update
    c.translator.gp_weight = 10.0        # WGAN-GP
    c.translator.cls_weight = 1.0        # domain classification (by the frozen classifier)
    c.translator.rec_weight = 10.0       # cycle reconstruction
    c.translator.id_weight = 0.1         # identity for the same domain
    c.translator.progress = True

    # --- MPert (advpath_jax.explain.mpert; Fong & Vedaldi) ---
    c.mpert = ml_collections.ConfigDict()
    c.mpert.steps = 150                  # Adam steps per image (all images of a batch at once)
    c.mpert.lr = 0.1
    c.mpert.mask_size = None             # None: 56 at 224 px, scaled to the image size
    c.mpert.mask_sigma = None            # None: 3 at 224 px, scaled
    c.mpert.blur_sigma = None            # None: 5 at 224 px, scaled
    c.mpert.lambda1 = 0.05               # weight of mean(1 - m)
    c.mpert.lambda2 = 0.2                # weight of TV_beta(m) (mean over pixels)
    c.mpert.beta = 3.0
    c.mpert.noise_std = 0.0              # Gaussian noise on the perturbed image at each step
    c.mpert.objective = "log_complement"  # -log(1 - p_c) of the predicted class (docs/baselines.md); "probability": F&V's p_c
    c.mpert.lambda_grid = ((0.025, 0.1), (0.05, 0.2), (0.1, 0.4))  # (lambda1, lambda2) tried on validation images
    c.mpert.select_images = 32           # validation images (balanced by predicted class) for the choice; None grid: no choice
    c.mpert.select_min_flip = 0.8        # largest lambda1 whose deletion still flips this share of them
    c.mpert.batch_size = 64              # images optimised together

    # --- evaluation (advpath_jax.metrics / pipeline) ---
    c.eval = common.eval_section()  # fields documented in advpath_jax/pipeline/eval_config.py
    return c
