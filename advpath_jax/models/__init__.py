"""Flax NNX models: the ResNet classifier family and the generators."""

from advpath_jax.models.resnet import ResNet, ResNetSpec, make_resnet

__all__ = ["ResNet", "ResNetSpec", "make_resnet"]
