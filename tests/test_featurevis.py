"""Feature visualization: parameterizations, transforms, objective algebra, the compiled optimizer."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico import electrode as el
from insilico.probes import featurevis as fv
from insilico.validation import ArgumentError

from conftest import assert_close
from tracing import at_most_traces


def _embed(f, size=24, at=8):
    canvas = np.zeros((size, size))
    canvas[at:at + f.shape[0], at:at + f.shape[1]] = f
    return canvas


def _abs_corr(a, b):
    return abs(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_visualization_recovers_known_gabor_filters(gabor_subject):
    """Maximizing w·x − ½|x − 0.5|² has the analytic optimum x − 0.5 = w: the images must equal the filters."""
    subject, filters = gabor_subject
    obj = fv.neuron("conv1") - 0.5 * (fv.l2() * fv.l2())
    r = fv.visualize(subject, obj, units=6, n_seeds=2, steps=300, param=fv.pixel(subject), transforms=(),
                     key=jax.random.key(0), progress=False)
    img = r.images.isel(step=-1).values[..., 0]                       # (unit, seed, y, x)
    for k in range(6):
        for s in range(2):
            assert _abs_corr(img[k, s] - 0.5, _embed(filters[k])) >= 0.99
    np.testing.assert_allclose(r.score.values, 0.5, atol=1e-3)          # ½|w|² with |w| = 1


def test_fourier_parameterization_also_converges_to_the_filter(gabor_subject):
    subject, filters = gabor_subject
    obj = fv.neuron("conv1") - 0.5 * (fv.l2() * fv.l2())
    r = fv.visualize(subject, obj, units=[0, 3], steps=300, param=fv.fourier(subject), transforms=(),
                     key=jax.random.key(1), progress=False)
    img = r.images.isel(step=-1, seed=0).values[..., 0]
    assert _abs_corr(img[0] - 0.5, _embed(filters[0])) >= 0.95
    assert _abs_corr(img[1] - 0.5, _embed(filters[3])) >= 0.95


def test_units_are_independent_of_the_batch_and_reproducible(tiny_convnet):
    kw = dict(steps=12, key=jax.random.key(3), progress=False)
    a = fv.visualize(tiny_convnet, fv.channel("conv2"), units=[1, 4, 5], n_seeds=2, **kw)
    b = fv.visualize(tiny_convnet, fv.channel("conv2"), units=[4], n_seeds=2, batch_size=1, **kw)
    assert_close(a.images.sel(unit=4).values, b.images.sel(unit=4).values, atol=1e-5)
    c = fv.visualize(tiny_convnet, fv.channel("conv2"), units=[1, 4, 5], n_seeds=2, **kw)
    np.testing.assert_array_equal(a.images.values, c.images.values)
    assert not np.allclose(a.images.sel(seed=0).values, a.images.sel(seed=1).values)


def test_objective_rises_and_snapshots(tiny_convnet):
    r = fv.visualize(tiny_convnet, fv.channel("conv2"), units=6, steps=40, snapshots=(0, 10, 40),
                     key=jax.random.key(0), progress=False)
    assert r.images.shape == (6, 3, 1, 8, 8, 3)
    assert list(r.step.values) == [0, 10, 40]
    tr = r.objective.values[:, :, 0]
    assert (tr[:, -5:].mean(1) > tr[:, :5].mean(1)).all()
    lo, hi = tiny_convnet.input_spec.bounds
    assert r.images.values.min() >= lo and r.images.values.max() <= hi
    # the score is the objective of the final, untransformed images, recomputed here with the electrode
    _, rec = el.run(tiny_convnet, jnp.asarray(r.images.isel(step=-1, seed=0).values), record="conv2")
    means = np.asarray(rec["conv2"]).mean(axis=(1, 2))
    assert_close(r.score.values[:, 0], means[np.arange(6), np.arange(6)], rtol=1e-4, atol=1e-5)


def test_negative_objective_inhibits(tiny_convnet):
    """Maximizing −logit drives the (linear, unbounded) logit below where it started and below the maximized one."""
    kw = dict(units=[2], steps=30, key=jax.random.key(5), progress=False, transforms=())
    up = fv.visualize(tiny_convnet, fv.class_logit(), **kw)
    down = fv.visualize(tiny_convnet, -fv.class_logit(), **kw)
    start = up.objective.values[0, 0, 0]                     # same key: both start from the same image
    assert down.objective.values[0, 0, 0] == pytest.approx(-start, rel=1e-5)
    assert up.score.item() > start > -down.score.item()


def test_objective_algebra_and_caching():
    acts = {"a": jnp.arange(12.0).reshape(2, 6)}
    img = jnp.zeros((2, 4, 4, 1))
    n0, n1 = fv.neuron("a", 0), fv.neuron("a", 1)
    assert_close((n0 + 2 * n1)(acts, img, 0), acts["a"][:, 0] + 2 * acts["a"][:, 1])
    assert_close((n0 * n1 - 1)(acts, img, 0), acts["a"][:, 0] * acts["a"][:, 1] - 1)
    assert_close((-n0 / 2)(acts, img, 0), -acts["a"][:, 0] / 2)
    assert_close((3 - n0)(acts, img, 0), 3 - acts["a"][:, 0])
    assert_close(fv.channel("a")(acts, img, 4), acts["a"][:, 4])
    assert fv.channel("a") == fv.channel("a") and hash(fv.channel("a")) == hash(fv.channel("a"))
    assert fv.channel("a") - 0.1 * fv.total_variation() == fv.channel("a") - 0.1 * fv.total_variation()
    assert fv.channel("a") != fv.channel("a", 1)
    assert fv.direction("a", [1.0, 2.0]) != fv.direction("a", [1.0, 3.0])
    assert "channel(a)" in repr(fv.channel("a") + fv.deepdream("a"))


def test_repeated_calls_do_not_retrace(tiny_convnet):
    kw = dict(units=2, steps=3, key=jax.random.key(0), progress=False, batch_size=2)
    fv.visualize(tiny_convnet, fv.channel("conv1"), **kw)
    with at_most_traces(0):
        fv.visualize(tiny_convnet, fv.channel("conv1"), **kw)
        fv.visualize(tiny_convnet, fv.channel("conv1"), **{**kw, "key": jax.random.key(9)})


def test_penalties_and_batch_terms():
    img = jnp.stack([jnp.zeros((3, 3, 1)), jnp.eye(3)[..., None]])
    assert_close(fv.total_variation()({}, img, 0), jnp.array([0.0, 8.0]))
    assert_close(fv.l1(0.0)({}, img, 0), jnp.array([0.0, 3.0]))
    assert_close(fv.l2(0.0, 0.0)({}, img, 0), jnp.array([0.0, np.sqrt(3.0)]))
    same = {"a": jnp.ones((3, 2, 2, 4))}
    assert_close(fv.diversity("a")(same, img, 0), -jnp.ones(3) / 3)      # identical Gram matrices: cos 1
    rng = np.random.default_rng(0)
    diff = {"a": jnp.asarray(rng.normal(size=(3, 2, 2, 4)))}
    assert float(fv.diversity("a")(diff, img, 0).sum()) > -1.0
    assert float(fv.alignment("a")(same, img, 0).sum()) == 0.0


@pytest.mark.parametrize("make", [fv.pixel, fv.fourier, fv.pyramid, fv.cppn])
def test_parameterizations_render_in_bounds_any_channel_count(make):
    for shape, bounds in (((12, 10, 1), (0.0, 1.0)), ((8, 8, 4), (-1.0, 255.0))):
        p = make(shape, bounds=bounds)

        @jax.jit
        def render_and_grad(key):
            q = jax.vmap(p.init)(jax.random.split(key, 2))
            return jax.vmap(p.render)(q), jax.grad(lambda q: jax.vmap(p.render)(q).sum())(q)

        img, g = render_and_grad(jax.random.key(0))
        assert img.shape == (2, *shape)
        assert float(img.min()) >= bounds[0] and float(img.max()) <= bounds[1]
        assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(g))


def test_fourier_spectrum_is_one_over_f():
    p = fv.fourier((64, 64, 1), output="clip", sd=1.0)
    imgs = jax.vmap(p._spatial)(jax.vmap(p.init)(jax.random.split(jax.random.key(0), 64)))[..., 0]
    power = (np.abs(np.fft.rfft2(np.asarray(imgs))) ** 2).mean(0)
    f = np.sqrt(np.fft.fftfreq(64)[:, None] ** 2 + np.fft.rfftfreq(64)[None] ** 2)
    band = lambda lo, hi: power[(f > lo) & (f < hi)].mean()  # noqa: E731
    assert band(0.04, 0.06) / band(0.2, 0.3) == pytest.approx((0.25 / 0.05) ** 2, rel=0.35)


def test_color_matrix_decorrelates():
    rng = np.random.default_rng(0)
    mix = np.array([[1.0, 0.8, 0.6], [0.0, 0.6, 0.5], [0.0, 0.0, 0.4]])
    data = (rng.normal(size=(20000, 3)) @ mix).reshape(100, 10, 20, 3)
    m = fv.color_matrix(data)
    cov = np.cov(data.reshape(-1, 3), rowvar=False)
    assert_close(m, m.T, atol=1e-12)                                 # a symmetric square root
    scale = np.trace(cov) / np.trace(m @ m.T)
    assert_close(m @ m.T * scale, cov, rtol=1e-6, atol=1e-9)
    assert np.linalg.norm(m, axis=0).max() == pytest.approx(1.0)
    assert_close(fv.color_matrix(data[..., :1]), np.ones((1, 1)))


def test_transforms_are_drawn_per_image():
    img = jnp.broadcast_to(jnp.arange(16.0)[None, :, None], (16, 16, 1)) / 16
    keys = jax.random.split(jax.random.key(0), 32)
    tf = (fv.Pad(2), fv.Jitter(4))
    out = jax.vmap(lambda k: fv.apply_transforms(tf, k, img))(keys)
    assert out.shape == (32, 16, 16, 1)
    assert len({float(o[8, 8, 0]) for o in out}) > 1                   # different shifts within one batch
    same = fv.apply_transforms((fv.RandomScale((1.0,)), fv.RandomRotate((0.0,))), keys[0], img)
    assert_close(same, img, atol=1e-6)
    rot = fv.apply_transforms((fv.RandomRotate((90.0,)),), keys[0], img)
    assert_close(rot[:, :, 0], jnp.rot90(img[:, :, 0], k=-1), atol=1e-5)  # content turns, size kept


def test_standard_transforms_scale_with_image_size():
    assert fv.standard_transforms(128)[0] == fv.Pad(16) and fv.standard_transforms(128)[1] == fv.Jitter(16)
    assert fv.standard_transforms(32)[0] == fv.Pad(4) and fv.standard_transforms(32)[-1] == fv.Jitter(2)


def test_relu_override_revives_dead_units(tiny_convnet):
    """With every pre-activation negative at the start, the plain gradient is zero; the override moves it."""
    obj = fv.neuron("fc1", 0)
    kw = dict(units=[0], steps=5, transforms=(), param=fv.pixel(tiny_convnet, sd=0.0), key=jax.random.key(0),
              progress=False)
    variables = tiny_convnet.variables
    params = jax.tree_util.tree_map(lambda a: a, variables["params"])
    params["fc1"]["dense"]["bias"] = params["fc1"]["dense"]["bias"].at[0].set(-100.0)
    dead = tiny_convnet.replace(variables={**variables, "params": params})
    off = fv.visualize(dead, obj, relu_override_steps=0, **kw).images.values
    on = fv.visualize(dead, obj, relu_override_steps=5, **kw).images.values
    assert np.allclose(off, 0.5) and not np.allclose(on, 0.5)


def test_bad_input_errors(tiny_convnet):
    kw = dict(steps=2, key=jax.random.key(0), progress=False)
    with pytest.raises(el.SiteError, match="valid: conv1, conv2"):
        fv.visualize(tiny_convnet, fv.channel("conv9"), **kw)
    with pytest.raises(ArgumentError, match=r"units \(channels of 'conv2', which has 6\) must be indices in \[0, 6\)"):
        fv.visualize(tiny_convnet, fv.channel("conv2"), units=[2, 6], **kw)
    with pytest.raises(ValueError, match=r"shape \(16, 16, 3\).*takes \(8, 8, 3\)"):
        fv.visualize(tiny_convnet, fv.channel("conv2"), param=fv.pixel((16, 16, 3)), **kw)
    with pytest.raises(ValueError, match=r"shape \(8, 8, 1\).*takes \(8, 8, 3\)"):
        fv.visualize(tiny_convnet, fv.channel("conv2"), param=fv.pixel((8, 8, 1)), **kw)
    with pytest.raises(ArgumentError, match=r"kind \(the parameterization\) must be one of"):
        fv.ImageParam("fft", (8, 8, 3))
    with pytest.raises(ArgumentError, match=r"transforms\[1\] = Jitter\(12\) would crop a 12x12 px image"):
        fv.visualize(tiny_convnet, fv.channel("conv2"), transforms=[fv.Pad(2), fv.Jitter(12)], **kw)
    with pytest.raises(ArgumentError, match="no colour variance"):
        fv.color_matrix(np.full((2, 4, 4, 3), 0.5))
    with pytest.raises(ArgumentError, match="color must be a C x C colour matrix"):
        fv.pixel(tiny_convnet, color="rgb")
    with pytest.raises(ArgumentError, match=r"subject_or_shape must be a subject or an image shape \(H, W, C\)"):
        fv.default_param("x")
    boom = fv.Objective(lambda a, img, u: jnp.log(a["conv2"].mean(axis=(1, 2, 3)) - 1e9), "log(-1e9)",
                        frozenset(["conv2"]))
    with pytest.raises(fv.OptimizationError, match="NaN/inf at step 0 for unit 0"):
        fv.visualize(tiny_convnet, boom, units=[0], **kw)


def test_512_units_in_one_call_chunked_by_memory():
    from conftest import tiny
    from insilico.models import MLP

    subject = tiny(MLP(widths=(512,), num_classes=3), shape=(6, 6, 1))
    r = fv.visualize(subject, fv.neuron("fc1"), units=512, steps=4, transforms=(), param=fv.pixel(subject),
                     key=jax.random.key(0), memory_budget=2e6, progress=False)
    assert r.images.shape == (512, 1, 1, 6, 6, 1)
    assert r.attrs["n_chunks"] > 1 and r.attrs["batch_size"] < 512      # the budget forced chunking
    # each unit's image raises that unit: compare the first step's objective with the final score
    assert (r.score.values[:, 0] > r.objective.values[:, 0, 0]).all()


def test_host_loop_and_scan_agree(tiny_convnet):
    kw = dict(units=[0, 3, 5], n_seeds=2, steps=3, snapshots=(0, 1, 3), key=jax.random.key(7), progress=False)
    host = fv.visualize(tiny_convnet, fv.channel("conv2"), loop="host", batch_size=2, **kw)
    scan = fv.visualize(tiny_convnet, fv.channel("conv2"), loop="scan", **kw)
    assert host.attrs["n_chunks"] == 2 and host.attrs["loop"] == "host" and scan.attrs["loop"] == "scan"
    assert_close(host.images.values, scan.images.values, atol=1e-5)
    assert_close(host.objective.values, scan.objective.values, rtol=1e-4, atol=1e-5)
    assert_close(host.score.values, scan.score.values, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="loop must be"):
        fv.visualize(tiny_convnet, fv.channel("conv2"), loop="python", **kw)


def test_units_in_two_chunks_equal_one_chunk(tiny_convnet):
    """The engine joins the chunks along the unit axis: images, objective traces and scores as in one chunk."""
    kw = dict(units=[0, 2, 3, 5], n_seeds=2, steps=4, snapshots=(0, 4), key=jax.random.key(11), progress=False)
    one = fv.visualize(tiny_convnet, fv.channel("conv2"), batch_size=4, **kw)
    two = fv.visualize(tiny_convnet, fv.channel("conv2"), batch_size=2, **kw)
    assert (one.attrs["n_chunks"], two.attrs["n_chunks"], two.attrs["batch_size"]) == (1, 2, 2)
    assert list(two.unit.values) == [0, 2, 3, 5] and two.objective.shape == (4, 4, 2)
    assert_close(two.images.values, one.images.values, atol=1e-5)
    assert_close(two.objective.values, one.objective.values, rtol=1e-4, atol=1e-5)
    assert_close(two.score.values, one.score.values, rtol=1e-4, atol=1e-5)


def test_optimization_error_names_the_unit_in_a_later_chunk(tiny_convnet):
    nan_for_3 = fv.Objective(lambda a, img, u: a["conv2"].mean(axis=(1, 2, 3)) + jnp.where(u == 3, jnp.nan, 0.0),
                             "nan for unit 3", frozenset(["conv2"]))
    with pytest.raises(fv.OptimizationError, match="NaN/inf at step 0 for unit 3;"):
        fv.visualize(tiny_convnet, nan_for_3, units=[0, 1, 3], batch_size=2, steps=2, key=jax.random.key(0),
                     progress=False)


def test_channel_neuron_and_direction_read_the_channel_axis_of_any_unit_shape():
    """A site with units (T, C) (a sequence): objectives average over (or centre on) every position axis and index
    the last (channel) axis — never a position."""
    a = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 4))           # (batch, T, C)
    for objective, expected in ((fv.channel("seq", 2), a.mean(1)[:, 2]), (fv.neuron("seq", 2), a[:, 2, 2]),
                                (fv.direction("seq", jnp.eye(4)[1]), a.mean(1)[:, 1])):
        np.testing.assert_allclose(objective.fn({"seq": a}, None, 0), expected, rtol=1e-6)


def test_a_new_learning_rate_compiles_nothing(tiny_convnet):
    kw = dict(units=2, steps=3, key=jax.random.key(0), progress=False, batch_size=2)
    slow = fv.visualize(tiny_convnet, fv.channel("conv1"), lr=0.01, **kw)
    with at_most_traces(0):
        fast = fv.visualize(tiny_convnet, fv.channel("conv1"), lr=0.2, **kw)
    assert not np.allclose(slow.images.values, fast.images.values)          # the new rate is used


def test_new_step_counts_unit_counts_and_override_steps_compile_nothing(tiny_convnet):
    """The step count (counted by the host loop), the snapshot steps (as many of them) and the redirected-ReLU
    steps are arguments of the compiled step, and unit counts run padded to a bucket (5 to 8 units: 8), the pads
    dropped: none of them traces the model again."""
    kw = dict(key=jax.random.key(0), progress=False, loop="host")
    five = fv.visualize(tiny_convnet, fv.channel("conv2"), units=[0, 1, 2, 3, 4], steps=4, snapshots=(1, 4), **kw)
    with at_most_traces(0):
        six = fv.visualize(tiny_convnet, fv.channel("conv2"), units=6, steps=7, lr=0.1, relu_override_steps=3,
                           snapshots=(0, 7), **kw)
        seven = fv.visualize(tiny_convnet, fv.channel("conv2"), units=[5, 3, 1, 0, 2, 4, 1], steps=9,
                             snapshots=(2,), **kw)
        eight = fv.visualize(tiny_convnet, fv.channel("conv2"), units=[4, 3, 2, 1, 0, 5, 5, 5], steps=4,
                             snapshots=(1, 4), **kw)
    assert [r.attrs["batch_size"] for r in (five, six, seven, eight)] == [8, 8, 8, 8]
    assert six.images.shape == (6, 2, 1, 8, 8, 3) and six.objective.shape == (6, 7, 1)
    assert seven.images.shape == (7, 1, 1, 8, 8, 3) and list(seven.step.values) == [2]
    assert list(seven.unit.values) == [5, 3, 1, 0, 2, 4, 1] and seven.objective.shape == (7, 9, 1)
    # the pads change nothing: each unit's images, trace and score as among other units, bit for bit
    for u in range(5):
        for name in ("images", "objective", "score"):
            np.testing.assert_array_equal(eight[name].isel(unit=4 - u).values, five[name].sel(unit=u).values)


def test_unit_counts_share_a_few_compiled_shapes():
    """Units run in chunks padded to 1, 2, 4, 8, 12, 16, 24, 32, 48, ... units (at most a third padding); a memory
    limit splits them into balanced chunks of a bucket size."""
    from insilico.probes.featurevis.render import _chunk_size

    assert [_chunk_size(n, 1024) for n in (1, 2, 3, 4, 5, 8, 9, 13, 17, 33, 49, 64, 65)] == \
        [1, 2, 4, 4, 8, 8, 12, 16, 24, 48, 64, 64, 96]
    assert _chunk_size(100, 64) == 64 and _chunk_size(130, 64) == 48 and _chunk_size(3, 2) == 2


def test_a_new_step_count_gives_the_images_of_a_fresh_call(tiny_convnet):
    """The step count is read by the host loop only: a call after one with another step count gives the images a
    call in a fresh compiled program gives, and the same as the scan (whose length is compiled)."""
    kw = dict(units=[1, 2], key=jax.random.key(4), progress=False)
    fv.visualize(tiny_convnet, fv.channel("conv1"), steps=9, loop="host", **kw)
    host = fv.visualize(tiny_convnet, fv.channel("conv1"), steps=5, snapshots=(0, 3, 5), loop="host", **kw)
    scan = fv.visualize(tiny_convnet, fv.channel("conv1"), steps=5, snapshots=(0, 3, 5), loop="scan", **kw)
    assert host.objective.shape == (2, 5, 1) and list(host.step.values) == [0, 3, 5]
    assert_close(host.images.values, scan.images.values, atol=1e-5)
    assert_close(host.objective.values, scan.objective.values, rtol=1e-4, atol=1e-5)


def test_batched_transforms_draw_and_compute_what_one_image_at_a_time_does():
    """apply_batch runs the built-in transforms on the whole batch (resampling by flat gathers) and vmaps any other
    transform: the same draws and numbers as apply_transforms image by image, and the resampling is
    jax.scipy.ndimage.map_coordinates's (bilinear, edges repeated). Tolerance: XLA may fuse the same arithmetic into
    multiply-adds differently in the two programs."""
    from insilico.probes.featurevis.transforms import _affine, apply_batch

    imgs = jax.random.uniform(jax.random.key(0), (6, 12, 10, 3))
    keys = jax.random.split(jax.random.key(1), 6)
    tf = fv.standard_transforms(12) + (lambda k, im, b: im[::-1] + jax.random.uniform(k),)
    batch = jax.jit(lambda k, x: apply_batch(tf, k, x))(keys, imgs)
    one = jax.jit(jax.vmap(lambda k, x: fv.apply_transforms(tf, k, x)))(keys, imgs)
    assert batch.shape == imgs.shape
    assert_close(batch, one, atol=1e-6)
    scale, angle = jnp.array([1.05, 0.95, 1.0]), jnp.array([0.0, 5.0, -3.0])
    ys, xs = jnp.meshgrid(jnp.arange(12) - 5.5, jnp.arange(10) - 4.5, indexing="ij")
    for n in range(3):
        a = jnp.deg2rad(angle[n])
        sy = (jnp.cos(a) * ys - jnp.sin(a) * xs) / scale[n] + 5.5
        sx = (jnp.sin(a) * ys + jnp.cos(a) * xs) / scale[n] + 4.5
        ref = jnp.stack([jax.scipy.ndimage.map_coordinates(imgs[n, ..., c], [sy, sx], order=1, mode="nearest")
                         for c in range(3)], -1)
        assert_close(_affine(imgs[:3], scale, angle)[n], ref, atol=1e-6)


def test_built_in_transforms_draw_every_value_evenly_from_one_draw_per_image():
    """The built-in transforms' numbers come from one uniform draw per image (apply_batch), turned into indices:
    every jitter offset and every scale and angle is drawn, about equally often."""
    from insilico.probes.featurevis.transforms import _choose, _index, _uniforms

    u = _uniforms(jax.random.split(jax.random.key(3), 4000), 2)
    assert u.shape == (4000, 2) and float(u.min()) >= 0 and float(u.max()) < 1
    counts = np.bincount(np.asarray(_index(u[:, 0], 5)), minlength=5)
    assert counts.sum() == 4000 and np.abs(counts / 800 - 1).max() < 0.1
    assert int(_index(jnp.float32(np.nextafter(np.float32(1), np.float32(0))), 5)) == 4       # never out of range
    np.testing.assert_array_equal(_choose(jnp.array([0.0, 0.39, 0.41, 0.99]), (1.0, 2.0, 3.0, 4.0, 5.0)),
                                  [1.0, 2.0, 3.0, 5.0])
    img = jnp.arange(100.0).reshape(10, 10, 1)                  # the pixel at (0, 0) of a crop names its offset
    keys = jax.random.split(jax.random.key(4), 300)
    crops = jax.vmap(lambda k: fv.Jitter(3)(k, img, (0.0, 100.0)))(keys)
    assert crops.shape == (300, 7, 7, 1)
    assert {(int(v) // 10, int(v) % 10) for v in crops[:, 0, 0, 0]} == {(a, b) for a in range(4) for b in range(4)}


def test_random_affine_zooms_and_rotates_in_one_resampling():
    from insilico.probes.featurevis.transforms import _affine

    imgs = jax.random.uniform(jax.random.key(5), (4, 12, 10, 3))
    t = fv.RandomAffine((0.95, 1.05), (-5.0, 0.0, 5.0))
    u = jnp.array([[0.1, 0.1], [0.9, 0.5], [0.6, 0.9], [0.2, 0.5]])
    np.testing.assert_array_equal(t.apply(u, imgs, (0.0, 1.0)),
                                  _affine(imgs, jnp.array([0.95, 1.05, 1.05, 0.95]), jnp.array([-5.0, 0.0, 5.0, 0.0])))
    assert_close(fv.RandomAffine((1.0,), (0.0,))(jax.random.key(0), imgs[0], (0.0, 1.0)), imgs[0], atol=1e-6)
    assert fv.standard_transforms(32)[2] == fv.RandomAffine((1.0, 0.975, 1.025, 0.95, 1.05),
                                                            tuple(float(a) for a in range(-5, 6)))
    with pytest.raises(ArgumentError, match="scales must be zoom factors > 0"):
        fv.RandomAffine((0.0,), (1.0,))


def test_the_written_out_natural_colour_matrix_is_that_of_the_photos():
    from insilico.data.stimuli import PHOTOS, _resized_photos
    from insilico.probes.featurevis.param import NATURAL_RGB, _natural_color

    np.testing.assert_allclose(fv.color_matrix(_resized_photos(64, 3, PHOTOS)), NATURAL_RGB, rtol=1e-9, atol=1e-12)
    assert _natural_color(3) is NATURAL_RGB
    assert _natural_color(2).shape == (2, 2)                         # other channel counts: from the photos


def test_apply_batch_hands_out_one_draw_per_image_in_order():
    """The built-in transforms' numbers are one uniform draw per image from its key folded with the number of
    transforms, handed out in order (here two jitters: columns 0-1, then 2-3), and a crop is the offset drawn."""
    from insilico.probes.featurevis.transforms import _index, _uniforms, apply_batch

    imgs = jax.random.uniform(jax.random.key(2), (5, 12, 12, 2))
    keys = jax.random.split(jax.random.key(8), 5)
    tf = (fv.Jitter(3), fv.Jitter(2))
    u = _uniforms(jax.vmap(jax.random.fold_in, (0, None))(keys, len(tf)), 4)
    first, second = np.asarray(_index(u[:, :2], 4)), np.asarray(_index(u[:, 2:], 3))
    want = np.stack([np.asarray(im)[a:a + 9, b:b + 9][c:c + 7, d:d + 7]
                     for im, (a, b), (c, d) in zip(imgs, first, second)])
    got = apply_batch(tf, keys, imgs, (0.0, 1.0))                   # then padded back to 12 x 12 in the middle
    np.testing.assert_array_equal(np.asarray(got)[:, 2:9, 2:9], want)
    assert (np.asarray(got)[:, :2] == 0.5).all()
    with pytest.raises(ValueError):
        __import__("insilico.probes.featurevis.param", fromlist=["NATURAL_RGB"]).NATURAL_RGB[0, 0] = 1.0


def test_a_first_visualization_traces_its_program_once(tiny_convnet):
    """On the host loop the chunk is sized from the traces of the run's own first calls, which the run reuses:
    the network is traced twice (the step's gradient, the final score), not again for a one-unit estimate. A budget
    below what all units need falls back to that estimate and chunks."""
    from insilico.engine.shrinking import first_call_bytes
    from insilico.probes.featurevis.render import Render

    kw = dict(steps=2, key=jax.random.key(3), loop="host", progress=False, relu_override_steps=0)
    with at_most_traces(2):
        one = fv.visualize(tiny_convnet, fv.channel("conv1"), units=[0, 1, 2], n_seeds=3, **kw)
    assert one.attrs["n_chunks"] == 1 and one.attrs["batch_size"] == 4          # 3 units in a bucket of 4
    program = Render(fv.channel("conv1"), fv.default_param(tiny_convnet), fv.standard_transforms(8), 3, False,
                     2, "host")
    shared = (tiny_convnet, jax.random.key(3), np.float32(0.05), np.asarray([2], np.int32), np.int32(0))
    need = first_call_bytes(program, (np.arange(4, dtype=np.int32),), shared, buckets=False)
    assert 0 < need == first_call_bytes(program, (np.arange(4, dtype=np.int32),), shared, buckets=False)
    small = fv.visualize(tiny_convnet, fv.channel("conv1"), units=[0, 1, 2], n_seeds=3, memory_budget=need / 2,
                         **kw)
    assert small.attrs["n_chunks"] > 1
    np.testing.assert_allclose(small.score.values, one.score.values, rtol=1e-5, atol=1e-6)


def test_a_final_score_that_is_not_finite_is_an_error_not_zero(tiny_convnet):
    """The loop sees the images before each update; the final, untransformed images come after the last one: a
    NaN there was reported as a score of 0."""
    brighter = fv.Objective(lambda a, img, u: jnp.where(img.mean(axis=(1, 2, 3)) > 0.6, jnp.nan,
                                                        img.mean(axis=(1, 2, 3)) + 0 * a["conv2"].mean()),
                            "mean pixel, NaN above 0.6", frozenset(["conv2"]))
    kw = dict(units=[0], steps=1, lr=1.0, transforms=(), param=fv.pixel(tiny_convnet), key=jax.random.key(0),
              progress=False)
    with pytest.raises(fv.OptimizationError, match="became NaN/inf on the final images for unit 0"):
        fv.visualize(tiny_convnet, brighter, **kw)
