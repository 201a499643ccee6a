"""Rendering (Lucid's ``render``): :func:`visualize` optimizes images for many units of a site at once.

Each unit's ``n_seeds`` images are optimized with Adam: render the parameters, transform every image, record the
objective's sites, step up the objective's gradient (ReLU gradients redirected for the first steps). A step that
makes the objective or the parameters non-finite freezes that unit's images and raises
:class:`OptimizationError` naming the unit and the step.

The optimization is a program of :mod:`insilico.engine` (:class:`Render`) whose items are the units, run over
memory-bounded chunks of units padded to a few bucket sizes (1, 2, 4, 8, 12, 16, 24, ...; the pads dropped): on
accelerators one ``lax.scan`` per chunk (:func:`~insilico.engine.run_programs`), on CPU the engine's host loop
over one compiled step (:func:`~insilico.engine.run_shrinking`, every unit running every step), which runs a
chunk as concurrent slices, one per core, and takes the step count as data. The learning rate, the step count,
the snapshot steps and the redirected-ReLU steps are arguments, not constants, of the compiled functions: a new
value, or a unit count in the same bucket, compiles nothing. Feature visualization has no step loop of its own.
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
from ...engine import choose_batch_size, resolve_loop, run_programs, run_shrinking
from ...engine.shrinking import bucket, first_call_bytes
from ...models import relu_gradient_override
from ...validation import ArgumentError, check_choice, check_count, check_indices, check_key, check_positive
from .objectives import Objective
from .param import ImageParam, default_param
from .transforms import apply_batch, check_transforms, standard_transforms

__all__ = ["visualize", "OptimizationError"]


_FINAL = np.iinfo(np.int32).max             # nan_step of a unit whose final, untransformed score is not finite


class OptimizationError(FloatingPointError):
    """The objective or its gradient became NaN/inf during optimization."""


@dataclass(frozen=True, eq=False)
class Render:
    """The optimization of a chunk of units' images as a program of :mod:`insilico.engine` (init / step / finish
    over ``steps`` steps): its arguments are ``(subject, key, lr, snapshots, override_steps, units)``, the units
    (int32, one per item) being the axis the engine chunks, and the subject a pytree, so its weights are arguments
    of the compiled program, never constants in it. The learning rate, the snapshot steps (int32, sorted) and the
    number of steps with redirected ReLU gradients are arguments too, and nothing compiled reads ``steps``, so a new
    rate, step count or snapshot schedule (of as many snapshots) compiles nothing. Each unit's state holds its
    images' parameters, their Adam state, the first non-finite step (-1: none) and the snapshot buffer. A step
    renders, transforms and runs the images of every unit and seed of the chunk as one flat batch (:meth:`_loss`);
    the per-unit pieces (``*_one``: initialization, Adam update, final score) are vmapped over the chunk.

    The program is hashable by what its compiled functions depend on, so equal settings reuse the engine's compiled
    functions: under the host loop (``loop="host"``) ``steps`` is left out — only the Python loop reads it — and
    under ``lax.scan`` it is in, since the scan's length is compiled. ``override``: whether any step redirects ReLU
    gradients (without it the model's plain ReLU runs)."""

    objective: Objective
    param: ImageParam
    transforms: tuple
    n_seeds: int
    override: bool
    steps: int
    loop: str

    def _identity(self) -> tuple:
        return (self.objective, self.param, self.transforms, self.n_seeds, self.override, self.loop,
                self.steps if self.loop == "scan" else None)

    def __eq__(self, other):
        return isinstance(other, Render) and self._identity() == other._identity()

    def __hash__(self):
        return hash(self._identity())

    def _keys(self, unit, key):
        return jax.random.split(jax.random.fold_in(key, unit))             # (init key, step key)

    def _loss(self, p, keys, units, subject, redirect):
        """Minus the objective summed over the chunk, and (values (unit, seed), images): the images of every unit and
        seed rendered, transformed and run through the model as one flat batch."""
        u, n = units.shape[0], self.n_seeds
        flat = lambda a: a.reshape(u * n, *a.shape[2:])
        imgs = jax.vmap(self.param.render)(jax.tree_util.tree_map(flat, p))
        seen = apply_batch(self.transforms, flat(keys), imgs, self.param.bounds)
        record = tuple(sorted(self.objective.sites))
        if self.override:
            with relu_gradient_override(redirect):
                _, acts = el.forward(subject, seen, record=record)
        else:
            _, acts = el.forward(subject, seen, record=record)
        per_unit = lambda a: a.reshape(u, n, *a.shape[1:])
        imgs = per_unit(imgs)
        values = jax.vmap(self.objective.__call__)(jax.tree_util.tree_map(per_unit, acts), imgs, units)
        return -values.sum(), (values, imgs)

    def _update_one(self, p, s, nan_step, buf, g, values, imgs, i, lr, snaps):
        """One unit's Adam step, snapshot and non-finite check."""
        slot = jnp.minimum(jnp.sum(snaps < i), snaps.shape[0] - 1)             # searchsorted, without a loop
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

    def init_one(self, subject, key, lr, snaps, override_steps, unit):
        init_key, _ = self._keys(unit, key)
        params = jax.vmap(self.param.init)(jax.random.split(init_key, self.n_seeds))
        buf = jnp.zeros((snaps.shape[0], self.n_seeds, *self.param.shape), jnp.float32)
        return params, optax.adam(lr).init(params), jnp.asarray(-1, jnp.int32), buf

    def finish_one(self, state, subject, key, lr, snaps, override_steps, unit):
        p, _, nan_step, buf = state
        final = jax.vmap(self.param.render)(p)
        buf = buf.at[-1].set(final)                                        # the last snapshot is always ``steps``
        _, acts = el.forward(subject, final, record=tuple(sorted(self.objective.sites)))
        score = self.objective(acts, final, unit)                          # final images, untransformed
        nan_step = jnp.where((nan_step < 0) & ~jnp.all(jnp.isfinite(score)), _FINAL, nan_step)
        return {"images": jnp.nan_to_num(buf), "score": jnp.nan_to_num(score), "nan_step": nan_step}

    def init(self, subject, key, lr, snaps, override_steps, units):
        return jax.vmap(self.init_one, (None,) * 5 + (0,))(subject, key, lr, snaps, override_steps, units)

    def step(self, state, i, subject, key, lr, snaps, override_steps, units):
        p, s, nan_step, buf = state
        keys = jax.vmap(lambda unit: jax.random.split(jax.random.fold_in(self._keys(unit, key)[1], i),
                                                      self.n_seeds))(units)          # (unit, seed)
        (_, (values, imgs)), g = jax.value_and_grad(self._loss, has_aux=True)(p, keys, units, subject,
                                                                             i < override_steps)
        return jax.vmap(self._update_one, (0,) * 7 + (None,) * 3)(p, s, nan_step, buf, g, values, imgs, i, lr, snaps)

    def finish(self, state, subject, key, lr, snaps, override_steps, units):
        return jax.vmap(self.finish_one, (0,) + (None,) * 5 + (0,))(state, subject, key, lr, snaps,
                                                                    override_steps, units)

    def judge(self, state, subject, key, lr, snaps, override_steps, units):
        """The finished units (the host loop's form, :func:`~insilico.engine.run_shrinking`): every unit is done
        after the last step."""
        return (self.finish(state, subject, key, lr, snaps, override_steps, units),
                jnp.ones(units.shape[0], bool))


@lru_cache(maxsize=16)
def _one_unit(program: Render):
    """``fn(unit, shared)``: one unit's whole optimization as one ``lax.scan``, whose intermediates size the chunks
    (:func:`~insilico.engine.choose_batch_size`, cached per function: one per program here). The scan's body is
    counted once, so its length does not matter and a program equal but for ``steps`` may serve."""
    def run(unit, shared):
        units = unit[None]
        state, trace = jax.lax.scan(lambda st, i: program.step(st, i, *shared, units),
                                    program.init(*shared, units), jnp.arange(program.steps))
        return program.finish(state, *shared, units), trace
    return run


def _run_host(program: Render, units: np.ndarray, shared: tuple, steps: int, progress: bool, desc: str):
    """One chunk of units on the engine's host loop (:func:`~insilico.engine.run_shrinking` with every unit running
    every step): the step count is data of the run, and on CPU the chunk runs as concurrent slices, one per core.
    Returns the finished units' ``(result, trace (step, unit, seed))`` as NumPy arrays."""
    rows: list = []
    result, _ = run_shrinking(program, (np.asarray(units, np.int32),), shared, steps=steps, stop_early=False,
                              buckets=False, check=lambda out, i: rows.append(out), progress=progress, desc=desc)
    return result, np.stack(rows)


def _bucket(n: int) -> int:
    """Units optimized together for ``n`` units: 1, 2, 4, then the engine's buckets 8, 12, 16, 24, 32, 48, ...
    (at most a third padding), so a few compiled shapes serve every unit count."""
    return n if n <= 2 else 4 if n <= 4 else bucket(n)


def _chunk_size(n: int, limit: int) -> int:
    """Units per chunk for ``n`` units, at most ``limit`` at once: the chunks balanced, each padded to its bucket."""
    n_chunks = -(-n // limit)
    return min(limit, _bucket(-(-n // n_chunks)))


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
        batch_size/memory_budget: units optimized together, one chunk (default: every unit when, on the host
            loop, the run's first compiled calls and every unit's state fit ``memory_budget`` bytes —
            :func:`~insilico.engine.shrinking.first_call_bytes`, from traces the run reuses —, otherwise as many as
            the budget allows from the intermediates of one unit's optimization); a chunk is padded to a bucket
            size.
        loop: "scan" runs a chunk's whole optimization as one ``lax.scan`` (compiled per step count); "host"
            dispatches one compiled step for all units of a chunk per iteration (on CPU in concurrent slices, one
            per core); "auto" picks "host" on CPU (where XLA's convolution gradients run 3-4x slower inside a loop
            body) and "scan" elsewhere. Both give the same images.
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
                  else check_transforms(transforms, tuple(subject.input_spec.shape[:2])))
    unit_index = _check(subject, objective, units)
    if param is not None:
        _check_param(subject, param)
    param = default_param(subject) if param is None else param
    snap_run = snapshots if snapshots[-1] == steps else snapshots + (steps,)
    program = Render(objective, param, transforms, int(n_seeds), relu_override_steps > 0, int(steps), loop)
    # NumPy scalars and arrays: jnp.float32(lr) and the like would each compile a program (engine.host)
    shared = (subject, key, np.float32(lr), np.asarray(snap_run, np.int32), np.int32(relu_override_steps))
    n = len(unit_index)
    if batch_size is None and loop == "host":
        # every unit in one chunk when its first compiled calls fit the budget, measured on the traces the run
        # then reuses (tracing the program a second time, for one unit, cost 0.25 s in every new process)
        every = np.asarray(np.resize(unit_index, _bucket(n)), np.int32)
        if first_call_bytes(program, (every,), shared, buckets=False) <= memory_budget:
            batch_size = len(every)
    if batch_size is None:                 # sized from the traced program: compiling twice to measure is slow
        batch_size = choose_batch_size(_one_unit(program), np.asarray(unit_index[:1], np.int32), shared,
                                       memory_budget, compile=False)
    chunk = _chunk_size(n, batch_size)
    padded = np.concatenate([unit_index, np.repeat(unit_index[:1], -n % chunk)])     # pads repeat the first unit
    chunks = []                            # units per chunk, as the engine ran them

    def check(result, trace, start):
        chunks.append(len(result["nan_step"]))
        bad = np.flatnonzero(result["nan_step"] >= 0)
        if bad.size:
            i = int(bad[0])
            at = int(result["nan_step"][i])
            where = "on the final images" if at == _FINAL else f"at step {at}"
            raise OptimizationError(f"objective {objective.name} became NaN/inf {where} for unit "
                                    f"{int(padded[start + i])}; lower the learning rate or check the objective")

    desc = f"visualize {objective.name}"
    if loop == "scan":
        result, trace = run_programs(program, (jnp.asarray(padded, jnp.int32),), shared, chunk_size=chunk,
                                     loop=loop, progress=progress, desc=desc, check=check)
    else:
        parts = [_run_host(program, padded[start:start + chunk], shared, steps, progress, desc)
                 for start in range(0, len(padded), chunk)]
        for k, (part, part_trace) in enumerate(parts):
            check(part, part_trace, k * chunk)
        result = {name: np.concatenate([part[name] for part, _ in parts]) for name in parts[0][0]}
        trace = np.concatenate([part_trace for _, part_trace in parts], axis=1)
    result, trace = {k: v[:n] for k, v in result.items()}, trace[:, :n]
    ds = xr.Dataset({"images": (("unit", "step", "seed", "y", "x", "channel"), result["images"]),
                     "score": (("unit", "seed"), result["score"]),
                     "objective": (("unit", "iteration", "seed"), np.moveaxis(trace, 0, 1))},
                    coords={"unit": unit_index, "step": list(snap_run), "seed": np.arange(n_seeds)})
    ds = ds.sel(step=list(snapshots))
    ds.attrs.update({"batch_size": chunks[0], "n_chunks": len(chunks), "subject": subject.name,
                     "objective": objective.name, "param": param.kind, "steps": steps, "lr": lr, "n_seeds": n_seeds,
                     "transforms": repr(transforms), "loop": loop})
    return ds
