"""Training: an optax loop with a jit-compiled step, augmentation, evaluation and checkpoints."""
from .augment import AUGMENTATIONS, flip_and_crop, random_crop, random_flip
from .checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint
from .loop import (
    FitResult,
    TrainConfig,
    TrainingDivergedError,
    TrainState,
    data_fingerprint,
    evaluate,
    fit,
    init_variables,
    make_optimizer,
)

__all__ = ["fit", "evaluate", "init_variables", "make_optimizer", "TrainConfig", "TrainState", "FitResult",
           "TrainingDivergedError", "data_fingerprint",
           "save_checkpoint", "load_checkpoint", "read_meta", "CheckpointError",
           "random_flip", "random_crop", "flip_and_crop", "AUGMENTATIONS"]
