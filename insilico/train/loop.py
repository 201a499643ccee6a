"""Supervised training with optax: a jit-compiled step, augmentation, evaluation, checkpoints and resume.

Training is honest about what it resumes and what it produces: a checkpoint records the model, the config, the
objective and a content hash of the training (and test) images and labels, and is resumed only by a run that
matches all of them; a non-finite loss or non-finite weights stop training with the epoch, step and batch named,
before any checkpoint of them is written.
"""
from __future__ import annotations

import hashlib
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
from ..validation import (ArgumentError, check_choice, check_count, check_finite, check_fraction, check_labels,
                          check_number, check_positive)
from .augment import AUGMENTATIONS
from .checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint

OPTIMIZERS = ("sgd", "adam")
IDENTITY_FORMAT = 2          # checkpoints' identity records: 2 = data by content hash, objective always recorded
CHECK_EVERY = 50             # steps between host-side checks of the losses (each check waits for the device)


class TrainingDivergedError(FloatingPointError, ValueError):
    """Training produced a non-finite loss or non-finite weights. ``epoch`` (1-based), ``step`` (1-based, in the
    epoch), ``global_step`` and ``batch`` (the batch's 0-based number in the epoch) locate the first bad step;
    ``indices`` are the training images of that batch (None when the weights, not a loss, went bad)."""

    def __init__(self, message, *, epoch, step, global_step, batch=None, indices=None):
        super().__init__(message)
        self.epoch, self.step, self.global_step, self.batch, self.indices = epoch, step, global_step, batch, indices


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`fit`. ``optimizer`` "sgd" (Nesterov momentum) or "adam"; decoupled weight
    decay on kernels only; a one-cycle learning-rate schedule (linear warm-up for ``warmup`` of training, then
    cosine decay). Every field is checked when the config is made (:class:`~insilico.validation.ArgumentError`
    naming the field)."""

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

    def __post_init__(self):
        checked = {
            "epochs": check_count("TrainConfig.epochs", self.epochs),
            "batch_size": check_count("TrainConfig.batch_size", self.batch_size),
            "lr": float(check_positive("TrainConfig.lr", self.lr)),
            "momentum": float(check_fraction("TrainConfig.momentum", self.momentum)),
            "weight_decay": float(check_number("TrainConfig.weight_decay", self.weight_decay, low=0)),
            "warmup": float(check_fraction("TrainConfig.warmup", self.warmup)),
            "label_smoothing": float(check_fraction("TrainConfig.label_smoothing", self.label_smoothing)),
            "augment": check_choice("TrainConfig.augment", self.augment, AUGMENTATIONS),
            "seed": check_number("TrainConfig.seed", self.seed, integer=True),
            "optimizer": check_choice("TrainConfig.optimizer", self.optimizer, OPTIMIZERS),
        }
        for name, value in checked.items():          # plain Python numbers (JSON-able, comparable on resume)
            object.__setattr__(self, name, value)


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


def _check_config(cfg, name: str = "cfg") -> TrainConfig:
    if not isinstance(cfg, TrainConfig):
        raise ArgumentError(f"{name} must be an insilico.train.TrainConfig; got {type(cfg).__name__}")
    return cfg


def make_optimizer(cfg: TrainConfig, steps: int) -> optax.GradientTransformation:
    """The optimizer of ``cfg`` for a run of ``steps`` steps (the schedule's length)."""
    _check_config(cfg)
    steps = check_count("steps", steps)
    warmup = min(max(1, int(cfg.warmup * steps)), steps - 1)      # a one-step run has no warm-up (lr 0 would
    schedule = optax.warmup_cosine_decay_schedule(                   # train nothing)
        0.0, cfg.lr, warmup, steps, end_value=cfg.lr * 1e-3)
    decay_mask = lambda params: jax.tree_util.tree_map_with_path(  # noqa: E731
        lambda path, _: getattr(path[-1], "key", None) == "kernel", params)
    opt = optax.sgd(schedule, cfg.momentum, nesterov=True) if cfg.optimizer == "sgd" else optax.adam(schedule)
    return optax.chain(optax.add_decayed_weights(cfg.weight_decay, mask=decay_mask), opt)


def init_variables(model: nn.Module, input_shape, key, *, eager: bool = False) -> dict:
    """Initialize ``{"params", ["batch_stats"]}`` for inputs of shape (H, W, C).

    On CPU the initializers run as one compiled call at LLVM optimization level 1: the same XLA operations with
    every floating-point result kept — bit-identical to the eager ``model.init`` (tested) — and compiled several
    times faster than op by op or at the default level (level 0 is faster still but changes results in the last
    bit). ``eager=True`` (also the way to call it inside a trace such as ``jax.eval_shape``), and backends where
    that identity is not established, run ``model.init`` eagerly.
    """
    shape = (1, *tuple(input_shape))
    if eager or jax.default_backend() != "cpu":
        return dict(model.init(key, jnp.zeros(shape, jnp.float32)))
    lowered = jax.jit(lambda k: model.init(k, jnp.zeros(shape, jnp.float32))).lower(key)
    return dict(lowered.compile(compiler_options={"xla_backend_optimization_level": 1})(key))


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


# ------------------------------------------------------------------------------------------------- checks

def _check_model(model):
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a flax.linen Module (e.g. insilico.models.ConvNet()); got "
                            f"{type(model).__name__}")


def _n_outputs(model, variables, x) -> int | None:
    """The width of the model's output for images like ``x`` (classes of a classifier); None when the output is
    not a (N, K) array."""
    try:
        out = jax.eval_shape(lambda v, a: model.apply(v, a), variables, jax.ShapeDtypeStruct((1, *x.shape[1:]),
                                                                                            jnp.float32))
    except Exception:            # a model that needs more than images to run: its own error comes later
        return None
    return out.shape[-1] if hasattr(out, "shape") and len(out.shape) == 2 else None


def _check_images(name: str, x) -> np.ndarray:
    a = check_finite(name, x)
    if a.ndim < 2:
        raise ArgumentError(f"{name} must be a batch of images (N, H, W, C); got shape {a.shape}")
    return np.asarray(a, np.float32)


def _check_labels(name: str, y, n: int, n_classes: int | None) -> np.ndarray:
    if n_classes is None:             # the class range is unknown: integers, one per image
        a = check_finite(name, y, ndim=1)
        if a.shape[0] != n:
            raise ArgumentError(f"{name} must hold one label per image ({n}); got {a.shape[0]}")
        if not (np.issubdtype(a.dtype, np.integer) or np.all(a == np.round(a))):
            raise ArgumentError(f"{name} must be integer class labels; got dtype {a.dtype}")
        return a.astype(np.int32)
    return check_labels(name, y, n_classes, n=n)


def _dataset_images(name: str, data) -> np.ndarray:
    """The checked images of ``data`` (a Dataset, or anything with images ``x`` and labels ``y``)."""
    if not (hasattr(data, "x") and hasattr(data, "y")):
        raise ArgumentError(f"{name} must be an insilico.data.Dataset (images .x, labels .y); got "
                            f"{type(data).__name__}")
    return _check_images(f"{name}.x", data.x)


def _dataset_labels(name: str, data, n: int, *, labelled: bool, n_classes: int | None) -> np.ndarray:
    """Labels checked when the objective uses them (one integer per image, in the class range); otherwise the
    labels as given (or zeros), which the objective ignores."""
    if labelled:
        return _check_labels(f"{name}.y", data.y, n, n_classes)
    y = data.y
    return np.asarray(y, np.int32) if y is not None and np.shape(y) == (n,) else np.zeros(n, np.int32)


# --------------------------------------------------------------------------------------------- evaluation

def evaluate(model: nn.Module, variables: dict, x, y, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on images ``x`` (N, H, W, C) with labels ``y`` (N,) in its class range."""
    _check_model(model)
    batch_size = check_count("batch_size", batch_size)
    x = _check_images("x", x)
    y = _check_labels("y", y, len(x), _n_outputs(model, variables, x))
    return _accuracy(model, variables, x, y, batch_size)


def _accuracy(model, variables, x, y, batch_size: int = 500) -> float:
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


# ------------------------------------------------------------------------------------------------ identity

def data_fingerprint(x, y, name: str | None = None) -> dict:
    """What identifies a dataset for resuming: a sha256 of its images (as float32) and labels (as int32), with
    their shapes; ``name`` is recorded for messages only (two datasets with one name and other content differ,
    one content under two names is the same)."""
    x, y = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.int32)
    h = hashlib.sha256()
    h.update(f"x{x.shape}|y{y.shape}|".encode())
    h.update(memoryview(x).cast("B"))
    h.update(memoryview(y).cast("B"))
    return {"name": name, "images": int(x.shape[0]), "shape": list(x.shape[1:]), "sha256": h.hexdigest()}


def _plain(value):
    """A JSON-able copy (tuples as lists; other objects by repr)."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else repr(v)))


def _objective_identity(objective) -> dict:
    if is_dataclass(objective) and not isinstance(objective, type):
        return {"class": type(objective).__name__, "fields": _plain(asdict(objective))}
    return {"class": type(objective).__name__, "repr": repr(objective)}


def _model_identity(model) -> dict:
    try:
        return _plain(model_spec(model))
    except ValueError:                                     # a model class outside insilico.models
        return {"class": f"{type(model).__module__}.{type(model).__qualname__}", "repr": repr(model)}


def _describe_data(d) -> str:
    if d is None:
        return "none"
    return f"{d.get('name')!r}, {d.get('images')} images of shape {tuple(d.get('shape', ()))}, sha256 " \
           f"{str(d.get('sha256'))[:12]}"


def _describe_objective(o) -> str:
    if not isinstance(o, dict):
        return repr(o)
    if "fields" in o:
        return f"{o.get('class')}({', '.join(f'{k}={v!r}' for k, v in o['fields'].items())})"
    return o.get("repr", repr(o))


def _differences(stored: dict, now: dict) -> list[str]:
    """What differs between a checkpoint's identity and this run's, one phrase per difference."""
    out = []
    old_model, new_model = stored.get("model") or {}, now["model"]
    if old_model != new_model:
        if old_model.get("class") == new_model.get("class") and "config" in old_model and "config" in new_model:
            a, b = old_model["config"], new_model["config"]
            out += [f"the model's {k} ({a.get(k)!r} in the checkpoint, {b.get(k)!r} now)"
                    for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        else:
            out.append(f"the model ({json.dumps(old_model)} in the checkpoint, {json.dumps(new_model)} now)")
    old_cfg, new_cfg = stored.get("config") or {}, now["config"]
    for k in sorted(set(old_cfg) | set(new_cfg)):
        if old_cfg.get(k) != new_cfg.get(k):
            out.append(f"config.{k} ({old_cfg.get(k)!r} in the checkpoint, {new_cfg.get(k)!r} now)")
    for key, what in (("train", "the training data"), ("test", "the test data")):
        a, b = stored.get(key), now[key]
        if (a or {}).get("sha256") != (b or {}).get("sha256"):
            change = "content differs" if a and b and a.get("name") == b.get("name") else "differs"
            out.append(f"{what}: {change} (checkpoint: {_describe_data(a)}; now: {_describe_data(b)})")
    if stored.get("objective") != now["objective"]:
        out.append(f"the objective ({_describe_objective(stored.get('objective'))} in the checkpoint, "
                   f"{_describe_objective(now['objective'])} now)")
    return out


def _check_resumable(ckpt: Path, stored, identity: dict):
    way_out = "pass resume=False to start over (it is overwritten after the first epoch) or another checkpoint_dir"
    if not isinstance(stored, dict) or stored.get("format") != IDENTITY_FORMAT:
        raise CheckpointError(
            f"{ckpt} was written by an earlier version of insilico that did not record the content of the training "
            f"data and the objective, so resuming it cannot be verified; {way_out}")
    diffs = _differences(stored, identity)
    if diffs:
        raise CheckpointError(f"{ckpt} was written by another training run, so it is not resumed: "
                              + "; ".join(diffs) + f". To train anyway, {way_out}")


# ------------------------------------------------------------------------------------------------ finiteness

@jax.jit
def _tree_finite(tree):
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)
              if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _nonfinite_paths(tree) -> list[str]:
    flat = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
    return ["/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)
            for path, leaf in flat if not np.isfinite(np.asarray(leaf, np.float64)).all()]


# ---------------------------------------------------------------------------------------------------- fit

def fit(model: nn.Module, train, test=None, cfg: TrainConfig = TrainConfig(), *, checkpoint_dir=None,
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
    if ckpt is not None:                  # what this run is: checked against a checkpoint before resuming it
        identity = {"format": IDENTITY_FORMAT, "model": _model_identity(model), "config": _plain(asdict(cfg)),
                    "objective": _objective_identity(objective or Classification(cfg.label_smoothing)),
                    "train": data_fingerprint(x_train, y_train, getattr(train, "name", None)),
                    "test": data_fingerprint(x_test, y_test, getattr(test, "name", None)) if evaluate_test
                    else None}
        if resume and ckpt.exists():
            _check_resumable(ckpt, read_meta(ckpt).get("identity"), identity)
            state, meta = load_checkpoint(ckpt, state)
            history, start = meta["history"], meta["epoch"]
    step_fn = make_train_step(model, tx, cfg, objective)
    if on_epoch is not None and start == 0:
        on_epoch(0, jax.device_get(_variables(state)))          # host copies: the step donates its state
    for epoch in range(start, cfg.epochs):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, 1000 + epoch), len(y_train)))
        losses, metrics, checked = [], [], 0

        def check_losses():
            """Raise at the first non-finite loss since the last check (one wait for the device)."""
            nonlocal checked
            window = losses[checked:]
            if window and not bool(jnp.all(jnp.isfinite(jnp.stack(window)))):
                values = np.asarray(jax.device_get(window))
                i = checked + int(np.flatnonzero(~np.isfinite(values))[0])
                idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                shown = ", ".join(map(str, idx[:10])) + (", ..." if len(idx) > 10 else "")
                kept = f"; the last good checkpoint, {ckpt}, is kept" if ckpt is not None and ckpt.exists() else ""
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
        if on_epoch is not None:
            on_epoch(epoch + 1, jax.device_get(_variables(state)))
    return FitResult(_variables(state), history)



def _variables(state: TrainState) -> dict:
    out = {"params": state.params, **(state.constants or {})}
    if state.batch_stats is not None:
        out["batch_stats"] = state.batch_stats
    return out
