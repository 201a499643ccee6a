"""The Vision Transformer in torchvision's layout (Dosovitskiy et al. 2021; ``torchvision.models.vit_b_16``).

Same computation as torchvision's ``VisionTransformer`` — a ``patch_size``-strided patch convolution, a learned
class token, learned position embeddings, pre-norm encoder blocks (multi-head self-attention and an exact-GELU MLP,
layer norms with ε = 1e-6), a final layer norm and a linear head on the class token — so a torchvision state dict
loads with its tensors only transposed or split (:func:`insilico.interop.torch_import.load_state_dict`). Pixels
in [0, 1], NHWC; the ImageNet normalization is applied inside the model, as in every insilico model.

Sites: ``encoder/layer{i}`` for i = 1 … depth (torchvision's ``encoder.layers.encoder_layer_{i − 1}``), the
residual stream after block i, units (tokens, D) with token 0 the class token and tokens 1 … the patches in
row-major order; ``encoder/ln``, the final layer norm (tokens, D); ``logits``, the head's output on the class token.
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ._stage import Normalize, Readout, Stage
from .imagenet import IMAGENET_MEAN, IMAGENET_STD


def _layer_norm(eps: float, name: str):
    return nn.LayerNorm(epsilon=eps, use_fast_variance=False, name=name)


class EncoderBlock(Stage):
    """Pre-norm transformer block: x + attention(LN₁(x)), then + MLP(LN₂(x)) with MLP = Dense(mlp_dim) → exact
    GELU → Dense(D). Output: the residual stream after the block (N, tokens, D).

    Submodules ``ln_1``, ``self_attention`` (Flax's multi-head attention: ``query``/``key``/``value`` kernels
    (D, heads, D / heads), ``out`` kernel (heads, D / heads, D)), ``ln_2``, ``mlp_in``, ``mlp_out``.
    """

    heads: int
    mlp_dim: int
    eps: float = 1e-6

    @nn.compact
    def __call__(self, x, train: bool = False):
        d = x.shape[-1]
        y = _layer_norm(self.eps, "ln_1")(x)
        x = x + nn.MultiHeadDotProductAttention(self.heads, name="self_attention")(y, deterministic=True)
        y = _layer_norm(self.eps, "ln_2")(x)
        y = nn.Dense(d, name="mlp_out")(jax.nn.gelu(nn.Dense(self.mlp_dim, name="mlp_in")(y), approximate=False))
        return x + y


class TokenNorm(Stage):
    """Layer norm over each token's features (ε = ``eps``). Output: the normalized tokens (N, tokens, D)."""

    eps: float = 1e-6

    @nn.compact
    def __call__(self, x, train: bool = False):
        return _layer_norm(self.eps, "norm")(x)


class Encoder(nn.Module):
    """Position embedding (the parameter ``pos_embedding``, (1, tokens, D)), ``depth`` encoder blocks
    ``layer1 …`` and the final layer norm ``ln`` (not itself a site)."""

    depth: int
    heads: int
    mlp_dim: int
    eps: float = 1e-6

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x + self.param("pos_embedding", nn.initializers.normal(0.02), (1, *x.shape[1:]))
        for i in range(1, self.depth + 1):
            x = EncoderBlock(self.heads, self.mlp_dim, self.eps, name=f"layer{i}")(x, train)
        return TokenNorm(self.eps, name="ln")(x, train)


class ViT(nn.Module):
    """torchvision's Vision Transformer; the defaults are ViT-B/16 at 224 px (86.6 M parameters at 1,000
    classes). ViT-L/16 is ``hidden_dim=1024, depth=24, heads=16, mlp_dim=4096``; ViT-B/32 ``patch_size=32``.

    The model takes images of exactly ``image_size`` × ``image_size`` px (the position embedding has
    1 + (image_size / patch_size)² tokens). Example: ``ViT()(x)`` for x (N, 224, 224, 3) in [0, 1];
    a small one: ``ViT(image_size=32, patch_size=8, hidden_dim=48, depth=2, heads=3, mlp_dim=96)``.
    """

    image_size: int = 224
    patch_size: int = 16
    hidden_dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    num_classes: int = 1000
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD

    @property
    def tokens(self) -> int:
        """The class token and one token per patch."""
        return 1 + (self.image_size // self.patch_size) ** 2

    def _check(self, shape):
        if self.patch_size < 1 or self.image_size % self.patch_size:
            raise ValueError(f"ViT image_size must be a multiple of patch_size; got image_size={self.image_size}, "
                             f"patch_size={self.patch_size}")
        if self.heads < 1 or self.hidden_dim % self.heads:
            raise ValueError(f"ViT hidden_dim must be a multiple of heads; got hidden_dim={self.hidden_dim}, "
                             f"heads={self.heads}")
        if tuple(shape[1:3]) != (self.image_size, self.image_size):
            raise ValueError(f"ViT takes images of image_size × image_size = {self.image_size}×{self.image_size} px "
                             f"(its position embedding has {self.tokens} tokens); got images of shape "
                             f"{tuple(shape[1:])}")

    @nn.compact
    def __call__(self, x, train: bool = False):
        self._check(x.shape)
        x = Normalize(self.mean, self.std, name="normalize")(x)
        p = self.patch_size
        x = nn.Conv(self.hidden_dim, (p, p), strides=(p, p), padding="VALID", name="conv_proj")(x)
        x = x.reshape(x.shape[0], -1, self.hidden_dim)                        # patches in row-major order
        cls = self.param("class_token", nn.initializers.zeros, (1, 1, self.hidden_dim))
        x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, self.hidden_dim)).astype(x.dtype), x], axis=1)
        x = Encoder(self.depth, self.heads, self.mlp_dim, name="encoder")(x, train)
        return Readout(self.num_classes, name="logits")(x[:, 0], train)
