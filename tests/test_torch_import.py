"""torchvision-format AlexNet, VGG-16 and ResNet-18 state dicts into Flax: the same outputs and sites as PyTorch
on the same random weights. The PyTorch networks below follow torchvision's module layout (and so its state-dict
keys) layer by layer. ResNet-50 and ViT-B/16 are in test_torch_import_large.py."""
import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from insilico import electrode  # noqa: E402
from insilico.interop.torch_import import StateDictError, load_state_dict  # noqa: E402
from insilico.models.imagenet import adaptive_avg_pool  # noqa: E402


class TorchAlexNet(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(256 * 36, 4096), nn.ReLU(), nn.Dropout(),
                                        nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TorchVGG16(nn.Module):
    CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

    def __init__(self, num_classes=1000):
        super().__init__()
        layers, c = [], 3
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(512 * 49, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 4096),
                                        nn.ReLU(), nn.Dropout(), nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchResNet18(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        self.relu, self.maxpool = nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        c = 64
        for i, w in enumerate((64, 128, 256, 512), start=1):
            setattr(self, f"layer{i}", nn.Sequential(Block(c, w, 1 if i == 1 else 2), Block(w, w, 1)))
            c = w
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d((1, 1)), nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _random_net(cls, seed, num_classes):
    torch.manual_seed(seed)
    net = cls(num_classes)
    g = torch.Generator().manual_seed(seed + 1)
    for m in net.modules():                          # non-trivial batch-norm statistics and affine parameters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.weight.data.copy_(1 + 0.2 * torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return net.eval()


def _hooked(net, modules):
    acts = {}
    for name, mod in modules.items():
        mod.register_forward_hook(lambda _m, _i, out, name=name: acts.__setitem__(name, out.detach().numpy()))
    return acts


def _nhwc(a):
    return np.transpose(a, (0, 2, 3, 1)) if a.ndim == 4 else a


CASES = {
    # arch: (torch class, image size, {site: torch module getter})
    "alexnet": (TorchAlexNet, 80, lambda n: {"conv1": n.features[1], "conv5": n.features[11],
                                             "fc6": n.classifier[2], "fc7": n.classifier[5]}),
    "vgg16": (TorchVGG16, 40, lambda n: {"conv1_1": n.features[1], "conv3_3": n.features[15],
                                         "conv5_3": n.features[29], "fc7": n.classifier[4]}),
    "resnet18": (TorchResNet18, 64, lambda n: {"conv1": n.relu, "layer1/block2": n.layer1[1],
                                               "layer3/block1": n.layer3[0], "layer4/block2": n.layer4[1]}),
}


@pytest.mark.parametrize("arch", list(CASES))
def test_outputs_and_sites_match_pytorch_on_random_weights(arch):
    cls, size, sites_of = CASES[arch]
    net = _random_net(cls, 0, 10)
    modules = sites_of(net)
    acts = _hooked(net, modules)
    x = np.random.default_rng(0).uniform(0, 1, (2, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.tensor(np.transpose((x - MEAN) / STD, (0, 3, 1, 2)), dtype=torch.float32)).numpy()
    subject = load_state_dict(arch, net.state_dict(), input_shape=(size, size, 3))
    assert len(subject.class_names) == 10
    out, rec = electrode.record(subject, x, list(modules))
    scale = np.abs(ref).max()
    assert np.abs(np.asarray(out) - ref).max() < 1e-4 * max(1.0, scale), arch
    for site in modules:
        a, b = np.asarray(rec[site]), _nhwc(acts[site])
        assert a.shape == b.shape, site
        assert np.abs(a - b).max() < 1e-4 * max(1.0, np.abs(b).max()), site


def test_adaptive_average_pooling_matches_pytorch():
    rng = np.random.default_rng(1)
    for h, w, out in ((13, 13, (6, 6)), (5, 9, (7, 7)), (1, 1, (6, 6)), (7, 7, (7, 7)), (10, 3, (4, 2))):
        x = rng.normal(size=(2, h, w, 3)).astype(np.float32)
        ref = nn.AdaptiveAvgPool2d(out)(torch.tensor(np.transpose(x, (0, 3, 1, 2)))).numpy()
        assert np.abs(np.asarray(adaptive_avg_pool(x, out)) - np.transpose(ref, (0, 2, 3, 1))).max() < 1e-6


def test_bad_state_dicts_name_each_tensor():
    sd = {k: v.numpy() for k, v in _random_net(TorchResNet18, 2, 5).state_dict().items()}
    bad = dict(sd)
    del bad["layer2.0.downsample.0.weight"]
    bad["layer5.0.conv1.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    bad["layer1.0.conv1.weight"] = np.zeros((64, 64, 5, 5), np.float32)
    with pytest.raises(StateDictError) as err:
        load_state_dict("resnet18", bad, input_shape=(32, 32, 3))
    msg = str(err.value)
    assert "missing tensors (1): layer2.0.downsample.0.weight" in msg
    assert "unexpected tensors (1): layer5.0.conv1.weight" in msg
    assert "layer1.0.conv1.weight: shape (64, 64, 5, 5), expected (64, 64, 3, 3)" in msg
    with pytest.raises(ValueError, match="available: alexnet, vgg16, resnet18, resnet50, vit_b_16"):
        load_state_dict("resnet101", sd)
    path = f"{pytest.importorskip('tempfile').mkdtemp()}/r.npz"
    np.savez(path, **sd)
    subject = load_state_dict("resnet18", path, input_shape=(32, 32, 3))
    assert "layer4/block2" in subject.sites and subject.sites["logits"] == (5,)


def test_imported_models_round_trip_through_specs_and_take_edits():
    from insilico.models import build_model, model_spec

    subject = load_state_dict("alexnet", _random_net(TorchAlexNet, 3, 4).state_dict(), input_shape=(64, 64, 3))
    assert build_model(model_spec(subject.model)) == subject.model
    x = np.random.default_rng(2).uniform(0, 1, (3, 64, 64, 3)).astype(np.float32)
    _, intact = electrode.record(subject, x, "fc7")
    half = electrode.lesion((np.arange(256) < 128).astype(np.float32))
    _, lesioned = electrode.run(subject, x, edits={"conv5": half}, record="fc7")
    assert not np.allclose(np.asarray(intact["fc7"]), np.asarray(lesioned["fc7"]))


def test_an_input_too_small_or_not_rgb_is_refused_at_load_not_nan_later():
    """PyTorch refuses a feature map pooled to nothing ("Output size is too small"); averaging an empty map would
    give NaN logits. AlexNet needs at least 63 px."""
    sd = TorchAlexNet(10).state_dict()
    with pytest.raises(ValueError, match="0x0: the input image is too small"):
        load_state_dict("alexnet", sd, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match=r"input_shape must be \(height, width, 3\) for alexnet"):
        load_state_dict("alexnet", sd, input_shape=(64, 64, 1))
    with pytest.raises(ValueError, match="input_shape must be"):
        load_state_dict("alexnet", sd, input_shape=(64, 64))
    assert "conv1" in load_state_dict("alexnet", sd, input_shape=(64, 64, 3)).sites


def test_half_precision_checkpoints_load_and_a_module_is_not_a_state_dict():
    import torch

    net = TorchAlexNet(10)
    half = {k: v.to(torch.bfloat16) for k, v in net.state_dict().items()}
    s = load_state_dict("alexnet", half, input_shape=(64, 64, 3))               # NumPy has no bfloat16
    up = load_state_dict("alexnet", {k: v.float() for k, v in half.items()}, input_shape=(64, 64, 3))
    for a, b in zip(jax.tree.leaves(s.variables), jax.tree.leaves(up.variables)):
        assert a.dtype == np.float32 and np.array_equal(a, b)
    with pytest.raises(TypeError, match=r"got a TorchAlexNet module: pass its .state_dict\(\)"):
        load_state_dict("alexnet", net, input_shape=(64, 64, 3))


def test_non_finite_weights_and_bad_arguments_are_refused_by_name():
    sd = {k: v.numpy().copy() for k, v in _random_net(TorchAlexNet, 4, 4).state_dict().items()}
    sd["features.3.weight"][0, 0, 0, 0] = np.nan
    sd["classifier.6.bias"][:] = np.inf
    with pytest.raises(StateDictError) as err:
        load_state_dict("alexnet", sd, input_shape=(64, 64, 3))
    assert "features.3.weight: 1 NaN/inf value(s)" in str(err.value)
    assert "classifier.6.bias: 4 NaN/inf value(s) of 4" in str(err.value)
    from insilico.interop.torch_import import build
    from insilico.validation import ArgumentError

    with pytest.raises(ValueError, match=r"input_shape must be \(height, width, 3\) for alexnet; got 64"):
        load_state_dict("alexnet", sd, input_shape=64)
    with pytest.raises(ValueError, match=r"unknown architecture \['alexnet'\]"):
        load_state_dict(["alexnet"], sd)
    with pytest.raises(TypeError, match="keys must be tensor names"):
        load_state_dict("alexnet", {0: np.zeros(3)})
    for n in (-3, "10", 0):
        with pytest.raises(ArgumentError, match="num_classes must be an integer ≥ 1"):
            build("resnet18", num_classes=n)


def test_resnet_layers_and_widths_of_unequal_length_are_refused():
    from insilico.models import ResNet18

    with pytest.raises(ValueError, match=r"layers \(3, 4, 6, 3\) and widths \(64, 128, 256\) must give one entry"):
        ResNet18(layers=(3, 4, 6, 3), widths=(64, 128, 256)).init(jax.random.PRNGKey(0),
                                                                  np.zeros((1, 32, 32, 3), np.float32))
