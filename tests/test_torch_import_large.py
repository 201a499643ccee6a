"""torchvision-format ResNet-50 and ViT-B/16 state dicts into Flax: the same outputs and sites as PyTorch on the
same random weights. The PyTorch networks below follow torchvision's module layout (and so its state-dict keys):
``torchvision.models.resnet.Bottleneck`` / ``ResNet`` and ``torchvision.models.vision_transformer``'s
``MLPBlock``, ``EncoderBlock``, ``Encoder`` and ``VisionTransformer``. The fast checks run ResNet-50 at 64 px and a
small ViT (the same code path as ViT-B/16); the full-size ones at 224 px are marked slow."""
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from test_torch_import import MEAN, STD, _hooked, _nhwc, _random_net  # noqa: E402
from torch import nn  # noqa: E402

from insilico import electrode  # noqa: E402
from insilico.interop.torch_import import StateDictError, load_state_dict  # noqa: E402
from insilico.models import ResNet18, ViT  # noqa: E402


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        out = planes * self.expansion
        self.conv1, self.bn1 = nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, out, 1, bias=False), nn.BatchNorm2d(out)
        self.relu = nn.ReLU()
        self.downsample = (nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))
                           if stride != 1 or cin != out else None)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(y)))))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchResNet50(nn.Module):
    def __init__(self, num_classes=1000, layers=(3, 4, 6, 3)):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        self.relu, self.maxpool = nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        c = 64
        for i, (n, w) in enumerate(zip(layers, (64, 128, 256, 512)), start=1):
            blocks = [Bottleneck(c if b == 0 else 4 * w, w, (1 if i == 1 else 2) if b == 0 else 1) for b in range(n)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            c = 4 * w
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d((1, 1)), nn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class MLPBlock(nn.Sequential):
    def __init__(self, d, mlp_dim):
        super().__init__(nn.Linear(d, mlp_dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp_dim, d), nn.Dropout(0.0))


class EncoderBlock(nn.Module):
    def __init__(self, heads, d, mlp_dim):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(d, heads, dropout=0.0, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = MLPBlock(d, mlp_dim)

    def forward(self, inputs):
        x = self.ln_1(inputs)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x) + inputs
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    def __init__(self, tokens, depth, heads, d, mlp_dim):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, tokens, d).normal_(std=0.02))
        self.dropout = nn.Dropout(0.0)
        self.layers = nn.Sequential(OrderedDict((f"encoder_layer_{i}", EncoderBlock(heads, d, mlp_dim))
                                                for i in range(depth)))
        self.ln = nn.LayerNorm(d, eps=1e-6)

    def forward(self, x):
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class TorchViT(nn.Module):
    def __init__(self, num_classes=1000, image_size=224, patch_size=16, hidden_dim=768, depth=12, heads=12,
                 mlp_dim=3072):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.conv_proj = nn.Conv2d(3, hidden_dim, patch_size, patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        self.encoder = Encoder((image_size // patch_size) ** 2 + 1, depth, heads, hidden_dim, mlp_dim)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(hidden_dim, num_classes)))

    def forward(self, x):
        n = x.shape[0]
        x = self.conv_proj(x).reshape(n, self.hidden_dim, -1).permute(0, 2, 1)
        x = self.encoder(torch.cat([self.class_token.expand(n, -1, -1), x], dim=1))
        return self.heads(x[:, 0])


SMALL_VIT = dict(image_size=32, patch_size=8, hidden_dim=48, depth=2, heads=3, mlp_dim=96)


def _random_vit(seed, num_classes, **config):
    """A ViT twin whose every tensor is random: attention and layer-norm biases (zero at torch's init), layer-norm
    scales, the class token and position embedding (zero, or nearly, at init) included."""
    torch.manual_seed(seed)
    net = TorchViT(num_classes, **config)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if name.endswith("bias") or name in ("class_token", "encoder.pos_embedding"):
                p.copy_(0.3 * r)
            elif ".ln" in name or name.startswith("encoder.ln"):
                p.copy_(1 + 0.2 * r)
    return net.eval()


def _torch_input(x):
    return torch.tensor(np.transpose((x - MEAN) / STD, (0, 3, 1, 2)), dtype=torch.float32)


def _check(arch, net, modules, size, batch=2, model=None):
    """Outputs and every site of the imported subject equal PyTorch's to 1e-4 (max abs relative to scale); the
    largest difference relative to scale."""
    acts = _hooked(net, modules)
    x = np.random.default_rng(0).uniform(0, 1, (batch, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        ref = net(_torch_input(x)).numpy()
    subject = load_state_dict(arch, net.state_dict(), input_shape=(size, size, 3), model=model)
    out, rec = electrode.record(subject, x, list(modules))
    worst = np.abs(np.asarray(out) - ref).max() / max(1.0, np.abs(ref).max())
    assert worst < 1e-4, (arch, worst)
    for site in modules:
        a, b = np.asarray(rec[site]), _nhwc(acts[site])
        assert a.shape == b.shape, site
        err = np.abs(a - b).max() / max(1.0, np.abs(b).max())
        assert err < 1e-4, (site, err)
        worst = max(worst, err)
    return subject, worst


def _resnet50_sites(n):
    return {"conv1": n.relu, "layer1/block1": n.layer1[0], "layer2/block4": n.layer2[3],
            "layer3/block6": n.layer3[5], "layer4/block3": n.layer4[2]}


def _vit_sites(n, depth):
    sites = {f"encoder/layer{i + 1}": n.encoder.layers[i] for i in range(depth)}
    return {**sites, "encoder/ln": n.encoder.ln}


def test_resnet50_matches_pytorch_on_random_weights():
    net = _random_net(TorchResNet50, 0, 10)
    subject, _ = _check("resnet50", net, _resnet50_sites(net), 64)
    assert len(subject.class_names) == 10 and subject.sites["layer4/block3"] == (2, 2, 2048)
    assert [s for s in subject.sites if s.startswith("layer3/")] == [f"layer3/block{b}" for b in range(1, 7)]


def test_small_vit_matches_pytorch_on_random_weights_sites_and_lesions():
    net = _random_vit(0, 7, **SMALL_VIT)
    modules = _vit_sites(net, 2)
    subject, _ = _check("vit_b_16", net, modules, 32, batch=3, model=ViT(**SMALL_VIT))
    assert list(subject.sites) == ["encoder/layer1", "encoder/layer2", "encoder/ln", "logits"]
    assert subject.sites["encoder/layer1"] == (17, 48) and subject.sites["logits"] == (7,)
    # a lesion of units (token × feature) at a block's output, against the same zeroing in PyTorch
    mask = np.zeros((17, 48), np.float32)
    mask[0, :24] = 1                                               # half the class token's features
    mask[5:9, 30:] = 1                                             # some features of four patches
    x = np.random.default_rng(1).uniform(0, 1, (3, 32, 32, 3)).astype(np.float32)
    out, rec = electrode.run(subject, x, edits={"encoder/layer1": electrode.lesion(mask)}, record="encoder/ln")
    keep = torch.tensor(1 - mask)
    net.encoder.layers[0].register_forward_hook(lambda _m, _i, o: o * keep)
    ln = _hooked(net, {"encoder/ln": net.encoder.ln})
    with torch.no_grad():
        ref = net(_torch_input(x)).numpy()
    intact, _ = electrode.record(subject, x, "logits")
    assert not np.allclose(np.asarray(intact), ref, atol=1e-3)
    assert np.abs(np.asarray(out) - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())
    b = ln["encoder/ln"]
    assert np.abs(np.asarray(rec["encoder/ln"]) - b).max() < 1e-4 * max(1.0, np.abs(b).max())


def test_bad_resnet50_and_vit_state_dicts_name_each_tensor():
    sd = {k: v.numpy() for k, v in _random_net(TorchResNet50, 2, 5).state_dict().items()}
    bad = dict(sd)
    del bad["layer3.0.downsample.1.running_var"]
    bad["layer1.0.conv4.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    bad["layer2.1.conv3.weight"] = np.zeros((512, 128, 3, 3), np.float32)
    with pytest.raises(StateDictError) as err:
        load_state_dict("resnet50", bad, input_shape=(32, 32, 3))
    msg = str(err.value)
    assert "missing tensors (1): layer3.0.downsample.1.running_var" in msg
    assert "unexpected tensors (1): layer1.0.conv4.weight" in msg
    assert "layer2.1.conv3.weight: shape (512, 128, 3, 3), expected (512, 128, 1, 1)" in msg
    with pytest.raises(StateDictError, match=r"layer1\.0\.conv1\.weight: shape \(64, 64, 1, 1\), "
                                             r"expected \(64, 64, 3, 3\)"):
        load_state_dict("resnet18", sd, input_shape=(32, 32, 3))         # a ResNet-50 is not a ResNet-18

    small = ViT(**SMALL_VIT)
    sd = {k: v.numpy() for k, v in _random_vit(3, 4, **SMALL_VIT).state_dict().items()}
    bad = dict(sd)
    t = "encoder.layers.encoder_layer_1"
    del bad[f"{t}.self_attention.in_proj_bias"]
    bad["heads.pre_logits.weight"] = np.zeros((48, 48), np.float32)
    bad[f"{t}.self_attention.in_proj_weight"] = np.zeros((48, 48), np.float32)
    bad["encoder.pos_embedding"] = np.zeros((1, 16, 48), np.float32)
    with pytest.raises(StateDictError) as err:
        load_state_dict("vit_b_16", bad, model=small)
    msg = str(err.value)
    assert f"missing tensors (1): {t}.self_attention.in_proj_bias" in msg
    assert "unexpected tensors (1): heads.pre_logits.weight" in msg
    assert f"{t}.self_attention.in_proj_weight: shape (48, 48), expected (144, 48)" in msg
    assert "encoder.pos_embedding: shape (1, 16, 48), expected (1, 17, 48)" in msg
    with pytest.raises(StateDictError, match=r"conv_proj\.weight: shape \(48, 3, 8, 8\), expected \(768, 3, 16, 16\)"):
        load_state_dict("vit_b_16", sd)                                 # the standard ViT-B/16
    with pytest.raises(ValueError, match=r"input_shape \(64, 64, 3\) does not fit vit_b_16's position embedding of "
                                         r"17 tokens .* valid input_shape: \(32, 32, 3\)"):
        load_state_dict("vit_b_16", sd, model=small, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match=r"input_shape \(384, 384, 3\) .* valid input_shape: \(224, 224, 3\)"):
        load_state_dict("vit_b_16", sd, input_shape=(384, 384, 3))
    with pytest.raises(ValueError, match=r"model for 'vit_b_16' must be a ViT .*got a ResNet18"):
        load_state_dict("vit_b_16", sd, model=ResNet18())
    subject = load_state_dict("vit_b_16", sd, model=ViT(**SMALL_VIT, num_classes=1000))
    assert subject.sites["logits"] == (4,) and subject.input_spec.shape == (32, 32, 3)


@pytest.mark.slow
def test_full_size_resnet50_matches_pytorch_at_224px():
    net = _random_net(TorchResNet50, 4, 1000)
    _, worst = _check("resnet50", net, _resnet50_sites(net), 224)
    print(f"resnet50 at 224 px: largest difference {worst:.2e} of scale")


@pytest.mark.slow
def test_full_size_vit_b_16_matches_pytorch_at_224px():
    net = _random_vit(5, 1000)
    _, worst = _check("vit_b_16", net, _vit_sites(net, 12), 224)
    print(f"vit_b_16 at 224 px: largest difference {worst:.2e} of scale")
