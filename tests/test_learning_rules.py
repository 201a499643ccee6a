"""Feedback alignment (Lillicrap et al. 2016) through a custom VJP: exact gradients, training, alignment."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico.models import MLP
from insilico.models.feedback import feedback_aligned, learning_rule_gradients
from insilico.train import TrainConfig, fit
from insilico.train.rules import gradient_alignment, weight_alignment


def test_feedback_alignment_sends_errors_through_the_feedback_matrix():
    rng = np.random.default_rng(0)
    x, w, b = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((5, 4), (4, 3), (4, 3)))
    g = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
    op = feedback_aligned(jnp.matmul)
    y, vjp = jax.vjp(op, x, w, b)
    gx, gw, gb = vjp(g)
    assert np.allclose(y, x @ w, atol=1e-6)
    assert np.allclose(gx, g @ b.T, atol=1e-5)                 # the error goes down through B, not W
    assert np.allclose(gw, x.T @ g, atol=1e-5)                 # the weight update is backprop's
    assert np.all(np.asarray(gb) == 0)
    _, vjp_same = jax.vjp(op, x, w, w)                         # B = W: exactly backpropagation
    _, vjp_bp = jax.vjp(jnp.matmul, x, w)
    assert np.allclose(vjp_same(g)[0], vjp_bp(g)[0], atol=1e-6)


def test_mlp_rules_share_the_forward_pass_and_differ_in_gradients():
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(8, 6, 6, 1)), jnp.float32)
    y = jnp.arange(8) % 3
    fa = MLP(widths=(16, 8), num_classes=3, learning_rule="feedback_alignment")
    v = fa.init(jax.random.PRNGKey(0), x)
    assert set(v) == {"params", "feedback"} and set(v["feedback"]) == {"fc1", "fc2", "logits"}
    bp = fa.clone(learning_rule="backprop")
    assert np.allclose(fa.apply(v, x), bp.apply({"params": v["params"]}, x), atol=1e-6)
    angles = gradient_alignment(fa, v, x, y)
    assert angles["logits/dense"] < 1e-3                       # the readout's update is backprop's
    assert angles["fc1/dense"] > 20                            # random feedback: far from the true gradient
    with pytest.raises(ValueError, match="valid: backprop, feedback_alignment"):
        MLP(learning_rule="hebbian").init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="not trained by feedback alignment"):
        weight_alignment({"params": v["params"]})


def test_feedback_alignment_learns_and_aligns(tmp_path):
    from insilico.data.datasets import Dataset

    rng = np.random.default_rng(2)
    protos = rng.uniform(size=(4, 8, 8, 1)).astype(np.float32)
    labels = rng.integers(0, 4, 1200)
    images = np.clip(protos[labels] + 0.35 * rng.normal(size=(1200, 8, 8, 1)), 0, 1).astype(np.float32)
    names = ("a", "b", "c", "d")
    train = Dataset(images[:1000], labels[:1000].astype(np.int32), names, "toy train")
    test = Dataset(images[1000:], labels[1000:].astype(np.int32), names, "toy test")
    model = MLP(widths=(32,), num_classes=4, learning_rule="feedback_alignment")
    cfg = TrainConfig(epochs=4, batch_size=50, lr=3e-3, optimizer="adam", weight_decay=0.0, augment="none",
                      label_smoothing=0.0)
    before = {}
    result = fit(model, train, test, cfg, progress=False, checkpoint_dir=tmp_path,
                 on_epoch=lambda e, v: before.update(v) if e == 0 else None)
    assert result.history[-1]["test_acc"] > 0.9
    assert np.array_equal(result.variables["feedback"]["fc1"]["dense"]["kernel"],
                          before["feedback"]["fc1"]["dense"]["kernel"])          # B never changes
    start, end = weight_alignment(before), weight_alignment(result.variables)
    assert end["logits/dense"] < start["logits/dense"] - 5          # W comes to align with B
    again = fit(model, train, test, cfg, progress=False, checkpoint_dir=tmp_path)          # resumes: no steps
    assert again.history == result.history
    assert np.array_equal(again.variables["feedback"]["fc1"]["dense"]["kernel"],
                          result.variables["feedback"]["fc1"]["dense"]["kernel"])


def _conv_input_grad_loop(g, b, x_shape, stride, pads):
    """∂⟨g, x ⋆ b⟩/∂x by explicit loops over output positions (NHWC, HWIO; zero padding (lo, hi) per side)."""
    n, h, w, c = x_shape
    k = b.shape[0]
    lo, hi = pads
    gx = np.zeros((n, h + lo + hi + k, w + lo + hi + k, c))
    for i in range(g.shape[1]):
        for j in range(g.shape[2]):
            # each output (i, j, o) reads the padded patch at (i·s, j·s) through b[..., o]
            gx[:, i * stride:i * stride + k, j * stride:j * stride + k, :] += np.einsum("no,pqco->npqc", g[:, i, j],
                                                                                       b)
    return gx[:, lo:lo + h, lo:lo + w]


@pytest.mark.parametrize("size,stride,pad", [(7, 1, 1), (7, 2, 1), (7, 1, 0), (8, 2, "SAME"), (7, 1, "SAME")])
def test_convolutional_feedback_alignment_sends_errors_through_a_fixed_kernel(size, stride, pad):
    import flax.linen as nn

    from insilico.models.feedback import FAConv

    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(2, size, size, 3)), jnp.float32)
    if pad == "SAME":                    # TensorFlow's rule: the extra row/column of an odd total goes below/right
        total = max((-(-size // stride) - 1) * stride + 3 - size, 0)
        pads, padding = (total // 2, total - total // 2), "SAME"
    else:
        pads, padding = (pad, pad), ((pad, pad), (pad, pad))
    layer = FAConv(4, (3, 3), strides=(stride, stride), padding=padding)
    v = layer.init(jax.random.PRNGKey(0), x)
    w, b = v["params"]["kernel"], v["feedback"]["kernel"]
    assert w.shape == b.shape == (3, 3, 3, 4) and not np.allclose(w, b)
    plain = nn.Conv(4, (3, 3), strides=(stride, stride), padding=padding)
    with learning_rule_gradients():                                # while learning
        y, vjp = jax.vjp(lambda x_, p_: layer.apply({"params": p_, "feedback": v["feedback"]}, x_), x,
                         v["params"])
    y_bp, vjp_bp = jax.vjp(lambda x_, p_: plain.apply({"params": p_}, x_), x, v["params"])
    assert np.allclose(y, y_bp, atol=1e-5)                         # the same forward computation
    g = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    (gx, gp), (gx_bp, gp_bp) = vjp(g), vjp_bp(g)
    assert np.allclose(gp["kernel"], gp_bp["kernel"], atol=1e-4)    # the kernel's update is backprop's
    assert np.allclose(gp["bias"], gp_bp["bias"], atol=1e-4)
    g64 = np.asarray(g, np.float64)
    ref = _conv_input_grad_loop(g64, np.asarray(b, np.float64), x.shape, stride, pads)
    assert np.allclose(gx, ref, atol=1e-4)                          # the error goes down through B
    assert not np.allclose(gx, gx_bp, atol=1e-2)
    assert np.allclose(gx_bp, _conv_input_grad_loop(g64, np.asarray(w, np.float64), x.shape, stride, pads),
                       atol=1e-4)


def test_convnet_feedback_alignment_in_every_layer():
    from insilico.models import ConvNet

    x = jnp.asarray(np.random.default_rng(4).uniform(size=(6, 8, 8, 3)), jnp.float32)
    y = jnp.arange(6) % 3
    fa = ConvNet(widths=(4, 8), fc=(8,), num_classes=3, learning_rule="feedback_alignment")
    v = fa.init(jax.random.PRNGKey(0), x)
    assert set(v["feedback"]) == {"conv1", "conv2", "fc1", "logits"}
    bp = fa.clone(learning_rule="backprop")
    v_bp = bp.init(jax.random.PRNGKey(0), x)
    assert jax.tree.structure(v_bp["params"]) == jax.tree.structure(v["params"])     # same parameter names
    plain = {k: val for k, val in v.items() if k != "feedback"}
    assert np.allclose(fa.apply(v, x), bp.apply(plain, x), atol=1e-5)
    angles = gradient_alignment(fa, v, x, y)
    assert set(angles) == {"conv1/conv", "conv2/conv", "fc1/dense", "logits/dense"}
    assert angles["logits/dense"] < 1e-3 and angles["conv1/conv"] > 20
    with pytest.raises(ValueError, match="not for locally connected"):
        ConvNet(widths=(4,), local=True, norm=False, learning_rule="feedback_alignment").init(jax.random.PRNGKey(0), x)


def test_probes_see_true_gradients_of_a_feedback_aligned_network():
    """Feedback alignment is a rule for learning: outside training, input gradients (feature visualization,
    adversarial examples) are the network's true gradients; only while learning do errors go through B."""
    from insilico.models import ConvNet

    x = jnp.asarray(np.random.default_rng(5).uniform(size=(3, 8, 8, 3)), jnp.float32)
    for fa in (ConvNet(widths=(4,), fc=(8,), num_classes=3, learning_rule="feedback_alignment"),
               MLP(widths=(8,), num_classes=3, learning_rule="feedback_alignment")):
        v = fa.init(jax.random.PRNGKey(0), x)
        bp = fa.clone(learning_rule="backprop")
        plain = {k: val for k, val in v.items() if k != "feedback"}
        true = jax.grad(lambda im: bp.apply(plain, im)[:, 0].sum())(x)
        probe = jax.grad(lambda im: fa.apply(v, im)[:, 0].sum())(x)
        assert np.allclose(probe, true, atol=1e-5)
        with learning_rule_gradients():
            learning = jax.grad(lambda im: fa.apply(v, im)[:, 0].sum())(x)
        assert not np.allclose(learning, true, atol=1e-3)
