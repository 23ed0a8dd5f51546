"""``advpath import-classifier SOURCE --workdir DIR [--config FILE] [--set key=value ...]``.

Turns a binary classifier trained elsewhere into the run directory's classifier, so that
``advpath run`` (same ``--config``/``--set``) trains only the generators and explains it.

SOURCE is

* ``torchvision:PATH``: a torchvision ResNet-18/34/50 ``state_dict`` whose ``fc`` is one
  logit (``nn.Linear(K, 1)``) or the paper's head
  ``nn.Sequential(nn.Dropout(p), nn.Linear(K, 128), nn.ReLU(), nn.Linear(128, 1))``;
* ``twin:PATH``: a ``state_dict`` of ``advpath_jax.torch_twin.TorchResNet`` (the project's
  own PyTorch twin, e.g. a classifier exported with ``torch_resnet_from_flax`` and fine-tuned).

The architecture must be the config's (``classifier.depth``, ``width``, ``head_units``;
torchvision's ResNets have width 1.0). Written into ``DIR/classifier``: the ``best``
checkpoint (step 0), the settings record ``fingerprint.json``, ``config.json``, ``IMPORTED.json`` (source, SHA-256 of the file),
``test_metrics.json`` (AUC/accuracy on the config's test split, unless ``--no-eval``) and
the stage marker ``DONE.json`` that ``advpath run`` looks for. The images the pipeline
feeds the model are the data set's ``[N, H, W, 1]`` in [0, 1]: the imported model must
have been trained on images prepared the same way (see ``docs/pretrained.md``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
from typing import Any

import numpy as np
from flax import nnx

from advpath_jax.config_utils import load_config
from advpath_jax.data import load_split
from advpath_jax.io_utils import write_json_atomic
from advpath_jax.models.resnet import ResNet, ResNetSpec
from advpath_jax.models.probability import predicted_class
from advpath_jax.models.torchvision_import import classifier_from_torchvision, load_state_dict_file
from advpath_jax.pipeline.run import stage_marker
from advpath_jax.store.checkpoint import CheckpointStore, model_dir
from advpath_jax.store.models import CLASSIFIER as MODEL
from advpath_jax.store.models import classifier_fingerprint, load_classifier
from advpath_jax.store.predictions import classifier_scores
from advpath_jax.training.classifier import IMPORTED_MARKER, roc_auc
from advpath_jax.training.stage_record import ensure_record
from advpath_jax.training.trainer import save_run_config

FORMATS = ("torchvision", "twin")


def parse_source(source: str) -> tuple[str, str]:
    """``"torchvision:PATH"`` / ``"twin:PATH"`` -> ``(format, PATH)``."""
    fmt, sep, path = str(source).partition(":")
    if not sep or fmt not in FORMATS or not path:
        raise ValueError(f"classifier source must be 'torchvision:PATH' or 'twin:PATH', got {source!r}")
    return fmt, path


def config_spec(config: Any) -> ResNetSpec:
    """The ResNet architecture of ``config.classifier`` (1-channel images)."""
    c = config.classifier
    return ResNetSpec(depth=int(c.depth), width=float(c.width), in_channels=1,
                      head_units=int(c.head_units), dropout=float(c.dropout))


def read_classifier(config: Any, source: str | ResNet) -> ResNet:
    """The classifier of ``source`` (a SOURCE string, or a Flax ``ResNet`` of the project's
    family) as the config's Flax ResNet (eval mode); ``ValueError`` naming the file and the
    first mismatching key or field."""
    spec = config_spec(config)
    if isinstance(source, ResNet):
        diffs = [f"{k}: model {getattr(source.spec, k)!r}, config {getattr(spec, k)!r}"
                 for k in ("depth", "width", "in_channels", "head_units", "dropout")
                 if getattr(source.spec, k) != getattr(spec, k)]
        if diffs:
            raise ValueError(f"the Flax ResNet does not match config.classifier: {'; '.join(diffs)}")
        source.eval()
        return source
    fmt, path = parse_source(source)
    if fmt == "twin":
        from advpath_jax.torch_twin.convert import flax_resnet_from_torch  # needs torch (optional)

        return flax_resnet_from_torch(load_state_dict_file(path), spec, source=path)
    model = classifier_from_torchvision(path, depth=spec.depth, in_channels=1, first_conv="sum",
                                        dropout=spec.dropout, head_units=spec.head_units,
                                        seed=int(config.seed))
    if model.spec.width != spec.width:
        raise ValueError(f"{path}: the file's ResNet has width {model.spec.width:g}, the config asks "
                         f"classifier.width={spec.width:g} (use --set classifier.width={model.spec.width:g} "
                         f"here and in advpath run)")
    return model


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_classifier(config: Any, workdir: str, source: str | ResNet, *, evaluate: bool = True
                      ) -> dict[str, Any]:
    """Write the classifier of ``source`` as ``WORKDIR/classifier`` (see the module docstring).

    ``source``: ``"torchvision:PATH"``, ``"twin:PATH"`` or a Flax ``ResNet`` of the project's
    family whose spec equals the config's (e.g. one trained in a notebook).

    Refuses (``ValueError``) a work directory that already holds a classifier. Returns the
    summary also stored in ``DONE.json``.
    """
    out_dir = model_dir(workdir, MODEL)
    if os.path.exists(os.path.join(out_dir, "checkpoints")) or os.path.exists(stage_marker(workdir, MODEL)):
        raise ValueError(f"{out_dir} already holds a classifier; import into another --workdir")
    model = read_classifier(config, source)
    ensure_record(config, workdir, MODEL)  # the settings record `advpath run` checks before reusing it
    if isinstance(source, ResNet):
        provenance = {"imported_from": "a Flax ResNet (Python API)", "format": "flax"}
    else:
        fmt, path = parse_source(source)
        provenance = {"imported_from": os.path.abspath(path), "format": fmt, "sha256": _sha256(path)}
    with CheckpointStore(out_dir, classifier_fingerprint(config)) as store:
        store.save("best", 0, {"models": {MODEL: nnx.state(model)}},
                   {**provenance, "epoch": 0, "best_value": None, "best_epoch": None})
    save_run_config(out_dir, config)
    write_json_atomic(os.path.join(out_dir, IMPORTED_MARKER), provenance)
    summary: dict[str, Any] = dict(provenance)
    if evaluate:
        test = load_split(config.data, "test")
        probs = classifier_scores(load_classifier(workdir, config), np.asarray(test["image"], np.float32))
        y = np.asarray(test["label"])
        metrics = {"auc": roc_auc(probs, y), "accuracy": float(np.mean(predicted_class(probs) == (y == 1))),
                   "n": int(len(y))}
        write_json_atomic(os.path.join(out_dir, "test_metrics.json"), metrics)
        summary.update(metrics)
        print(f"[import-classifier] test AUC {metrics['auc']:.4f}, accuracy {metrics['accuracy']:.4f} "
              f"(n={metrics['n']})")
    write_json_atomic(stage_marker(workdir, MODEL), summary)
    print(f"[import-classifier] {provenance['imported_from']} -> {out_dir}")
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="torchvision:PATH or twin:PATH (a state_dict file)")
    parser.add_argument("--workdir", required=True, help="run directory (the classifier goes to WORKDIR/classifier)")
    parser.add_argument("--config", default=None, help="config file or name (default: synth_brain)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set classifier.depth=50 (repeatable)")
    parser.add_argument("--no-eval", dest="evaluate", action="store_false",
                        help="skip the test-split AUC (it needs the data set)")


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    import_classifier(config, args.workdir, args.source, evaluate=args.evaluate)
    return 0
