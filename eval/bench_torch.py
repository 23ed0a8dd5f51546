"""JAX engine vs PyTorch (hand-written loop, torch.func.vmap) and Captum, same ResNet, same maps.

    python eval/bench_torch.py --model resnet50 --size 224 --steps 50 --batch 1,2 --json bench_torch.json

Equivalent to ``advpath bench torch ...``; the logic is in ``advpath_jax.bench.torch_bench``.
"""

import argparse
import sys

from advpath_jax.bench import torch_bench


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    torch_bench.add_arguments(parser)
    return torch_bench.main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
