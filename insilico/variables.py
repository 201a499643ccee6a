"""What a subject's variables must be: the arrays, shapes and kinds of number of the model's own
(:func:`check_like`, for new weights), and finite (:func:`check_finite_variables`: a NaN weight gives NaN or
all-equal logits, never an error, so it is refused where weights enter a subject)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .interception import SubjectError
from .validation import ArgumentError, check_finite

__all__ = ["check_like", "check_finite_variables", "kind"]


def check_like(old, new, name: str) -> None:
    """``new`` variables with the paths, shapes and kinds of dtype (float, integer, ...) of ``old``, and (when
    concrete) no NaN or inf."""
    olds = {jax.tree_util.keystr(p): a for p, a in jax.tree_util.tree_flatten_with_path(old)[0]}
    want = {k: np.shape(a) for k, a in olds.items()}
    try:
        news = {jax.tree_util.keystr(p): a for p, a in jax.tree_util.tree_flatten_with_path(new)[0]}
        got = {k: np.shape(a) for k, a in news.items()}
    except Exception as e:      # e.g. not a pytree of arrays
        raise SubjectError(f"{name}: variables must be a tree of arrays like the subject's; got {type(new).__name__}"
                           f" ({e})") from None
    if got.keys() != want.keys():
        extra, missing = sorted(got.keys() - want.keys()), sorted(want.keys() - got.keys())
        raise SubjectError(f"{name}: variables must hold the subject's arrays; missing {missing[:4]}, "
                           f"unexpected {extra[:4]}")
    for path, shape in want.items():
        if tuple(got[path]) != tuple(shape):
            raise SubjectError(f"{name}: variables{path} has shape {tuple(got[path])}; the model's is {tuple(shape)}")
    for path in want:                                      # the same paths and shapes by now
        a, b = (v[path].dtype if hasattr(v[path], "dtype") else np.asarray(v[path]).dtype for v in (olds, news))
        if kind(a) != kind(b):
            raise SubjectError(f"{name}: variables{path} has dtype {b}; the model's is {a} (another kind of number)")
    check_finite_variables(new, name)


def kind(dtype) -> str:
    """float (bfloat16 included), integer, bool, ... of a dtype."""
    for name, of in (("float", jnp.floating), ("integer", jnp.integer), ("bool", jnp.bool_),
                     ("complex", jnp.complexfloating)):
        if jnp.issubdtype(dtype, of):
            return name
    return str(dtype)


def check_finite_variables(variables, name: str) -> None:
    """No NaN or inf in the concrete float arrays of ``variables`` (shapes alone and traced arrays pass)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
        dtype = getattr(leaf, "dtype", None)
        if isinstance(leaf, jax.ShapeDtypeStruct) or dtype is None or kind(dtype) != "float":
            continue
        try:
            values = np.asarray(leaf, np.float32)        # bfloat16 included
        except jax.errors.TracerArrayConversionError:    # traced (inside jit or vmap): its values are not known
            continue
        try:
            check_finite(f"variables{jax.tree_util.keystr(path)}", values, allow_empty=True)
        except ArgumentError as e:
            raise SubjectError(f"{name}: {e}") from None
