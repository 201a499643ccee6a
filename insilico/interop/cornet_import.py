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

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..models.cornet import AREAS, CORnetRT, CORnetS, CORnetZ
from ..models.imagenet import IMAGENET_MEAN, IMAGENET_STD
from ..subject import InputSpec, Subject, make_subject
from .torch_import import StateDictError


@dataclasses.dataclass(frozen=True)
class Conversion:
    """How a torch tensor becomes a Flax variable: ``convert`` (torch array → Flax array) and ``torch_shape`` (the
    Flax variable's shape → the shape of the torch tensor it comes from, for the shape check)."""

    convert: Callable[[np.ndarray], np.ndarray]
    torch_shape: Callable[[tuple[int, ...]], tuple[int, ...]]

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return self.convert(w)


# conv (out, in, kh, kw) → (kh, kw, in, out); linear (out, in) → (in, out); anything else unchanged
conv_kernel = Conversion(lambda w: np.transpose(w, (2, 3, 1, 0)), lambda s: (s[3], s[2], s[0], s[1]))
linear_kernel = Conversion(lambda w: np.transpose(w, (1, 0)), lambda s: tuple(s[::-1]))
as_is = Conversion(lambda w: w, tuple)

# torch key -> (collection, Flax path, conversion)
Mapping = dict[str, tuple[str, tuple[str, ...], Conversion]]


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

_PREFIX = "module."


def _arrays(state_dict) -> tuple[dict[str, np.ndarray], list[str]]:
    """NumPy arrays by key without DataParallel's prefix, and the keys that clash once it is removed."""
    if isinstance(state_dict, (str, Path)):
        path = Path(state_dict)
        if path.suffix == ".npz":
            with np.load(path) as z:
                state_dict = {k: z[k] for k in z.files}
        else:
            import torch  # a .pth / .pth.tar file needs PyTorch

            state_dict = torch.load(path, map_location="cpu", weights_only=True)
    state_dict = dict(state_dict)
    if isinstance(state_dict.get("state_dict"), dict):           # a whole official checkpoint
        state_dict = dict(state_dict["state_dict"])
    out: dict[str, np.ndarray] = {}
    clashes = []
    for k, v in state_dict.items():
        key = k[len(_PREFIX):] if k.startswith(_PREFIX) else k
        if key in out:
            clashes.append(key)
        if hasattr(v, "detach"):                                      # torch.Tensor
            v = v.detach().cpu().numpy()
        out[key] = np.asarray(v)
    return out, clashes


def load_cornet(arch: str, state_dict, *, input_shape=(224, 224, 3), name: str | None = None) -> Subject:
    """A :class:`Subject` of ``arch`` ("cornet_z", "cornet_rt", "cornet_s") with the weights of an official
    state dict (a mapping of tensors or arrays, a whole checkpoint, or a path to a ``.pth`` / ``.npz`` file). The
    number of classes is read from ``decoder.linear.weight``. The subject takes pixels in [0, 1] and applies the
    ImageNet normalization inside. Raises :class:`StateDictError` naming every missing, unexpected or mis-shaped
    tensor."""
    if arch not in CORNETS:
        raise ValueError(f"unknown architecture arch={arch!r}; available: {', '.join(CORNETS)}")
    factory, mapping_of, readout = CORNETS[arch]
    sd, clashes = _arrays(state_dict)
    num_classes = int(sd[readout].shape[0]) if readout in sd and sd[readout].ndim == 2 else 1000
    model = factory(num_classes)
    mapping = mapping_of(model)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, *input_shape), jnp.float32))
    problems = []
    if clashes:
        problems.append(f"keys given with and without the '{_PREFIX}' prefix ({len(clashes)}): "
                        + ", ".join(clashes))
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
        want = tuple(convert.torch_shape(tuple(target.shape)))
        if tuple(sd[key].shape) != want:
            problems.append(f"{key}: shape {tuple(sd[key].shape)}, expected {want}")
            continue
        node = variables[collection]
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = jnp.asarray(convert(sd[key]).astype(np.float32))
    if problems:
        raise StateDictError(f"state dict does not fit the official {arch}:\n  " + "\n  ".join(problems))
    if not variables["batch_stats"]:
        del variables["batch_stats"]
    spec = InputSpec(tuple(input_shape), (0.0, 1.0), IMAGENET_MEAN, IMAGENET_STD)
    names = tuple(f"class {i}" for i in range(num_classes))
    return make_subject(name or arch, model, variables, spec, names, meta={"source": f"official {arch}"})
