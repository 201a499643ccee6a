"""Site × region mapping: a region built from one site's own responses is matched to that site."""
import jax
import matplotlib
import numpy as np
import pytest

from insilico.analysis import rsa
from insilico.probes import brain

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def images():
    return np.asarray(jax.random.uniform(jax.random.key(0), (40, 8, 8, 3)))


def test_rsa_by_site_finds_the_generating_site(tiny_convnet, images):
    feats = brain.record_sites(tiny_convnet, images)
    assert list(feats) == list(tiny_convnet.sites) and feats["conv2"].shape == (40, 4 * 4 * 6)
    rng = np.random.default_rng(0)

    def region(site, n_subj=4):
        base = rsa.upper(rsa.rdm(feats[site]))
        return rsa.square(np.stack([base + 0.3 * base.std() * rng.normal(size=base.shape) for _ in range(n_subj)]))

    regions = {"early": region("conv1"), "late": region("fc1")}
    ds = brain.rsa_by_site(tiny_convnet, images, regions, method="corr", n_boot=50, key=jax.random.key(1))
    assert ds.score.dims == ("site", "region") and ds.per_subject.shape == (4, 2, 4)
    assert ds.score.sel(region="early").idxmax().item() == "conv1"
    assert ds.score.sel(region="late").idxmax().item() == "fc1"
    assert (ds.ceiling_lower < ds.ceiling_upper).all()
    best = ds.score.sel(site="conv1", region="early")
    assert ds.ci_low.sel(site="conv1", region="early") < best < ds.ci_high.sel(site="conv1", region="early")
    # the per-subject scores are the comparisons of the site RDM with each subject
    ref = rsa.compare(rsa.rdm(feats["fc1"]), regions["late"], "corr")[0]
    assert np.allclose(ds.per_subject.sel(site="fc1", region="late"), ref)
    fig = brain.site_region_heatmap(ds)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match=r"region 'x': RDMs must be \(subjects, 40, 40\)"):
        brain.rsa_by_site(tiny_convnet, images, {"x": np.zeros((3, 10, 10))})
    with pytest.raises(ValueError, match=r"region 'y': RDMs must be \(subjects, 40, 40\) or .* got \(2, 2, 40, 40\)"):
        brain.rsa_by_site(tiny_convnet, images, {"y": np.stack([regions["early"][:2]] * 2)})   # sessions


def test_rsa_by_site_reports_a_constant_site(tiny_convnet, images):
    """One grey image repeated: every site responds identically, named in constant_sites (the comparison used
    to raise)."""
    grey = np.full((8, *images.shape[1:]), 0.5, np.float32)
    region = {"r": rsa.rdm(np.random.default_rng(0).normal(size=(8, 5)))}
    ds = brain.rsa_by_site(tiny_convnet, grey, region, sites=["conv1", "fc1"], method="spearman")
    assert np.isnan(ds.score.values).all() and "conv1" in ds.attrs["constant_sites"]


def test_encoding_by_site_finds_the_generating_site(tiny_convnet, images):
    feats = brain.record_sites(tiny_convnet, images, ["conv2", "logits"])
    rng = np.random.default_rng(1)
    live = feats["conv2"][:, feats["conv2"].std(0) > 0]
    neurons = live @ rng.normal(size=(live.shape[1], 5))
    neurons += 0.2 * neurons.std(0) * rng.normal(size=neurons.shape)
    ds = brain.encoding_by_site(tiny_convnet, images, {"V": neurons}, sites=["conv2", "logits"], n_splits=3,
                                ceilings={"V": np.full(5, 0.9)}, key=jax.random.key(2))
    assert ds.raw.sel(region="V").idxmax().item() == "conv2" and float(ds.raw.sel(site="conv2", region="V")) > 0.5
    # normalized by √ceiling: a model equal to the true mean response scores 1; the formula is stated
    assert np.allclose(ds.normalized, ds.raw / np.sqrt(0.9)) and "sqrt" in ds.attrs["normalization"]
