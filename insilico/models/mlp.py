"""Multi-layer perceptron on flattened inputs."""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn

from ._stage import Normalize, classifier_head


class MLP(nn.Module):
    """Flatten -> dense ReLU stages -> linear readout. Sites: ``fc1 … fcM``, ``logits``.
    ``learning_rule``: "backprop" or "feedback_alignment" (every layer).

    Example: ``MLP(widths=(256, 128), num_classes=10)``.
    """

    widths: Sequence[int] = (256, 128)
    num_classes: int = 10
    dropout: float = 0.0
    mean: Sequence[float] = (0.5,)
    std: Sequence[float] = (0.25,)
    learning_rule: str = "backprop"

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = Normalize(self.mean, self.std, name="normalize")(x)
        return classifier_head(x, self.widths, self.num_classes, self.dropout, train, self.learning_rule)
