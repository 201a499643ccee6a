"""Load torchvision-format state dicts of AlexNet, VGG-16 and ResNet-18 into the matching Flax models.

    subject = load_state_dict("resnet18", torch.load("resnet18.pth"))      # or a dict of NumPy arrays / .npz
    out, rec = electrode.record(subject, images, ["layer3/block2"])

Tensors may be ``torch.Tensor`` or NumPy arrays (PyTorch is needed only to read a ``.pth`` file). Every tensor is
checked: missing, unexpected and mis-shaped ones are all named in one :class:`StateDictError`. Layout
conversions: conv weights (out, in, kh, kw) → (kh, kw, in, out); linear (out, in) → (in, out); batch-norm
weight/bias/running_mean/running_var → scale/bias and batch_stats mean/var (``num_batches_tracked`` is ignored).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ..models.imagenet import IMAGENET_MEAN, IMAGENET_STD, VGG16, VGG16_BLOCKS, AlexNet, ResNet18
from ..subject import InputSpec, Subject, make_subject

ARCHITECTURES = ("alexnet", "vgg16", "resnet18")


class StateDictError(ValueError):
    """A state dict that does not fit the architecture; the message names every offending tensor."""


def _conv(w):
    return np.transpose(w, (2, 3, 1, 0))


def _linear(w):
    return np.transpose(w, (1, 0))


def _same(w):
    return w


# torch key -> (collection, flax path, conversion from the torch layout)
Mapping = dict[str, tuple[str, tuple[str, ...], Callable]]


def _conv_entries(torch_prefix: str, flax_path: tuple[str, ...], bias: bool) -> Mapping:
    out = {f"{torch_prefix}.weight": ("params", (*flax_path, "kernel"), _conv)}
    if bias:
        out[f"{torch_prefix}.bias"] = ("params", (*flax_path, "bias"), _same)
    return out


def _linear_entries(torch_prefix: str, flax_path: tuple[str, ...]) -> Mapping:
    return {f"{torch_prefix}.weight": ("params", (*flax_path, "kernel"), _linear),
            f"{torch_prefix}.bias": ("params", (*flax_path, "bias"), _same)}


def _bn_entries(torch_prefix: str, flax_path: tuple[str, ...]) -> Mapping:
    return {f"{torch_prefix}.weight": ("params", (*flax_path, "scale"), _same),
            f"{torch_prefix}.bias": ("params", (*flax_path, "bias"), _same),
            f"{torch_prefix}.running_mean": ("batch_stats", (*flax_path, "mean"), _same),
            f"{torch_prefix}.running_var": ("batch_stats", (*flax_path, "var"), _same)}


def _alexnet_mapping(model: AlexNet) -> Mapping:
    m: Mapping = {}
    for i, idx in enumerate((0, 3, 6, 8, 10), start=1):
        m.update(_conv_entries(f"features.{idx}", (f"conv{i}", "conv"), bias=True))
    for name, idx in (("fc6", 1), ("fc7", 4)):
        m.update(_linear_entries(f"classifier.{idx}", (name, "dense")))
    m.update(_linear_entries("classifier.6", ("logits", "dense")))
    return m


def _vgg_mapping(model: VGG16) -> Mapping:
    m: Mapping = {}
    idx = 0
    for b, block in enumerate(model.blocks, start=1):
        for i, _ in enumerate(block, start=1):
            m.update(_conv_entries(f"features.{idx}", (f"conv{b}_{i}", "conv"), bias=True))
            idx += 2                                                  # conv, ReLU
        idx += 1                                                      # max pool
    for name, idx in (("fc6", 0), ("fc7", 3)):
        m.update(_linear_entries(f"classifier.{idx}", (name, "dense")))
    m.update(_linear_entries("classifier.6", ("logits", "dense")))
    return m


def _resnet_mapping(model: ResNet18) -> Mapping:
    m: Mapping = {}
    m.update(_conv_entries("conv1", ("conv1", "conv"), bias=False))
    m.update(_bn_entries("bn1", ("conv1", "bn")))
    in_ch = model.widths[0]
    for li, (n, w) in enumerate(zip(model.layers, model.widths), start=1):
        for b in range(n):
            t, f = f"layer{li}.{b}", (f"layer{li}", f"block{b + 1}")
            for k in (1, 2):
                m.update(_conv_entries(f"{t}.conv{k}", (*f, f"conv{k}"), bias=False))
                m.update(_bn_entries(f"{t}.bn{k}", (*f, f"bn{k}")))
            stride = 2 if (li > 1 and b == 0) else 1
            if stride != 1 or in_ch != w:
                m.update(_conv_entries(f"{t}.downsample.0", (*f, "shortcut"), bias=False))
                m.update(_bn_entries(f"{t}.downsample.1", (*f, "bn_shortcut")))
            in_ch = w
    m.update(_linear_entries("fc", ("logits", "dense")))
    return m


def _readout_key(arch: str) -> str:
    return "fc.weight" if arch == "resnet18" else "classifier.6.weight"


def build(arch: str, num_classes: int = 1000) -> tuple[nn.Module, Callable[[Any], Mapping]]:
    """The Flax model for ``arch`` ("alexnet", "vgg16", "resnet18") and its state-dict mapping (a function of that
    model)."""
    if arch == "alexnet":
        return AlexNet(num_classes=num_classes), _alexnet_mapping
    if arch == "vgg16":
        return VGG16(VGG16_BLOCKS, num_classes=num_classes), _vgg_mapping
    if arch == "resnet18":
        return ResNet18(num_classes=num_classes), _resnet_mapping
    raise ValueError(f"unknown architecture {arch!r}; available: {', '.join(ARCHITECTURES)}")


def _as_numpy(state_dict) -> dict[str, np.ndarray]:
    if isinstance(state_dict, (str, Path)):
        path = Path(state_dict)
        if path.suffix == ".npz":
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        import torch  # a .pth / .pt file needs PyTorch

        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    out = {}
    for k, v in dict(state_dict).items():
        if hasattr(v, "detach"):                                      # torch.Tensor
            v = v.detach().cpu().numpy()
        out[k] = np.asarray(v)
    return out


def _torch_shape(flax_shape, convert) -> tuple[int, ...]:
    """The torch-layout shape whose conversion has ``flax_shape``."""
    if convert is _conv:
        kh, kw, i, o = flax_shape
        return (o, i, kh, kw)
    if convert is _linear:
        return tuple(flax_shape[::-1])
    return tuple(flax_shape)


def load_state_dict(arch: str, state_dict, *, input_shape=(224, 224, 3), name: str | None = None,
                    class_names=None) -> Subject:
    """A :class:`Subject` of ``arch`` ("alexnet", "vgg16", "resnet18") with the weights of a torchvision state
    dict (a mapping of tensors or arrays, or a path to a ``.pth`` / ``.npz`` file). The number of classes is read
    from the readout's weight. The subject takes pixels in [0, 1] and applies the ImageNet normalization
    inside. Raises :class:`StateDictError` naming every missing, unexpected or mis-shaped tensor."""
    sd = _as_numpy(state_dict)
    readout = _readout_key(arch) if arch in ARCHITECTURES else None
    num_classes = int(sd[readout].shape[0]) if readout in sd and sd[readout].ndim == 2 else 1000
    model, mapping_of = build(arch, num_classes)
    mapping = mapping_of(model)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, *input_shape), jnp.float32))
    problems = []
    missing = [k for k in mapping if k not in sd]
    unexpected = [k for k in sd if k not in mapping and not k.endswith("num_batches_tracked")]
    if missing:
        problems.append(f"missing tensors ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors ({len(unexpected)}): {', '.join(unexpected)}")
    variables: dict = {"params": {}, "batch_stats": {}}
    for key, (collection, path, convert) in mapping.items():
        if key not in sd:
            continue
        target = shapes[collection]
        for p in path:
            target = target[p]
        want = _torch_shape(target.shape, convert)
        if tuple(sd[key].shape) != want:
            problems.append(f"{key}: shape {tuple(sd[key].shape)}, expected {want}")
            continue
        node = variables[collection]
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = jnp.asarray(convert(sd[key]).astype(np.float32))
    if problems:
        raise StateDictError(f"state dict does not fit torchvision's {arch}:\n  " + "\n  ".join(problems))
    if not variables["batch_stats"]:
        del variables["batch_stats"]
    spec = InputSpec(tuple(input_shape), (0.0, 1.0), IMAGENET_MEAN, IMAGENET_STD)
    names = tuple(class_names) if class_names is not None else tuple(f"class {i}" for i in range(num_classes))
    return make_subject(name or arch, model, variables, spec, names, meta={"source": f"torchvision {arch}"})
