"""Multi-layer perceptron on flattened inputs."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from ._stage import DenseStage, Normalize, Readout


class MLP(nn.Module):
    """Flatten -> dense ReLU stages -> linear readout. Sites: ``fc1 … fcM``, ``logits``.

    Example: ``MLP(widths=(256, 128), num_classes=10)``.
    """

    widths: Sequence[int] = (256, 128)
    num_classes: int = 10
    dropout: float = 0.0
    mean: Sequence[float] = (0.5,)
    std: Sequence[float] = (0.25,)

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = Normalize(self.mean, self.std, name="normalize")(x)
        x = x.reshape(x.shape[0], -1)
        for j, w in enumerate(self.widths, start=1):
            x = DenseStage(w, dropout=self.dropout, name=f"fc{j}")(x, train)
        return Readout(self.num_classes, dropout=self.dropout, name="logits")(x, train)
