"""Supervised training with optax: the training state, a jit-compiled step and :func:`fit` with resume.

Training is honest about what it resumes and what it produces: a checkpoint records the model, the config, the
objective and a content hash of the training (and test) images and labels (:mod:`.identity`), and is resumed only by
a run that matches all of them; a non-finite loss or non-finite weights stop training with the epoch, step and batch
named (:mod:`.divergence`), before any checkpoint of them is written. The config and optimizer are in
:mod:`.config`, evaluation in :mod:`.evaluation`, the argument checks in :mod:`._checks`; every name of them stays
importable from here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from ..models.feedback import learning_rule_gradients
from ..validation import ArgumentError, check_count, check_key

# F401 below: the helpers once defined in this module stay importable from it
from ._checks import (  # noqa: F401
    _check_images,
    _check_labels,
    _check_model,
    _dataset_images,
    _dataset_labels,
    _n_outputs,
)
from .augment import AUGMENTATIONS
from .checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint
from .config import OPTIMIZERS, TrainConfig, _check_config, make_optimizer
from .divergence import TrainingDivergedError, _nonfinite_paths, _tree_finite
from .evaluation import _accuracy, _predictor, evaluate  # noqa: F401
from .identity import (  # noqa: F401
    IDENTITY_FORMAT,
    _check_resumable,
    _describe_data,
    _describe_objective,
    _differences,
    _model_identity,
    _objective_identity,
    _plain,
    _run_identity,
    data_fingerprint,
)

__all__ = ["fit", "evaluate", "init_variables", "make_optimizer", "make_train_step", "TrainConfig", "TrainState",
           "FitResult", "TrainingDivergedError", "data_fingerprint", "OPTIMIZERS", "IDENTITY_FORMAT", "CHECK_EVERY"]

CHECK_EVERY = 50             # steps between host-side checks of the losses (each check waits for the device)
_DEFAULT_CONFIG = TrainConfig()  # frozen: one shared default is safe


@struct.dataclass
class TrainState:
    """``constants``: variable collections that training reads but never changes (e.g. ``"feedback"``
    matrices of feedback alignment), or None."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    constants: Any = None


@dataclass
class FitResult:
    """Trained ``variables`` and the per-epoch ``history`` (loss, train/test accuracy)."""

    variables: dict
    history: list = field(default_factory=list)


def init_variables(model: nn.Module, input_shape, key, *, eager: bool = False) -> dict:
    """Initialize ``{"params", ["batch_stats"]}`` for inputs of shape (H, W, C).

    On CPU the initializers run as one compiled call at LLVM optimization level 1: the same XLA operations with
    every floating-point result kept — bit-identical to the eager ``model.init`` (tested) — and compiled several
    times faster than op by op or at the default level (level 0 is faster still but changes results in the last
    bit). ``eager=True`` (also the way to call it inside a trace such as ``jax.eval_shape``), and backends where
    that identity is not established, run ``model.init`` eagerly.
    """
    _check_model(model)
    if isinstance(input_shape, str) or not hasattr(input_shape, "__len__") or len(input_shape) != 3:
        raise ArgumentError(f"input_shape must be (H, W, C); got {input_shape!r}")
    shape = (1, *(check_count(f"input_shape[{i}]", d) for i, d in enumerate(input_shape)))
    check_key("key", key)
    if eager or jax.default_backend() != "cpu":
        return dict(model.init(key, jnp.zeros(shape, jnp.float32)))
    lowered = jax.jit(lambda k: model.init(k, jnp.zeros(shape, jnp.float32))).lower(key)
    # XLA takes int option values; JAX annotates compiler_options as dict[str, str | bool]
    options = {"xla_backend_optimization_level": 1}
    return dict(lowered.compile(compiler_options=options)(key))  # type: ignore[arg-type]


def make_train_step(model: nn.Module, tx, cfg: TrainConfig, objective=None):
    """A jit-compiled step ``(state, x, y, key) -> (state, loss, metrics)`` for ``objective`` (default:
    :class:`~insilico.train.objectives.Classification` with the config's label smoothing)."""
    from .objectives import Classification

    objective = objective or Classification(cfg.label_smoothing)
    augment = AUGMENTATIONS[cfg.augment]

    def step(state: TrainState, x, y, key):
        k_aug, k_obj = jax.random.split(key)
        if augment is not None:
            x = augment(k_aug, x)

        def loss_fn(params):
            stats = {}

            def apply(inputs, k):
                variables = {"params": params, **(state.constants or {})}
                if state.batch_stats is not None:     # a second call (another view) continues from the first
                    variables["batch_stats"] = stats.get("batch_stats") or state.batch_stats
                # stochastic units are noisy while learning too (a "noise" stream beside dropout's)
                with learning_rule_gradients():          # feedback alignment etc. act while learning only
                    out, mutated = model.apply(variables, inputs, train=True,
                                               mutable=["batch_stats", "intermediates"],
                                               rngs={"dropout": k, "noise": jax.random.fold_in(k, 1)})
                stats["batch_stats"] = mutated.get("batch_stats")
                return out, mutated.get("intermediates", {})

            loss, metrics = objective(apply, x, y, k_obj)
            return loss, (metrics, stats.get("batch_stats"))

        (loss, (metrics, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        upd, opt_state = tx.update(grads, state.opt_state, state.params)
        new = TrainState(state.step + 1, optax.apply_updates(state.params, upd),
                         batch_stats if batch_stats is not None else state.batch_stats, opt_state, state.constants)
        return new, loss, metrics

    return jax.jit(step, donate_argnums=0)


def fit(model: nn.Module, train, test=None, cfg: TrainConfig = _DEFAULT_CONFIG, *, checkpoint_dir=None,
        resume: bool = True, progress: bool = True, on_epoch=None, objective=None) -> FitResult:
    """Train ``model`` on ``train`` (a :class:`~insilico.data.Dataset`), evaluating on ``test`` each epoch.

    ``objective``: what to learn (:mod:`insilico.train.objectives`; default classification with the config's
    label smoothing). The history records the loss and the objective's metrics (``train_acc`` for
    classification, ``train_mse``, ...), and test accuracy for objectives that use labels.

    With ``checkpoint_dir``, the state is saved after every epoch to ``checkpoint_dir/last.ckpt``, and a
    later call resumes from it (``resume=False`` starts over) only when it is the same run: the same model,
    config and objective (its class and fields), and training and test data of the same content (a sha256 of
    images and labels, whatever their name). Otherwise :class:`CheckpointError` names what differs.

    A non-finite loss (checked every :data:`CHECK_EVERY` steps and at the end of each epoch) or non-finite
    weights at the end of an epoch stop training with :class:`TrainingDivergedError` naming the epoch, the step
    and the batch (the indices of its training images); no checkpoint of that epoch is written, so the last good
    one stays. Images must be finite and, for objectives that use labels, labels integers in the range of the
    model's outputs (:class:`~insilico.validation.ArgumentError` otherwise).

    ``on_epoch(epoch, variables)`` is called with the initial variables (epoch 0, when training starts from
    scratch) and after every epoch (snapshots for learning-dynamics analyses).
    Example: ``fit(ConvNet(), cifar10("train"), cifar10("test"), TrainConfig(epochs=2))``.
    """
    from tqdm.auto import tqdm

    from .objectives import Classification

    _check_model(model)
    cfg = _check_config(cfg)
    if objective is not None and not (callable(objective) and hasattr(objective, "uses_labels")):
        raise ArgumentError(f"objective must be an objective of insilico.train.objectives (a callable with a "
                            f"uses_labels attribute) or None; got {type(objective).__name__}")
    if on_epoch is not None and not callable(on_epoch):
        raise ArgumentError(f"on_epoch must be a callable (epoch, variables) or None; got {type(on_epoch).__name__}")
    if not isinstance(resume, (bool, np.bool_)):
        raise ArgumentError(f"resume must be True or False; got {resume!r}")
    labelled = objective is None or bool(objective.uses_labels)
    key = jax.random.PRNGKey(cfg.seed)
    x_train = _dataset_images("train", train)
    variables = init_variables(model, x_train.shape[1:], jax.random.fold_in(key, 0))
    n_classes = _n_outputs(model, variables, x_train) if labelled else None
    y_train = _dataset_labels("train", train, len(x_train), labelled=labelled, n_classes=n_classes)
    evaluate_test = test is not None and labelled
    if evaluate_test:
        x_test = _dataset_images("test", test)
        y_test = _dataset_labels("test", test, len(x_test), labelled=True, n_classes=n_classes)
        if x_test.shape[1:] != x_train.shape[1:]:
            raise ArgumentError(f"test.x images have shape {x_test.shape[1:]}, the training images "
                                f"{x_train.shape[1:]}")
    steps_per_epoch = len(y_train) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ArgumentError(f"TrainConfig.batch_size must be ≤ the {len(y_train)} training images; got "
                            f"{cfg.batch_size}")
    tx = make_optimizer(cfg, cfg.epochs * steps_per_epoch)
    constants = {k: v for k, v in variables.items() if k not in ("params", "batch_stats")} or None
    state = TrainState(jnp.zeros((), jnp.int32), variables["params"], variables.get("batch_stats"),
                       tx.init(variables["params"]), constants)
    history, start, identity = [], 0, None
    ckpt = Path(checkpoint_dir) / "last.ckpt" if checkpoint_dir is not None else None
    ours = False                          # whether ckpt holds this run's weights (resumed, or written by it)
    if ckpt is not None:                  # what this run is: checked against a checkpoint before resuming it
        identity = _run_identity(model, cfg, objective or Classification(cfg.label_smoothing),
                                 data_fingerprint(x_train, y_train, getattr(train, "name", None)),
                                 data_fingerprint(x_test, y_test, getattr(test, "name", None)) if evaluate_test
                                 else None)
        if resume and ckpt.exists():
            stored = read_meta(ckpt).get("identity")
            _check_resumable(ckpt, stored, identity)
            state, meta = load_checkpoint(ckpt, state)
            if meta.get("identity") != stored:          # another process replaced the file in between
                raise CheckpointError(f"{ckpt} changed while it was read (another run writing it?); run again")
            history, start = meta["history"], meta["epoch"]
            if int(state.step) != start * steps_per_epoch:     # the schedule resumes from the step count
                raise CheckpointError(f"{ckpt} holds {int(state.step)} optimizer steps for {start} epochs of "
                                      f"{steps_per_epoch}; it does not belong to this run")
            ours = True
    step_fn = make_train_step(model, tx, cfg, objective)
    if on_epoch is not None and start == 0:
        on_epoch(0, jax.device_get(_variables(state)))          # host copies: the step donates its state
    for epoch in range(start, cfg.epochs):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, 1000 + epoch), len(y_train)))
        losses: list[jax.Array] = []                        # per step, on the device until checked
        metrics: list[dict] = []
        checked = 0

        def check_losses(losses=losses, order=order, epoch=epoch, ours=ours):
            """Raise at the first non-finite loss since the last check (one wait for the device)."""
            nonlocal checked
            window = losses[checked:]
            if window and not bool(jnp.all(jnp.isfinite(jnp.stack(window)))):
                values = np.asarray(jax.device_get(window))
                i = checked + int(np.flatnonzero(~np.isfinite(values))[0])
                idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                shown = ", ".join(map(str, idx[:10])) + (", ..." if len(idx) > 10 else "")
                kept = (f"; the last good checkpoint, {ckpt}, is kept" if ours else
                        f"; {ckpt} is an earlier run's (resume=False), not this one's" if ckpt is not None
                        and ckpt.exists() else "")
                raise TrainingDivergedError(
                    f"training diverged: the loss is {values[i - checked]} at epoch {epoch + 1}/{cfg.epochs}, step "
                    f"{i + 1}/{steps_per_epoch} (global step {epoch * steps_per_epoch + i + 1}), batch {i} of the "
                    f"epoch: training images [{shown}] ({len(idx)} images) of {getattr(train, 'name', 'train')!r}. "
                    f"No checkpoint of this epoch was written{kept}. Lower the learning rate (lr={cfg.lr}) or check "
                    f"the objective and these images",
                    epoch=epoch + 1, step=i + 1, global_step=epoch * steps_per_epoch + i + 1, batch=i,
                    indices=[int(j) for j in idx])
            checked = len(losses)

        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False)
        for i in bar:
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            state, loss, m = step_fn(state, jnp.asarray(x_train[idx]), jnp.asarray(y_train[idx]),
                                     jax.random.fold_in(key, int(epoch * steps_per_epoch + i) + 10**6))
            losses.append(loss)
            metrics.append(m)
            if (i + 1) % CHECK_EVERY == 0:
                check_losses()
            if progress and i % 20 == 0:
                bar.set_postfix(loss=f"{float(loss):.3f}")
        check_losses()
        if not bool(_tree_finite(state)):
            bad = [f"{part}/{path}" for part in ("params", "batch_stats", "opt_state")        # weights first
                   for path in _nonfinite_paths(getattr(state, part))]
            g = (epoch + 1) * steps_per_epoch
            raise TrainingDivergedError(
                f"training diverged: after epoch {epoch + 1}/{cfg.epochs} (global step {g}) the training state holds "
                f"NaN/inf values in {', '.join(bad[:5])}{' and more' if len(bad) > 5 else ''}, although every loss "
                f"was finite (non-finite gradients?). No checkpoint of this epoch was written. Lower the learning "
                f"rate (lr={cfg.lr}) or check the objective", epoch=epoch + 1, step=steps_per_epoch, global_step=g)
        record = {"epoch": epoch + 1, "loss": float(np.mean(jax.device_get(losses)))}
        for name, values in jax.device_get(jax.tree.map(lambda *v: jnp.stack(v), *metrics)).items():
            record[f"train_{name}"] = float(np.mean(values))
        if evaluate_test:
            record["test_acc"] = evaluate(model, _variables(state), x_test, y_test)
        history.append(record)
        if progress:
            print(json.dumps(record), flush=True)
        if ckpt is not None:
            save_checkpoint(ckpt, state, {"identity": identity, "epoch": epoch + 1, "history": history})
            ours = True
        if on_epoch is not None:
            on_epoch(epoch + 1, jax.device_get(_variables(state)))
    return FitResult(_variables(state), history)


def _variables(state: TrainState) -> dict:
    out = {"params": state.params, **(state.constants or {})}
    if state.batch_stats is not None:
        out["batch_stats"] = state.batch_stats
    return out
