"""Synthetic chest-radiograph-like images with lung opacities, sized for 2 CPU cores.

Override any field from the command line, e.g.
``advpath run --config configs/synth_chest.py --set classifier.epochs=3``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "synth_chest"
    c.seed = 0

    # --- data (advpath_jax.data) ---
    c.data = ml_collections.ConfigDict()
    c.data.name = "synth_chest"          # synth_brain | synth_chest | msd_brain | rsna_pneumonia | folder:PATH
    c.data.image_size = 64               # square side in pixels (64-224)
    c.data.seed = 0                      # synthetic generation and patient splits
    c.data.num_train = 2000              # synthetic split sizes (real sets: their own sizes)
    c.data.num_val = 300
    c.data.num_test = 600
    c.data.positive_fraction = 0.40      # synthetic: exact share of images with opacities
    c.data.lesion_contrast = 0.30        # synthetic: mean opacity intensity added to the lung (0.6-1.4x each)
    c.data.lesion_size = 0.09            # synthetic: mean opacity radius / image width (0.7-1.4x each)
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

    # --- generators: CyCE, SyCE, SAGen (advpath_jax.training.generators) ---

    # --- MGen, translator (advpath_jax.training) ---

    # --- evaluation (advpath_jax.metrics / pipeline) ---
    return c
