"""Training objectives beyond classification: sparse autoencoding, contrastive, slowness, sparse coding."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico.data.datasets import Dataset
from insilico.models import Autoencoder, ConvNet
from insilico.train import TrainConfig, fit
from insilico.train.objectives import Contrastive, Slowness, SparseAutoencoder, nt_xent, sparse_coding


@pytest.fixture(scope="module")
def blobs():
    """Images of one bright Gaussian blob at a random place on a dim background (16 x 16 x 3)."""
    rng = np.random.default_rng(0)
    n, h = 160, 16
    yy, xx = np.mgrid[:h, :h]
    cy, cx = rng.uniform(3, h - 3, (2, n))
    colour = rng.uniform(0.3, 1.0, (n, 3))
    blob = np.exp(-((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2) / 8.0)
    x = (0.1 + 0.8 * blob[..., None] * colour[:, None, None, :]).astype(np.float32)
    return Dataset(x, np.zeros(n, np.int32), ("blob",), "blobs")


CFG = TrainConfig(epochs=6, batch_size=32, lr=3e-3, optimizer="adam", augment="none", weight_decay=0.0)


def test_nt_xent_equals_a_loop():
    rng = np.random.default_rng(1)
    z1, z2 = rng.normal(size=(2, 5, 4))
    loss, acc = nt_xent(jnp.asarray(z1), jnp.asarray(z2), 0.5)
    z = np.concatenate([z1, z2])
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    total, hits = 0.0, 0
    for i in range(10):
        j = (i + 5) % 10
        logits = np.array([z[i] @ z[k] / 0.5 for k in range(10) if k != i])
        others = [k for k in range(10) if k != i]
        total += -(z[i] @ z[j] / 0.5) + np.log(np.exp(logits).sum())
        hits += others[int(np.argmax(logits))] == j
    assert float(loss) == pytest.approx(total / 10, rel=1e-5) and float(acc) == pytest.approx(hits / 10)


def test_sparse_autoencoder_learns_and_l1_sparsifies(blobs):
    model = Autoencoder(widths=(8, 16), code=32)
    cfg = TrainConfig(epochs=20, batch_size=16, lr=3e-3, optimizer="adam", augment="none", weight_decay=0.0)
    dense = fit(model, blobs, None, cfg, progress=False, objective=SparseAutoencoder(l1=0.0))
    sparse = fit(model, blobs, None, cfg, progress=False, objective=SparseAutoencoder(l1=0.3))
    baseline = float(np.mean((blobs.x - blobs.x.mean(0)) ** 2))       # predicting the mean image
    assert dense.history[-1]["train_mse"] < 0.5 * baseline
    assert dense.history[-1]["train_mse"] < dense.history[0]["train_mse"]
    assert sparse.history[-1]["train_active"] < dense.history[-1]["train_active"]
    assert "test_acc" not in dense.history[-1]


def test_contrastive_and_slowness_objectives_train(blobs):
    model = ConvNet(widths=(8, 16), fc=(32,), num_classes=16)
    con = fit(model, blobs, None, CFG, progress=False, objective=Contrastive(augment="crop"))
    assert con.history[-1]["train_pair_acc"] > max(0.3, con.history[0]["train_pair_acc"])   # chance 1/63
    slow = fit(model, blobs, None, CFG, progress=False, objective=Slowness(shift=1))
    assert slow.history[-1]["train_slowness"] < slow.history[0]["train_slowness"]


def test_sparse_coding_recovers_a_planted_dictionary():
    rng = np.random.default_rng(2)
    k, p, n = 12, 36, 3000
    atoms = rng.normal(size=(k, p))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = np.zeros((n, k))
    for i in range(n):
        codes[i, rng.choice(k, 2, replace=False)] = rng.uniform(0.5, 1.5, 2)
    x = codes @ atoms + 0.01 * rng.normal(size=(n, p))
    out = sparse_coding(x, k, key=jax.random.key(0), lam=0.05, steps=400, batch_size=256)
    cos = np.abs(atoms @ out["dictionary"].T).max(1)
    assert np.sum(cos > 0.95) >= k - 1, cos
    assert out["mse"][-1] < 0.2 * out["mse"][0] and out["active"][-1] < 0.5
    with pytest.raises(ValueError, match="N ≥ n_atoms"):
        sparse_coding(x[:5], k, key=jax.random.key(0))


def test_objective_edge_cases():
    from insilico.train.objectives import Classification

    with pytest.raises(ValueError, match="augmentation to make two views.*valid: flip_crop, crop"):
        Contrastive(augment="none")
    x = jnp.asarray(np.random.default_rng(3).uniform(size=(16, 8, 8, 1)), jnp.float32)
    one = lambda inputs, k: (inputs.reshape(len(inputs), -1)[:, :1] * 3.0, {})      # noqa: E731  (d = 1)
    loss, m = Slowness(shift=1)(one, x, None, jax.random.key(0))
    assert np.isfinite(float(loss)) and np.isfinite(float(m["slowness"]))
    steps = (jnp.zeros((16, 3)), jnp.ones((16, 3)) * jnp.array([5.0, 0, 0]))          # per-step logits
    y = jnp.zeros(16, jnp.int32)
    loss, _ = Classification(0.0)(lambda inputs, k: (steps[-1], {"step_logits": steps}), x, y, None)
    expect = (np.log(3) + float(-jax.nn.log_softmax(jnp.array([5.0, 0, 0]))[0])) / 2
    assert float(loss) == pytest.approx(expect, rel=1e-5)                   # the mean over time steps
