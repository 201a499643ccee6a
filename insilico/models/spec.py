"""Models as data: a JSON-able spec ``{"class": "ConvNet", "config": {...}}`` and back."""
from __future__ import annotations

import dataclasses

import flax.linen as nn

from .autoencoder import Autoencoder
from .convnet import VGG, ConvNet
from .cornet import CORnetRT, CORnetS, CORnetZ
from .imagenet import VGG16, AlexNet, ResNet18, ResNet50
from .mlp import MLP
from .recurrent import BLTNet
from .resnet import ResNet
from .vit import ViT

MODEL_CLASSES = {cls.__name__: cls
                 for cls in (ConvNet, VGG, ResNet, MLP, AlexNet, VGG16, ResNet18, ResNet50, ViT, CORnetZ, CORnetRT,
                             CORnetS, BLTNet, Autoencoder)}


def model_spec(model: nn.Module) -> dict:
    """The spec of a zoo model class instance: its class name and constructor fields (lists for tuples).

    >>> spec = model_spec(ConvNet(widths=(8, 16), kernels=(3, 3), fc=(), num_classes=10))
    >>> spec["class"], spec["config"]["widths"]
    ('ConvNet', [8, 16])
    >>> build_model(model_spec(ConvNet())) == ConvNet()
    True
    """
    name = type(model).__name__
    if MODEL_CLASSES.get(name) is not type(model):          # a class of another module with a zoo class's name
        raise ValueError(f"no spec for model class {type(model).__module__}.{type(model).__qualname__}; known: "
                         f"{', '.join(f'insilico.models.{k}' for k in MODEL_CLASSES)}")

    def plain(v):
        return [plain(i) for i in v] if isinstance(v, (tuple, list)) else v

    config = {f.name: plain(getattr(model, f.name)) for f in dataclasses.fields(model)
              if f.init and f.name not in ("parent", "name")}
    return {"class": name, "config": config}


def build_model(spec: dict) -> nn.Module:
    """Instantiate a model from :func:`model_spec` output (lists become tuples)."""
    if spec.get("class") not in MODEL_CLASSES:
        raise ValueError(f"unknown model class {spec.get('class')!r}; known: {', '.join(MODEL_CLASSES)}")

    def frozen(v):
        return tuple(frozen(i) for i in v) if isinstance(v, list) else v

    return MODEL_CLASSES[spec["class"]](**{k: frozen(v) for k, v in spec["config"].items()})
