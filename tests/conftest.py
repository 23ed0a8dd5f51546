"""Shared fixtures: tiny smooth CNNs and images, kept small so the suite stays fast."""

from __future__ import annotations

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import atexit
import shutil
import tempfile

# One disk cache of compiled programs for the session and the processes its tests start
# (training workers, multi-host runs): the suite compiles the same tiny models' programs in many
# tests. A fresh directory each session, so no run depends on an earlier one; removed at exit.
if "ADVPATH_COMPILE_CACHE" not in os.environ:
    os.environ["ADVPATH_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="advpath-test-xla-")
    atexit.register(shutil.rmtree, os.environ["ADVPATH_COMPILE_CACHE"], True)

# The suite's programs run a few steps each, so compiling is most of its time: XLA's backend (LLVM)
# compiles them at optimisation level 0. XLA's own HLO passes are the same; the machine code is
# slower, and may round differently where LLVM would have fused a multiply and an add. Every
# tolerance of the suite holds at both levels (docs/performance.md, "The test suite's time").
# Runs and benchmarks keep XLA's default; a level already given in XLA_FLAGS is kept.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

from advpath_jax.compile_cache import enable_compile_cache
from tests_helpers import tiny_run_argv

enable_compile_cache()  # before the first compilation: JAX decides once per process


def tiny_cnn_params(key, channels: int = 1, hidden: int = 4):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w1": 0.5 * jax.random.normal(k1, (3, 3, channels, hidden)),
        "w2": 0.5 * jax.random.normal(k2, (3, 3, hidden, hidden)),
        "v": jax.random.normal(k3, (hidden,)),
    }


def tiny_cnn_logit(params, x):
    """A smooth (tanh) two-layer CNN: ``[B,H,W,C] -> [B]`` logit."""
    dn = ("NHWC", "HWIO", "NHWC")
    h = jnp.tanh(jax.lax.conv_general_dilated(x, params["w1"], (1, 1), "SAME", dimension_numbers=dn))
    h = jnp.tanh(jax.lax.conv_general_dilated(h, params["w2"], (2, 2), "SAME", dimension_numbers=dn))
    return jnp.einsum("bhwk,k->b", h, params["v"]) / h.shape[1]


def tiny_cnn_prob(params, x):
    return jax.nn.sigmoid(tiny_cnn_logit(params, x))


@pytest.fixture(scope="session")
def tiny_finished_run(tmp_path_factory):
    """Work directory of ONE finished tiny `advpath run` (classifier, CyCE, translator; 24 test
    images), shared by the end-to-end, explorer and reuse tests so the suite trains it once.
    Tests may add a second (resuming) run to it but must not change its models or maps."""
    from advpath_jax.cli import main as cli_main

    workdir = tmp_path_factory.mktemp("tiny") / "run"
    assert cli_main(tiny_run_argv(workdir)) == 0
    return workdir


@pytest.fixture(scope="session")
def cnn_params():
    return tiny_cnn_params(jax.random.key(0))


@pytest.fixture(scope="session")
def cnn_f(cnn_params):
    """``f = sigmoid(tiny CNN)`` as a Partial carrying its parameters."""
    return Partial(tiny_cnn_prob, cnn_params)


@pytest.fixture(scope="session")
def image_pair():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, 12, 12, 1)).astype(np.float32)
    xa = rng.uniform(size=(2, 12, 12, 1)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(xa)


@pytest.fixture(scope="session")
def tiny_run_every_image(tiny_finished_run, tmp_path_factory):
    """The tiny run's models with maps of every test image (``eval.attribute_images=all``; the
    default attributes only the images the metrics read): a copy of it, attributed again."""
    import shutil

    from advpath_jax.cli import main as cli_main

    workdir = tmp_path_factory.mktemp("tiny_every") / "run"
    shutil.copytree(tiny_finished_run, workdir, ignore=shutil.ignore_patterns("maps", "explorer", "timings"))
    assert cli_main(tiny_run_argv(workdir) + ["--set", "eval.attribute_images=all"]) == 0
    return workdir
