"""What a training run is configured by: :class:`TrainConfig` (checked hyper-parameters) and the optimizer it
makes (:func:`make_optimizer`: L2 weight decay on kernels, added to the gradient before the optimizer as SGD's
classic weight decay — with Adam that is L2 regularization, not AdamW's decoupled decay — and a one-cycle
learning-rate schedule)."""
from __future__ import annotations

from dataclasses import dataclass

import jax
import optax

from ..validation import ArgumentError, check_choice, check_count, check_fraction, check_number, check_positive
from .augment import AUGMENTATIONS

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`~insilico.train.fit`. ``optimizer`` "sgd" (Nesterov momentum) or "adam";
    L2 weight decay on kernels only (added to the gradient before the optimizer: with Adam not AdamW's decoupled
    decay); a one-cycle learning-rate schedule (linear warm-up for ``warmup`` of training, then cosine decay).
    Every field is checked when the config is made (:class:`~insilico.validation.ArgumentError` naming the
    field)."""

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


def _check_config(cfg, name: str = "cfg") -> TrainConfig:
    if not isinstance(cfg, TrainConfig):
        raise ArgumentError(f"{name} must be an insilico.train.TrainConfig; got {type(cfg).__name__}")
    return cfg


def make_optimizer(cfg: TrainConfig, steps: int) -> optax.GradientTransformation:
    """The optimizer of ``cfg`` for a run of ``steps`` steps (the schedule's length)."""
    _check_config(cfg)
    steps = check_count("steps", steps)
    # a warm-up, when asked for, of at least one step; a one-step run has none (lr 0 would train nothing)
    warmup = 0 if cfg.warmup == 0 else min(max(1, int(cfg.warmup * steps)), steps - 1)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, cfg.lr, warmup, steps, end_value=cfg.lr * 1e-3)
    decay_mask = lambda params: jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) == "kernel", params)
    opt = optax.sgd(schedule, cfg.momentum, nesterov=True) if cfg.optimizer == "sgd" else optax.adam(schedule)
    return optax.chain(optax.add_decayed_weights(cfg.weight_decay, mask=decay_mask), opt)
