"""Models as a researcher would write them, with plain Flax layers and no insilico class: a Linen CNN, the same
CNN in NNX, and an NNX ResNet with batch norm and residual blocks. Plus an independent NumPy forward pass of the
CNN for reference tests."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from numpy.lib.stride_tricks import sliding_window_view


# ---------------------------------------------------------------------------------------------------------- Linen
class ReLU(nn.Module):
    """An activation wrapped in a module (so it is a site of its own)."""

    def __call__(self, x):
        return nn.relu(x)


class LinenCNN(nn.Module):
    """conv1 → bn1 → act1 → 2x2 max pool → conv2 → act2 → mean over space → out."""

    classes: int = 5

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(6, (3, 3), name="conv1")(x)
        x = nn.BatchNorm(use_running_average=not train, name="bn1")(x)
        x = ReLU(name="act1")(x)
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = ReLU(name="act2")(nn.Conv(8, (3, 3), name="conv2")(x))
        return nn.Dense(self.classes, name="out")(x.mean((1, 2)))


def linen_cnn_variables(model, shape, key):
    """``model.init`` with non-trivial batch-norm running statistics."""
    v = model.init(key, jnp.zeros((1, *shape)))
    k1, k2 = jax.random.split(jax.random.fold_in(key, 1))
    stats = {"bn1": {"mean": 0.2 * jax.random.normal(k1, (6,)), "var": jax.random.uniform(k2, (6,), minval=0.5,
                                                                                          maxval=1.5)}}
    return {"params": v["params"], "batch_stats": stats}


# ------------------------------------------------------------------------------------------------------------ NNX
class NNXReLU(nnx.Module):
    def __call__(self, x):
        return nnx.relu(x)


class NNXCNN(nnx.Module):
    """The same computation as :class:`LinenCNN` (same parameter names), with dropout before the readout."""

    def __init__(self, channels: int = 3, classes: int = 5, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(channels, 6, (3, 3), rngs=rngs)
        self.bn1 = nnx.BatchNorm(6, rngs=rngs)
        self.act1 = NNXReLU()
        self.conv2 = nnx.Conv(6, 8, (3, 3), rngs=rngs)
        self.act2 = NNXReLU()
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.out = nnx.Linear(8, classes, rngs=rngs)

    def __call__(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = nnx.max_pool(x, (2, 2), (2, 2))
        x = self.act2(self.conv2(x))
        return self.out(self.drop(x.mean((1, 2))))


class NNXBlock(nnx.Module):
    def __init__(self, cin: int, cout: int, stride: int, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(cin, cout, (3, 3), strides=stride, use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(cout, rngs=rngs)
        self.conv2 = nnx.Conv(cout, cout, (3, 3), use_bias=False, rngs=rngs)
        self.bn2 = nnx.BatchNorm(cout, rngs=rngs)
        self.shortcut = (nnx.Conv(cin, cout, (1, 1), strides=stride, use_bias=False, rngs=rngs)
                         if stride != 1 or cin != cout else None)

    def __call__(self, x):
        h = nnx.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return nnx.relu(h + (x if self.shortcut is None else self.shortcut(x)))


class NNXResNet(nnx.Module):
    """stem (conv, batch norm, ReLU) → block1 (identity shortcut) → block2 (stride 2, projection) → pool → head."""

    def __init__(self, channels: int = 3, classes: int = 5, *, rngs: nnx.Rngs):
        self.stem = nnx.Conv(channels, 6, (3, 3), use_bias=False, rngs=rngs)
        self.stem_bn = nnx.BatchNorm(6, rngs=rngs)
        self.block1 = NNXBlock(6, 6, 1, rngs=rngs)
        self.block2 = NNXBlock(6, 8, 2, rngs=rngs)
        self.head = nnx.Linear(8, classes, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.stem_bn(self.stem(x)))
        x = self.block2(self.block1(x))
        return self.head(x.mean((1, 2)))


def randomize_batch_stats(module, key):
    """Non-trivial running statistics in every nnx.BatchNorm of ``module`` (in place)."""
    for i, (_, m) in enumerate(nnx.iter_modules(module)):
        if isinstance(m, nnx.BatchNorm):
            k1, k2 = jax.random.split(jax.random.fold_in(key, i))
            n = m.mean.get_value().shape
            m.mean.set_value(0.2 * jax.random.normal(k1, n))
            m.var.set_value(jax.random.uniform(k2, n, minval=0.5, maxval=1.5))
    return module


# ------------------------------------------------------------------------------------------- NumPy reference
def np_conv_same(x, kernel, bias=None):
    k = kernel.shape[0]
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, k - 1 - p), (p, k - 1 - p), (0, 0)))
    out = np.einsum("nhwcij,ijco->nhwo", sliding_window_view(xp, (k, k), axis=(1, 2)), kernel)
    return out if bias is None else out + bias


def np_cnn(variables, x, lesion: dict | None = None):
    """The CNN of :class:`LinenCNN` / :class:`NNXCNN` in float64 NumPy; ``lesion`` {site: channel} zeroes a
    channel of that site's output. Returns {site: activation} with the model output under "out"."""
    P = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    S = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["batch_stats"])
    lesion = lesion or {}
    acts = {}

    def site(name, value):
        if name in lesion:
            value = value.copy()
            value[..., lesion[name]] = 0.0
        acts[name] = value
        return value

    h = site("conv1", np_conv_same(np.asarray(x, np.float64), P["conv1"]["kernel"], P["conv1"]["bias"]))
    h = site("bn1", (h - S["bn1"]["mean"]) / np.sqrt(S["bn1"]["var"] + 1e-5) * P["bn1"]["scale"] + P["bn1"]["bias"])
    h = site("act1", np.maximum(h, 0))
    n, hh, ww, c = h.shape
    h = h.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))
    h = site("conv2", np_conv_same(h, P["conv2"]["kernel"], P["conv2"]["bias"]))
    h = site("act2", np.maximum(h, 0))
    site("out", h.mean((1, 2)) @ P["out"]["kernel"] + P["out"]["bias"])
    return acts
