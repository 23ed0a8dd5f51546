"""Train one model of a config (thin entry point; the logic is in advpath_jax.training).

    python train/main.py --config configs/synth_brain.py --workdir runs/brain --model classifier
    python train/main.py --config configs/synth_brain.py --workdir runs/brain --model cyce

Equivalent to ``advpath train MODEL --config FILE --workdir DIR [--set key=value ...]``.
"""

import argparse
import sys

from advpath_jax.training import cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=cli.MODELS)
    parser.add_argument("--config", default="synth_brain")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return cli.main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
