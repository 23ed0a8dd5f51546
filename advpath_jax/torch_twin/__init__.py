"""PyTorch twin of the ResNet classifier and PyTorch/Captum attribution baselines.

Used to check that the JAX numbers are right (same weights, same maps) and to measure
how much faster the JAX engine is than the usual PyTorch ways of computing the same
maps. PyTorch is an optional dependency (``pip install advpath-jax[torch]``): this
package imports without it, and the sub-modules import it on first use.

* ``advpath_jax.torch_twin.resnet``: ``TorchResNet(spec)``, ``images_to_torch``, ``maps_to_numpy``.
* ``advpath_jax.torch_twin.convert``: ``torch_resnet_from_flax(model)``, ``load_flax_state(twin, state)``
  and the inverse ``flax_resnet_from_torch(twin)``.
* ``advpath_jax.torch_twin.attribution``: E_FI^v2 (optionally smoothed) and Integrated
  Gradients as a chunked loop, ``torch.func.vmap`` and Captum.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TorchResNet": "advpath_jax.torch_twin.resnet",
    "images_to_torch": "advpath_jax.torch_twin.resnet",
    "maps_to_numpy": "advpath_jax.torch_twin.resnet",
    "torch_resnet_from_flax": "advpath_jax.torch_twin.convert",
    "load_flax_state": "advpath_jax.torch_twin.convert",
    "flax_resnet_from_torch": "advpath_jax.torch_twin.convert",
    "torch_score_fn": "advpath_jax.torch_twin.attribution",
    "efi_v2": "advpath_jax.torch_twin.attribution",
    "integrated_gradients": "advpath_jax.torch_twin.attribution",
}

__all__ = sorted(_LAZY)


def require_torch() -> Any:
    """Import and return ``torch``, with an installation hint when it is missing."""
    try:
        return importlib.import_module("torch")
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "advpath_jax.torch_twin needs PyTorch: pip install 'advpath-jax[torch]'") from err


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advpath_jax.torch_twin' has no attribute {name!r}")
