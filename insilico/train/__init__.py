"""Training: an optax loop with a jit-compiled step, augmentation, evaluation and checkpoints."""
from .augment import AUGMENTATIONS, flip_and_crop, random_crop, random_flip
from .checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint
from .loop import FitResult, TrainConfig, TrainState, evaluate, fit, init_variables

__all__ = ["fit", "evaluate", "init_variables", "TrainConfig", "TrainState", "FitResult",
           "save_checkpoint", "load_checkpoint", "read_meta", "CheckpointError",
           "random_flip", "random_crop", "flip_and_crop", "AUGMENTATIONS"]
