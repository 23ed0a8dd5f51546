"""MSD Task01 brain tumour (T1gd slices) at the paper's size: 224 px, ResNet-50.

The embedded default (``configs/synth_brain.py``) at the paper's size
(``configs/common.py``: ``PAPER_SIZE``; docs/training.md): ResNet-50 with dropout 0.3 and a
128-unit head, Adam 1e-4 for every model, 30 classifier and 40 generator epochs, the
generators' dropout 0.2 and the authors' loss weights for all three kinds. Sized for
accelerators. The data set is read from a local copy:
``advpath train classifier --config configs/brain_tumor.py --workdir runs/brain
--set data.manual_dir=/path/to/Task01_BrainTumour``.
"""

import common
import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = common.paper_size(common.derive("synth_brain"), name="brain_tumor", data_name="msd_brain")
    # c.classifier.init: "random", or "torchvision:PATH": start from a torchvision ResNet-50 state_dict
    # the user has locally (the paper's ImageNet backbone, e.g. resnet50-11ad3fa6.pth); the head stays
    # fresh and the stem's RGB filters are summed for the grey images (docs/pretrained.md).
    c.translator.id_weight = 0.1   # the translator paper: 0.1 for brain data (docs/baselines.md)
    return c
