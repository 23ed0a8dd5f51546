"""Flax NNX models: the ResNet classifier family and the generators."""

from advpath_jax.models.resnet import ResNet, ResNetSpec, make_resnet
from advpath_jax.models.torchvision_import import classifier_from_torchvision, resnet_from_torchvision

__all__ = ["ResNet", "ResNetSpec", "classifier_from_torchvision", "make_resnet", "resnet_from_torchvision"]
