"""Sites by selector: composition, naming (paths, methods, repeated calls), defaults, and the errors a user meets
when a model or a selector does not fit."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from insilico import electrode as el
from insilico import selectors as sel
from insilico.subject import InputSpec, SubjectError, make_subject
from conftest import assert_close
from user_models import LinenCNN, NNXCNN, ReLU, linen_cnn_variables

SPEC = InputSpec((8, 8, 3))


@pytest.fixture(scope="module")
def linen():
    model = LinenCNN()
    return model, linen_cnn_variables(model, SPEC.shape, jax.random.key(0))


def sites(model, variables, selector, spec=SPEC):
    return list(make_subject("m", model, variables, spec, sites=selector).sites)


def test_selectors_compose(linen):
    model, v = linen
    assert sites(model, v, sel.of_type(nn.Conv)) == ["conv1", "conv2"]
    assert sites(model, v, sel.of_type(nn.Conv, nn.Dense)) == ["conv1", "conv2", "out"]
    assert sites(model, v, sel.at_path("act*")) == ["act1", "act2"]
    assert sites(model, v, ["conv1", "out"]) == ["conv1", "out"]                   # a list of patterns
    assert sites(model, v, sel.of_type(nn.Conv) | sel.of_type(ReLU)) == ["conv1", "act1", "conv2", "act2"]
    assert sites(model, v, sel.arrays() - sel.of_type(nn.BatchNorm)) == ["conv1", "act1", "conv2", "act2", "out"]
    assert sites(model, v, sel.arrays() & sel.at_path("*2")) == ["conv2", "act2"]
    assert sites(model, v, ~sel.of_type(nn.Conv) & sel.arrays()) == ["bn1", "act1", "act2", "out"]
    four_d = sel.where(lambda call: len(call.output.shape) == 4, description="maps")
    assert sites(model, v, four_d) == ["conv1", "bn1", "act1", "conv2", "act2"]
    assert sel.at_path("a", "b") == sel.at_path("a", "b") and hash(sel.arrays()) == hash(sel.arrays())


def test_zoo_models_keep_their_curated_sites(tiny_convnet, tiny_resnet):
    assert tiny_convnet.selector == sel.stages()
    assert list(tiny_convnet.sites) == ["conv1", "conv2", "fc1", "logits"]
    everything = make_subject("all", tiny_convnet.model, tiny_convnet.variables, tiny_convnet.input_spec,
                              sites=sel.arrays())
    assert "conv1/conv" in everything.sites and "conv1/bn" in everything.sites and "normalize" in everything.sites
    assert list(tiny_resnet.sites)[1] == "stage1/block1"


class _Twice(nn.Module):
    """A shared layer called twice, and a method other than __call__."""

    def setup(self):
        self.shared = nn.Dense(4)
        self.head = nn.Dense(3)

    def features(self, x):
        return self.shared(self.shared(x.reshape(x.shape[0], -1)[:, :4]))

    def __call__(self, x):
        return self.head(self.features(x))


def test_repeated_calls_and_methods():
    model = _Twice()
    v = model.init(jax.random.key(0), jnp.zeros((1, 2, 2, 1)))
    s = make_subject("twice", model, v, InputSpec((2, 2, 1)), sites=sel.arrays() | sel.method("features"))
    assert list(s.sites) == ["shared@0", "shared@1", "head"]     # a method of the root is not a site
    x = jax.random.uniform(jax.random.key(1), (3, 2, 2, 1))
    _, rec = el.record(s, x, ["shared@0", "shared@1"])
    w = v["params"]["shared"]
    first = x.reshape(3, -1)[:, :4] @ w["kernel"] + w["bias"]
    assert_close(rec["shared@0"], first)
    assert_close(rec["shared@1"], first @ w["kernel"] + w["bias"])
    with pytest.raises(el.SiteError, match=r"'shared' on twice is called 2 times.*shared@0, shared@1"):
        el.record(s, x, "shared")
    # editing the first call only
    _, rec = el.run(s, x, {"shared@0": el.lesion(jnp.ones(4))}, record="shared@1")
    assert_close(rec["shared@1"], jnp.broadcast_to(w["bias"], (3, 4)))


class _Encoder(nn.Module):
    def setup(self):
        self.proj = nn.Dense(3)

    def encode(self, x):
        return self.proj(x.reshape(x.shape[0], -1))


class _WithMethod(nn.Module):
    def setup(self):
        self.encoder = _Encoder()

    def __call__(self, x):
        return self.encoder.encode(x) * 2.0


def test_method_sites_are_named_path_dot_method():
    model = _WithMethod()
    v = model.init(jax.random.key(0), jnp.zeros((1, 2, 2, 1)))
    s = make_subject("m", model, v, InputSpec((2, 2, 1)), sites=sel.method("encode"))
    assert list(s.sites) == ["encoder.encode"]
    x = jax.random.uniform(jax.random.key(1), (2, 2, 2, 1))
    out, rec = el.run(s, x, {"encoder.encode": el.gain(0.5)}, record="encoder.encode")
    assert_close(out, 2.0 * rec["encoder.encode"])


class _EncodesTwice(nn.Module):
    def setup(self):
        self.enc = _Encoder()

    def __call__(self, x):
        return self.enc.encode(x) + self.enc.encode(2 * x)


def test_a_method_path_may_name_one_call():
    """``"enc.encode@1"`` is the second call of the method (``@k`` is not part of the method's name); a glob in
    the method's name is refused."""
    model = _EncodesTwice()
    v = model.init(jax.random.key(0), jnp.zeros((1, 2, 2, 1)))
    s = make_subject("m", model, v, InputSpec((2, 2, 1)), sites=sel.at_path("enc.encode@1"))
    assert list(s.sites) == ["enc.encode@1"]
    x = jax.random.uniform(jax.random.key(1), (2, 2, 2, 1))
    _, rec = el.record(s, x, "enc.encode@1")
    assert_close(rec["enc.encode@1"], model.apply(v, 2 * x, method=lambda m, y: m.enc.encode(y)))
    with pytest.raises(TypeError, match="must be a method's name \\(no glob"):
        sel.at_path("enc.enc*")


def test_nnx_model_is_not_changed_and_runs_in_inference_mode():
    model = NNXCNN(rngs=nnx.Rngs(0))
    s = make_subject("n", model, None, SPEC)
    assert model.bn1.use_running_average is False and model.drop.deterministic is False      # untouched
    x = jax.random.uniform(jax.random.key(0), (4, 8, 8, 3))
    out1, _ = el.record(s, x)
    out2, _ = el.record(s, x)
    assert_close(out1, out2, rtol=0, atol=0)                   # dropout off, running statistics used
    model.eval()
    assert_close(out1, model(x), rtol=1e-6, atol=1e-6)
    live = s.module()
    assert isinstance(live, NNXCNN) and live.bn1.use_running_average


# ------------------------------------------------------------------------------------------------- bad input
class _Pair(nn.Module):
    @nn.compact
    def __call__(self, x):
        return x.mean((1, 2)), x.max((1, 2))


class _UsesPair(nn.Module):
    @nn.compact
    def __call__(self, x):
        a, b = _Pair(name="pair")(x)
        return nn.Dense(2, name="out")(a + b)


def test_a_non_array_site_is_named():
    model = _UsesPair()
    v = model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
    assert list(make_subject("p", model, v, InputSpec((4, 4, 3))).sites) == ["out"]        # arrays() passes over
    with pytest.raises(SubjectError, match=r"module pair \(_Pair\) is selected.*returns a tuple, not an array"):
        make_subject("p", model, v, InputSpec((4, 4, 3)), sites=sel.everything())


def test_a_selector_matching_nothing_lists_the_modules(linen):
    model, v = linen
    with pytest.raises(SubjectError, match=r"matches no module call; the model's modules: conv1 \(Conv\), "
                                           r"bn1 \(BatchNorm\), act1 \(ReLU\)"):
        make_subject("m", model, v, SPEC, sites=sel.at_path("layer*"))


def test_unknown_site_lists_sites_and_other_modules(linen):
    model, v = linen
    s = make_subject("m", model, v, SPEC, sites=sel.of_type(nn.Conv))
    x = jnp.zeros((2, 8, 8, 3))
    with pytest.raises(el.SiteError, match=r"unknown site 'conv3'.*valid: conv1, conv2; other modules of the "
                                           r"model \(not sites\): bn1 \(BatchNorm\), act1 \(ReLU\)"):
        el.record(s, x, "conv3")
    with pytest.raises(el.SiteError, match=r"'bn1' is a module of m \(BatchNorm\) but not one of its sites "
                                           r"\(selected by of_type\(Conv\)\)"):
        el.record(s, x, "bn1")


def test_input_spec_mismatch_names_the_module(linen):
    model, v = linen
    with pytest.raises(SubjectError, match=r"failed in module conv1 \(Conv\)"):
        make_subject("m", model, v, InputSpec((8, 8, 4)))
    with pytest.raises(SubjectError, match=r"failed in module conv1 \(Conv\)"):
        make_subject("n", NNXCNN(rngs=nnx.Rngs(0)), None, InputSpec((8, 8, 1)))


class _Counter(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(3, 2, rngs=rngs)
        self.calls = nnx.Variable(jnp.zeros(()))

    def __call__(self, x):
        self.calls.set_value(self.calls.get_value() + 1)
        return self.lin(x.mean((1, 2)))


def test_nnx_state_mutation_is_refused_with_its_path():
    with pytest.raises(SubjectError, match=r"changes the 'state' variable calls \(outside inference mode\)"):
        make_subject("c", _Counter(nnx.Rngs(0)), None, InputSpec((4, 4, 3)))


class _TrainDefault(nn.Module):
    @nn.compact
    def __call__(self, x, use_stats: bool = False):
        x = nn.BatchNorm(use_running_average=use_stats, name="bn")(x)
        return nn.Dense(2, name="out")(x.mean((1, 2)))


def test_linen_batch_stat_updates_are_named():
    model = _TrainDefault()
    v = model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
    with pytest.raises(SubjectError, match=r"failed in module bn \(BatchNorm\).*batch_stats"):
        make_subject("t", model, v, InputSpec((4, 4, 3)))
    s = make_subject("t", model, v, InputSpec((4, 4, 3)), call_kwargs={"use_stats": True})
    assert list(s.sites) == ["bn", "out"]


def test_arguments_are_checked(linen):
    model, v = linen
    with pytest.raises(TypeError, match="an NNX module carries its own state; pass variables=None"):
        make_subject("n", NNXCNN(rngs=nnx.Rngs(0)), {"params": {}}, SPEC)
    with pytest.raises(TypeError, match="needs its variables"):
        make_subject("m", model, None, SPEC)
    with pytest.raises(TypeError, match="must be a flax.linen.Module .* or a flax.nnx.Module; got function"):
        make_subject("m", lambda x: x, v, SPEC)
    with pytest.raises(ValueError, match=r"InputSpec shape must be \(H, W, C\)"):
        InputSpec((8, 8))
    with pytest.raises(TypeError, match="sites must be a Selector"):
        make_subject("m", model, v, SPEC, sites=3)
    with pytest.raises(ValueError, match="3 class names for an output of 5 units"):
        make_subject("m", model, v, SPEC, class_names=("a", "b", "c"))
    with pytest.raises(TypeError, match=r"call_kwargs must be a mapping of keyword names .* got \['train'\]"):
        make_subject("m", model, v, SPEC, call_kwargs=["train"])
    with pytest.raises(TypeError, match="subject must be an insilico Subject"):
        el.validate(model)


def test_subject_is_a_pytree_of_its_weights(linen):
    model, v = linen
    s = make_subject("m", model, v, SPEC)
    leaves = jax.tree.leaves(s)
    assert len(leaves) == len(jax.tree.leaves(v))
    doubled = jax.tree.map(lambda a: 2 * a, s)
    assert doubled.sites == s.sites and doubled.name == "m"
    assert_close(doubled.params["out"]["bias"], 2 * np.asarray(v["params"]["out"]["bias"]))
    assert jax.tree.structure(doubled) == jax.tree.structure(s)


class _Stack(nnx.Module):
    """Layers in an nnx.List: sites and parameter paths with list indices."""

    def __init__(self, rngs):
        self.blocks = nnx.List([nnx.Linear(3, 4, rngs=rngs), nnx.Linear(4, 2, rngs=rngs)])

    def __call__(self, x):
        x = x.mean((1, 2))
        for block in self.blocks:
            x = block(x)
        return x


def test_nnx_list_sites_and_parameter_paths():
    s = make_subject("stack", _Stack(nnx.Rngs(0)), None, InputSpec((2, 2, 3)))
    assert list(s.sites) == ["blocks/0", "blocks/1"]
    assert "blocks/1/kernel" in el.synapse_paths(s, "blocks/1")
    kernel = el.parameter(s, "blocks/1/kernel")
    assert kernel.shape == (4, 2)
    x = jax.random.uniform(jax.random.key(0), (3, 2, 2, 3))
    cut = el.lesion_synapses(s.variables, {"blocks/1/kernel": jnp.zeros((4, 2)), "blocks/1/bias": jnp.zeros(2)})
    out, _ = el.run(s, x, variables=cut)
    assert float(jnp.abs(out).max()) == 0.0
    with pytest.raises(KeyError, match="unknown parameter path 'blocks/2/kernel'; valid: blocks/0/bias"):
        el.parameter(s, "blocks/2/kernel")


def test_one_call_of_a_module_called_several_times_is_selected_by_its_site_name():
    """A module called at every time step gives sites name@0, name@1, ...: the error listed them, but a
    pattern could only match the bare name (every call)."""
    from insilico.models import BLTNet

    model = BLTNet(widths=(2, 4), steps=3)
    v = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    spec = InputSpec((8, 8, 3))
    assert list(make_subject("b", model, v, spec, sites="readout@1").sites) == ["readout@1"]
    assert list(make_subject("b", model, v, spec, sites="readout").sites) == ["readout@0", "readout@1", "readout@2"]
    assert list(make_subject("b", model, v, spec, sites=sel.at_path("readout@[02]")).sites) == ["readout@0",
                                                                                               "readout@2"]
    x = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3))
    one = el.record(make_subject("b", model, v, spec, sites="readout@1"), x)[1]["readout@1"]
    every = el.record(make_subject("b", model, v, spec, sites="readout"), x)[1]["readout@1"]
    np.testing.assert_array_equal(np.asarray(one), np.asarray(every))


class _ScanCell(nn.Module):
    @nn.compact
    def __call__(self, c, x):
        h = nn.relu(nn.Dense(4, name="w")(c) + x)
        return h, h


class _Scanned(nn.Module):
    """A recurrence by nn.scan: Flax traces its body apart (twice), so no call inside is a time step."""

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        scan = nn.scan(_ScanCell, variable_broadcast="params", split_rngs={"params": False}, in_axes=1, out_axes=1,
                       length=3)
        c, _ = scan(name="cell")(jnp.zeros((x.shape[0], 4)), jnp.repeat(x[:, None, :4], 3, 1))
        return nn.Dense(2, name="out")(c)


def test_calls_inside_lifted_transforms_are_not_sites():
    """Editing ``cell/w@0`` of an nn.scan used to change nothing and recording it escaped its trace: such calls
    are no sites, and selecting them names why."""
    model = _Scanned()
    v = model.init(jax.random.key(0), jnp.zeros((1, 2, 2, 1)))
    assert list(make_subject("scan", model, v, InputSpec((2, 2, 1))).sites) == ["out"]
    with pytest.raises(SubjectError, match="calls inside Flax lifted transforms .* are not sites: cell, cell/w"):
        make_subject("scan", model, v, InputSpec((2, 2, 1)), sites=sel.at_path("cell/*"))
