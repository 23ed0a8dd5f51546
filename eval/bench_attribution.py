"""Thin entry point: ``python eval/bench_attribution.py --model resnet18 --size 64 --steps 10,50,200``."""

import argparse
import sys

from advpath_jax.bench import attribution

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    attribution.add_arguments(parser)
    sys.exit(attribution.main(parser.parse_args()))
