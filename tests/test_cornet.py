"""CORnet-Z, -RT and -S from official-format state dicts: the same outputs and the same response at every time
step as PyTorch on the same random weights, one time step edited alone. The PyTorch networks below follow the module
names of github.com/dicarlolab/CORnet (and so its state-dict keys) and its unrolling over time."""
from collections import OrderedDict
from itertools import pairwise

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from insilico import electrode  # noqa: E402
from insilico.interop.cornet_import import StateDictError, load_cornet  # noqa: E402

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
SIZE = 64


class Decoder(nn.Sequential):
    def __init__(self, num_classes):
        super().__init__(OrderedDict([("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
                                      ("linear", nn.Linear(512, num_classes))]))


class BlockZ(nn.Module):
    def __init__(self, cin, cout, kernel=3, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2)
        self.nonlin, self.pool, self.output = nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Identity()

    def forward(self, x):
        return self.output(self.pool(self.nonlin(self.conv(x))))


def torch_cornet_z(num_classes):
    return nn.Sequential(OrderedDict([("V1", BlockZ(3, 64, 7, 2)), ("V2", BlockZ(64, 128)), ("V4", BlockZ(128, 256)),
                                      ("IT", BlockZ(256, 512)), ("decoder", Decoder(num_classes))]))


class BlockRT(nn.Module):
    def __init__(self, cin, cout, kernel, stride, out_shape):
        super().__init__()
        self.out_channels, self.out_shape = cout, out_shape
        self.conv_input = nn.Conv2d(cin, cout, kernel, stride, kernel // 2)
        self.norm_input, self.nonlin_input = nn.GroupNorm(32, cout), nn.ReLU()
        self.conv1 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm1, self.nonlin1, self.output = nn.GroupNorm(32, cout), nn.ReLU(), nn.Identity()

    def forward(self, inp=None, state=None, batch_size=None):
        if inp is None:                                  # step 0 above V1: zeros
            inp = torch.zeros(batch_size, self.out_channels, self.out_shape, self.out_shape)
        else:
            inp = self.nonlin_input(self.norm_input(self.conv_input(inp)))
        state = self.output(self.nonlin1(self.norm1(self.conv1(inp + (0 if state is None else state)))))
        return state, state


class TorchCORnetRT(nn.Module):
    AREAS = ("V1", "V2", "V4", "IT")

    def __init__(self, num_classes, size, times=5):
        super().__init__()
        self.times = times
        cin, s = 3, size
        for a, w in zip(self.AREAS, (64, 128, 256, 512)):
            k, stride = (7, 4) if a == "V1" else (3, 2)
            s = (s + 2 * (k // 2) - k) // stride + 1
            setattr(self, a, BlockRT(cin, w, k, stride, s))
            cin = w
        self.decoder = Decoder(num_classes)

    def forward(self, inp):
        outputs, states = {"inp": inp}, {}
        for a in self.AREAS:                             # step 0: only V1 sees the image
            outputs[a], states[a] = getattr(self, a)(inp if a == "V1" else None, batch_size=len(inp))
        blocks = ("inp", *self.AREAS)
        for _ in range(1, self.times):                   # step t: the area below at t - 1, itself at t - 1
            new = {"inp": inp}
            for below, a in pairwise(blocks):
                new[a], states[a] = getattr(self, a)(outputs[below], states[a])
            outputs = new
        return self.decoder(outputs["IT"])


class BlockS(nn.Module):
    scale = 4

    def __init__(self, cin, cout, times):
        super().__init__()
        self.times, wide = times, cout * self.scale
        self.conv_input = nn.Conv2d(cin, cout, 1, bias=False)
        self.skip, self.norm_skip = nn.Conv2d(cout, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout)
        self.conv1, self.nonlin1 = nn.Conv2d(cout, wide, 1, bias=False), nn.ReLU()
        self.conv2, self.nonlin2 = nn.Conv2d(wide, wide, 3, stride=2, padding=1, bias=False), nn.ReLU()
        self.conv3, self.nonlin3 = nn.Conv2d(wide, cout, 1, bias=False), nn.ReLU()
        self.output = nn.Identity()
        for t in range(times):
            for j, c in ((1, wide), (2, wide), (3, cout)):
                setattr(self, f"norm{j}_{t}", nn.BatchNorm2d(c))

    def forward(self, x):
        x = self.conv_input(x)
        for t in range(self.times):
            skip = self.norm_skip(self.skip(x)) if t == 0 else x
            self.conv2.stride = (2, 2) if t == 0 else (1, 1)
            h = self.nonlin1(getattr(self, f"norm1_{t}")(self.conv1(x)))
            h = self.nonlin2(getattr(self, f"norm2_{t}")(self.conv2(h)))
            x = self.output(self.nonlin3(getattr(self, f"norm3_{t}")(self.conv3(h)) + skip))
        return x


def torch_cornet_s(num_classes):
    v1 = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 64, 7, 2, 3, bias=False)), ("norm1", nn.BatchNorm2d(64)), ("nonlin1", nn.ReLU()),
        ("pool", nn.MaxPool2d(3, 2, 1)), ("conv2", nn.Conv2d(64, 64, 3, 1, 1, bias=False)),
        ("norm2", nn.BatchNorm2d(64)), ("nonlin2", nn.ReLU()), ("output", nn.Identity())]))
    return nn.Sequential(OrderedDict([("V1", v1), ("V2", BlockS(64, 128, 2)), ("V4", BlockS(128, 256, 4)),
                                      ("IT", BlockS(256, 512, 2)), ("decoder", Decoder(num_classes))]))


BUILDERS = {"cornet_z": torch_cornet_z, "cornet_rt": lambda n: TorchCORnetRT(n, SIZE), "cornet_s": torch_cornet_s}
SITES = {"cornet_z": ["V1", "V2", "V4", "IT", "logits"],
         "cornet_rt": [f"{a}/t{t}" for t in range(5) for a in ("V1", "V2", "V4", "IT")] + ["logits"],
         "cornet_s": ["V1", "V2/t0", "V2/t1", *(f"V4/t{t}" for t in range(4)), "IT/t0", "IT/t1", "logits"]}


def _random_net(arch, seed, num_classes=10):
    torch.manual_seed(seed)
    net = BUILDERS[arch](num_classes)
    g = torch.Generator().manual_seed(seed + 1)
    for m in net.modules():                          # non-trivial norm statistics and affine parameters
        if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            c = m.weight.shape[0]
            m.weight.data.copy_(1 + 0.2 * torch.randn(c, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(c, generator=g))
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
            m.running_var.copy_(0.5 + torch.rand(c, generator=g))
    return net.eval()


def _run_torch(net, x, edit=None):
    """Logits and every area's output at every step ({"V4/t1": ...}); ``edit`` = (area, step, fn) replaces that
    step's output by fn(output), as the electrode edits a site."""
    acts: dict = {}

    def hook(area):
        def f(_m, _i, out):
            steps = acts.setdefault(area, [])
            if edit is not None and edit[:2] == (area, len(steps)):
                out = edit[2](out)
            steps.append(out.detach().numpy().transpose(0, 2, 3, 1))
            return out
        return f

    handles = [getattr(net, a).output.register_forward_hook(hook(a)) for a in ("V1", "V2", "V4", "IT")]
    with torch.no_grad():
        logits = net(torch.tensor(np.transpose((x - MEAN) / STD, (0, 3, 1, 2)), dtype=torch.float32)).numpy()
    for h in handles:
        h.remove()
    sites = {f"{a}/t{t}": v for a, steps in acts.items() for t, v in enumerate(steps)}
    sites |= {a: steps[0] for a, steps in acts.items() if len(steps) == 1}
    return logits, sites


def _close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, what
    err = np.abs(a - b).max()
    assert err < 1e-4 * max(1.0, np.abs(b).max()), (what, err)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def cornet_s():
    net = _random_net("cornet_s", 0)
    return net, load_cornet("cornet_s", net.state_dict(), input_shape=(SIZE, SIZE, 3))


@pytest.mark.parametrize("arch", list(BUILDERS))
def test_outputs_and_every_time_step_match_pytorch_on_random_weights(arch, images, cornet_s):
    if arch == "cornet_s":
        net, subject = cornet_s
    else:
        net = _random_net(arch, 0)
        subject = load_cornet(arch, net.state_dict(), input_shape=(SIZE, SIZE, 3))
    assert list(subject.sites) == SITES[arch] and subject.sites["logits"] == (10,)
    ref, acts = _run_torch(net, images)
    out, rec = electrode.record(subject, images, None)
    _close(out, ref, "logits")
    for site in SITES[arch][:-1]:
        _close(rec[site], acts[site], site)


def test_a_lesion_of_cornet_s_v4_t1_acts_on_that_step_only(images, cornet_s):
    net, subject = cornet_s
    mask = (np.arange(256) % 2).astype(np.float32)
    sites = ["V4/t0", "V4/t1", "V4/t2", "V4/t3", "IT/t1"]
    _, intact = electrode.record(subject, images, sites)
    out, les = electrode.run(subject, images, edits={"V4/t1": electrode.lesion(mask)}, record=sites)
    keep = torch.tensor(1 - mask).view(1, -1, 1, 1)
    ref, acts = _run_torch(net, images, edit=("V4", 1, lambda o: o * keep))
    np.testing.assert_array_equal(np.asarray(les["V4/t0"]), np.asarray(intact["V4/t0"]))
    assert np.all(np.asarray(les["V4/t1"])[..., mask == 1] == 0)
    for site in sites[1:]:
        assert not np.allclose(np.asarray(les[site]), np.asarray(intact[site])), site
        _close(les[site], acts[site], site)
    _close(out, ref, "logits")


def test_cornet_rt_steps_follow_the_official_unrolling(images):
    # V4 at step t reads V2 at t - 1: a lesion of V2/t1 reaches V2/t2 and V4/t2, not V2/t0 nor V4/t1
    subject = load_cornet("cornet_rt", _random_net("cornet_rt", 3).state_dict(), input_shape=(SIZE, SIZE, 3))
    sites = ["V2/t0", "V4/t1", "V2/t2", "V4/t2", "IT/t2", "IT/t3"]
    _, intact = electrode.record(subject, images, sites)
    _, les = electrode.run(subject, images, edits={"V2/t1": electrode.lesion(np.ones(128, np.float32))},
                           record=sites)
    for site in sites:
        same = np.array_equal(np.asarray(les[site]), np.asarray(intact[site]))
        assert same == (site in ("V2/t0", "V4/t1", "IT/t2")), site


def test_dataparallel_keys_and_whole_checkpoints_load(images, tmp_path):
    net = _random_net("cornet_z", 1, num_classes=7)
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    ref, _ = _run_torch(net, images)
    checkpoint = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}}
    np.savez(tmp_path / "z.npz", **sd)
    for given in (checkpoint, checkpoint["state_dict"], tmp_path / "z.npz"):
        subject = load_cornet("cornet_z", given, input_shape=(SIZE, SIZE, 3))
        _close(electrode.record(subject, images)[0], ref, "logits")


def test_bad_state_dicts_name_each_tensor():
    sd = {f"module.{k}": v for k, v in _random_net("cornet_rt", 2).state_dict().items()}
    del sd["module.V4.norm_input.bias"]
    sd["module.V4.norm2.weight"] = np.zeros(256, np.float32)
    sd["module.IT.conv1.weight"] = np.zeros((512, 512, 1, 1), np.float32)
    sd["V1.conv1.weight"] = sd["module.V1.conv1.weight"]
    with pytest.raises(StateDictError) as err:
        load_cornet("cornet_rt", sd, input_shape=(SIZE, SIZE, 3))
    msg = str(err.value)
    assert "keys given with and without the 'module.' prefix (1): V1.conv1.weight" in msg
    assert "missing tensors (1): V4.norm_input.bias" in msg
    assert "unexpected tensors (1): V4.norm2.weight" in msg
    assert "IT.conv1.weight: shape (512, 512, 1, 1), expected (512, 512, 3, 3)" in msg
    with pytest.raises(ValueError, match="arch='cornet_r'; available: cornet_z, cornet_rt, cornet_s"):
        load_cornet("cornet_r", sd)
