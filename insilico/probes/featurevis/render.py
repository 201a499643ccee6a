"""Rendering (Lucid's ``render``): :func:`visualize` optimizes images for many units of a site at once.

Each unit's ``n_seeds`` images are optimized with Adam: render the parameters, transform every image, record the
objective's sites, step up the objective's gradient (ReLU gradients redirected for the first steps). A step that
makes the objective or the parameters non-finite freezes that unit's images and raises
:class:`OptimizationError` naming the unit and the step.

The optimization is a program of :mod:`insilico.engine` (:class:`Render`) whose items are the units:
:func:`~insilico.engine.run_programs` runs it over memory-bounded chunks of units — one ``lax.scan`` per chunk
on accelerators, a host loop over one compiled step on CPU — so feature visualization has no loop of its own.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from ... import electrode as el
from ...engine import choose_batch_size, resolve_loop, run_programs
from ...models import relu_gradient_override
from ...validation import ArgumentError, check_choice, check_count, check_indices, check_key, check_positive
from .objectives import Objective
from .param import ImageParam, default_param
from .transforms import apply_transforms, check_transforms, standard_transforms

__all__ = ["visualize", "OptimizationError"]


class OptimizationError(FloatingPointError):
    """The objective or its gradient became NaN/inf during optimization."""


@dataclass(frozen=True)
class Render:
    """The optimization of a chunk of units' images as a program of :mod:`insilico.engine` (init / step / finish
    over ``steps`` steps): its arguments are ``(subject, key, lr, units)``, the units (int32, one per item) being
    the axis the engine chunks, and the subject a pytree, so its weights are arguments of the compiled program,
    never constants in it; the learning rate is an argument too, so a new one compiles nothing. Each unit's state
    holds its images' parameters, their Adam state, the first non-finite step (-1: none) and the snapshot buffer;
    the pieces for one unit (``*_one``) are vmapped over the chunk. The program is hashable by its settings, so
    equal settings reuse the engine's compiled functions."""

    objective: Objective
    param: ImageParam
    transforms: tuple
    steps: int
    n_seeds: int
    snapshots: tuple
    override_steps: int

    def _keys(self, unit, key):
        return jax.random.split(jax.random.fold_in(key, unit))             # (init key, step key)

    def _loss(self, p, key, unit, subject, step):
        imgs = jax.vmap(self.param.render)(p)
        keys = jax.random.split(key, self.n_seeds)
        seen = jax.vmap(lambda k, im: apply_transforms(self.transforms, k, im, self.param.bounds))(keys, imgs)
        with relu_gradient_override(step < self.override_steps):
            _, acts = el.forward(subject, seen, record=tuple(sorted(self.objective.sites)))
        values = self.objective(acts, imgs, unit)
        return -values.sum(), (values, imgs)

    def init_one(self, subject, key, lr, unit):
        init_key, _ = self._keys(unit, key)
        params = jax.vmap(self.param.init)(jax.random.split(init_key, self.n_seeds))
        buf = jnp.zeros((len(self.snapshots), self.n_seeds, *self.param.shape), jnp.float32)
        return params, optax.adam(lr).init(params), jnp.asarray(-1, jnp.int32), buf

    def step_one(self, state, i, subject, key, lr, unit):
        p, s, nan_step, buf = state
        key = jax.random.fold_in(self._keys(unit, key)[1], i)
        (_, (values, imgs)), g = jax.value_and_grad(self._loss, has_aux=True)(p, key, unit, subject, i)
        snaps = jnp.asarray(self.snapshots, jnp.int32)
        slot = jnp.minimum(jnp.searchsorted(snaps, i), len(self.snapshots) - 1)
        buf = jnp.where(snaps[slot] == i, buf.at[slot].set(imgs), buf)          # images after i updates
        updates, s_new = optax.adam(lr).update(g, s, p)
        p_new = optax.apply_updates(p, updates)
        finite = jnp.all(jnp.isfinite(values)) & jnp.all(jnp.array(
            [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(p_new)]))
        nan_step = jnp.where((nan_step < 0) & ~finite, i, nan_step)
        keep = nan_step >= 0                                # frozen at the last finite step
        p = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), p, p_new)
        s = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), s, s_new)
        return (p, s, nan_step, buf), jnp.nan_to_num(values)

    def finish_one(self, state, subject, key, lr, unit):
        p, _, nan_step, buf = state
        final = jax.vmap(self.param.render)(p)
        buf = buf.at[-1].set(final)                                        # the last snapshot is always ``steps``
        _, acts = el.forward(subject, final, record=tuple(sorted(self.objective.sites)))
        score = self.objective(acts, final, unit)                          # final images, untransformed
        return {"images": jnp.nan_to_num(buf), "score": jnp.nan_to_num(score), "nan_step": nan_step}

    def init(self, subject, key, lr, units):
        return jax.vmap(self.init_one, (None, None, None, 0))(subject, key, lr, units)

    def step(self, state, i, subject, key, lr, units):
        return jax.vmap(self.step_one, (0, None, None, None, None, 0))(state, i, subject, key, lr, units)

    def finish(self, state, subject, key, lr, units):
        return jax.vmap(self.finish_one, (0, None, None, None, 0))(state, subject, key, lr, units)


@lru_cache(maxsize=16)
def _one_unit(program: Render):
    """``fn(unit, (subject, key, lr))``: one unit's whole optimization as one ``lax.scan``, whose intermediates size
    the chunks (:func:`~insilico.engine.choose_batch_size`, cached per function: one per program here)."""
    def run(unit, shared):
        subject, key, lr = shared
        state, trace = jax.lax.scan(lambda st, i: program.step_one(st, i, subject, key, lr, unit),
                                    program.init_one(subject, key, lr, unit), jnp.arange(program.steps))
        return program.finish_one(state, subject, key, lr, unit), trace
    return run


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


def _check_snapshots(snapshots, steps: int) -> tuple:
    """The sorted, distinct steps in [0, ``steps``] at which images are kept (None: the last)."""
    if snapshots is None:
        return (steps,)
    try:
        snapshots = tuple(snapshots)
    except TypeError:
        raise ArgumentError(f"snapshots must be a sequence of steps in [0, {steps}]; got {snapshots!r}") from None
    if not snapshots:
        raise ArgumentError(f"snapshots must name at least one step in [0, {steps}] (None: the last)")
    return tuple(sorted({check_count(f"snapshots[{k}]", v, minimum=0, maximum=steps)
                         for k, v in enumerate(snapshots)}))


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
        batch_size/memory_budget: units optimized together, one chunk of :func:`insilico.engine.run_programs`
            (default: as many as ``memory_budget`` bytes allow from the intermediates of one unit's optimization).
        loop: "scan" runs a chunk's whole optimization as one ``lax.scan``; "host" dispatches one compiled step
            for all units of a chunk per iteration; "auto" picks "host" on CPU (where XLA's convolution gradients
            run 3-4x slower inside a loop body) and "scan" elsewhere. Both give the same images.
    Returns: ``xarray.Dataset`` with ``images`` (unit, step, seed, y, x, channel), ``objective`` (unit,
    iteration, seed) and the final objective ``score`` (unit, seed) of the untransformed images; attrs
    ``batch_size`` (units per chunk) and ``n_chunks``.
    Raises: :class:`OptimizationError` naming the unit and step where the objective became NaN/inf.
    """
    el.validate(subject)
    check_key("key", key)
    n_seeds, steps, lr = check_count("n_seeds", n_seeds), check_count("steps", steps), check_positive("lr", lr)
    relu_override_steps = check_count("relu_override_steps", relu_override_steps, minimum=0)
    if batch_size is not None:
        batch_size = check_count("batch_size", batch_size)
    memory_budget = check_positive("memory_budget", memory_budget)
    loop = resolve_loop(loop)
    progress = bool(check_choice("progress", progress, (False, True)))
    snapshots = _check_snapshots(snapshots, steps)
    transforms = (standard_transforms(subject.input_spec.shape[0]) if transforms is None
                  else check_transforms(transforms))
    unit_index = _check(subject, objective, units)
    if param is not None:
        _check_param(subject, param)
    param = default_param(subject) if param is None else param
    snap_run = snapshots if snapshots[-1] == steps else snapshots + (steps,)
    program = Render(objective, param, transforms, int(steps), int(n_seeds), snap_run, int(relu_override_steps))
    items, shared = (jnp.asarray(unit_index, jnp.int32),), (subject, key, jnp.float32(lr))
    if batch_size is None:                 # sized from the traced program: compiling twice to measure is slow
        batch_size = choose_batch_size(_one_unit(program), items[0][:1], shared, memory_budget, compile=False)
    chunks = []                            # units per chunk, as the engine ran them

    def check(result, trace, start):
        chunks.append(len(result["nan_step"]))
        bad = np.flatnonzero(result["nan_step"] >= 0)
        if bad.size:
            i = int(bad[0])
            raise OptimizationError(f"objective {objective.name} became NaN/inf at step "
                                    f"{int(result['nan_step'][i])} for unit {int(unit_index[start + i])}; lower the "
                                    "learning rate or check the objective")

    result, trace = run_programs(program, items, shared, chunk_size=batch_size, loop=loop, progress=progress,
                                 desc=f"visualize {objective.name}", check=check)
    ds = xr.Dataset({"images": (("unit", "step", "seed", "y", "x", "channel"), result["images"]),
                     "score": (("unit", "seed"), result["score"]),
                     "objective": (("unit", "iteration", "seed"), np.moveaxis(trace, 0, 1))},
                    coords={"unit": unit_index, "step": list(snap_run), "seed": np.arange(n_seeds)})
    ds = ds.sel(step=list(snapshots))
    ds.attrs.update({"batch_size": chunks[0], "n_chunks": len(chunks), "subject": subject.name,
                     "objective": objective.name, "param": param.kind, "steps": steps, "lr": lr, "n_seeds": n_seeds,
                     "transforms": repr(transforms), "loop": loop})
    return ds
