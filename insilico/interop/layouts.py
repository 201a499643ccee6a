"""How a PyTorch tensor becomes a Flax variable: the :class:`Layout` conversions every state-dict mapping uses,
the reading of a state dict into NumPy arrays, and :class:`StateDictError`.

Conversions: conv weights (out, in, kh, kw) → (kh, kw, in, out) (:data:`conv_kernel`); linear (out, in) → (in,
out) (:data:`linear_kernel`); anything else as it is (:data:`as_is`). A state dict is a mapping of tensors or
arrays, a whole checkpoint whose ``"state_dict"`` entry holds them, or a path to a ``.pth`` / ``.npz`` file;
DataParallel's ``module.`` prefix is removed.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["Layout", "StateDictError", "as_is", "conv_kernel", "linear_kernel", "read_state_dict"]

PREFIX = "module."


class StateDictError(ValueError):
    """A state dict that does not fit the architecture; the message names every offending tensor."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """A conversion of a torch tensor into a Flax variable: ``convert`` (torch array → array of the Flax
    variable's size; the loader reshapes it to the variable's shape) and ``torch_shape`` (the Flax variable's shape
    → the torch tensor's shape it comes from)."""

    convert: Callable[[np.ndarray], np.ndarray]
    torch_shape: Callable[[tuple[int, ...]], tuple[int, ...]]

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return self.convert(w)


def _kernel_shape(s):
    kh, kw, i, o = s
    return (o, i, kh, kw)


conv_kernel = Layout(lambda w: np.transpose(w, (2, 3, 1, 0)), _kernel_shape)
linear_kernel = Layout(lambda w: np.transpose(w, (1, 0)), lambda s: tuple(s[::-1]))
as_is = Layout(lambda w: w, tuple)


def read_state_dict(state_dict) -> tuple[dict[str, np.ndarray], list[str]]:
    """NumPy arrays by key, without DataParallel's ``module.`` prefix, and the keys given both with and without it
    (a clash the loader reports)."""
    if isinstance(state_dict, (str, Path)):
        path = Path(state_dict)
        if path.suffix == ".npz":
            with np.load(path) as z:
                state_dict = {k: z[k] for k in z.files}
        else:
            import torch  # a .pth / .pt file needs PyTorch

            state_dict = torch.load(path, map_location="cpu", weights_only=True)
    if callable(getattr(state_dict, "state_dict", None)):
        raise TypeError(f"state_dict must be a mapping of tensors or a checkpoint path; got a "
                        f"{type(state_dict).__name__} module: pass its .state_dict()")
    try:
        state_dict = dict(state_dict)
    except (TypeError, ValueError):
        raise TypeError(f"state_dict must be a mapping of tensors or a checkpoint path; got "
                        f"{type(state_dict).__name__}") from None
    if isinstance(state_dict.get("state_dict"), dict):           # a whole checkpoint
        state_dict = dict(state_dict["state_dict"])
    out: dict[str, np.ndarray] = {}
    clashes = []
    for k, v in state_dict.items():
        if not isinstance(k, str):
            raise TypeError(f"state_dict's keys must be tensor names (str); got {k!r} ({type(k).__name__})")
        key = k[len(PREFIX):] if k.startswith(PREFIX) else k
        if key in out:
            clashes.append(key)
        if hasattr(v, "detach"):                   # torch.Tensor; floats as float32 (NumPy has no bfloat16)
            v = v.detach().cpu()
            v = (v.float() if v.is_floating_point() else v).numpy()
        out[key] = np.asarray(v)
    return out, clashes
