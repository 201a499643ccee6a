"""Load the official CORnet-Z, CORnet-RT and CORnet-S state dicts (github.com/dicarlolab/CORnet) into
:mod:`insilico.models.cornet`.

    subject = load_cornet("cornet_s", torch.load("cornet_s-1d3f7974.pth", map_location="cpu")["state_dict"])
    out, rec = electrode.record(subject, images, ["V4/t0", "V4/t3", "IT/t1"])

Keys may carry DataParallel's ``module.`` prefix (the official checkpoints do) or not; a whole official
checkpoint (a dict whose ``"state_dict"`` entry holds the tensors) is unwrapped. Tensors may be ``torch.Tensor``
or NumPy arrays. Every tensor is checked: missing, unexpected and mis-shaped ones are all named in one
:class:`~insilico.interop.torch_import.StateDictError`. Layouts: conv (out, in, kh, kw) → (kh, kw, in, out);
linear (out, in) → (in, out); batch and group norm weight/bias → scale/bias, batch-norm running_mean/var →
batch_stats mean/var (``num_batches_tracked`` is ignored).

``CORNETS`` holds one row per architecture: (model factory taking ``num_classes``, function model → {torch key:
(collection, Flax path, conversion)}, the readout weight's key, from which the number of classes is read).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..models.cornet import AREAS, CORnetRT, CORnetS, CORnetZ
from ..subject import Subject
from .layouts import Layout, StateDictError, as_is, conv_kernel, linear_kernel

__all__ = ["CORNETS", "Conversion", "StateDictError", "cornet_rt_mapping", "cornet_s_mapping", "cornet_z_mapping",
           "load_cornet"]


Conversion = Layout                                   # the name this module used first

# torch key -> (collection, Flax path, conversion)
Mapping = dict[str, tuple[str, tuple[str, ...], Layout]]


def _conv(prefix: str, path: tuple[str, ...], bias: bool = False) -> Mapping:
    out = {f"{prefix}.weight": ("params", (*path, "kernel"), conv_kernel)}
    if bias:
        out[f"{prefix}.bias"] = ("params", (*path, "bias"), as_is)
    return out


def _norm(prefix: str, path: tuple[str, ...], running: bool) -> Mapping:
    out = {f"{prefix}.weight": ("params", (*path, "scale"), as_is),
           f"{prefix}.bias": ("params", (*path, "bias"), as_is)}
    if running:                                                    # batch norm (group norm has no statistics)
        out[f"{prefix}.running_mean"] = ("batch_stats", (*path, "mean"), as_is)
        out[f"{prefix}.running_var"] = ("batch_stats", (*path, "var"), as_is)
    return out


def _decoder() -> Mapping:
    return {"decoder.linear.weight": ("params", ("logits", "dense", "kernel"), linear_kernel),
            "decoder.linear.bias": ("params", ("logits", "dense", "bias"), as_is)}


def cornet_z_mapping(model: CORnetZ) -> Mapping:
    """Official CORnet-Z keys → Flax paths of :class:`CORnetZ`."""
    m: Mapping = {}
    for a in AREAS:
        m.update(_conv(f"{a}.conv", (a, "conv"), bias=True))
    return m | _decoder()


def cornet_rt_mapping(model: CORnetRT) -> Mapping:
    """Official CORnet-RT keys → Flax paths of :class:`CORnetRT` (with one step, only V1 uses conv_input)."""
    m: Mapping = {}
    for a in AREAS:
        if a == "V1" or model.times > 1:
            m.update(_conv(f"{a}.conv_input", (a, "conv_input"), bias=True))
            m.update(_norm(f"{a}.norm_input", (a, "norm_input"), running=False))
        m.update(_conv(f"{a}.conv1", (a, "conv1")))
        m.update(_norm(f"{a}.norm1", (a, "norm1"), running=False))
    return m | _decoder()


def cornet_s_mapping(model: CORnetS) -> Mapping:
    """Official CORnet-S keys → Flax paths of :class:`CORnetS` (per-step batch norms ``norm{j}_{t}``)."""
    m: Mapping = {}
    for j in (1, 2):
        m.update(_conv(f"V1.conv{j}", ("V1", f"conv{j}")))
        m.update(_norm(f"V1.norm{j}", ("V1", f"norm{j}"), running=True))
    for a, times in zip(AREAS[1:], model.times):
        for conv in ("conv_input", "skip", "conv1", "conv2", "conv3"):
            m.update(_conv(f"{a}.{conv}", (a, conv)))
        m.update(_norm(f"{a}.norm_skip", (a, "norm_skip"), running=True))
        for t in range(times):
            for j in (1, 2, 3):
                m.update(_norm(f"{a}.norm{j}_{t}", (a, f"norm{j}_{t}"), running=True))
    return m | _decoder()


CORNETS: dict[str, tuple[Callable[[int], Any], Callable[[Any], Mapping], str]] = {
    "cornet_z": (CORnetZ, cornet_z_mapping, "decoder.linear.weight"),
    "cornet_rt": (CORnetRT, cornet_rt_mapping, "decoder.linear.weight"),
    "cornet_s": (CORnetS, cornet_s_mapping, "decoder.linear.weight"),
}

def load_cornet(arch: str, state_dict, *, input_shape=(224, 224, 3), name: str | None = None) -> Subject:
    """A :class:`Subject` of ``arch`` ("cornet_z", "cornet_rt", "cornet_s") with the weights of an official
    state dict (a mapping of tensors or arrays, a whole checkpoint, or a path to a ``.pth`` / ``.npz`` file). The
    number of classes is read from ``decoder.linear.weight``. The subject takes pixels in [0, 1] and applies the
    ImageNet normalization inside. Raises :class:`StateDictError` naming every missing, unexpected or mis-shaped
    tensor."""
    if arch not in CORNETS:
        raise ValueError(f"unknown architecture arch={arch!r}; available: {', '.join(CORNETS)}")
    from .torch_import import load_state_dict  # the one loader (it imports this module's table)

    return load_state_dict(arch, state_dict, input_shape=input_shape, name=name)
