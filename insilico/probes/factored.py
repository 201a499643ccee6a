"""Lesions propagated only as far as they must go: a channel's effect as a contribution to the first linear map.

Silencing channel ``c`` of a site changes, up to the first linear map after the site, only the values that
channel ``c`` feeds — through ReLU, batch norm at inference, max- or average-pooling, reshapes and any other
operation that keeps channels apart. The linear map then adds ``L(Δ_c)``, the map applied to that channel's
change alone. So the work of a sweep splits in two (:func:`plan`, :func:`precompute`, :func:`lesioned_output`):

- once for all lesions: the network from the site to the linear map, on the intact activation and on the
  fully ablated one, and every channel's contribution ``L(Δ_c)`` — grouped so that all of them cost one
  application of ``L`` (a dense layer's rows are gathered by channel: ``einsum('...cs,csr->...cr')``);
- per lesion: ``L(z) + Σ_c m_c L(Δ_c)`` and the rest of the network.

Results equal the whole network's up to float rounding (the sum is taken in another order). The structure is
found in the network's own computation (its jaxpr), not in insilico's layer classes, so it applies to any model
whose site is followed by channel-wise operations and a dense layer; anything else — an operation that mixes
channels (layer norm, a convolution), a site used again after the linear map in a way that is not channel-wise —
is reported as the reason the sweep runs the whole network per lesion instead.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import ClosedJaxpr, Jaxpr, Literal

__all__ = ["Plan", "plan", "precompute", "lesioned_output"]

_BIG = np.iinfo(np.int32).max

# operations whose output element depends only on the input elements at the same position
_ELEMENTWISE = frozenset("""add sub mul div max min neg exp exp2 log log1p expm1 tanh logistic abs sign sqrt rsqrt
cbrt pow integer_pow square erf erfc erf_inv sin cos tan atan2 select_n convert_element_type clamp gt ge lt le eq ne
and or not xor floor ceil round is_finite nextafter rem reduce_precision copy copy_p real imag stop_gradient""".split())
# operations that move elements without mixing them: the channel map moves the same way
_STRUCTURAL = frozenset("reshape transpose squeeze expand_dims broadcast_in_dim slice rev".split())
_REDUCE = frozenset("reduce_max reduce_min reduce_sum reduce_prod argmax argmin".split())
_WINDOW = {"reduce_window_max", "reduce_window_min", "reduce_window_sum"}
_LINEAR = frozenset({"dot_general", "conv_general_dilated"})


@dataclass(frozen=True, eq=False)
class Plan:
    """Where a site's lesions stop being per-channel: the network after the site as a jaxpr, the index ``cut``
    of its first linear map, and the channel of every value computed from the site before it (-1: none)."""
    jaxpr: ClosedJaxpr
    cut: int
    operand: int                                  # which operand of the linear map carries the site
    channels: dict = field(repr=False)            # Var -> np.ndarray of channel ids, for values before the cut
    groups: np.ndarray = field(repr=False)        # (C, S) positions of the linear map's inputs, by channel
    axis: int = 0                                 # the channel axis of the contributions
    nbytes: int = 0                               # their size
    route: str = ""
    out_tree: object = None                       # the suffix's output structure

    def describe(self) -> str:
        return f"factored at the first linear map: {self.route}"


def _route(steps: list) -> str:
    """``a → b → b → b → c`` as ``a → b ×3 → c``."""
    out: list = []
    for step in steps:
        if out and out[-1][0] == step:
            out[-1][1] += 1
        else:
            out.append([step, 1])
    return " → ".join(s if n == 1 else f"{s} ×{n}" for s, n in out)


def _read(env, v):
    return v.val if isinstance(v, Literal) else env[v]


def _bind(eqn, invals):
    got = eqn.primitive.get_bind_params(eqn.params)       # (subfuns, params) in older JAX, params in newer
    subfuns, params = got if isinstance(got, tuple) else ((), got)
    out = eqn.primitive.bind(*subfuns, *invals, **params)
    return out if eqn.primitive.multiple_results else [out]


def _inner(eqn):
    """The jaxpr a call-like operation runs (custom_jvp_call, pjit, ...), or None."""
    for value in eqn.params.values():
        inner = value.jaxpr if isinstance(value, ClosedJaxpr) else value
        if isinstance(inner, Jaxpr) and len(inner.invars) == len(eqn.invars) \
                and len(inner.outvars) == len(eqn.outvars):
            return inner
    return None


def _reduced(lo_hi):
    """Channel ids from the (min over non-constant ids, max) of what each output element gathers; None where
    an element gathers several channels."""
    lo, hi = (np.asarray(a) for a in lo_hi)
    ok = (lo == _BIG) | (lo == hi)
    return np.where(lo == _BIG, -1, hi).astype(np.int32) if ok.all() else None


def _propagate(eqn, maps: list):
    """Channel maps of ``eqn``'s outputs given its inputs' (None: not computed from the site); None if the
    operation mixes channels or is not known to keep them apart."""
    name = eqn.primitive.name
    shapes = [tuple(v.aval.shape) for v in eqn.outvars]
    live = [(i, m) for i, m in enumerate(maps) if m is not None]
    if name in _ELEMENTWISE:
        if any(m.shape != shapes[0] for _, m in live) or any(not np.array_equal(m, live[0][1]) for _, m in live):
            return None
        return [live[0][1]]
    if name in _STRUCTURAL and [i for i, _ in live] == [0]:
        moved = _move(name, eqn.params, maps[0], shapes[0])
        if moved is None:       # not one of the common forms: let the operation itself move the ids
            moved = np.asarray(_bind(eqn, [jnp.asarray(maps[0])] + [_read({}, v) for v in eqn.invars[1:]])[0])
        return [moved]
    if name == "pad" and [i for i, _ in live] == [0]:
        return [np.asarray(lax.pad(jnp.asarray(maps[0]), np.int32(-1), eqn.params["padding_config"]))]
    if name in ("concatenate", "stack"):
        parts = [m if m is not None else np.full(v.aval.shape, -1, np.int32) for m, v in zip(maps, eqn.invars)]
        join = np.concatenate if name == "concatenate" else np.stack
        return [join(parts, eqn.params["dimension" if name == "concatenate" else "axis"])]
    if name == "split" and [i for i, _ in live] == [0]:
        return np.split(maps[0], np.cumsum(eqn.params["sizes"])[:-1], eqn.params["axis"])
    if name in _REDUCE and [i for i, _ in live] == [0]:
        axes = tuple(eqn.params["axes"])
        return [_reduced((np.min(np.where(maps[0] < 0, _BIG, maps[0]), axes), np.max(maps[0], axes)))]
    if name in _WINDOW and [i for i, _ in live] == [0]:
        m = jnp.asarray(maps[0])
        params = {k: eqn.params[k] for k in ("window_dimensions", "window_strides", "padding", "base_dilation",
                                              "window_dilation")}
        lo = lax.reduce_window_min_p.bind(jnp.where(m < 0, _BIG, m), **params)
        hi = lax.reduce_window_max_p.bind(m, **params)
        return [_reduced((lo, hi))]
    inner = _inner(eqn)
    if inner is not None:
        return _walk(inner, maps)
    return None


def _move(name: str, params, m: np.ndarray, shape: tuple):
    """NumPy for the common structural operations (no compilation), None for other forms."""
    if name == "reshape" and params.get("dimensions") is None:
        return m.reshape(shape)
    if name == "transpose":
        return np.transpose(m, params["permutation"])
    if name == "squeeze":
        return np.squeeze(m, tuple(params["dimensions"]))
    if name == "expand_dims":
        return np.expand_dims(m, tuple(params["dimensions"]))
    if name == "broadcast_in_dim":
        dims = params["broadcast_dimensions"]
        placed = m.reshape([m.shape[dims.index(d)] if d in dims else 1 for d in range(len(shape))])
        return np.broadcast_to(placed, shape)
    if name == "rev":
        return np.flip(m, tuple(params["dimensions"]))
    return None


def _walk(jaxpr: Jaxpr, maps: list):
    """Channel maps of ``jaxpr``'s outputs when every operation is channel-wise, else None."""
    env = {v: m for v, m in zip(jaxpr.invars, maps)}
    for eqn in jaxpr.eqns:
        ins = [None if isinstance(v, Literal) else env.get(v) for v in eqn.invars]
        if all(m is None for m in ins):
            continue
        outs = _propagate(eqn, ins)
        if outs is None:
            return None
        env.update(zip(eqn.outvars, outs))
    return [None if isinstance(v, Literal) else env.get(v) for v in jaxpr.outvars]


def _site_axes(eqn, operand: int) -> tuple | None:
    """The axes of the linear map's site operand that it mixes: a dense layer's contracted axes, a
    convolution's input-feature axis (None where the map has batch axes, feature groups or takes the site as
    its kernel)."""
    if eqn.primitive.name == "dot_general":
        (contract_l, contract_r), (batch_l, batch_r) = eqn.params["dimension_numbers"]
        return None if batch_l or batch_r else tuple(contract_l if operand == 0 else contract_r)
    if operand != 0 or eqn.params["feature_group_count"] != 1 or eqn.params["batch_group_count"] != 1:
        return None
    return (eqn.params["dimension_numbers"].lhs_spec[1],)


def _groups(channel_map: np.ndarray, axes: tuple, n_channels: int):
    """(C, S) positions, in the flattened ``axes`` of the linear map's site operand, of each channel's inputs
    (padded with the position one past the end, which reads a zero); None if the channel of an input also
    depends on the other axes."""
    other = [d for d in range(channel_map.ndim) if d not in axes]
    m = np.transpose(channel_map, other + list(axes)).reshape(-1, int(np.prod([channel_map.shape[d] for d in axes])))
    if not (m == m[:1]).all():
        return None
    positions = [np.flatnonzero(m[0] == c) for c in range(n_channels)]
    width = max(1, max(len(p) for p in positions))
    return np.stack([np.concatenate([p, np.full(width - len(p), m.shape[1])]) for p in positions]).astype(np.int32)


def _channel_axis(eqn, operand: int) -> int:
    """Where the channel axis goes in the contributions: after the site operand's free axes in the map's
    output (a convolution: its output-feature axis, split into (C, features))."""
    if eqn.primitive.name == "conv_general_dilated":
        return eqn.params["dimension_numbers"].out_spec[1]
    (contract_l, contract_r), _ = eqn.params["dimension_numbers"]
    mine, theirs = (contract_l, contract_r) if operand == 0 else (contract_r, contract_l)
    n_free = eqn.invars[operand].aval.ndim - len(mine)
    return n_free if operand == 0 else eqn.invars[0].aval.ndim - len(theirs) + n_free


def plan(suffix: Callable, args: tuple, activation, n_channels: int, name: str = "site",
         max_bytes: float = 1e9) -> Plan | str:
    """Find the factored form of ``suffix(*args, activation)`` (the network from a site to its output), or
    return the reason there is none. Channels are the last axis of ``activation``; ``max_bytes`` bounds the
    memory of the per-channel contributions."""
    closed, shapes = jax.make_jaxpr(suffix, return_shape=True)(*args, activation)
    jaxpr = closed.jaxpr
    channels = {jaxpr.invars[-1]: np.broadcast_to(np.arange(n_channels, dtype=np.int32), activation.shape)}
    route = [name]
    for k, eqn in enumerate(jaxpr.eqns):
        ins = [None if isinstance(v, Literal) else channels.get(v) for v in eqn.invars]
        if all(m is None for m in ins):
            continue
        outs = _propagate(eqn, ins)
        if outs is not None:
            channels.update(zip(eqn.outvars, outs))
            if eqn.primitive.name not in _ELEMENTWISE:
                route.append(eqn.primitive.name)
            continue
        op = eqn.primitive.name
        live = [i for i, m in enumerate(ins) if m is not None]
        if op not in _LINEAR:
            return f"{op} after {name} mixes channels before any linear map"
        if len(live) != 1:
            return f"{op} after {name} takes the site in both operands"
        axes = _site_axes(eqn, live[0])
        site_map = ins[live[0]]
        groups = None if axes is None or site_map is None else _groups(site_map, axes, n_channels)
        if groups is None:
            return f"the {op} after {name} mixes the site's values in a way that is not channel by channel"
        size = int(np.prod(eqn.outvars[0].aval.shape)) * n_channels * eqn.outvars[0].aval.dtype.itemsize
        if size > max_bytes:
            return (f"the per-channel contributions to the {op} after {name} would take {size / 1e9:.2f} GB "
                    f"(limit {max_bytes / 1e9:.2f} GB)")
        route.append(f"{op} {tuple(eqn.invars[1 - live[0]].aval.shape)}")
        return Plan(closed, k, live[0], channels, groups, _channel_axis(eqn, live[0]), size, _route(route),
                    jax.tree.structure(shapes))
    return f"no linear map after {name}"


def _needed(eqns, outvars, skip=frozenset()) -> list[bool]:
    """Which of ``eqns`` (but those in ``skip``, whose outputs are given) contribute to ``outvars``."""
    need = {v for v in outvars if not isinstance(v, Literal)}
    keep = [False] * len(eqns)
    for i in range(len(eqns) - 1, -1, -1):
        if i not in skip and any(v in need for v in eqns[i].outvars):
            keep[i] = True
            need.update(v for v in eqns[i].invars if not isinstance(v, Literal))
    return keep


def _run(eqns, env, keep):
    for i, eqn in enumerate(eqns):
        if keep[i]:
            env.update(zip(eqn.outvars, _bind(eqn, [_read(env, v) for v in eqn.invars])))
    return env


def _start(p: Plan, flat: list, activation) -> dict:
    jaxpr = p.jaxpr.jaxpr
    env = dict(zip(jaxpr.constvars, p.jaxpr.consts))
    env.update(zip(jaxpr.invars, [*flat, activation]))
    return env


def precompute(p: Plan, flat: list, activation, ablated) -> dict:
    """Everything the lesions of a sweep share: the values computed from the site before the linear map that
    the rest of the network reads again (intact and ablated), the linear map's intact output and every
    channel's contribution (the output's shape with a channel axis at ``p.axis``). ``flat``: the leaves of
    the suffix's other arguments."""
    eqns = p.jaxpr.jaxpr.eqns[:p.cut + 1]
    cut = eqns[-1]
    reread = _reread(p)
    intact = _run(eqns, _start(p, flat, activation), _needed(eqns, [cut.outvars[0], *reread]))
    alt = _run(eqns, _start(p, flat, ablated), _needed(eqns, [cut.outvars[0], cut.invars[p.operand], *reread]))
    delta = alt[cut.invars[p.operand]] - intact[cut.invars[p.operand]]
    weights = _read(intact, cut.invars[1 - p.operand])
    contrib = (_conv_contributions if cut.primitive.name == "conv_general_dilated" else _dot_contributions)(
        p, cut, delta, weights)
    # "out_ablated": the map's output with every channel ablated, as the plain path computes it — the intact
    # output plus every channel's change would leave a rounding residue where the plain path's is exact (a
    # silenced layer's logits all equal its bias: the tie that argmax breaks must be broken the same way)
    return {"out": intact[cut.outvars[0]], "out_ablated": alt[cut.outvars[0]], "contrib": contrib,
            "reread": tuple(intact[v] for v in reread), "reread_alt": tuple(alt[v] for v in reread)}


def _by_channel(a, axes, groups):
    """``a`` with ``axes`` flattened (in order) into one axis at the end, gathered by ``groups`` into (C, S)
    (the padding position reads 0)."""
    other = [d for d in range(a.ndim) if d not in axes]
    a = jnp.transpose(a, other + list(axes))
    a = a.reshape(*a.shape[:len(other)], -1)
    return jnp.concatenate([a, jnp.zeros_like(a[..., :1])], -1)[..., groups]


def _dot_contributions(p: Plan, cut, delta, weights):
    """Each channel's rows of the dense layer alone: (*free, C, S) with (C, S, *rest), one einsum."""
    (contract_l, contract_r), _ = cut.params["dimension_numbers"]
    mine, theirs = (contract_l, contract_r) if p.operand == 0 else (contract_r, contract_l)
    d = _by_channel(delta, tuple(mine), p.groups)                                  # (*free, C, S)
    w = jnp.moveaxis(_by_channel(weights, tuple(theirs), p.groups), (-2, -1), (0, 1))   # (C, S, *rest)
    free, rest = d.shape[:-2], w.shape[2:]
    out = jnp.einsum("fcs,csr->fcr", d.reshape(-1, *d.shape[-2:]), w.reshape(*w.shape[:2], -1))
    out = out.reshape(*free, d.shape[-2], *rest)
    if p.operand == 1:      # the map's output puts the other operand's free axes first
        out = jnp.moveaxis(out, list(range(len(free) + 1)), list(range(len(rest), len(rest) + len(free) + 1)))
    return out


def _conv_contributions(p: Plan, cut, delta, kernel):
    """Each channel's input features through the convolution alone: one convolution with a feature group
    per channel (kernel ``[..., s, c·O + o] = K[..., feature (c, s), o]``), its output features split into
    (C, O)."""
    dims = cut.params["dimension_numbers"]
    n_channels, width = p.groups.shape
    feature, k_in, k_out = dims.lhs_spec[1], dims.rhs_spec[1], dims.rhs_spec[0]
    d = _by_channel(jnp.moveaxis(delta, feature, -1), (delta.ndim - 1,), p.groups)      # (..., C, S)
    d = jnp.moveaxis(d.reshape(*d.shape[:-2], -1), -1, feature)
    k = jnp.moveaxis(kernel, (k_in, k_out), (-2, -1))                                   # (*spatial, I, O)
    k = jnp.concatenate([k, jnp.zeros_like(k[..., :1, :])], -2)[..., p.groups, :]        # (*spatial, C, S, O)
    k = jnp.swapaxes(k, -3, -2)
    k = jnp.moveaxis(k.reshape(*k.shape[:-3], width, -1), (-2, -1), (k_in, k_out))
    out = lax.conv_general_dilated_p.bind(d, k, **{**cut.params, "feature_group_count": n_channels})
    axis = dims.out_spec[1]
    return out.reshape(*out.shape[:axis], n_channels, -1, *out.shape[axis + 1:])


def _reread(p: Plan) -> list:
    """Values computed from the site before the linear map that operations after it read again (a skip
    connection, a second branch): they are substituted per lesion, channel by channel."""
    after = p.jaxpr.jaxpr.eqns[p.cut + 1:]
    seen: list = []
    for e in after:
        for v in e.invars:
            if not isinstance(v, Literal) and v in p.channels and v not in seen:
                seen.append(v)
    for v in p.jaxpr.jaxpr.outvars:
        if not isinstance(v, Literal) and v in p.channels and v not in seen:
            seen.append(v)
    return seen


def lesioned_output(p: Plan, flat: list, shared: dict, mask=None, index=None):
    """The network's output with the channels in ``mask`` (C,) of 0/1 — or the one channel ``index`` —
    replaced by their ablated values, from the :func:`precompute` d ``shared`` values."""
    jaxpr = p.jaxpr.jaxpr
    contrib = shared["contrib"]
    axis = p.axis
    if index is not None:
        extra = jnp.take(contrib, index, axis=axis)
        chosen = lambda ids: ids == index
        every = contrib.shape[axis] == 1                                   # the one channel is every channel
    else:
        extra = jnp.tensordot(mask.astype(contrib.dtype), contrib, axes=([0], [axis]))
        padded = jnp.concatenate([mask, jnp.zeros((1,), mask.dtype)])
        chosen = lambda ids: padded[ids] > 0
        every = jnp.all(mask >= 1)
    env = dict(zip(jaxpr.constvars, p.jaxpr.consts))
    env.update(zip(jaxpr.invars[:-1], flat))
    cut = jaxpr.eqns[p.cut]
    env[cut.outvars[0]] = jnp.where(every, shared["out_ablated"], shared["out"] + extra)
    for v, a, b in zip(_reread(p), shared["reread"], shared["reread_alt"]):
        env[v] = jnp.where(chosen(jnp.asarray(p.channels[v])), b, a)
    independent = _independent(p)
    keep = _needed(jaxpr.eqns, jaxpr.outvars, {i for i in range(p.cut + 1) if i not in independent})
    env = _run(jaxpr.eqns, env, keep)
    return jax.tree.unflatten(p.out_tree, [_read(env, v) for v in jaxpr.outvars])


def _independent(p: Plan) -> set:
    """Indices of the operations before the cut that do not read the site (weights, constants)."""
    jaxpr = p.jaxpr.jaxpr
    dependent = {jaxpr.invars[-1]}
    out = set()
    for i, eqn in enumerate(jaxpr.eqns[:p.cut + 1]):
        if any(not isinstance(v, Literal) and v in dependent for v in eqn.invars):
            dependent.update(eqn.outvars)
        else:
            out.add(i)
    return out
