"""Load torchvision-format state dicts of AlexNet, VGG-16, ResNet-18, ResNet-50 and ViT-B/16 into the matching
Flax models.

    subject = load_state_dict("resnet50", torch.load("resnet50.pth"))      # or a dict of NumPy arrays / .npz
    out, rec = electrode.record(subject, images, ["layer3/block2"])

Tensors may be ``torch.Tensor`` or NumPy arrays (PyTorch is needed only to read a ``.pth`` file). Every tensor is
checked: missing, unexpected and mis-shaped ones are all named in one :class:`StateDictError`. Layout
conversions: conv weights (out, in, kh, kw) → (kh, kw, in, out); linear (out, in) → (in, out); batch-norm
weight/bias/running_mean/running_var → scale/bias and batch_stats mean/var (``num_batches_tracked`` is ignored);
layer norm weight/bias → scale/bias; ``nn.MultiheadAttention``'s packed ``in_proj_weight`` (3D, D) and
``in_proj_bias`` split into Flax's query/key/value kernels (D, heads, D / heads) and biases, ``out_proj.weight``
→ the out kernel (heads, D / heads, D); ViT's ``class_token`` and ``encoder.pos_embedding`` as they are.

Architectures are rows of :data:`TABLE` — ``{arch: (model factory, mapping, readout key)}`` — so another one is
registered by adding a row: a function of the number of classes returning the Flax model, a function of that model
returning its :data:`Mapping`, and the state-dict key of the readout weight (out, in) the number of classes is
read from.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ..models.imagenet import IMAGENET_MEAN, IMAGENET_STD, VGG16, VGG16_BLOCKS, AlexNet, ResNet18, ResNet50
from ..models.vit import ViT
from ..subject import InputSpec, Subject, make_subject
from ..validation import check_count
from .cornet_import import CORNETS
from .layouts import PREFIX, Layout, StateDictError, as_is, conv_kernel, linear_kernel, read_state_dict

__all__ = ["ARCHITECTURES", "TABLE", "Layout", "StateDictError", "build", "load_state_dict"]


_conv, _linear, _same = conv_kernel, linear_kernel, as_is


def _in_proj_weight(part: int) -> Layout:
    """Query (0), key (1) or value (2) rows of ``in_proj_weight`` (3E, D) as a kernel (D, heads, E / heads)."""
    return Layout(lambda w: np.transpose(np.split(w, 3)[part]), lambda s: (3 * s[1] * s[2], s[0]))


def _in_proj_bias(part: int) -> Layout:
    """Query (0), key (1) or value (2) part of ``in_proj_bias`` (3E,) as a bias (heads, E / heads)."""
    return Layout(lambda b: np.split(b, 3)[part], lambda s: (3 * s[0] * s[1],))


# ``out_proj.weight`` (D, E) as the out kernel (heads, E / heads, D)
_out_proj = Layout(lambda w: np.transpose(w), lambda s: (s[2], s[0] * s[1]))

# (collection, flax path, conversion from the torch layout)
Target = tuple[str, tuple[str, ...], Callable]
# torch key -> its target, or a list of targets for a tensor split over several Flax variables
Mapping = dict[str, Target | list[Target]]


def _conv_entries(torch_prefix: str, flax_path: tuple[str, ...], bias: bool) -> Mapping:
    out: Mapping = {f"{torch_prefix}.weight": ("params", (*flax_path, "kernel"), _conv)}
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


def _layer_norm_entries(torch_prefix: str, flax_path: tuple[str, ...]) -> Mapping:
    return {f"{torch_prefix}.weight": ("params", (*flax_path, "scale"), _same),
            f"{torch_prefix}.bias": ("params", (*flax_path, "bias"), _same)}


def _attention_entries(torch_prefix: str, flax_path: tuple[str, ...]) -> Mapping:
    """``nn.MultiheadAttention`` → Flax's ``MultiHeadDotProductAttention``."""
    qkv = ("query", "key", "value")
    return {f"{torch_prefix}.in_proj_weight": [("params", (*flax_path, n, "kernel"), _in_proj_weight(j))
                                               for j, n in enumerate(qkv)],
            f"{torch_prefix}.in_proj_bias": [("params", (*flax_path, n, "bias"), _in_proj_bias(j))
                                             for j, n in enumerate(qkv)],
            f"{torch_prefix}.out_proj.weight": ("params", (*flax_path, "out", "kernel"), _out_proj),
            f"{torch_prefix}.out_proj.bias": ("params", (*flax_path, "out", "bias"), _same)}


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


def _resnet_mapping(model: ResNet18 | ResNet50) -> Mapping:
    """torchvision's ResNets: basic blocks (conv1, conv2) in ResNet18, bottlenecks (conv1 … conv3, 4x wider
    outputs) in ResNet50."""
    convs, expansion = ((1, 2), 1) if model.block == "basic" else ((1, 2, 3), 4)
    m: Mapping = {}
    m.update(_conv_entries("conv1", ("conv1", "conv"), bias=False))
    m.update(_bn_entries("bn1", ("conv1", "bn")))
    in_ch = model.widths[0]
    for li, (n, w) in enumerate(zip(model.layers, model.widths), start=1):
        for b in range(n):
            t, f = f"layer{li}.{b}", (f"layer{li}", f"block{b + 1}")
            for k in convs:
                m.update(_conv_entries(f"{t}.conv{k}", (*f, f"conv{k}"), bias=False))
                m.update(_bn_entries(f"{t}.bn{k}", (*f, f"bn{k}")))
            stride = 2 if (li > 1 and b == 0) else 1
            if stride != 1 or in_ch != w * expansion:
                m.update(_conv_entries(f"{t}.downsample.0", (*f, "shortcut"), bias=False))
                m.update(_bn_entries(f"{t}.downsample.1", (*f, "bn_shortcut")))
            in_ch = w * expansion
    m.update(_linear_entries("fc", ("logits", "dense")))
    return m


def _vit_mapping(model: ViT) -> Mapping:
    m: Mapping = {"class_token": ("params", ("class_token",), _same),
                  "encoder.pos_embedding": ("params", ("encoder", "pos_embedding"), _same)}
    m.update(_conv_entries("conv_proj", ("conv_proj",), bias=True))
    for i in range(model.depth):
        t, f = f"encoder.layers.encoder_layer_{i}", ("encoder", f"layer{i + 1}")
        m.update(_layer_norm_entries(f"{t}.ln_1", (*f, "ln_1")))
        m.update(_attention_entries(f"{t}.self_attention", (*f, "self_attention")))
        m.update(_layer_norm_entries(f"{t}.ln_2", (*f, "ln_2")))
        m.update(_linear_entries(f"{t}.mlp.0", (*f, "mlp_in")))
        m.update(_linear_entries(f"{t}.mlp.3", (*f, "mlp_out")))
    m.update(_layer_norm_entries("encoder.ln", ("encoder", "ln", "norm")))
    m.update(_linear_entries("heads.head", ("logits", "dense")))
    return m


# arch: (model factory of the number of classes, state-dict mapping as a function of the model, readout weight key)
TABLE: dict[str, tuple[Callable[[int], nn.Module], Callable[[Any], Any], str]] = {
    "alexnet": (lambda n: AlexNet(num_classes=n), _alexnet_mapping, "classifier.6.weight"),
    "vgg16": (lambda n: VGG16(VGG16_BLOCKS, num_classes=n), _vgg_mapping, "classifier.6.weight"),
    "resnet18": (lambda n: ResNet18(num_classes=n), _resnet_mapping, "fc.weight"),
    "resnet50": (lambda n: ResNet50(num_classes=n), _resnet_mapping, "fc.weight"),
    "vit_b_16": (lambda n: ViT(num_classes=n), _vit_mapping, "heads.head.weight"),
    **CORNETS,                                      # CORnet-Z, -RT and -S (the official state dicts' keys)
}
ARCHITECTURES = tuple(TABLE)


def _row(arch: str):
    if not isinstance(arch, str) or arch not in TABLE:
        raise ValueError(f"unknown architecture {arch!r}; available: {', '.join(TABLE)}")
    return TABLE[arch]


def build(arch: str, num_classes: int = 1000) -> tuple[nn.Module, Callable[[Any], Mapping]]:
    """The Flax model for ``arch`` (a key of :data:`TABLE`: "alexnet", "vgg16", "resnet18", "resnet50",
    "vit_b_16") and its state-dict mapping (a function of that model)."""
    factory, mapping_of, _ = _row(arch)
    return factory(check_count("num_classes", num_classes)), mapping_of


def _torch_shape(flax_shape, convert) -> tuple[int, ...]:
    """The torch-layout shape whose conversion has ``flax_shape`` (a plain function keeps the shape)."""
    return tuple(convert.torch_shape(tuple(flax_shape)) if isinstance(convert, Layout) else flax_shape)


def _model(arch: str, num_classes: int, model: nn.Module | None) -> nn.Module:
    """The architecture's model, or ``model`` (of the architecture's class, e.g. a smaller ViT) with
    ``num_classes`` classes."""
    standard = _row(arch)[0](num_classes)
    if model is None:
        return standard
    if type(model) is not type(standard):
        raise ValueError(f"model for {arch!r} must be a {type(standard).__name__} (of any size); "
                         f"got a {type(model).__name__}")
    return model.clone(num_classes=num_classes) if hasattr(model, "num_classes") else model


def _input_shape(arch: str, model: nn.Module, input_shape, sd: dict) -> tuple[int, ...]:
    """``input_shape``, or the model's own (224 px; a ViT's ``image_size``); a ViT takes only its own."""
    if not isinstance(model, ViT):
        if input_shape is None:
            return (224, 224, 3)
        if not isinstance(input_shape, (tuple, list)):
            raise ValueError(f"input_shape must be (height, width, 3) for {arch}; got {input_shape!r}")
        shape = tuple(input_shape)
        if len(shape) != 3 or shape[2] != 3 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
            raise ValueError(f"input_shape must be (height, width, 3) for {arch} (an RGB image, as its weights "
                             f"were trained); got {shape}")
        return tuple(int(d) for d in shape)
    s, p = model.image_size, model.patch_size
    valid = (s, s, 3)
    if input_shape is not None and not isinstance(input_shape, (tuple, list)):
        raise ValueError(f"input_shape must be (height, width, 3) for {arch}; got {input_shape!r}")
    if input_shape is None or tuple(input_shape) == valid:
        return valid
    msg = (f"input_shape {tuple(input_shape)} does not fit {arch}'s position embedding of {model.tokens} tokens "
           f"(the class token and {s // p}×{s // p} patches of {p} px); valid input_shape: {valid}")
    pos = sd.get("encoder.pos_embedding")
    if pos is not None and pos.ndim == 3 and pos.shape[1] != model.tokens:
        msg += (f". The state dict's encoder.pos_embedding has {pos.shape[1]} tokens: pass model=ViT(image_size=…, "
                f"patch_size=…) with 1 + (image_size / patch_size)² = {pos.shape[1]}")
    raise ValueError(msg)


def load_state_dict(arch: str, state_dict, *, input_shape=None, name: str | None = None, class_names=None,
                    model: nn.Module | None = None) -> Subject:
    """A :class:`Subject` of ``arch`` (a key of :data:`TABLE`: "alexnet", "vgg16", "resnet18", "resnet50",
    "vit_b_16") with the weights of a torchvision state dict (a mapping of tensors or arrays, or a path to a
    ``.pth`` / ``.npz`` file). The number of classes is read from the readout's weight. The subject takes pixels
    in [0, 1] and applies the ImageNet normalization inside.

    ``input_shape``: (H, W, 3), default (224, 224, 3); a ViT takes only (image_size, image_size, 3), the size of
    its position embedding (the default), and any other is refused. ``model``: the Flax model to fill, of the
    architecture's class with other sizes (``ViT(image_size=384)``, ``ResNet18(layers=(3, 4, 6, 3))`` for
    ResNet-34); its ``num_classes`` is set from the state dict. A ViT's number of attention heads cannot be read
    from its weights (every split of the width into heads has the same tensor shapes): a ``model`` must have the
    checkpoint's (torchvision's ViT-B/16: 12). Raises :class:`StateDictError` naming every missing, unexpected or
    mis-shaped tensor."""
    sd, clashes = read_state_dict(state_dict)
    readout = _row(arch)[2]
    num_classes = int(sd[readout].shape[0]) if readout in sd and sd[readout].ndim == 2 else 1000
    model = _model(arch, num_classes, model)
    mapping = _row(arch)[1](model)
    input_shape = _input_shape(arch, model, input_shape, sd)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, *input_shape), jnp.float32))
    problems = []
    if clashes:
        problems.append(f"keys given with and without the '{PREFIX}' prefix ({len(clashes)}): " + ", ".join(clashes))
    missing = [k for k in mapping if k not in sd]
    unexpected = [k for k in sd if k not in mapping and not k.endswith("num_batches_tracked")]
    if missing:
        problems.append(f"missing tensors ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors ({len(unexpected)}): {', '.join(unexpected)}")
    variables: dict = {"params": {}, "batch_stats": {}}
    for key, entry in mapping.items():
        if key not in sd:
            continue
        for collection, path, convert in (entry if isinstance(entry, list) else [entry]):
            target = shapes[collection]
            for p in path:
                target = target[p]
            want = _torch_shape(target.shape, convert)
            if tuple(sd[key].shape) != want:
                problems.append(f"{key}: shape {tuple(sd[key].shape)}, expected {want}")
                break
            bad = int(np.size(sd[key]) - np.count_nonzero(np.isfinite(sd[key])))
            if bad:
                problems.append(f"{key}: {bad} NaN/inf value(s) of {np.size(sd[key])}")
                break
            node = variables[collection]
            for p in path[:-1]:
                node = node.setdefault(p, {})
            node[path[-1]] = jnp.asarray(convert(sd[key]).reshape(target.shape).astype(np.float32))
    if problems:
        raise StateDictError(f"state dict does not fit {arch} ({type(model).__name__}):\n  " + "\n  ".join(problems))
    if not variables["batch_stats"]:
        del variables["batch_stats"]
    spec = InputSpec(input_shape, (0.0, 1.0), IMAGENET_MEAN, IMAGENET_STD)
    names = tuple(class_names) if class_names is not None else tuple(f"class {i}" for i in range(num_classes))
    source = f"{'official' if arch in CORNETS else 'torchvision'} {arch}"
    return make_subject(name or arch, model, variables, spec, names, meta={"source": source})
