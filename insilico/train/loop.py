"""Supervised training with optax: a jit-compiled step, augmentation, evaluation, checkpoints and resume."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from ..models.feedback import learning_rule_gradients
from ..models.spec import model_spec
from .augment import AUGMENTATIONS
from .checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`fit`. ``optimizer`` "sgd" (Nesterov momentum) or "adam"; decoupled weight
    decay on kernels only; a one-cycle learning-rate schedule (linear warm-up for ``warmup`` of training, then
    cosine decay)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup: float = 0.15
    label_smoothing: float = 0.1
    augment: str = "flip_crop"
    seed: int = 0
    optimizer: str = "sgd"


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


def make_optimizer(cfg: TrainConfig, steps: int) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, cfg.lr, max(1, int(cfg.warmup * steps)), steps, end_value=cfg.lr * 1e-3)
    decay_mask = lambda params: jax.tree_util.tree_map_with_path(  # noqa: E731
        lambda path, _: getattr(path[-1], "key", None) == "kernel", params)
    if cfg.optimizer not in ("sgd", "adam"):
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; valid: sgd, adam")
    opt = optax.sgd(schedule, cfg.momentum, nesterov=True) if cfg.optimizer == "sgd" else optax.adam(schedule)
    return optax.chain(optax.add_decayed_weights(cfg.weight_decay, mask=decay_mask), opt)


def init_variables(model: nn.Module, input_shape, key) -> dict:
    """Initialize ``{"params", ["batch_stats"]}`` for inputs of shape (H, W, C)."""
    return dict(model.init(key, jnp.zeros((1, *input_shape), jnp.float32)))


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


def evaluate(model: nn.Module, variables: dict, x, y, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on images ``x`` (N, H, W, C) with labels ``y`` (N,)."""
    predict = _predictor(model)
    correct = 0
    for i in range(0, len(y), batch_size):
        correct += int(jnp.sum(predict(variables, jnp.asarray(x[i:i + batch_size])) == jnp.asarray(y[i:i + batch_size])))
    return correct / len(y)


_PREDICTORS: dict = {}


def _predictor(model):
    if model not in _PREDICTORS:
        _PREDICTORS[model] = jax.jit(lambda v, x: jnp.argmax(model.apply(v, x), -1))
    return _PREDICTORS[model]


def fit(model: nn.Module, train, test=None, cfg: TrainConfig = TrainConfig(), *, checkpoint_dir=None,
        resume: bool = True, progress: bool = True, on_epoch=None, objective=None) -> FitResult:
    """Train ``model`` on ``train`` (a :class:`~insilico.data.Dataset`), evaluating on ``test`` each epoch.

    ``objective``: what to learn (:mod:`insilico.train.objectives`; default classification). The history
    records the loss and the objective's metrics (``train_acc`` for classification, ``train_mse``, ...), and
    test accuracy for objectives that use labels.

    With ``checkpoint_dir``, the state is saved after every epoch to ``checkpoint_dir/last.ckpt``, and a
    later call with the same model and config resumes from it (``resume=False`` starts over). A checkpoint of
    another model or config raises :class:`CheckpointError`. ``on_epoch(epoch, variables)`` is called with the
    initial variables (epoch 0, when training starts from scratch) and after every epoch (snapshots for
    learning-dynamics analyses).
    Example: ``fit(ConvNet(), cifar10("train"), cifar10("test"), TrainConfig(epochs=2))``.
    """
    from tqdm.auto import tqdm

    x_train, y_train = np.asarray(train.x, np.float32), np.asarray(train.y, np.int32)
    steps_per_epoch = len(y_train) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {cfg.batch_size} exceeds the {len(y_train)} training images")
    tx = make_optimizer(cfg, cfg.epochs * steps_per_epoch)
    key = jax.random.PRNGKey(cfg.seed)
    variables = init_variables(model, x_train.shape[1:], jax.random.fold_in(key, 0))
    constants = {k: v for k, v in variables.items() if k not in ("params", "batch_stats")} or None
    state = TrainState(jnp.zeros((), jnp.int32), variables["params"], variables.get("batch_stats"),
                       tx.init(variables["params"]), constants)
    identity = {"model": model_spec(model), "config": asdict(cfg), "train": train.name}
    from .objectives import Classification

    if objective is not None and objective != Classification(cfg.label_smoothing):     # the default: not recorded
        fields = asdict(objective) if is_dataclass(objective) else {"repr": repr(objective)}
        identity["objective"] = {"class": type(objective).__name__, **fields}
    history, start = [], 0
    ckpt = Path(checkpoint_dir) / "last.ckpt" if checkpoint_dir else None
    if ckpt is not None and resume and ckpt.exists():
        meta = read_meta(ckpt)
        if meta.get("identity") != identity:
            raise CheckpointError(
                f"{ckpt} was written for another model or config; pass resume=False or another checkpoint_dir.\n"
                f"  checkpoint: {json.dumps(meta.get('identity'))}\n  now:        {json.dumps(identity)}")
        state, meta = load_checkpoint(ckpt, state)
        history, start = meta["history"], meta["epoch"]
    step_fn = make_train_step(model, tx, cfg, objective)
    labelled = objective is None or objective.uses_labels
    if on_epoch is not None and start == 0:
        on_epoch(0, jax.device_get(_variables(state)))          # host copies: the step donates its state
    for epoch in range(start, cfg.epochs):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, 1000 + epoch), len(y_train)))
        losses, metrics = [], []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False)
        for i in bar:
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            state, loss, m = step_fn(state, jnp.asarray(x_train[idx]), jnp.asarray(y_train[idx]),
                                     jax.random.fold_in(key, int(epoch * steps_per_epoch + i) + 10**6))
            losses.append(loss)
            metrics.append(m)
            if i % 20 == 0:
                bar.set_postfix(loss=f"{float(loss):.3f}")
        record = {"epoch": epoch + 1, "loss": float(np.mean(jax.device_get(losses)))}
        for name, values in jax.device_get(jax.tree.map(lambda *v: jnp.stack(v), *metrics)).items():
            record[f"train_{name}"] = float(np.mean(values))
        if test is not None and labelled:
            record["test_acc"] = evaluate(model, _variables(state), test.x, test.y)
        history.append(record)
        if progress:
            print(json.dumps(record), flush=True)
        if ckpt is not None:
            save_checkpoint(ckpt, state, {"identity": identity, "epoch": epoch + 1, "history": history})
        if on_epoch is not None:
            on_epoch(epoch + 1, jax.device_get(_variables(state)))
    return FitResult(_variables(state), history)


def _variables(state: TrainState) -> dict:
    out = {"params": state.params, **(state.constants or {})}
    if state.batch_stats is not None:
        out["batch_stats"] = state.batch_stats
    return out
