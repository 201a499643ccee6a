"""A convolutional autoencoder: conv encoder → a dense code (a site) → transposed-conv decoder → pixels."""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import numpy as np

from ._stage import POOLS, ConvStage, DenseStage, Normalize


class Autoencoder(nn.Module):
    """Encoder ``conv1 … convK`` (ReLU, 2x2 max pooling), a ReLU ``code`` of ``code`` units (sown as
    ``intermediates/code_activity`` for sparsity penalties), and a decoder mirroring the encoder with stride-2
    transposed convolutions to a sigmoid image of the input's shape. Sites: ``conv1 … convK``, ``code``.

    Example: ``fit(Autoencoder(), cifar10("train"), objective=SparseAutoencoder(l1=1e-3))``.
    """

    widths: Sequence[int] = (32, 64)
    code: int = 128
    norm: bool = True
    mean: Sequence[float] = (0.5,)
    std: Sequence[float] = (0.25,)

    @nn.compact
    def __call__(self, x, train: bool = False):
        h, w, c = x.shape[1:]
        k = 2 ** len(self.widths)                    # each stage halves; each transposed conv doubles
        if h % k or w % k:
            raise ValueError(f"Autoencoder with widths={tuple(self.widths)} needs an input whose height and width "
                             f"are multiples of {k} (each stage pools by 2, odd rows are lost); got {h}x{w}")
        z = Normalize(self.mean, self.std, name="normalize")(x)
        for i, width in enumerate(self.widths, start=1):
            z = POOLS["max"](ConvStage(width, 3, norm=self.norm, name=f"conv{i}")(z, train))
        shape = z.shape[1:]
        code = DenseStage(self.code, name="code")(z.reshape(z.shape[0], -1), train)
        self.sow("intermediates", "code_activity", code)
        y = nn.Dense(int(np.prod(shape)), name="decode")(code).reshape(-1, *shape)
        for i, width in enumerate(reversed(self.widths[:-1]), start=1):
            y = jax.nn.relu(nn.ConvTranspose(width, (3, 3), strides=(2, 2), padding="SAME", name=f"up{i}")(y))
        y = nn.ConvTranspose(c, (3, 3), strides=(2, 2), padding="SAME", name=f"up{len(self.widths)}")(y)
        return jax.nn.sigmoid(y[:, :h, :w, :])
