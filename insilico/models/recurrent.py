"""Recurrent convolutional networks unrolled in time: the B / BL / BT / BLT family of Spoerer et al. (2017).

Layer l at time step t:

    h_l(t) = ReLU(norm_t( W_b * pool(h_{l−1}(t)) + W_l * h_l(t−1) + W_t * up(h_{l+1}(t−1)) ))

with bottom-up (B), lateral (L) and top-down (T) convolutions shared over time, the image as h_0 at every step,
2x2 max pooling between layers, nearest-neighbour upsampling for top-down input, and a separate batch norm per
time step. The readout (global average pool → dense, shared over time) gives logits at every step; the model's
output is the last step's. Every step's logits are also sown (``intermediates/step_logits``), so that
classification trains the readout at every step (the cross-entropy averaged over steps, as Spoerer et al.).

Sites are per time step: ``conv{l}/t{k}`` and ``logits/t{k}`` (k = 0 … steps − 1). A recurrent layer name alone
(``conv2``) is not a site; the electrode says which steps exist.
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ._stage import Normalize, Stage, max_pool2, noisy, relu


class TimeStep(Stage):
    """The response of a recurrent layer at one time step: [batch norm →] [noise →] ReLU of its summed input."""

    norm: bool = True
    noise: float = 0.0

    @nn.compact
    def __call__(self, z, train: bool = False):
        if self.norm:
            z = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(z)
        return relu(noisy(z, self.noise, self))


class ReadoutStep(Stage):
    """Logits at one time step (the readout's output, recorded per step)."""

    @nn.compact
    def __call__(self, logits, train: bool = False):
        return logits


class RecurrentLayer(nn.Module):
    """One layer of a BLT network; call it once per time step (its convolutions are shared over steps)."""

    features: int
    kernel: int = 3
    lateral: bool = True
    topdown: bool = True
    norm: bool = True
    noise: float = 0.0

    @nn.compact
    def __call__(self, t: int, below, previous: jax.Array | None, above: jax.Array | None,
                 train: bool = False):
        k = (self.kernel, self.kernel)
        z = nn.Conv(self.features, k, padding="SAME", use_bias=not self.norm, name="bottom_up")(below)
        if self.lateral and previous is not None:                      # no recurrent input at step 0
            z = z + nn.Conv(self.features, k, padding="SAME", use_bias=False, name="lateral")(previous)
        if self.topdown and above is not None:
            h, w = z.shape[1:3]
            up = jax.image.resize(above, (above.shape[0], h, w, above.shape[-1]), "nearest")
            z = z + nn.Conv(self.features, k, padding="SAME", use_bias=False, name="top_down")(up)
        return TimeStep(self.norm, self.noise, name=f"t{t}")(z, train)


class BLTNet(nn.Module):
    """A recurrent convolutional network of the BLT family (Spoerer et al. 2017), unrolled for ``steps`` time
    steps. ``lateral`` / ``topdown`` switch the recurrent connections (both off: a feed-forward "B" net run
    ``steps`` times, its steps differing only in their batch norms).

    Example: ``BLTNet(widths=(32, 64, 128), steps=4)`` on CIFAR-10; sites ``conv1/t0 … conv3/t3``,
    ``logits/t0 … logits/t3``.
    """

    widths: Sequence[int] = (32, 64, 128)
    kernel: int = 3
    steps: int = 4
    lateral: bool = True
    topdown: bool = True
    num_classes: int = 10
    norm: bool = True
    noise: float = 0.0
    mean: Sequence[float] = (0.5,)
    std: Sequence[float] = (0.25,)

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.steps < 1:
            raise ValueError(f"BLTNet needs at least one time step; got steps={self.steps}")
        x = Normalize(self.mean, self.std, name="normalize")(x)
        n = len(self.widths)
        layers = [RecurrentLayer(w, self.kernel, self.lateral, self.topdown and i < n - 1, self.norm, self.noise,
                                 name=f"conv{i + 1}") for i, w in enumerate(self.widths)]
        dense = nn.Dense(self.num_classes, name="readout")
        readout_sites = _LogitsAt(name="logits")
        state: list = [None] * n
        logits = None
        for t in range(self.steps):
            new = []
            below = x
            for i, layer in enumerate(layers):
                above = state[i + 1] if i + 1 < n else None
                h = layer(t, below, state[i], above, train)
                new.append(h)
                below = max_pool2(h)
            state = new
            logits = readout_sites(t, dense(jnp.mean(state[-1], axis=(1, 2))), train)
            self.sow("intermediates", "step_logits", logits)      # training reads out every step
        return logits


class _LogitsAt(nn.Module):
    """Container of the per-step readout sites ``logits/t{k}``."""

    @nn.compact
    def __call__(self, t: int, logits, train: bool = False):
        return ReadoutStep(name=f"t{t}")(logits, train)
