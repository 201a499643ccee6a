import subprocess
import sys

import pytest
import xarray as xr

from insilico.cli import main


def test_sites_command(capsys):
    main(["sites", "mnist_convnet"])
    out = capsys.readouterr().out
    assert "conv2" in out and "(14, 14, 32)" in out and "6272 units" in out


def test_unknown_model_exits_with_listing():
    r = subprocess.run([sys.executable, "-m", "insilico.cli", "sites", "vgg99"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown zoo model 'vgg99'; available:" in r.stderr


def test_data_verify(data_dir, capsys):
    main(["data", "verify", "mnist_test"])
    assert "all 2 files ok" in capsys.readouterr().out


def test_data_verify_detects_tampering(tmp_path, monkeypatch):
    folder = tmp_path / "mnist_test"
    folder.mkdir()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the labels")
    monkeypatch.setenv("INSILICO_DATA", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        main(["data", "verify", "mnist_test"])
    assert e.value.code == 1


def test_rsa_command(data_dir, tmp_path, capsys):
    main(["rsa", "mnist_convnet", "--n-boot", "0", "--method", "corr", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "noise ceilings: human IT" in out and (tmp_path / "rsa.png").exists()
    ds = xr.open_dataset(tmp_path / "rsa.nc")
    assert list(ds.region.values) == ["human IT", "monkey IT", "EVC", "IT"] and ds.score.sizes["site"] == 4


def test_sweep_command_resumes_from_store(tmp_path, capsys):
    store = tmp_path / "store"
    main(["sweep", "mnist_convnet", "conv2", "--n", "32", "--out", str(tmp_path), "--store", str(store)])
    first = xr.open_dataset(tmp_path / "sweep.nc").load()
    out = capsys.readouterr().out
    n = first.attrs["n_chunks"]
    assert first.sizes["unit"] == 32 and "most important units" in out
    assert f"reused 0 of {n} chunks from {store}; computed {n}" in out
    main(["sweep", "mnist_convnet", "conv2", "--n", "32", "--out", str(tmp_path), "--store", str(store)])
    again = xr.open_dataset(tmp_path / "sweep.nc").load()
    assert again.attrs["resumed_chunks"] == again.attrs["n_chunks"] == n >= 1
    assert (first.agreement.values == again.agreement.values).all()
    assert f"reused {n} of {n} chunks from {store}; computed 0" in capsys.readouterr().out
    (store / "chunk_00000.nc").unlink()                       # a lost chunk is computed again, the rest reused
    main(["sweep", "mnist_convnet", "conv2", "--n", "32", "--out", str(tmp_path), "--store", str(store)])
    assert f"reused {n - 1} of {n} chunks from {store}; computed 1" in capsys.readouterr().out
    assert (xr.open_dataset(tmp_path / "sweep.nc").agreement.values == first.agreement.values).all()
    with pytest.raises(SystemExit):          # other images in the same store: refused, not the old numbers
        main(["sweep", "mnist_convnet", "conv2", "--n", "16", "--out", str(tmp_path), "--store", str(store)])
    err = capsys.readouterr().err
    assert "images differ" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    main(["sweep", "mnist_convnet", "conv2", "--n", "16", "--out", str(tmp_path), "--store", str(store),
          "--overwrite"])
    fresh = xr.open_dataset(tmp_path / "sweep.nc")
    assert fresh.attrs["resumed_chunks"] == 0 and fresh.attrs["n_images"] == 16


def test_attack_and_controversial_commands(tmp_path, capsys):
    main(["attack", "mnist_convnet", "--eps", "0", "0.3", "--steps", "5", "--n", "16", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert "pgd" in text and "eps 0: 1.000" in text and "agreement with the clean predictions" in text
    pgd = xr.open_dataset(tmp_path / "pgd.nc")
    assert pgd.accuracy.values[0] == 1.0 and pgd.accuracy.values[1] < 1.0
    with pytest.raises(SystemExit) as stop:
        main(["controversial", "mnist_convnet", "nonexistent_model", "--out", str(tmp_path)])
    assert stop.value.code == 2 and "nonexistent_model" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["attack", "mnist_convnet", "--eps", "0", "nan"], "--eps: must be a number ≥ 0.0; got nan"),
    (["attack", "mnist_convnet", "--eps", "-0.1"], "--eps: must be a number ≥ 0.0; got -0.1"),
    (["sweep", "mnist_convnet", "conv1", "--n", "0"], "--n: must be an integer ≥ 1; got 0"),
    (["sweep", "mnist_convnet", "conv1", "--n", "2.5"], "--n: must be an integer; got '2.5'"),
    (["rf", "mnist_convnet", "conv1", "--steps", "0"], "--steps: must be an integer ≥ 1; got 0"),
    (["rsa", "mnist_convnet", "--n-boot", "-1"], "--n-boot: must be an integer ≥ 0; got -1"),
    (["controversial", "a", "b", "--seeds", "0"], "--seeds: must be an integer ≥ 1; got 0"),
    (["train", "mnist_convnet", "--epochs", "0"], "--epochs: must be an integer ≥ 1; got 0"),
    (["data", "fetch", "mnist_test", "--timeout", "0"], "--timeout: must be a number > 0.0; got 0.0"),
    (["sites", "mnist_convnet", "--weights", "/nonexistent/w.ckpt"],
     "no checkpoint at /nonexistent/w.ckpt; valid: a .ckpt file"),
])
def test_bad_options_are_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_more_images_than_the_test_set_holds_is_refused(data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "mnist_convnet", "conv1", "--images", "mnist-heldout", "--n", "5000", "--out", str(tmp_path)])
    assert "--n 5000 asks for more images than mnist-heldout holds (2000)" in capsys.readouterr().err
