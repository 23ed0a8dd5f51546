"""The paper-size pipeline end to end on a tiny 224-px synthetic stand-in (tens of minutes on 2 CPU cores).

    python eval/paper_size_smoke.py --workdir /tmp/paper_smoke [--train-workers N]

Writes synthetic brain-like slices at 224 px (train 16, val 16, test 16, half of them with
high-contrast lesions, so that a few classifier steps separate the classes: the generators
need a classifier that predicts both) in the folder format, then runs ``advpath run --config configs/brain_tumor.py`` on
them: ResNet-50 and the paper-width U-Nets and critics exactly as that config builds them,
with a handful of steps per model and a small evaluation (M = 4 path points, 8 AOPC steps).
It checks that the accelerator configs run, not what they learn: the models are far too
briefly trained for their figures to mean anything, so the quality gates' warnings are
expected. Every override is printed. Exit status: that of ``advpath run``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

from advpath_jax.data.folder import write_folder
from advpath_jax.data.synthetic import synth_brain

SPLITS = {"train": 16, "val": 16, "test": 16}  # 16 train: two generator steps per epoch at batch 4 + 4
IMAGE_SIZE = 224

#: a handful of steps per model and a small evaluation; the architecture is the config's
OVERRIDES = (
    "classifier.epochs=16", "classifier.batch_size=8", "classifier.eval_batch_size=16", "classifier.lr=0.001",
    "generators.epochs=1", "generators.batch_size=4", "generators.eval_batch_size=8",
    "mgen.epochs=1", "mgen.steps_per_epoch=2", "mgen.batch_size=8",
    "translator.epochs=1", "translator.steps_per_epoch=2", "translator.batch_size=8",
    "mpert.steps=3", "mpert.select_images=4", "mpert.batch_size=8",
    "eval.steps=4", "eval.subset_size=8", "eval.aopc_steps=8", "eval.relevance_steps=8",
    "eval.random_repeats=1", "eval.shard_size=8", "eval.bootstrap_resamples=50",
    "eval.figure_examples=2",
)


def write_stand_in(root: str, seed: int = 0) -> str:
    """The 224-px folder data set (every split listed in labels.csv)."""
    n = sum(SPLITS.values())
    data = synth_brain(n, image_size=IMAGE_SIZE, seed=seed, positive_fraction=0.5, lesion_contrast=1.0,
                       lesion_size=0.1, id_prefix="smoke")
    splits = np.concatenate([[name] * count for name, count in SPLITS.items()])
    write_folder(root, data, splits=list(splits))
    return root


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="run directory (the data go into WORKDIR/data)")
    parser.add_argument("--train-workers", type=int, default=None)
    args = parser.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    data_root = write_stand_in(os.path.join(args.workdir, "data"))
    command = [sys.executable, "-m", "advpath_jax.cli", "run",
               "--config", os.path.join(here, os.pardir, "configs", "brain_tumor.py"),
               "--workdir", os.path.join(args.workdir, "run"), "--set", f"data.name=folder:{data_root}"]
    for item in OVERRIDES:
        command += ["--set", item]
    if args.train_workers is not None:
        command += ["--train-workers", str(args.train_workers)]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    code = subprocess.call(command)
    print(f"paper-size smoke run: exit {code} in {time.perf_counter() - start:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
