"""torchvision's ResNet definitions for the conversion tests (skipped without torch/torchvision)."""

from __future__ import annotations

import pytest


def _import_torchvision():
    """Import torchvision; when its compiled ops cannot load, declare the two it registers at import.

    The torchvision wheel for torch 2.13 is built against CUDA torch: on a CPU-only torch its
    ``_C.so`` fails to load and ``import torchvision`` stops with "operator torchvision::nms
    does not exist" (its ``meta_registrations`` refer to the op). The ResNet definitions are
    pure Python and never call those ops, so declaring the schemas is enough for them.
    """
    torch = pytest.importorskip("torch")
    try:
        import torchvision
        return torchvision
    except (RuntimeError, ImportError) as err:
        if "torchvision::nms" not in str(err) and "torchvision" not in str(err):
            pytest.skip(f"torchvision is not importable: {err}")
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _import_torchvision.library = lib  # keep the definitions alive
    import sys
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # drop the half-imported package
    import torchvision
    return torchvision


@pytest.fixture(scope="session")
def torchvision_models():
    """``torchvision.models`` (no weights are ever downloaded by these tests)."""
    pytest.importorskip("torch")
    try:
        return _import_torchvision().models
    except ImportError as err:
        pytest.skip(f"torchvision is not installed: {err}")
