"""PyTorch twins of insilico's ConvNet and ResNet, built from Flax weights (needs ``pip install torch``).

Used by the benchmarks (the same network in the tool a user would otherwise pick) and by reference tests.
``to_torch(subject)`` returns an ``nn.Module`` in eval mode whose ``sites()`` maps insilico site names to the
torch modules whose outputs are those sites (NCHW), ready for forward hooks.

Layout conversions: Flax conv kernels (kh, kw, in, out) -> torch (out, in, kh, kw); Flax dense kernels
(in, out) -> torch (out, in); Flax flattens NHWC maps, so the torch twin permutes NCHW -> NHWC first.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _t(a):
    return torch.from_numpy(np.asarray(a, np.float32).copy())


class _SamePad(nn.Module):
    """XLA's "SAME" padding for a stride: ``max((⌈n/s⌉ − 1)·s + k − n, 0)`` in all, the extra pixel at the end —
    from the input's size, which decides it (an even and an odd size pad differently)."""

    def __init__(self, k: int, stride: int):
        super().__init__()
        self.k, self.stride = k, stride

    def forward(self, x):
        def pads(n):
            total = max((-(-n // self.stride) - 1) * self.stride + self.k - n, 0)
            return total // 2, total - total // 2
        (top, bottom), (left, right) = pads(x.shape[-2]), pads(x.shape[-1])
        return nn.functional.pad(x, (left, right, top, bottom))


def _conv(p, stride=1):
    """A conv with Flax's "SAME" padding (for stride > 1 computed from the input size, :class:`_SamePad`)."""
    k = p["kernel"].shape
    conv = nn.Conv2d(k[2], k[3], k[0], stride=stride, padding="same" if stride == 1 else 0, bias="bias" in p)
    conv.weight.data = _t(np.transpose(p["kernel"], (3, 2, 0, 1)))
    if "bias" in p:
        conv.bias.data = _t(p["bias"])
    return conv if stride == 1 else nn.Sequential(_SamePad(k[0], stride), conv)


def _bn(p, s):
    bn = nn.BatchNorm2d(len(p["scale"]), eps=1e-5)
    bn.weight.data, bn.bias.data = _t(p["scale"]), _t(p["bias"])
    bn.running_mean.data, bn.running_var.data = _t(s["mean"]), _t(s["var"])
    return bn


def _dense(p):
    lin = nn.Linear(*p["kernel"].shape)
    lin.weight.data, lin.bias.data = _t(np.asarray(p["kernel"]).T), _t(p["bias"])
    return lin


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class ConvStage(nn.Module):
    """conv -> bn -> relu; hooks on this module see the site's activation (NCHW)."""

    def __init__(self, p, s):
        super().__init__()
        self.conv = _conv(p["conv"])
        self.bn = _bn(p["bn"], s["bn"]) if "bn" in p else nn.Identity()

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class DenseStage(nn.Module):
    def __init__(self, p, relu=True):
        super().__init__()
        self.dense, self.relu = _dense(p["dense"]), relu

    def forward(self, x):
        y = self.dense(x)
        return torch.relu(y) if self.relu else y


class TorchConvNet(nn.Module):
    """Twin of :class:`insilico.models.ConvNet` with max pooling (NCHW inputs)."""

    def __init__(self, model, variables):
        super().__init__()
        P, S = variables["params"], variables.get("batch_stats", {})
        self.normalize = Normalize(model.mean, model.std)
        self.convs = nn.ModuleDict({f"conv{i}": ConvStage(P[f"conv{i}"], S.get(f"conv{i}", {}))
                                    for i in range(1, len(model.widths) + 1)})
        self.fcs = nn.ModuleDict({f"fc{j}": DenseStage(P[f"fc{j}"]) for j in range(1, len(model.fc) + 1)})
        self.logits = DenseStage(P["logits"], relu=False)

    def sites(self):
        return {**self.convs, **self.fcs, "logits": self.logits}

    def forward(self, x):
        x = self.normalize(x)
        for conv in self.convs.values():
            x = nn.functional.max_pool2d(conv(x), 2)
        x = x.permute(0, 2, 3, 1).flatten(1)
        for fc in self.fcs.values():
            x = fc(x)
        return self.logits(x)


def to_nchw(x):
    return torch.tensor(np.transpose(np.asarray(x, np.float32), (0, 3, 1, 2)))


class BasicBlock(nn.Module):
    def __init__(self, p, s, stride):
        super().__init__()
        self.conv1, self.bn1 = _conv(p["conv1"], stride), _bn(p["bn1"], s["bn1"])
        self.conv2, self.bn2 = _conv(p["conv2"]), _bn(p["bn2"], s["bn2"])
        self.shortcut = (nn.Sequential(_conv(p["shortcut"], stride), _bn(p["bn_shortcut"], s["bn_shortcut"]))
                         if "shortcut" in p else nn.Identity())

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(self.shortcut(x) + y)


class TorchResNet(nn.Module):
    """Twin of :class:`insilico.models.ResNet` (NCHW inputs)."""

    def __init__(self, model, variables):
        super().__init__()
        P, S = variables["params"], variables["batch_stats"]
        n = (model.depth - 2) // 6
        self.normalize = Normalize(model.mean, model.std)
        self.stem = ConvStage(P["conv1"], S["conv1"])
        self.blocks = nn.ModuleDict()
        for st in range(1, len(model.widths) + 1):                  # one stage per width, as the Flax model
            for b in range(1, n + 1):
                p, s = P[f"stage{st}"][f"block{b}"], S[f"stage{st}"][f"block{b}"]
                self.blocks[f"stage{st}_block{b}"] = BasicBlock(p, s, 2 if (b == 1 and st > 1) else 1)
        self.logits = DenseStage(P["logits"], relu=False)

    def sites(self):
        return {"conv1": self.stem, **{k.replace("_", "/"): v for k, v in self.blocks.items()}, "logits": self.logits}

    def forward(self, x):
        x = self.stem(self.normalize(x))
        for block in self.blocks.values():
            x = block(x)
        return self.logits(x.mean(dim=(2, 3)))


def to_torch(subject) -> nn.Module:
    """The PyTorch twin of a ConvNet (max pooling) or ResNet subject, in eval mode."""
    name = type(subject.model).__name__
    if name == "ConvNet":
        m = subject.model
        pools = (m.pools,) if isinstance(m.pools, str) or m.pools is None else tuple(m.pools)
        unsupported = {"pools other than 'max'": set(pools) != {"max"}, "divisive normalization": m.divisive,
                       "locally connected stages": m.local}
        if any(unsupported.values()):
            raise ValueError(f"no PyTorch twin for this ConvNet: the twin has max pooling after every conv stage, "
                             f"and this model has {', '.join(k for k, v in unsupported.items() if v)}")
        return TorchConvNet(subject.model, subject.variables).eval()
    if name == "ResNet":
        return TorchResNet(subject.model, subject.variables).eval()
    raise ValueError(f"no PyTorch twin for {name}; available for ConvNet and ResNet")
