import hashlib
import importlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from insilico.data import (COWLEY2023_SESSIONS, ChecksumError, DataNotFoundError, OBJECTS92_CATEGORIES, allen_v1,
                           cichy2014, cowley2023, cowley2023_images, fetch, goris2015, goris2015_trials,
                           kriegeskorte2008, read_nwb_units, tang2018)
from insilico.data.registry import DATASETS

IU = np.triu_indices(92, 1)
ANIMATE = ("human bodypart", "human face", "nonhuman bodypart", "nonhuman face")


def assert_rdms(x, lead_shape):
    """Square 92 x 92, exactly symmetric, zero-diagonal, finite, non-negative RDMs with the given leading dims."""
    v = np.asarray(x)
    assert x.dims[-2:] == ("stimulus_a", "stimulus_b") and v.shape == (*lead_shape, 92, 92)
    assert np.isfinite(v).all() and v.min() >= 0
    assert np.array_equal(v, np.swapaxes(v, -1, -2))
    assert not np.diagonal(v, axis1=-2, axis2=-1).any()


def assert_responses(r, shape, region):
    assert r.dims[:2] == ("presentation", "neuroid") and r.shape == shape
    assert r.stimulus_id.dims == ("presentation",) and r.neuroid_id.dims == ("neuroid",)
    assert r.region.dims == ("neuroid",) and set(r.region.values.tolist()) == {region}
    assert len(np.unique(r.neuroid_id)) == shape[1]


# ------------------------------------------------------------------------------------------------- RDM datasets

def test_kriegeskorte2008(data_dir):
    ds = kriegeskorte2008()
    assert_rdms(ds.human_it, (4, 2))
    assert_rdms(ds.human_it_group, ())
    assert_rdms(ds.monkey_it, ())
    assert_rdms(ds.model_rdms, (9,))
    assert_rdms(ds.judgements, (16,))
    assert ds.subject.values.tolist() == ["BE", "KO", "SN", "TI"] and ds.session.values.tolist() == [1, 2]
    assert ds.stimulus_a.values.tolist() == list(range(92)) == ds.stimulus_b.values.tolist()
    assert "HMAX_natImPatch" in ds.model.values and ds.judge.values.tolist() == list(range(1, 17))
    cat = ds.category_a.values
    assert np.array_equal(cat, ds.category_b.values)
    assert [int((cat == c).sum()) for c in OBJECTS92_CATEGORIES] == [12, 12, 12, 12, 23, 21]
    # the same order as objects92's labels
    from insilico.data import objects92
    assert np.array_equal(cat, np.asarray(OBJECTS92_CATEGORIES)[objects92().y])
    # the binary category models are exactly the category structure: the stimulus axes are aligned
    animate = np.isin(cat, ANIMATE)
    assert np.array_equal(ds.model_rdms.sel(model="animacy"), animate[:, None] != animate[None, :])
    # the group hIT RDM (stored condensed) is the mean of the 8 subject/session RDMs (stored square)
    mean = ds.human_it.mean(("subject", "session")).values
    np.testing.assert_allclose(ds.human_it_group.values, mean, atol=1e-6)
    assert spearmanr(ds.human_it_group.values[IU], mean[IU])[0] > 0.999
    # Kiani's monkey IT RDM is also the 'monkeyIT' model; man and monkey IT agree (Kriegeskorte et al. 2008)
    np.testing.assert_array_equal(ds.monkey_it, ds.model_rdms.sel(model="monkeyIT"))
    assert 0.35 < spearmanr(ds.monkey_it.values[IU], ds.human_it_group.values[IU])[0] < 0.55
    # faces are closer to each other than to inanimate objects in monkey IT
    face = np.isin(cat, ("human face", "nonhuman face"))
    m = ds.monkey_it.values
    assert m[np.ix_(face, face)][np.triu_indices(24, 1)].mean() < m[np.ix_(face, ~animate)].mean() - 0.1


def test_cichy2014(data_dir):
    pytest.importorskip("h5py")
    ds = cichy2014()
    assert_rdms(ds.evc, (15,))
    assert_rdms(ds.it, (15,))
    assert ds.subject.values.tolist() == list(range(1, 16))
    assert 1.5 < float(ds.evc.max()) < 1.6 and 1.6 < float(ds.it.max()) < 1.7
    # the same 92 images in Kriegeskorte's order: the mean IT RDM matches the group hIT RDM, a shuffle does not
    hit = kriegeskorte2008().human_it_group.values
    it = ds.it.mean("subject").values
    assert 0.5 < spearmanr(it[IU], hit[IU])[0] < 0.6
    perm = np.random.default_rng(0).permutation(92)
    assert abs(spearmanr(it[np.ix_(perm, perm)][IU], hit[IU])[0]) < 0.1
    assert spearmanr(ds.evc.mean("subject").values[IU], hit[IU])[0] < 0.3      # EVC is further from hIT than IT


# ---------------------------------------------------------------------------------------------------- Cowley V4

def test_cowley2023_sessions(data_dir):
    shapes = {"190923": (1200, 33), "201025": (1200, 89), "210225": (1200, 55), "210325": (640, 50)}
    assert list(COWLEY2023_SESSIONS) == list(shapes)
    for session, shape in shapes.items():
        r = cowley2023(session)
        assert_responses(r, shape, "V4")
        assert r.stimulus_id.values.tolist() == list(range(shape[0]))
        assert r.image_file.values[0] == "image0001.jpg" and r.neuroid_id.values[0] == f"{session}_00"
        assert set(r.session.values.tolist()) == {session}
        assert np.isfinite(r).all() and r.min() >= 0 and 0.5 < float(r.mean()) < 10
    assert cowley2023(190923).shape == (1200, 33)                               # an int session works too


def test_cowley2023_raw(data_dir):
    raw, avg = cowley2023("210325", raw=True), cowley2023("210325")
    assert raw.dims == ("presentation", "neuroid", "repetition") and raw.shape == (640, 50, 10)
    assert np.array_equal(raw.neuroid_id, avg.neuroid_id) and np.array_equal(raw.stimulus_id, avg.stimulus_id)
    n = raw.n_repeats.values
    assert n.min() == 6 and n.max() == 10 and np.median(n) == 8
    assert np.array_equal(np.isfinite(raw.values).sum(-1), np.repeat(n[:, None], 50, 1))   # NaN-padded at the end
    counts = raw.values[np.isfinite(raw.values)]
    assert np.array_equal(counts, np.round(counts)) and counts.min() == 0
    np.testing.assert_allclose(raw.mean("repetition", skipna=True), avg, rtol=1e-12)
    # split-half reliability across images (odd vs even repeats), median over neurons about 0.63
    a, b = np.nanmean(raw.values[..., 0::2], -1), np.nanmean(raw.values[..., 1::2], -1)
    assert 0.5 < np.median([np.corrcoef(a[:, k], b[:, k])[0, 1] for k in range(50)]) < 0.75


def test_cowley2023_bad_arguments():
    with pytest.raises(ValueError, match="session must be one of '190923', '201025', '210225', '210325'; got 'bad'"):
        cowley2023(session="bad")
    with pytest.raises(ValueError, match="session must be one of '190923'.*; got 'bad'"):
        cowley2023_images("bad")
    with pytest.raises(ValueError, match="raw repeats exist only for Cowley 2023 session.s. 210325"):
        cowley2023("190923", raw=True)


def test_cowley2023_images_refuse_an_image_number_given_twice(tmp_path):
    import io

    from PIL import Image

    folder = tmp_path / "cowley2023_v4" / "images"
    folder.mkdir(parents=True)
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, "JPEG")
    with zipfile.ZipFile(folder / "images_210325.zip", "w") as z:
        for name in ("image0001.jpg", "extra/image1.jpg", "image0002.jpg"):
            z.writestr(name, jpeg.getvalue())
    with pytest.raises(ValueError, match="image number 1 appears twice"):
        cowley2023_images("210325", root=tmp_path)


def test_cowley2023_images(data_dir):
    folder = Path(data_dir) / "cowley2023_v4" / "images"
    from PIL import Image

    for session, n, member in (("210325", 640, "image{:04d}.jpg"), ("190923", 1200, "images_190923/image{:04d}.jpg")):
        x = cowley2023_images(session)
        assert x.shape == (n, 112, 112, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
        assert len(cowley2023(session).stimulus_id) == n
        with zipfile.ZipFile(folder / f"images_{session}.zip") as z:             # row i is image{i + 1:04d}.jpg
            for i in (0, n - 1):
                ref = np.asarray(Image.open(z.open(member.format(i + 1))).convert("RGB"), np.float32) / 255
                np.testing.assert_array_equal(x[i], ref)
        colour = np.abs(x - x.mean(-1, keepdims=True)).mean()
        # 210325 shows grey-scale objects (Bashivan et al. 2019), the other sessions colour photographs
        assert colour < 0.01 if session == "210325" else colour > 0.02


# ------------------------------------------------------------------------------------------------------ Goris

def test_goris2015_trials(data_dir):
    t, summary = goris2015_trials(), goris2015()
    assert t.sizes == {"trial": 356, "spike": t.sizes["spike"]}
    units, counts = np.unique(t.unit, return_counts=True)
    assert dict(zip(units.tolist(), counts.tolist())) == {"m620r12": 83, "m620r35": 45, "m624l54": 52,
                                                          "m625r58": 57, "m625r62": 34, "m627r58": 85}
    assert np.array_equal(t.blank, t.sf_index == -1) and np.array_equal(t.blank, np.isnan(t.sf))
    assert np.array_equal(np.isfinite(t.spike_times).sum("spike"), t.spike_count)
    assert float(t.spike_times.min()) >= 0 and not (t.spike_times > t.duration).any()    # spikes within the trial
    assert np.isfinite(t.rate).all() and 0.99 < float(t.duration.min()) and float(t.duration.max()) < 1.01
    for u in summary.unit.values:
        tu = t.where(t.unit == u, drop=True)
        assert set(tu.area.values.tolist()) == {str(summary.area.sel(unit=u).values)}
        rates = tu.rate.groupby(tu.sf_index).mean()                               # trial means = stored summaries
        tested = np.flatnonzero(summary.n_passes.sel(unit=u).values > 0)
        np.testing.assert_allclose(rates.sel(sf_index=tested), summary.rate_mean.sel(unit=u)[tested], atol=1e-6)
        np.testing.assert_allclose(rates.sel(sf_index=-1), summary.spont_mean.sel(unit=u), atol=1e-6)
        np.testing.assert_allclose(tu.sf.where(~tu.blank, drop=True),
                                   summary.sf.sel(unit=u).values[tu.sf_index.where(~tu.blank, drop=True).astype(int)],
                                   rtol=1e-6)


# ------------------------------------------------------------------------------------------- Tang, Allen V1

def test_tang2018(data_dir):
    x, r = tang2018(crop=40)
    assert x.shape == (9500, 40, 40, 1) and x.dtype == np.float32
    assert set(np.unique(x).tolist()) == {0.0, 1.0} and 0.6 < x.mean() < 0.95      # black patterns on white
    assert_responses(r, (9500, 4), "V1")
    assert r.neuroid_id.values.tolist() == ["neu75", "neu255", "neu381", "neu504"]
    assert r.stimulus_id.values.tolist() == list(range(9500)) and np.isfinite(r).all()
    np.testing.assert_allclose(r.max("presentation"), [1.2168, 0.7084, 1.0940, 0.6790], atol=1e-4)
    # each neuron is selective: its 1% best patterns drive it far above its median response
    top = np.sort(r.values, 0)[-95:].mean(0)
    assert (top > np.median(r.values, 0) + 0.2).all()
    with pytest.raises(ValueError, match="crop must be an integer ≥ 1 and ≤ 160; got 161"):
        tang2018(crop=161)


def test_allen_v1(data_dir):
    train, test, both = allen_v1(split="train"), allen_v1(split="test"), allen_v1(split="all")
    for (x, r), n in ((train, 100), (test, 18), (both, 118)):
        assert x.shape == (n, 31, 31, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
        assert_responses(r, (n, 212), "V1")
        assert np.isfinite(r).all() and -60 < float(r.min()) and float(r.max()) < 270
    ids_train, ids_test = train.responses.stimulus_id.values, test.responses.stimulus_id.values
    assert ids_train[:5].tolist() == [116, 63, 13, 100, 78] and ids_test[:3].tolist() == [113, 81, 25]
    assert not set(ids_train) & set(ids_test) and sorted([*ids_train, *ids_test]) == list(range(118))
    assert both.responses.stimulus_id.values.tolist() == list(range(118))
    # the train/test rows are the same scenes and responses as the 'all' rows of their stimulus ids
    np.testing.assert_array_equal(train.images, both.images[ids_train])
    np.testing.assert_array_equal(test.responses, both.responses[ids_test])
    with pytest.raises(ValueError, match="split must be one of 'train', 'test', 'all'; got 'val'"):
        allen_v1(split="val")


@pytest.mark.parametrize("load, folder", [(kriegeskorte2008, "kriegeskorte2008_92images"),
                                          (cichy2014, "cichy2014_fmri_rdms_92images"),
                                          (lambda root: cowley2023("190923", root), "cowley2023_v4"),
                                          (lambda root: cowley2023_images("190923", root), "cowley2023_v4"),
                                          (goris2015_trials, "goris2015_v1v2_gratings"),
                                          (tang2018, "tang2018_v1_pattern_stimuli"),
                                          (allen_v1, "allen_boc_v1_natural_scenes_31px")])
def test_missing_data_names_folder_and_files(load, folder, tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError, match=f"dataset '{folder}' not found: .* lacks .*(mat|npy|zip|gz)"):
        load(root=tmp_path)
    monkeypatch.delenv("INSILICO_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match=f"dataset '{folder}' needs INSILICO_DATA"):
        load(root=None)


# ------------------------------------------------------------------------------------------------------- fetch

@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A file:// URL holding a fake two-file dataset registered as 'fake_ds' (files at <url>/<file>)."""
    src = tmp_path / "mirror" / "fake_ds"
    (src / "sub dir").mkdir(parents=True)
    files = {"a.npy": b"alpha" * 1000, "sub dir/b.bin": bytes(range(256)) * 3}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    entry = {"description": "fake", "files": {rel: hashlib.sha256(d).hexdigest() for rel, d in files.items()}}
    monkeypatch.setitem(DATASETS, "fake_ds", entry)
    return src.as_uri(), files, entry


def test_fetch_downloads_verifies_and_skips(mirror, tmp_path, monkeypatch, capsys):
    source, files, _ = mirror
    dest = tmp_path / "data"
    stale = dest / "fake_ds" / "a.npy.part"                                       # left by an interrupted run
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"garbage")
    folder = fetch("fake_ds", dest, source=source, progress=True)
    assert folder == dest / "fake_ds"
    assert {rel: (folder / rel).read_bytes() for rel in files} == files
    assert not list(folder.rglob("*.part"))
    assert "fake_ds/sub dir/b.bin" in capsys.readouterr().err
    # a second run downloads nothing: every file is present with the right hash
    module = importlib.import_module("insilico.data.fetch")
    with monkeypatch.context() as m:
        m.setattr(module, "_download", lambda *a, **k: pytest.fail("downloaded a file already present"))
        fetch("fake_ds", dest, source=source, progress=False)
    # a corrupted local file is downloaded again
    (folder / "a.npy").write_bytes(b"corrupt")
    fetch("fake_ds", dest, source=source, progress=False)
    assert (folder / "a.npy").read_bytes() == files["a.npy"]


def test_fetch_checksum_mismatch_deletes_the_download(mirror, tmp_path, monkeypatch):
    source, files, entry = mirror
    good = entry["files"]["sub dir/b.bin"]
    bad = {**entry, "files": {**entry["files"], "sub dir/b.bin": "0" * 64}}
    monkeypatch.setitem(DATASETS, "fake_ds", bad)
    with pytest.raises(ChecksumError, match=f"fake_ds/sub dir/b.bin: sha256 mismatch.*expected {'0' * 64}, "
                                            f"got {good}"):
        fetch("fake_ds", tmp_path / "data", source=source, progress=False)
    folder = tmp_path / "data" / "fake_ds"
    assert (folder / "a.npy").read_bytes() == files["a.npy"]                      # the good file was kept
    assert not (folder / "sub dir" / "b.bin").exists() and not (folder / "sub dir" / "b.bin.part").exists()


def test_fetch_source_and_errors(mirror, tmp_path, monkeypatch):
    source, files, entry = mirror
    with pytest.raises(ValueError, match="dataset 'fake_ds' has no public URL recorded"):
        fetch("fake_ds", tmp_path / "data")
    with pytest.raises(KeyError, match="unknown dataset 'nope'"):
        fetch("nope", tmp_path / "data", source=source)
    monkeypatch.setitem(DATASETS, "fake_ds", {**entry, "url": source})     # the registry's URL is the default
    folder = fetch("fake_ds", tmp_path / "data", progress=False)
    assert (folder / "sub dir" / "b.bin").read_bytes() == files["sub dir/b.bin"]
    monkeypatch.setitem(DATASETS, "fake_ds", {**entry, "files": {"../escape.bin": "0" * 64}})
    with pytest.raises(ValueError, match="outside the dataset folder"):
        fetch("fake_ds", tmp_path / "data", source=source)


# --------------------------------------------------------------------------------------------------------- NWB

def test_read_nwb_units(tmp_path):
    pynwb = pytest.importorskip("pynwb")
    from datetime import datetime, timezone

    from pynwb.epoch import TimeIntervals

    rng = np.random.default_rng(0)
    nwb = pynwb.NWBFile(session_description="test", identifier="t1",
                        session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    device = nwb.create_device(name="array")
    group = nwb.create_electrode_group(name="shank", description="d", location="V4", device=device)
    for loc in ("V4", "IT"):
        nwb.add_electrode(group=group, location=loc)
    nwb.add_unit_column(name="unit_name", description="name")
    spikes = [np.sort(rng.uniform(0, 10, n)) for n in (40, 15, 60)]
    for k, (s, el) in enumerate(zip(spikes, (0, 1, 1))):
        nwb.add_unit(spike_times=s, electrodes=[el], unit_name=f"u{k}")
    table = TimeIntervals(name="presentations", description="stimuli")
    table.add_column(name="stimulus_id", description="image index")
    starts = np.arange(0.0, 9.0, 1.5)
    for i, t0 in enumerate(starts):
        table.add_interval(start_time=t0, stop_time=t0 + 0.5, stimulus_id=10 + i)
    nwb.add_time_intervals(table)
    path = tmp_path / "units.nwb"
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)

    times = read_nwb_units(path)
    assert list(times) == ["u0", "u1", "u2"]
    for got, want in zip(times.values(), spikes):
        np.testing.assert_array_equal(got, want)
    counts = read_nwb_units(path, "presentations")
    assert counts.dims == ("presentation", "neuroid") and counts.shape == (6, 3)
    assert counts.stimulus_id.values.tolist() == list(range(10, 16))
    assert counts.region.values.tolist() == ["V4", "IT", "IT"]
    want = [[int(((s >= t0) & (s < t0 + 0.5)).sum()) for s in spikes] for t0 in starts]
    assert counts.values.tolist() == want and counts.values.sum() > 0
    by_array = read_nwb_units(path, np.stack([starts, starts + 0.5], 1))
    assert np.array_equal(by_array, counts) and by_array.stimulus_id.values.tolist() == list(range(6))
    with pytest.raises(KeyError, match="no time-intervals table 'trials'; tables: presentations"):
        read_nwb_units(path, "trials")
    from insilico.validation import ArgumentError

    assert read_nwb_units(path, "presentations", stimulus_column="stimulus_id").equals(counts)
    with pytest.raises(ArgumentError, match="stimulus_column 'stimulusid' is not a column of 'presentations'"):
        read_nwb_units(path, "presentations", stimulus_column="stimulusid")    # was 0..5, silently
    with pytest.raises(ArgumentError, match="stimulus_column names a column of an intervals table"):
        read_nwb_units(path, np.stack([starts, starts + 0.5], 1), stimulus_column="stimulus_id")


def test_cli_data_fetch(mirror, tmp_path, capsys):
    from insilico.cli import main

    source, files, _ = mirror
    main(["data", "fetch", "fake_ds", "--source", source, "--dest", str(tmp_path / "d")])
    assert (tmp_path / "d" / "fake_ds" / "a.npy").read_bytes() == files["a.npy"]
    with pytest.raises(SystemExit):
        main(["data", "fetch", "fake_ds", "--dest", str(tmp_path / "d")])        # no URL recorded: a clear error
    assert "no public URL recorded" in capsys.readouterr().err


def test_objects92_region_rdms(data_dir):
    from insilico.data import objects92_region_rdms

    r = objects92_region_rdms(data_dir)
    assert {k: v.shape for k, v in r.items()} == {"human IT": (4, 92, 92), "monkey IT": (92, 92),
                                                  "EVC": (15, 92, 92), "IT": (15, 92, 92)}
    k = kriegeskorte2008(data_dir)
    assert np.allclose(r["human IT"].mean(0), k.human_it_group.values)          # the group RDM is their mean
