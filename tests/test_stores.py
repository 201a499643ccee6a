"""Sweep stores know what made them: a rerun with any changed input is refused naming what differs, damaged chunks
and manifests are named (and recomputed when asked), overwrite starts over; lesion probes name bad arguments."""
import errno
import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from insilico.probes.lesion import ablation_curve, mask_sweep, single_unit_sweep, synapse_sweep
from insilico.sweep import SweepError, run_sweep
from insilico.validation import ArgumentError, InputError

WAY_OUT = r"overwrite=True \(CLI: --overwrite\)"


def metric(item, shared):
    return {"y": jnp.tanh(item * shared["w"]).sum() + shared["b"], "v": jnp.stack([item, item * shared["b"]])}


def other_metric(item, shared):
    return {"y": jnp.cos(item * shared["w"]).sum() + shared["b"], "v": jnp.stack([item, item * shared["b"]])}


def scaled(scale):
    def fn(item, shared):
        return {"y": scale * item * shared["b"]}
    return fn


ITEMS = jnp.linspace(0.1, 2.0, 12)
SHARED = {"w": jnp.linspace(-1.0, 2.0, 5), "b": jnp.float32(0.5), "k": jax.random.key(0)}


def sweep(store=None, fn=metric, items=ITEMS, shared=SHARED, **kwargs):
    return run_sweep(fn, items, shared, batch_size=2, chunk_size=4, store=store, progress=False, **kwargs)


@pytest.fixture(scope="module")
def fresh():
    return sweep()


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store"
    sweep(path, identity={"mode": "zero", "images": np.arange(20.0)})
    return path


# ------------------------------------------------------------------------------------ changed inputs are refused
CHANGES = {
    "items": (dict(items=ITEMS * 2), "items differ"),
    "shared array": (dict(shared={**SHARED, "w": SHARED["w"] + 1e-3}), r"shared\['w'\] differ"),
    "shared key": (dict(shared={**SHARED, "k": jax.random.key(1)}), r"shared\['k'\] differs"),
    "shared entry": (dict(shared={**SHARED, "extra": jnp.zeros(2)}), r"shared\['extra'\]: absent then, present now"),
    "function": (dict(fn=other_metric), "function: .*metric.* then, .*other_metric.* now"),
    "n": (dict(items=ITEMS[:8]), "n: 12 then, 8 now"),
    "tag": (dict(tag="b"), "tag: '' then, 'b' now"),
    "setting": (dict(identity={"mode": "mean", "images": np.arange(20.0)}), "mode: 'zero' then, 'mean' now"),
    "array setting": (dict(identity={"mode": "zero", "images": np.arange(20.0) + 1}), "images differ"),
    "new setting": (dict(identity={"mode": "zero", "images": np.arange(20.0), "seed": 3}),
                    "seed: not set then, 3 now"),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_changed_sweep_is_refused_naming_what_differs(store, change):
    kwargs, what = CHANGES[change]
    kwargs = {"identity": {"mode": "zero", "images": np.arange(20.0)}, **kwargs}
    before = {f.name: f.read_bytes() for f in store.iterdir()}
    with pytest.raises(SweepError, match=f"holds another sweep: (.*; )?{what}.*{WAY_OUT}"):
        sweep(store, **kwargs)
    assert {f.name: f.read_bytes() for f in store.iterdir()} == before          # a refusal changes nothing


def test_closure_values_are_part_of_the_function(tmp_path):
    run_sweep(scaled(2.0), ITEMS, SHARED, batch_size=2, store=tmp_path, progress=False)
    with pytest.raises(SweepError, match=r"function: .*scale=2\.0.* then, .*scale=3\.0.* now"):
        run_sweep(scaled(3.0), ITEMS, SHARED, batch_size=2, store=tmp_path, progress=False)


class Settings:
    """A settings object of a user's own class (not a dataclass)."""

    def __init__(self, gain):
        self.gain = gain


def with_settings(settings):
    def fn(item, shared):
        return {"y": settings.gain * item * shared["b"]}
    return fn


def test_attributes_of_objects_in_the_closure_are_part_of_the_function(tmp_path):
    run_sweep(with_settings(Settings(2.0)), ITEMS, SHARED, batch_size=2, store=tmp_path, progress=False)
    again = run_sweep(with_settings(Settings(2.0)), ITEMS, SHARED, batch_size=2, store=tmp_path, progress=False)
    assert again.attrs["resumed_chunks"] == 1                                   # another object, the same settings
    with pytest.raises(SweepError, match=r"function: .*Settings\(gain=2\.0\).* then, .*Settings\(gain=3\.0\).* now"):
        run_sweep(with_settings(Settings(3.0)), ITEMS, SHARED, batch_size=2, store=tmp_path, progress=False)


def with_loss(loss):
    def fn(item, shared):
        return {"y": loss(item * shared["b"])}
    return fn


def test_the_code_of_functions_in_the_closure_is_part_of_the_function(tmp_path):
    """Two lambdas of one name with other bodies (a user's loss edited between runs) are other functions."""
    run_sweep(with_loss(lambda v: v * 2.0), ITEMS, SHARED, batch_size=2, store=tmp_path, progress=False)
    with pytest.raises(SweepError, match=r"function: .*<lambda>\(code=\w+\)\)' then, .*<lambda>\(code=\w+\)\)' now"):
        run_sweep(with_loss(lambda v: -v * 2.0), ITEMS, SHARED, batch_size=2, store=tmp_path, progress=False)


def test_overwrite_starts_over_and_keeps_other_files(tmp_path, fresh):
    store = tmp_path / "s"
    sweep(store, items=jnp.linspace(0.0, 1.0, 20))                              # 5 chunks
    (store / "notes.txt").write_text("mine")
    (store / "chunk_00009.nc.tmp").write_bytes(b"partial")
    (store / "chunk_00008.nc.4242-0a1b2c3d.tmp").write_bytes(b"partial")                 # one writer's own
    (store / "manifest.json.4242-0a1b2c3d.tmp").write_bytes(b"partial")
    ds = sweep(store, overwrite=True)                                          # 3 chunks of another sweep
    assert ds.attrs["resumed_chunks"] == 0
    np.testing.assert_array_equal(ds.y.values, fresh.y.values)
    assert sorted(f.name for f in store.iterdir()) == ["chunk_00000.nc", "chunk_00001.nc", "chunk_00002.nc",
                                                        "manifest.json", "notes.txt"]
    assert (store / "notes.txt").read_text() == "mine"
    assert sweep(store).attrs["resumed_chunks"] == 3


def test_full_disk_leaves_no_partial_chunk_and_resumes(tmp_path, fresh, monkeypatch):
    store = tmp_path / "s"
    write = xr.Dataset.to_netcdf

    def disk_fills_at_chunk_2(self, path, *args, **kwargs):
        if Path(path).name.startswith("chunk_00002.nc.") and Path(path).name.endswith(".tmp"):
            Path(path).write_bytes(b"CDF\x01 half a file")
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, path, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", disk_fills_at_chunk_2)
    with pytest.raises(OSError, match="No space left"):
        sweep(store)
    assert sorted(f.name for f in store.iterdir()) == ["chunk_00000.nc", "chunk_00001.nc", "manifest.json"]
    monkeypatch.undo()
    ds = sweep(store)
    assert ds.attrs["resumed_chunks"] == 2
    np.testing.assert_array_equal(ds.y.values, fresh.y.values)


# -------------------------------------------------------------------------------- damaged chunks and manifests
def _flip_value(path, value):
    data = bytearray(path.read_bytes())
    at = bytes(data).find(np.array([value], ">f4").tobytes())            # NetCDF 3 is big-endian
    assert at > 0
    data[at + 1] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_coords(path):
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    ds.assign_coords(item=ds.item.values + 1).to_netcdf(path)


def _from_other_store(path):
    other = path.parent.parent / "other"
    sweep(other, shared={**SHARED, "b": jnp.float32(0.25)})
    shutil.copy(other / path.name, path)


DAMAGE = {
    "value bytes flipped": (lambda p, fresh: _flip_value(p, fresh.y.values[5]), "fails its checksum"),
    "header bytes flipped": (lambda p, fresh: p.write_bytes(b"XDF" + p.read_bytes()[3:]), "cannot be opened"),
    "truncated": (lambda p, fresh: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "cannot be opened"),
    "coordinates edited": (lambda p, fresh: _edit_coords(p), r"\(coordinates 5..8\), expected 4:8"),
    "chunk of another store": (lambda p, fresh: _from_other_store(p), "belongs to another sweep"),
    "chunk moved": (lambda p, fresh: shutil.copy(p.with_name("chunk_00000.nc"), p), "holds items 0:4"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_chunk_is_named_and_recomputed_on_request(tmp_path, fresh, damage):
    store = tmp_path / "s"
    sweep(store)
    hurt, why = DAMAGE[damage]
    hurt(store / "chunk_00001.nc", fresh)
    with pytest.raises(SweepError, match=f"chunk_00001.nc [^;]*{why}.*recompute_damaged=True.*{WAY_OUT}"):
        sweep(store)
    ds = sweep(store, recompute_damaged=True)
    assert ds.attrs["resumed_chunks"] == 2                                      # only the damaged chunk recomputed
    for k in fresh.data_vars:
        np.testing.assert_array_equal(ds[k].values, fresh[k].values)
    assert sweep(store).attrs["resumed_chunks"] == 3


MANIFESTS = {
    "truncated json": lambda text: text[: len(text) // 2],
    "not a manifest": lambda text: json.dumps({"hello": 1}),
    "binary garbage": lambda text: "\x00\xff\x13",
}


@pytest.mark.parametrize("damage", MANIFESTS, ids=list(MANIFESTS))
def test_damaged_manifest_is_named(tmp_path, fresh, damage):
    store = tmp_path / "s"
    sweep(store)
    manifest = store / "manifest.json"
    manifest.write_text(MANIFESTS[damage](manifest.read_text()))
    with pytest.raises(SweepError, match=f"manifest {manifest} is damaged.*{WAY_OUT}.*recompute_damaged=True"):
        sweep(store)
    ds = sweep(store, recompute_damaged=True)                 # chunks carry the fingerprint: all reused
    assert ds.attrs["resumed_chunks"] == 3
    np.testing.assert_array_equal(ds.y.values, fresh.y.values)
    assert json.loads(manifest.read_text())["fingerprint"]


def test_store_of_an_older_version_is_refused(tmp_path):
    store = tmp_path / "s"
    store.mkdir()
    (store / "manifest.json").write_text(json.dumps({"n": 12, "chunk_size": 4, "fingerprint": "0123abcd"}))
    with pytest.raises(SweepError, match=f"older version.*{WAY_OUT}"):
        sweep(store)


# ------------------------------------------------------------------------------------------ lesion-probe stores
@pytest.fixture(scope="module")
def lesion_store(tmp_path_factory, tiny_convnet):
    """A lesion store made by a call that tests/test_probes.py compiles as well (so its compilation is shared)."""
    images = jax.random.uniform(jax.random.PRNGKey(2), (6, 8, 8, 3))              # the ``images`` fixture
    base = dict(x=images, site="conv1", labels=None, mode="zero", units=None, key=None)
    store = tmp_path_factory.mktemp("lesion") / "store"
    run = dict(base)
    single_unit_sweep(tiny_convnet, run.pop("x"), run.pop("site"), store=store, batch_size=2, progress=False, **run)
    return store, base


def _bigger_weights(subject):
    return subject.replace(variables=jax.tree.map(lambda a: a * 1.5, subject.variables))


LESION_CHANGES = {
    "images": (dict(x="x+"), "images differ"),
    "labels and metrics": (dict(labels=jnp.arange(6) % 5),
                           r"labels: None then, \[0, 1, 2, 3, 4, 0\] now; metrics: \('agreement', 'logit_change'\) "
                           r"then, \('agreement', 'logit_change', 'accuracy', 'class_accuracy', 'loss'\) now"),
    "weights": (dict(subject=_bigger_weights), "weights differ"),
    "site": (dict(site="conv2"), r"sites: \('conv1',\) then, \('conv2',\) now"),
    "mode": (dict(mode="mean"), "mode: 'zero' then, 'mean' now"),
    "units": (dict(units=[1, 2]), r"units: \[0, 1, 2, 3\] then, \[1, 2\] now"),
    "key": (dict(key=jax.random.PRNGKey(1)), r"key: None then, \[0, 1\] now"),
    "noise_scale": (dict(noise_scale=2.0), "noise_scale: 1.0 then, 2.0 now"),
    "reference": (dict(reference="x"), "reference: None then, an array now"),
}


@pytest.mark.parametrize("change", LESION_CHANGES, ids=list(LESION_CHANGES))
def test_changed_lesion_sweep_is_refused_naming_what_differs(lesion_store, tiny_convnet, change):
    store, base = lesion_store
    kwargs, what = LESION_CHANGES[change]
    run = {**base, **kwargs}
    subject = run.pop("subject", lambda s: s)(tiny_convnet)
    for name in ("x", "reference"):
        if isinstance(run.get(name), str):
            run[name] = {"x": base["x"], "x+": base["x"] * 0.5}[run[name]]
    with pytest.raises(SweepError, match=f"holds another sweep: (.*; )?{what}.*{WAY_OUT}"):
        single_unit_sweep(subject, run.pop("x"), run.pop("site"), store=store, batch_size=2, progress=False, **run)


def test_changed_ablation_fractions_are_refused(tmp_path, tiny_convnet, images):
    orders = {"fixed": np.arange(6)}
    ablation_curve(tiny_convnet, images, "conv2", orders, fractions=[0.0, 1.0], store=tmp_path, batch_size=2,
                   progress=False)
    with pytest.raises(SweepError, match=rf"fractions: \[0.0, 1.0\] then, \[0.0, 0.5\] now.*{WAY_OUT}"):
        ablation_curve(tiny_convnet, images, "conv2", orders, fractions=[0.0, 0.5], store=tmp_path, batch_size=2,
                       progress=False)


# ------------------------------------------------------------------------------------- lesion-probe bad arguments
def _call(probe, subject, x, **kwargs):
    if probe == "mask":
        return mask_sweep(subject, x, "conv2", kwargs.pop("masks", jnp.eye(6)), progress=False, **kwargs)
    if probe == "unit":
        return single_unit_sweep(subject, x, "conv2", progress=False, **kwargs)
    if probe == "curve":
        return ablation_curve(subject, x, "conv2", kwargs.pop("orders", {"fixed": np.arange(6)}), progress=False,
                              **kwargs)
    return synapse_sweep(subject, x, "conv2/conv/kernel", kwargs.pop("masks", jnp.ones((2, 1, 1, 4, 6))),
                         progress=False, **kwargs)


BAD = {
    "mask is an index": ("mask", dict(masks=7 * jnp.eye(6)), r"masks must be a mask with values in \[0, 1\]"),
    "mask NaN": ("mask", dict(masks=jnp.eye(6).at[2, 2].set(jnp.nan)), "masks contains 1 NaN/inf"),
    "synapse mask NaN": ("synapse", dict(masks=jnp.full((2, 1, 1, 4, 6), jnp.nan)), "masks contains 48 NaN/inf"),
    "synapse mask negative": ("synapse", dict(masks=-jnp.ones((2, 1, 1, 4, 6))), r"masks must be a mask"),
    "units not integers": ("unit", dict(units=[0.5, 2]), r"units must be channel indices in \[0, 6\)"),
    "units out of range": ("unit", dict(units=[2, -1]), r"units must be channel indices in \[0, 6\).*-1"),
    "fraction above 1": ("curve", dict(fractions=[0.0, 1.5]), r"fractions\[1\] must be a number ≥ 0.0 and ≤ 1.0"),
    "fraction NaN": ("curve", dict(fractions=[np.nan]), "fractions contains 1 NaN/inf"),
    "order not a permutation": ("curve", dict(orders={"o": [0, 0, 1, 2, 3, 4]}), "order 'o' must be a permutation"),
    "noise_scale NaN": ("mask", dict(noise_scale=float("nan")), "noise_scale must be a number ≥ 0; got nan"),
    "noise_scale inf": ("unit", dict(noise_scale=float("inf"), mode="noise", key=jax.random.PRNGKey(0)),
                        "noise_scale must be a number ≥ 0; got inf"),
    "noise_scale negative": ("mask", dict(noise_scale=-1.0), "noise_scale must be a number ≥ 0; got -1.0"),
    "label out of class range": ("unit", dict(labels=jnp.arange(6)), r"labels must be class labels: .*\[0, 5\)"),
    "labels of wrong length": ("mask", dict(labels=jnp.zeros(5, int)), r"labels must hold one label per image \(6\)"),
    "labels not integers": ("synapse", dict(labels=jnp.full(6, 0.5)), "labels must be class labels"),
    "unknown mode": ("curve", dict(mode="bogus"), "unknown ablation mode 'bogus'; valid: zero, mean, noise"),
    "noise without key": ("mask", dict(mode="noise"), "needs a PRNG key"),
    "key not a key": ("unit", dict(key=3), "key must be a PRNG key"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_lesion_probe_names_bad_argument(tiny_convnet, images, case):
    probe, kwargs, message = BAD[case]
    with pytest.raises(ArgumentError, match=message):
        _call(probe, tiny_convnet, images, **kwargs)


@pytest.mark.parametrize("probe, arg", [("mask", "x"), ("unit", "x"), ("curve", "x"), ("synapse", "x"),
                                        ("mask", "reference"), ("unit", "reference")])
def test_lesion_probe_names_empty_images(tiny_convnet, images, probe, arg):
    with pytest.raises(InputError, match=f"{arg} is an empty batch"):
        if arg == "x":
            _call(probe, tiny_convnet, images[:0])
        else:
            _call(probe, tiny_convnet, images, mode="mean", reference=images[:0])


@pytest.mark.parametrize("arg", ["batch_size", "chunk_size"])
@pytest.mark.parametrize("value", [0, -2, 1.5])
def test_sweep_sizes_must_be_counts(arg, value):
    with pytest.raises(ArgumentError, match=f"{arg} must be an integer ≥ 1"):
        run_sweep(metric, ITEMS, SHARED, progress=False, **{"batch_size": 2, arg: value})
