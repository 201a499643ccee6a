"""What a user of the command line sees: a model's sites listed, and every mistake answered in one line
``error: ...`` (exit 2) naming the problem and the fix, checked before anything is loaded or compiled; ``--debug``
shows the traceback instead. A few checks run the installed command in a subprocess; the rest call ``main``."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from insilico import zoo
from insilico.cli import main
from insilico.train.checkpoint import read_meta, save_checkpoint


def _run(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "insilico.cli", *argv], check=False, capture_output=True, text=True,
                          env=env, timeout=600)


def test_sites_of_the_resnet():
    r = _run("sites", "cifar_resnet")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("cifar_resnet: ResNet, input (32, 32, 3)")
    assert any("stage3/block1" in line and "(8, 8, 64)" in line and "4096 units" in line for line in lines)
    assert lines[-1].split()[:2] == ["logits", "(10,)"]


def test_unknown_site_is_one_line_listing_the_sites():
    r = _run("sweep", "cifar_convnet", "conv9")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        ("error: unknown site 'conv9' of cifar_convnet; valid: conv1, conv2, conv3, fc1, logits "
        "(`insilico sites cifar_convnet` lists their shapes)")]


def test_missing_data_directory_is_one_line_naming_the_fix():
    env = {k: v for k, v in os.environ.items() if k != "INSILICO_DATA"}
    r = _run("sweep", "cifar_convnet", "conv3", "--images", "cifar10-test", env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        ("error: --images cifar10-test needs cifar10_jpeg, but INSILICO_DATA is not set; set INSILICO_DATA to the "
        "data directory (see `insilico data list`)")]


def test_debug_shows_the_traceback():
    r = _run("--debug", "sweep", "cifar_convnet", "conv9")
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr and "CommandError: unknown site 'conv9'" in r.stderr


def test_debug_after_the_command_raises_in_process():
    from insilico.cli import CommandError

    with pytest.raises(CommandError, match="unknown site 'conv9' of cifar_convnet"):
        main(["sweep", "cifar_convnet", "conv9", "--debug"])


@pytest.fixture
def afile(tmp_path):
    path = tmp_path / "afile"
    path.write_text("not a directory")
    return path


@pytest.fixture
def nan_weights(tmp_path):
    """A valid checkpoint file of mnist_convnet whose weights hold a NaN."""
    shipped = zoo.WEIGHTS_DIR / "mnist_convnet.ckpt"
    variables = jax.tree.map(np.array, zoo.load("mnist_convnet").variables)
    variables["params"]["conv1"]["conv"]["kernel"][0, 0, 0, 0] = np.nan
    return save_checkpoint(tmp_path / "nan" / "mnist_convnet.ckpt", variables, read_meta(shipped))


MISTAKES = [   # argv (with {afile}, {tmp} and {nan} filled in), environment changes, the message
    (["sites", "vgg99"], {}, ("unknown zoo model 'vgg99'; available: cifar_convnet, cifar_resnet, mnist_convnet, "
                             "cifar_convnet_untrained")),
    (["sweep", "vgg99", "conv1"], {}, "unknown zoo model 'vgg99'; available:"),
    (["sites", "mnist_convnet", "--weights", "{tmp}"], {}, "--weights '{tmp}': no checkpoint at {tmp}/mnist_convnet.ckpt"),
    (["sites", "mnist_convnet", "--weights", "{nan}"], {}, "holds NaN or inf values (/params/conv1/conv/kernel: 1 of"),
    (["sites", "mnist_convnet", "--weights", str(zoo.WEIGHTS_DIR / "cifar_convnet.ckpt")], {},
     "does not match the model"),
    (["sites", "mnist_convnet_untrained", "--weights", "{tmp}"], {}, "--weights is for trained models"),
    (["rf", "mnist_convnet", "conv9"], {}, "unknown site 'conv9' of mnist_convnet; valid: conv1, conv2, fc1, logits"),
    (["rf", "mnist_convnet", "conv1", "--units", "17"], {}, "--units 17: site 'conv1' has 16 units; valid: 1 to 16"),
    (["sweep", "mnist_convnet", "conv1", "--images", "cifar10-test"], {},
     "--images cifar10-test holds 32x32x3 images; mnist_convnet takes 28x28x1: use --images patches or mnist-heldout"),
    (["sweep", "mnist_convnet", "conv1", "--images", "mnist-heldout"], {"INSILICO_DATA": ""},
     ("--images mnist-heldout needs mnist_test, but INSILICO_DATA is not set; set INSILICO_DATA to the data "
     "directory (see `insilico data list`)")),
    (["attack", "mnist_convnet", "--images", "mnist-heldout"], {"INSILICO_DATA": "{tmp}"},
     "mnist_test not in INSILICO_DATA='{tmp}': fetch with `insilico data fetch mnist_test`"),
    (["rsa", "mnist_convnet"], {"INSILICO_DATA": "{afile}"}, ("insilico rsa needs kriegeskorte2008_92images, "
     "cichy2014_fmri_rdms_92images, but INSILICO_DATA='{afile}' is not a directory; set INSILICO_DATA")),
    (["train", "mnist_convnet"], {"INSILICO_DATA": None}, ("training mnist_convnet needs mnist_test, but INSILICO_DATA "
                                                          "is not set")),
    (["train", "vgg99"], {}, "unknown zoo recipe 'vgg99'; valid: cifar_convnet, cifar_resnet, mnist_convnet"),
    (["train", "mnist_convnet", "--out", str(zoo.WEIGHTS_DIR)], {},
     f"--out '{zoo.WEIGHTS_DIR}' is inside the installed insilico package"),
    (["sweep", "mnist_convnet", "conv1", "--store", "{afile}"], {}, "--store '{afile}' is a file, not a directory"),
    (["sweep", "mnist_convnet", "conv1", "--overwrite"], {}, ("--overwrite and --recompute-damaged act on a store: "
                                                             "give --store DIR")),
    (["sweep", "mnist_convnet", "conv1", "--out", "{afile}"], {}, "--out '{afile}' is a file, not a directory"),
    (["sweep", "mnist_convnet", "conv1", "--mode", "half"], {}, "argument --mode: invalid choice: 'half'"),
    (["controversial", "mnist_convnet", "cifar_convnet"], {}, ("controversial stimuli need two models of one input "
                                                              "space")),
    (["controversial", "mnist_convnet", "mnist_convnet"], {}, "two models against each other; got mnist_convnet "
                                                              "twice"),
    (["sweep", "mnist_convnet", "conv1", "--seed", "99999999999999999999999"], {}, "argument --seed: must be an "
                                                                                   "integer ≥ 0 and ≤ 4294967295"),
    (["rsa", "mnist_convnet", "--n-boot", "1"], {}, "--n-boot must be 0 (no intervals) or at least 2; got 1"),
    (["score", "mnist_convnet", "--input-size", "7"], {}, "--input-size 7 is the input of --state-dict weights"),
    (["score", "--state-dict", "{afile}", "--arch", "alexnet"], {}, "--state-dict '{afile}': not a readable PyTorch "
                                                                     "state dict"),
    (["demo", "--models", "vgg99"], {}, "unknown zoo model 'vgg99'"),
    (["data", "list", "imagenet"], {}, "unknown dataset 'imagenet'; valid: allen_boc_v1_natural_scenes_31px"),
    (["data", "fetch"], {}, "name the datasets to fetch"),
    (["data", "verify"], {"INSILICO_DATA": None}, ("insilico data verify checks the files under INSILICO_DATA, but "
                                                    "INSILICO_DATA is not set; set INSILICO_DATA to the data directory")),
    (["data", "fetch", "mnist_test", "--dest", "{afile}"], {}, "--dest '{afile}' is a file, not a directory"),
    (["data", "fetch", "mnist_test", "--source", "ftp://example.org", "--dest", "{tmp}"], {}, "ftp://"),
    ([], {}, "the following arguments are required: cmd; see `insilico --help`"),
]


@pytest.mark.parametrize("argv, env, message", MISTAKES, ids=[" ".join(m[0]) or "nothing" for m in MISTAKES])
def test_user_mistakes_are_one_line(argv, env, message, tmp_path, afile, nan_weights, monkeypatch, capsys):
    fill = lambda s: s.format(tmp=tmp_path, afile=afile, nan=nan_weights)
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, fill(value))
    with pytest.raises(SystemExit) as exit_:
        main([fill(a) for a in argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and fill(message) in err


def test_other_os_errors_are_one_line_with_exit_1(afile, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "mnist_convnet", "conv1", "--out", str(afile / "sub")])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.strip().splitlines() == [f"error: Not a directory: {afile / 'sub'}"]


def test_experiment_scripts_answer_a_user_mistake_in_one_line(tmp_path):
    """An experiment script run without its data: one line naming the fix, exit 2, no traceback."""
    env = {k: v for k, v in os.environ.items() if k != "INSILICO_DATA"}
    script = os.path.join(os.path.dirname(__file__), "..", "experiments", "train_zoo.py")
    r = subprocess.run([sys.executable, script, "--out", str(tmp_path), "cifar_convnet"], check=False,
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "INSILICO_DATA" in lines[0]


def test_run_script_raises_with_debug_and_passes_results(monkeypatch, capsys):
    from insilico.cli import run_script
    from insilico.validation import ArgumentError

    def bad():
        raise ArgumentError("n must be >= 1; got 0")

    monkeypatch.setattr(sys, "argv", ["script.py", "--n", "0"])
    with pytest.raises(SystemExit) as exit_:
        run_script(bad)
    assert exit_.value.code == 2 and capsys.readouterr().err == "error: n must be >= 1; got 0\n"
    monkeypatch.setattr(sys, "argv", ["script.py", "--debug"])
    with pytest.raises(ArgumentError):
        run_script(bad)
    assert sys.argv == ["script.py"]                 # --debug is the runner's, not the script's
    assert run_script(lambda x: x + 1, 1) == 2
    monkeypatch.setattr(sys, "argv", ["script.py"])
    with pytest.raises(ZeroDivisionError):           # not a user mistake: the traceback
        run_script(lambda: 1 / 0)
