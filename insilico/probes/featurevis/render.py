"""Rendering (Lucid's ``render``): :func:`visualize` optimizes images for many units of a site at once.

Each unit's ``n_seeds`` images are optimized with Adam: render the parameters, transform every image, record the
objective's sites, step up the objective's gradient (ReLU gradients redirected for the first steps). A step that
makes the objective or the parameters non-finite freezes that unit's images and raises
:class:`OptimizationError` naming the unit and the step.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from ... import electrode as el
from ...models import relu_gradient_override
from ...sweep import choose_batch_size, run_sweep
from ...validation import ArgumentError, check_choice, check_count, check_indices, check_key, check_positive
from .._loop import LOOPS, resolve_loop
from .objectives import Objective
from .param import ImageParam, default_param
from .transforms import apply_transforms, check_transforms, standard_transforms

__all__ = ["visualize", "OptimizationError"]


class OptimizationError(FloatingPointError):
    """The objective or its gradient became NaN/inf during optimization."""


class _Program:
    """The optimization of one unit's images, in three pure pieces shared by both drivers of :func:`visualize`:
    ``init(unit, shared) -> state``, ``step(state, i, unit, shared) -> (state, objective values)`` and
    ``finish(state, unit, shared) -> outputs``; ``shared = (subject, key)`` (the subject is a pytree, so its
    weights are arguments of the compiled program, never constants in it). The state carries the image
    parameters, the Adam state, the first non-finite step (-1: none) and the snapshot buffer."""

    def __init__(self, objective: Objective, param: ImageParam, transforms: tuple, steps: int, lr: float,
                 n_seeds: int, snapshots: tuple, override_steps: int):
        self.objective, self.param, self.transforms = objective, param, transforms
        self.steps, self.n_seeds, self.snapshots, self.override_steps = steps, n_seeds, snapshots, override_steps
        self.sites = tuple(sorted(objective.sites))
        self.opt = optax.adam(lr)

    def _keys(self, unit, key):
        return jax.random.split(jax.random.fold_in(key, unit))             # (init key, step key)

    def _loss(self, p, key, unit, subject, step):
        imgs = jax.vmap(self.param.render)(p)
        keys = jax.random.split(key, self.n_seeds)
        seen = jax.vmap(lambda k, im: apply_transforms(self.transforms, k, im, self.param.bounds))(keys, imgs)
        with relu_gradient_override(step < self.override_steps):
            _, acts = el.forward(subject, seen, record=self.sites)
        values = self.objective(acts, imgs, unit)
        return -values.sum(), (values, imgs)

    def init(self, unit, shared):
        init_key, _ = self._keys(unit, shared[1])
        params = jax.vmap(self.param.init)(jax.random.split(init_key, self.n_seeds))
        buf = jnp.zeros((len(self.snapshots), self.n_seeds, *self.param.shape), jnp.float32)
        return params, self.opt.init(params), jnp.asarray(-1, jnp.int32), buf

    def step(self, state, i, unit, shared):
        p, s, nan_step, buf = state
        subject, key = shared
        key = jax.random.fold_in(self._keys(unit, key)[1], i)
        (_, (values, imgs)), g = jax.value_and_grad(self._loss, has_aux=True)(p, key, unit, subject, i)
        snaps = jnp.asarray(self.snapshots, jnp.int32)
        slot = jnp.minimum(jnp.searchsorted(snaps, i), len(self.snapshots) - 1)
        buf = jnp.where(snaps[slot] == i, buf.at[slot].set(imgs), buf)          # images after i updates
        updates, s_new = self.opt.update(g, s, p)
        p_new = optax.apply_updates(p, updates)
        finite = jnp.all(jnp.isfinite(values)) & jnp.all(jnp.array(
            [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(p_new)]))
        nan_step = jnp.where((nan_step < 0) & ~finite, i, nan_step)
        keep = nan_step >= 0                                # frozen at the last finite step
        p = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), p, p_new)
        s = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), s, s_new)
        return (p, s, nan_step, buf), jnp.nan_to_num(values)

    def finish(self, state, unit, shared):
        p, _, nan_step, buf = state
        final = jax.vmap(self.param.render)(p)
        buf = buf.at[-1].set(final)                                        # the last snapshot is always ``steps``
        _, acts = el.forward(shared[0], final, record=self.sites)
        score = self.objective(acts, final, unit)                          # final images, untransformed
        return {"images": jnp.nan_to_num(buf), "score": jnp.nan_to_num(score), "nan_step": nan_step}

    def scan_fn(self, unit, shared):
        """The whole optimization of one unit as one ``lax.scan`` (for the sweep engine)."""
        state, trace = jax.lax.scan(lambda st, i: self.step(st, i, unit, shared), self.init(unit, shared),
                                    jnp.arange(self.steps))
        return {**self.finish(state, unit, shared), "objective": trace}


@lru_cache(maxsize=16)
def _program(*args) -> _Program:
    return _Program(*args)


@lru_cache(maxsize=16)
def _host_fns(program: _Program):
    """Jitted, unit-vmapped init / step / finish for the host-loop driver."""
    over = lambda f, *axes: jax.jit(jax.vmap(f, in_axes=axes))
    return (over(program.init, 0, None), over(program.step, 0, None, 0, None),
            over(program.finish, 0, 0, None))


def _host_loop(program: _Program, units: np.ndarray, shared, batch_size: int, progress: bool, desc: str) -> dict:
    """Drive the optimization from Python, one compiled step for a whole chunk of units per iteration.

    XLA:CPU runs the input-gradient convolutions inside a compiled loop body 3-4x slower than in a straight-line
    program (they get a kernel layout without the fast convolution path), so on CPU a step per dispatch wins."""
    from tqdm.auto import tqdm

    init, step, finish = _host_fns(program)
    n_chunks = math.ceil(len(units) / batch_size)
    chunks = []
    with tqdm(total=n_chunks * program.steps, desc=desc, disable=not progress, unit="step") as bar:
        for c in range(n_chunks):
            u = units[c * batch_size:(c + 1) * batch_size]
            u = jnp.asarray(np.pad(u, (0, batch_size - len(u)), mode="edge"), jnp.int32)   # one compiled shape
            state, trace = init(u, shared), []
            for i in range(program.steps):
                state, values = step(state, jnp.int32(i), u, shared)
                trace.append(values)
                bar.update()
            out = finish(state, u, shared)
            out["objective"] = jnp.stack(trace, 1)
            chunks.append({k: np.asarray(v) for k, v in out.items()})
    return {k: np.concatenate([ch[k] for ch in chunks])[:len(units)] for k in chunks[0]}


def _check_param(subject, param: ImageParam):
    if not isinstance(param, ImageParam):
        raise ArgumentError(f"param must be an ImageParam (fv.pixel, fv.fourier, ...); got {type(param).__name__}")
    if tuple(param.shape) != tuple(subject.input_spec.shape):
        raise ArgumentError(f"parameterization renders images of shape {tuple(param.shape)} (H, W, C) but "
                            f"{subject.name} takes {tuple(subject.input_spec.shape)}")
    lo, hi = subject.input_spec.bounds
    if param.bounds[0] < lo or param.bounds[1] > hi:
        raise ArgumentError(f"parameterization renders pixels in {param.bounds}, outside {subject.name}'s pixel "
                            f"bounds [{lo}, {hi}]")


def _check(subject, objective: Objective, units) -> np.ndarray:
    """Check the objective's sites and explicit indices and the units (returned as an int array) against
    ``subject``."""
    if not isinstance(objective, Objective):
        raise ArgumentError(f"objective must be an insilico Objective (fv.channel, fv.neuron, ...); got "
                            f"{type(objective).__name__}")
    el.validate(subject, sites=sorted(objective.sites), purpose=f"objective {objective.name}")
    if isinstance(units, (int, np.integer)) and not isinstance(units, (bool, np.bool_)):
        units = np.arange(check_count("units (a number of units)", units))
    elif not hasattr(units, "shape") and not isinstance(units, (str, bytes)):
        try:
            units = list(units)
        except TypeError:
            pass
    units = check_indices("units", units, None)
    if np.ndim(units) != 1:
        raise ArgumentError("units must be a 1-D sequence of unit indices or a number of units")
    for site in sorted(objective.unit_sites):
        n = subject.sites[site][-1]
        check_indices(f"units (channels of {site!r}, which has {n})", units, n)
    for check in objective.checks:
        check(subject, units)
    return units


def visualize(subject, objective: Objective, units: Sequence[int] | int = 1, *, key, n_seeds: int = 1,
              param: ImageParam | None = None, transforms: Sequence | None = None, steps: int = 512,
              lr: float = 0.05, snapshots: Sequence[int] | None = None, relu_override_steps: int = 16,
              batch_size: int | None = None, memory_budget: float = 2e9, loop: str = "auto",
              progress: bool = True) -> xr.Dataset:
    """Optimize ``n_seeds`` images per unit to maximize ``objective``; all units of a chunk optimized together.

    Args:
        objective: an :class:`Objective`; pieces built without an explicit index (``channel("conv2")``) target
            the unit being visualized.
        units: unit indices (channels of a conv site), or an int n for units 0..n-1.
        key: PRNG key; unit u's images depend only on (key, u), not on the other units in the call.
        param: image parameterization (default :func:`default_param`); transforms: default
            :func:`standard_transforms` for the input size (pass ``()`` for none).
        steps/lr: Adam steps and learning rate. snapshots: steps at which images are kept (default: the last).
        relu_override_steps: redirected ReLU gradients for this many first steps (0 = off).
        batch_size/memory_budget: units vmapped together (default: sized from the memory budget).
        loop: "scan" runs each unit's whole optimization as one ``lax.scan`` on the sweep engine (sharded over
            devices); "host" dispatches one compiled step for all units of a chunk per iteration; "auto" picks
            "host" on CPU (where XLA's convolution gradients run 3-4x slower inside a loop body) and "scan"
            elsewhere. Both give the same images.
    Returns: ``xarray.Dataset`` with ``images`` (unit, step, seed, y, x, channel), ``objective`` (unit,
    iteration, seed) and the final objective ``score`` (unit, seed) of the untransformed images.
    Raises: :class:`OptimizationError` naming the unit and step where the objective became NaN/inf.
    """
    el.validate(subject)
    check_key("key", key)
    n_seeds, steps, lr = check_count("n_seeds", n_seeds), check_count("steps", steps), check_positive("lr", lr)
    relu_override_steps = check_count("relu_override_steps", relu_override_steps, minimum=0)
    if batch_size is not None:
        batch_size = check_count("batch_size", batch_size)
    memory_budget = check_positive("memory_budget", memory_budget)
    loop = check_choice("loop", loop, LOOPS)
    progress = bool(check_choice("progress", progress, (False, True)))
    if snapshots is None:
        snapshots = (steps,)
    else:
        try:
            snapshots = tuple(snapshots)
        except TypeError:
            raise ArgumentError(f"snapshots must be a sequence of steps in [0, {steps}]; got {snapshots!r}") from None
        if not snapshots:
            raise ArgumentError(f"snapshots must name at least one step in [0, {steps}] (None: the last)")
        snapshots = tuple(sorted({check_count(f"snapshots[{k}]", v, minimum=0, maximum=steps)
                                  for k, v in enumerate(snapshots)}))
    transforms = (standard_transforms(subject.input_spec.shape[0]) if transforms is None
                  else check_transforms(transforms))
    units = _check(subject, objective, units)
    if param is not None:
        _check_param(subject, param)
    param = default_param(subject) if param is None else param
    snap_run = snapshots if snapshots[-1] == steps else snapshots + (steps,)
    loop = resolve_loop(loop)
    program = _program(objective, param, transforms, int(steps), float(lr), int(n_seeds), snap_run,
                       int(relu_override_steps))
    shared = (subject, key)
    if batch_size is None:                 # sized from the traced program: compiling twice to measure is slow
        batch_size = choose_batch_size(program.scan_fn, jnp.asarray(units[:1], jnp.int32), shared, memory_budget,
                                       compile=False)
    dims = {"images": ("step", "seed", "y", "x", "channel"), "objective": ("iteration", "seed"), "score": ("seed",)}
    desc = f"visualize {objective.name}"
    if loop == "scan":
        ds = run_sweep(program.scan_fn, jnp.asarray(units, jnp.int32), shared, dim="unit", coords=units,
                       batch_size=batch_size, memory_budget=memory_budget, progress=progress, desc=desc,
                       extra_dims=dims)
    else:
        batch_size = max(1, min(int(batch_size), len(units)))
        out = _host_loop(program, units, shared, batch_size, progress, desc)
        ds = xr.Dataset({k: (("unit", *dims.get(k, ())), v) for k, v in out.items()}, coords={"unit": units})
        ds.attrs.update({"batch_size": batch_size, "n_chunks": math.ceil(len(units) / batch_size)})
    nan_step = ds["nan_step"].values
    if (nan_step >= 0).any():
        i = int(np.argmax(nan_step >= 0))
        raise OptimizationError(f"objective {objective.name} became NaN/inf at step {int(nan_step[i])} for unit "
                                f"{int(units[i])}; lower the learning rate or check the objective")
    ds = ds.drop_vars("nan_step").assign_coords(step=list(snap_run), seed=np.arange(n_seeds))
    ds = ds.sel(step=list(snapshots))
    ds.attrs.update({"subject": subject.name, "objective": objective.name, "param": param.kind, "steps": steps,
                     "lr": lr, "n_seeds": n_seeds, "transforms": repr(transforms), "loop": loop})
    return ds
