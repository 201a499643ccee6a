"""The manipulable architectures — recurrent (BLT family), locally connected, stochastic, divisive normalization,
feedback alignment — each trains on CIFAR-10 at small scale and every kind of probe runs on it."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico import electrode
from insilico.analysis import rsa
from insilico.data.datasets import Dataset
from insilico.models import BLTNet, ConvNet
from insilico.probes import featurevis as fv
from insilico.probes import lesion, rf, synthesis
from insilico.subject import InputSpec, make_subject
from insilico.train import TrainConfig, fit

ARCHS = {   # one model per code path (the feed-forward ConvNet is covered by the other probe tests)
    "blt": (BLTNet(widths=(8, 16), steps=3), "conv2/t2"),
    "locally_connected": (ConvNet(widths=(8, 16), fc=(32,), local=True, norm=False), "conv2"),
    "stochastic_divisive": (ConvNet(widths=(8, 16), fc=(32,), noise=0.3, divisive=True), "conv2"),
    # convolutions and dense layers by feedback alignment (the MLP's training is tested in test_learning_rules)
    "feedback_alignment": (ConvNet(widths=(8, 16), fc=(32,), learning_rule="feedback_alignment"), "conv2"),
}


@pytest.fixture(scope="module")
def cifar():
    from conftest import data_or_skip

    data_or_skip()
    from insilico.data import cifar10

    train, test = cifar10("train"), cifar10("test")
    idx = np.random.default_rng(0).choice(len(train.y), 256, replace=False)
    return (Dataset(train.x[idx], train.y[idx], train.class_names, "cifar10 train (256)"),
            Dataset(test.x[idx[:64] % len(test.y)], test.y[idx[:64] % len(test.y)], test.class_names,
                    "cifar10 test (64)"))


@pytest.fixture(scope="module")
def trained(cifar):
    train, test = cifar
    cfg = TrainConfig(epochs=2, batch_size=64, lr=1e-3, optimizer="adam", augment="none", weight_decay=0.0)
    out = {}
    for name, (model, _) in ARCHS.items():
        result = fit(model, train, test, cfg, progress=False)
        out[name] = (make_subject(name, model, result.variables, InputSpec((32, 32, 3))), result.history)
    return out


@pytest.mark.parametrize("arch", list(ARCHS))
def test_each_architecture_trains_and_every_probe_runs(arch, trained, cifar):
    subject, history = trained[arch]
    site = ARCHS[arch][1]
    if arch != "feedback_alignment":     # (FA first needs W to align with B: its training is tested on digits in
        assert history[-1]["loss"] < history[0]["loss"], history        # test_learning_rules and the experiment)
    x, y = cifar[1].x[:16], cifar[1].y[:16]
    out, rec = electrode.record(subject, x, None)
    assert out.shape == (16, 10) and all(np.isfinite(np.asarray(a)).all() for a in rec.values())
    c = subject.sites[site][-1]
    sweep = lesion.mask_sweep(subject, x, site, np.eye(c, dtype=np.float32)[:4], labels=y)
    assert sweep.accuracy.shape == (4,)
    vis = fv.visualize(subject, fv.channel(site), units=[0], key=jax.random.key(0), steps=4, progress=False)
    assert np.isfinite(vis.images.values).all()
    adv = synthesis.pgd(subject, x, y, 8 / 255, steps=3, key=jax.random.key(1))
    assert adv.attrs["accuracy"] <= adv.attrs["clean_accuracy"]
    tuning = rf.grating_tuning(subject, site, orientations=(0, 90), sfs=(0.1,), phases=(0, 180))
    assert np.isfinite(np.asarray(tuning[site])).all()
    r = rsa.rdm(np.asarray(rec[site]).reshape(16, -1) + 1e-3 * np.arange(16)[:, None])
    assert r.shape == (16, 16) and np.isfinite(r).all()


def test_recurrent_sites_per_time_step(trained, cifar):
    subject, _ = trained["blt"]
    x = cifar[1].x[:4]
    with pytest.raises(electrode.SiteError, match=r"'conv2' on blt is recurrent.*conv2/t0, conv2/t1, conv2/t2"):
        electrode.record(subject, x, "conv2")
    _, intact = electrode.record(subject, x, ["conv1/t0", "conv1/t1", "conv1/t2"])
    # silencing the top layer at step 0 reaches the first layer one step later (top-down), not at step 0
    _, cut = electrode.run(subject, x, edits={"conv2/t0": electrode.lesion(np.ones(16, np.float32))},
                           record=["conv1/t0", "conv1/t1"])
    assert np.array_equal(np.asarray(cut["conv1/t0"]), np.asarray(intact["conv1/t0"]))
    assert not np.allclose(np.asarray(cut["conv1/t1"]), np.asarray(intact["conv1/t1"]))
    # gradients flow through the unrolled loop: the last step's response depends on the image
    g = jax.grad(lambda im: electrode.run(subject, im, record="logits/t2")[1]["logits/t2"][:, 0].sum())(
        jnp.asarray(x))
    assert float(jnp.abs(g).sum()) > 0
    bl = BLTNet(widths=(8, 16), steps=2, topdown=False).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    assert set(bl["params"]["conv1"]) == {"bottom_up", "lateral", "t0", "t1"}


def test_stochastic_units_sample_with_a_key_and_are_noise_free_without(trained, cifar):
    subject, _ = trained["stochastic_divisive"]
    x = cifar[1].x[:4]
    out, rec = electrode.sample(subject, x, "conv2", n_samples=5, key=jax.random.key(0))
    assert rec["conv2"].shape == (5, 4, 16, 16, 16)
    assert float(jnp.std(rec["conv2"], 0).mean()) > 0                  # trial-to-trial variability
    again = electrode.sample(subject, x, "conv2", n_samples=5, key=jax.random.key(0))[1]["conv2"]
    assert np.array_equal(np.asarray(again), np.asarray(rec["conv2"]))  # reproducible from the key
    plain = electrode.record(subject, x, "conv2")[1]["conv2"]                # no key: the noise-free response
    quiet = subject.replace(model=subject.model.clone(noise=0.0))
    assert np.allclose(np.asarray(plain), np.asarray(electrode.record(quiet, x, "conv2")[1]["conv2"]), atol=1e-6)
    assert not np.allclose(np.asarray(rec["conv2"][0]), np.asarray(plain), atol=1e-3)
    det, _ = trained["locally_connected"]
    samples = electrode.sample(det, x, "conv2", n_samples=3, key=jax.random.key(0))[1]["conv2"]
    assert np.array_equal(np.asarray(samples[0]), np.asarray(samples[2]))


def test_locally_connected_layers_share_no_weights(trained):
    subject, _ = trained["locally_connected"]
    kernel = subject.params["conv1"]["conv"]["kernel"]
    assert kernel.shape == (32, 32, 3 * 3 * 3, 8)                 # one filter per position
    assert float(jnp.abs(kernel[0] - kernel[1]).max()) > 0


def test_every_time_step_is_trained_and_divisive_norm_formula():
    from insilico.models import DivisiveNorm
    from insilico.train.objectives import Classification

    model = BLTNet(widths=(2, 4), steps=2, lateral=False, topdown=False)        # B: steps share no recurrence
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(8, 4, 4, 3)), jnp.float32)
    v = model.init(jax.random.key(0), x)
    y = jnp.arange(8) % 10

    def loss(params):
        def apply(inputs, k):
            out, mut = model.apply({**v, "params": params}, inputs, train=True,
                                   mutable=["batch_stats", "intermediates"])
            return out, mut["intermediates"]
        return Classification(0.0)(apply, x, y, None)[0]

    g = jax.jit(jax.grad(loss))(v["params"])                   # one compilation, not one per operation
    assert float(jnp.abs(g["conv1"]["t0"]["bn"]["scale"]).sum()) > 0        # the first step learns too
    dn = DivisiveNorm()
    z = jnp.asarray(np.random.default_rng(1).uniform(size=(2, 3)), jnp.float32)
    p = {"params": {"beta": jnp.zeros(3), "gamma": jnp.array([[0.1, 0.5, 0.0], [0.0, 0.2, 0.0], [0.3, 0.0, 0.4]])}}
    beta = np.log1p(np.exp(0.0))
    ref = np.asarray(z) / np.sqrt(beta + (np.asarray(z) ** 2) @ np.asarray(p["params"]["gamma"]).T)
    assert np.allclose(dn.apply(p, z), ref, atol=1e-6)


def test_sample_checks_every_image(trained, cifar):
    subject, _ = trained["stochastic_divisive"]
    x = np.array(cifar[1].x[:3])
    x[2, 0, 0, 0] = np.nan
    with pytest.raises(electrode.InputError, match="NaN"):
        electrode.sample(subject, x, "conv2", n_samples=2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="n_samples must be"):
        electrode.sample(subject, x[:2], "conv2", n_samples=0, key=jax.random.key(0))


def test_model_settings_that_would_build_another_model_are_refused():
    """A 3-value normalization on a 1-channel input broadcast it to 3 channels; an odd size lost rows in the
    autoencoder (its output was smaller than its input); a pooling name or a padding that is not used."""
    from insilico.models import Autoencoder, ConvNet
    from insilico.models._stage import ConvStage
    from insilico.selectors import where

    x1 = jnp.zeros((1, 28, 28, 1))
    with pytest.raises(ValueError, match="Normalize: mean has 3 values for an input of 1 channel"):
        ConvNet(widths=(4,), fc=(), mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26)).init(jax.random.key(0), x1)
    with pytest.raises(ValueError, match="multiples of 8 .* got 28x28"):
        Autoencoder(widths=(4, 8, 8)).init(jax.random.key(0), x1)
    assert Autoencoder(widths=(4, 8)).apply(Autoencoder(widths=(4, 8)).init(jax.random.key(0), x1), x1).shape == \
        x1.shape
    with pytest.raises(ValueError, match="pools must be 'max', 'avg' or None"):
        ConvNet(widths=(4,), fc=(), pools="mean").init(jax.random.key(0), x1)
    with pytest.raises(ValueError, match="pads 'SAME'; padding=0"):
        ConvStage(4, local=True, padding=0).init(jax.random.key(0), jnp.zeros((1, 6, 6, 1)))
    with pytest.raises(TypeError, match="methods must be a sequence of method names"):
        where(lambda c: True, methods="encode")
