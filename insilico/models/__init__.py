"""The animals: pure Linen modules whose named :class:`Stage` submodules are the recordable sites."""
from ._stage import (
    ConvStage,
    DenseStage,
    DivisiveNorm,
    Normalize,
    Readout,
    Stage,
    avg_pool2,
    max_pool2,
    relu,
    relu_gradient_override,
    relu_override_state,
)
from .autoencoder import Autoencoder
from .convnet import VGG, ConvNet
from .cornet import CORnetRT, CORnetS, CORnetZ
from .imagenet import VGG16, AlexNet, ResNet18, ResNet50
from .mlp import MLP
from .recurrent import BLTNet
from .resnet import BasicBlock, Bottleneck, ResNet
from .spec import MODEL_CLASSES, build_model, model_spec
from .vit import ViT

__all__ = ["relu", "relu_gradient_override", "relu_override_state", "Stage", "ConvStage", "DenseStage", "DivisiveNorm",
           "Readout", "Normalize", "max_pool2", "avg_pool2",
           "ConvNet", "VGG", "ResNet", "BasicBlock", "Bottleneck", "MLP", "AlexNet", "VGG16", "ResNet18", "ResNet50",
           "ViT", "CORnetZ", "CORnetRT", "CORnetS", "BLTNet", "Autoencoder",
           "model_spec", "build_model", "MODEL_CLASSES"]
