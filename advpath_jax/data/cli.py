"""``advpath data``: prepare, show and list data sets.

    advpath data list
    advpath data prepare synth_brain [--image-size 128] [--data-dir DIR] [--set noise=0.05]
    advpath data prepare msd_brain --manual-dir /data/Task01_BrainTumour
    advpath data prepare folder:/data/my_set
    advpath data show synth_brain --out x.png [--split val] [--num 12]

``--config FILE`` starts from that config's ``c.data`` (the name may then be omitted).
"""

from __future__ import annotations

import argparse

from advpath_jax import config_utils
from advpath_jax.data import datasets, show


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="synth_brain, synth_chest, msd_brain, rsna_pneumonia or folder:PATH")
    p.add_argument("--config", help="config file or name whose c.data section is the starting point")
    p.add_argument("--image-size", type=int, help="side of the square images in pixels")
    p.add_argument("--seed", type=int, help="data seed (synthetic generation and patient splits)")
    p.add_argument("--data-dir", help="where prepared copies live (default ~/.cache/advpath_jax/data)")
    p.add_argument("--manual-dir", help="local copy of MSD Task01_BrainTumour or RSNA pneumonia")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any c.data field, e.g. --set lesion_contrast=0.2 (repeatable)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="{prepare,show,list}")
    sub.required = True
    prep = sub.add_parser("prepare", help="write the TFDS array_record copy of a data set")
    _add_common(prep)
    show = sub.add_parser("show", help="save a grid of examples with mask contours")
    _add_common(show)
    show.add_argument("--out", required=True, help="output image file (PNG)")
    show.add_argument("--split", default="train", choices=("train", "val", "test"))
    show.add_argument("--num", type=int, default=12, help="number of examples (half positives when possible)")
    sub.add_parser("list", help="list the known data sets")


def build_data_config(args: argparse.Namespace):
    """The ``c.data`` described by the command line."""
    if args.config:
        base = config_utils.load_config(args.config).data
        if args.name and args.name != base.name:
            raise ValueError(f"the name {args.name!r} differs from data.name {base.name!r} of {args.config}; "
                             "give one of them")
        cfg = datasets.default_data_config(base.name)
        for key, value in base.items():
            cfg[key] = value
    elif args.name:
        cfg = datasets.default_data_config(args.name)
    else:
        raise ValueError("name a data set (e.g. synth_brain) or pass --config")
    overrides = [o[len("data."):] if o.startswith("data.") else o for o in args.overrides]
    config_utils.apply_overrides(cfg, overrides)
    for key, value in (("image_size", args.image_size), ("seed", args.seed),
                       ("data_dir", args.data_dir), ("manual_dir", args.manual_dir)):
        if value is not None:
            cfg[key] = value
    datasets.resolve_config(cfg)  # validates
    return cfg


def _cmd_prepare(cfg) -> int:
    path = datasets.prepare(cfg, progress=True)
    print(f"{cfg.name}: prepared at {path}")
    for split in ("train", "val", "test"):
        src = datasets.get_source(cfg, split)
        print(f"  {split}: {len(src)} examples")
    return 0


def _cmd_show(cfg, args) -> int:
    src = datasets.get_source(cfg, args.split, progress=True)
    if len(src) == 0:
        raise ValueError(f"split {args.split!r} of {cfg.name} is empty")
    num = max(1, args.num)
    labels, start = [], 0
    while start < len(src):  # scan in chunks until both classes have enough candidates
        chunk = src.read_batch(range(start, min(len(src), start + 512)))["label"]
        labels.extend(chunk.tolist())
        start += len(chunk)
        if min(labels.count(0), labels.count(1)) >= num:
            break
    picked = show.pick_examples(labels, num)
    batch = src.read_batch(picked)
    out = show.save_example_grid(batch, args.out, title=f"{cfg.name} / {args.split} ({cfg.image_size} px)")
    print(f"wrote {out} ({len(picked)} examples, {int(batch['label'].sum())} positive)")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.data_command == "list":
        for name, spec in datasets.DATASETS.items():
            shown = "folder:PATH" if name == "folder" else name
            print(f"{shown:16s} {spec.description}")
        return 0
    cfg = build_data_config(args)  # errors: one line, exit 2 (advpath_jax.cli)
    if args.data_command == "prepare":
        return _cmd_prepare(cfg)
    return _cmd_show(cfg, args)
