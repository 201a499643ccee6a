"""Downloads that cannot hang, overflow or write through links, and data functions that name a bad argument.

One test per class of failure, parametrized over its cases. Network cases run against local servers on
127.0.0.1: a TLS server with a throw-away certificate (trusted by the fetch through its ``_ssl_context``), a
socket that accepts connections and never answers, and a plain HTTP server that would serve the files (and must
be refused).
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import http.server
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import jax
import numpy as np
import pytest

from insilico.data import Dataset, FetchError, fetch
from insilico.data.registry import DATASETS
from insilico.validation import ArgumentError

fetchmod = importlib.import_module("insilico.data.fetch")       # the module (insilico.data.fetch is the function)

NAME = "honest_ds"
FILES = {"a.bin": bytes(range(256)) * 16, "sub/b.bin": b"beta" * 250}           # 4096 and 1000 bytes
CAP = len(FILES["a.bin"])
GUIDANCE = re.compile(r"\b(check|try|use|remove|choose|pass|free|run the fetch again)\b")


def _one_line(err: BaseException, *names: str) -> str:
    """The error is a FetchError whose message is one line naming ``names`` and saying what to do."""
    assert isinstance(err, FetchError), f"{type(err).__name__}: {err}"
    msg = str(err)
    assert "\n" not in msg and msg.strip() == msg, msg
    for n in names:
        assert n in msg, (n, msg)
    assert GUIDANCE.search(msg), msg
    return msg


def _run(fn, deadline: float = 10.0):
    """Run ``fn`` in a thread: ``(exception or None, seconds)``; fails if it has not returned by ``deadline``."""
    out = {}

    def target():
        try:
            fn()
        except BaseException as e:          # noqa: BLE001 - handed to the test
            out["err"] = e

    t0 = time.monotonic()
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(deadline)
    assert not t.is_alive(), f"the fetch was still running after {deadline} s (it hangs)"
    return out.get("err"), time.monotonic() - t0


def _leftovers(folder):
    """Files under ``folder`` other than the lock file."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != ".fetch.lock") \
        if folder.exists() else []


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A file:// mirror of a two-file dataset registered (with sizes) as NAME."""
    root = tmp_path / "mirror"
    for rel, data in FILES.items():
        (root / NAME / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / NAME / rel).write_bytes(data)
    monkeypatch.setitem(DATASETS, NAME, {
        "description": "test", "citation": "none",
        "files": {rel: hashlib.sha256(d).hexdigest() for rel, d in FILES.items()},
        "sizes": {rel: len(d) for rel, d in FILES.items()}})
    return root / NAME


# ------------------------------------------------------------------------------------------------- local servers

class _Handler(http.server.BaseHTTPRequestHandler):
    """/stall/...: headers and 10 bytes, then nothing; /announce/...: Content-Length of a terabyte;
    /endless/...: bytes without end and without a length; /redirect/...: 302 to the plain HTTP server."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        kind = self.path.strip("/").split("/")[0]
        try:
            if kind == "redirect":
                self.send_response(302)
                self.send_header("Location", f"{self.server.http_url}/{self.path.split('/', 2)[2]}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            if kind == "stall":
                self.send_header("Content-Length", "100")
            elif kind == "announce":
                self.send_header("Content-Length", str(10 ** 12))
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            if kind == "stall":
                self.server.release.wait(20)
            elif kind in ("endless", "announce"):
                for _ in range(1000):                   # 64 MB at most, until the client hangs up
                    if self.server.release.is_set():
                        break
                    self.wfile.write(b"y" * 65536)
        except (OSError, ssl.SSLError):
            pass


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """``{"https": url, "http": url, "silent": url, "closed": url, "context": client SSL context, "http_root":
    folder served over plain HTTP}``."""
    d = tmp_path_factory.mktemp("servers")
    http_root = d / "http"
    http_root.mkdir()
    plain = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(http_root)))
    plain.RequestHandlerClass.log_message = lambda *a: None
    http_url = f"http://127.0.0.1:{plain.server_address[1]}"
    silent = socket.create_server(("127.0.0.1", 0), backlog=8)              # accepts (backlog), never answers
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()                                                          # nothing listens there
    out = {"http": http_url, "http_root": http_root, "silent": f"https://127.0.0.1:{silent.getsockname()[1]}",
           "closed": f"https://127.0.0.1:{closed_port}", "https": None, "context": None}
    threads = [threading.Thread(target=plain.serve_forever, daemon=True)]
    tls = None
    if shutil.which("openssl"):
        cert, key = d / "cert.pem", d / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert, key)
        tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        tls.daemon_threads = True
        tls.socket = server_ctx.wrap_socket(tls.socket, server_side=True)
        tls.release, tls.http_url = threading.Event(), http_url
        out["https"] = f"https://127.0.0.1:{tls.server_address[1]}"
        out["context"] = ssl.create_default_context(cafile=str(cert))
        threads.append(threading.Thread(target=tls.serve_forever, daemon=True))
    for t in threads:
        t.start()
    yield out
    if tls is not None:
        tls.release.set()
        tls.shutdown()
        tls.server_close()
    plain.shutdown()
    plain.server_close()
    silent.close()


@pytest.fixture
def https(servers, monkeypatch):
    """The local TLS server's base URL, its certificate trusted by the fetch."""
    if servers["https"] is None:
        pytest.skip("openssl is needed to make the test server's certificate")
    monkeypatch.setattr(fetchmod, "_ssl_context", lambda: servers["context"])
    return servers["https"]


# ------------------------------------------------------------------------------------------------ failure classes

@pytest.mark.parametrize("where", ["tls_handshake", "mid_body"])
def test_a_stalled_source_times_out(where, servers, mirror, tmp_path, request):
    source = servers["silent"] if where == "tls_handshake" else f"{request.getfixturevalue('https')}/stall"
    dest = tmp_path / "data"
    err, seconds = _run(lambda: fetch(NAME, dest, source=source, progress=False, timeout=0.5))
    msg = _one_line(err, f"{NAME}/a.bin", source)
    assert "timed out" in msg and seconds < 5
    assert _leftovers(dest / NAME) == []                                     # no partial file left behind


@pytest.mark.parametrize("how", ["file_larger_than_registry", "https_announces_too_much", "https_endless_stream"])
def test_a_source_larger_than_the_cap_is_refused(how, servers, mirror, tmp_path, monkeypatch, request):
    if how == "file_larger_than_registry":
        (mirror / "a.bin").write_bytes(FILES["a.bin"] + b"z" * 10_000)
        source = mirror.as_uri()
    else:
        source = f"{request.getfixturevalue('https')}/{'announce' if how == 'https_announces_too_much' else 'endless'}"
    written = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: written.append(real_write(fd, data)) or written[-1])
    dest = tmp_path / "data"
    err, seconds = _run(lambda: fetch(NAME, dest, source=source, progress=False, timeout=2))
    monkeypatch.undo()
    msg = _one_line(err, f"{NAME}/a.bin", f"{CAP} bytes")
    assert "more than" in msg and seconds < 8
    assert sum(written) <= CAP, f"wrote {sum(written)} bytes, the cap is {CAP}"
    assert _leftovers(dest / NAME) == []


@pytest.mark.parametrize("where", ["temporary_file", "this_threads_temporary_file", "destination", "lock_file"])
def test_a_symbolic_link_in_the_way_is_refused_and_its_target_untouched(where, mirror, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    folder = tmp_path / "data" / NAME
    folder.mkdir(parents=True)
    link = folder / {"temporary_file": "a.bin.part",
                     "this_threads_temporary_file": f"a.bin.{os.getpid()}-{threading.get_ident()}.part",
                     "destination": "a.bin", "lock_file": ".fetch.lock"}[where]
    link.symlink_to(victim)
    with pytest.raises(FetchError) as info:
        fetch(NAME, tmp_path / "data", source=mirror.as_uri(), progress=False)
    assert "symbolic link" in _one_line(info.value, str(link))
    assert victim.read_bytes() == b"precious" and link.is_symlink()


@pytest.mark.parametrize("scheme", ["http", "ftp", "sftp", "redirect_to_http"])
def test_a_source_that_is_not_https_or_file_is_refused(scheme, servers, mirror, tmp_path, request):
    served = servers["http_root"] / NAME                              # the plain HTTP server would serve the files
    if not served.exists():
        shutil.copytree(mirror, served)
    source = {"http": f"{servers['http']}/{NAME}", "ftp": "ftp://127.0.0.1/pub", "sftp": "sftp://127.0.0.1/pub",
              "redirect_to_http": None}[scheme] or f"{request.getfixturevalue('https')}/redirect"
    dest = tmp_path / "data"
    err, _ = _run(lambda: fetch(NAME, dest, source=source, progress=False, timeout=2))
    msg = _one_line(err, source if scheme != "redirect_to_http" else servers["http"])
    assert "https://" in msg
    assert _leftovers(dest / NAME) == []


@pytest.mark.parametrize("n", [2, 4])
def test_concurrent_fetches_of_one_dataset_end_with_one_verified_copy(n, mirror, tmp_path, monkeypatch):
    calls, real = [], fetchmod._download

    def slow(url, *args, **kwargs):                         # widen the window in which fetches could collide
        calls.append(url)
        time.sleep(0.15)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(fetchmod, "_download", slow)
    dest, start, errors = tmp_path / "data", threading.Barrier(n), []

    def one():
        start.wait()
        try:
            fetch(NAME, dest, source=mirror.as_uri(), progress=False)
        except BaseException as e:                          # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    assert sorted(calls) == sorted(f"{mirror.as_uri()}/{rel}" for rel in FILES)   # each file downloaded once
    assert {rel: (dest / NAME / rel).read_bytes() for rel in FILES} == FILES
    assert _leftovers(dest / NAME) == sorted(FILES)


@pytest.mark.parametrize("case", ["http_source", "unreachable_https", "checksum_mismatch"])
def test_the_cli_reports_a_failed_fetch_in_one_line(case, servers, mirror, tmp_path, monkeypatch, capsys):
    from insilico.cli import main

    source = {"http_source": f"{servers['http']}/{NAME}", "unreachable_https": servers["closed"],
              "checksum_mismatch": mirror.as_uri()}[case]
    if case == "checksum_mismatch":
        (mirror / "a.bin").write_bytes(bytes(CAP))                   # same size, other bytes
    with pytest.raises(SystemExit) as info:
        main(["data", "fetch", NAME, "--source", source, "--dest", str(tmp_path / "d")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if not re.fullmatch(rf"  {NAME}/\S+: [\d./]+ MB", line)]   # progress lines
    assert len(errors) == 1 and errors[0].startswith("error: ") and "Traceback" not in err, err
    assert NAME in errors[0] and GUIDANCE.search(errors[0]), errors[0]


def test_the_registry_records_a_sha256_and_a_size_for_every_file():
    for name, entry in DATASETS.items():
        assert set(entry["sizes"]) == set(entry["files"]), name
        for rel, sha in entry["files"].items():
            assert re.fullmatch(r"[0-9a-f]{64}", sha), (name, rel)
            assert isinstance(entry["sizes"][rel], int) and entry["sizes"][rel] > 0, (name, rel)


# ----------------------------------------------------------------------------------------------- bad arguments

def _cases():
    from insilico.data import allen_v1, cifar10, cowley2023, mnist_test, objects92, stimuli as st, tang2018
    from insilico.data.worlds import radial_amplitude, transform

    key = jax.random.key(0)
    ds = Dataset(np.full((8, 4, 4, 3), 0.5, np.float32), np.arange(8, dtype=np.int32) % 4, ("a", "b", "c", "d"), "t")
    nan = float("nan")
    return [
        ("fetch timeout 0", lambda: fetch("mnist_test", "unused", timeout=0), "timeout"),
        ("fetch timeout nan", lambda: fetch("mnist_test", "unused", timeout=nan), "timeout"),
        ("fetch max_bytes 0", lambda: fetch("mnist_test", "unused", max_bytes=0), "max_bytes"),
        ("cifar10 split", lambda: cifar10("val"), "split"),
        ("mnist split", lambda: mnist_test("validation"), "split"),
        ("objects92 size 0", lambda: objects92(size=0), "size"),
        ("objects92 channels 2", lambda: objects92(channels=2), "channels"),
        ("allen split", lambda: allen_v1(split="val"), "split"),
        ("cowley session", lambda: cowley2023(session=190924), "session"),
        ("tang crop 0", lambda: tang2018(crop=0), "crop"),
        ("tang crop 2.5", lambda: tang2018(crop=2.5), "crop"),
        ("subset out of range", lambda: ds.subset([0, 8]), "index"),
        ("subset negative", lambda: ds.subset(-1), "index"),
        ("subset non-integer", lambda: ds.subset([0.5]), "index"),
        ("subset mask length", lambda: ds.subset(np.ones(5, bool)), "index"),
        ("subset empty", lambda: ds.subset([]), "index"),
        ("grating size 0", lambda: st.grating(0, 0.0, 0.1), "size"),
        ("grating nan orientation", lambda: st.grating(8, nan, 0.1), "orientation"),
        ("grating negative sf", lambda: st.grating(8, 0.0, -0.1), "sf"),
        ("grating nan phase", lambda: st.grating(8, 0.0, 0.1, phase=nan), "phase"),
        ("grating contrast 1.5", lambda: st.grating(8, 0.0, 0.1, contrast=1.5), "contrast"),
        ("grating contrast array", lambda: st.grating(8, [0.0, 45.0], 0.1, contrast=[0.5, -0.1]), "contrast"),
        ("grating channels 0", lambda: st.grating(8, 0.0, 0.1, channels=0), "channels"),
        ("gabor sigma 0", lambda: st.gabor(8, 0.0, 0.1, sigma=0.0), "sigma"),
        ("gabor center", lambda: st.gabor(8, 0.0, 0.1, center=(0.0,)), "center"),
        ("grating_set no orientations", lambda: st.grating_set(8, [], [0.1]), "orientations"),
        ("grating_set contrast 2", lambda: st.grating_set(8, [0.0], [0.1], contrasts=[2.0]), "contrasts"),
        ("white_noise n 0", lambda: st.white_noise(key, 0, (4, 4, 1)), "n"),
        ("white_noise no key", lambda: st.white_noise(None, 2, (4, 4, 1)), "key"),
        ("white_noise shape", lambda: st.white_noise(key, 2, (4, 0, 1)), "shape[1]"),
        ("white_noise std", lambda: st.white_noise(key, 2, (4, 4, 1), std=-1.0), "std"),
        ("pink_noise shape", lambda: st.pink_noise(key, 2, (4, 4)), "shape"),
        ("pink_noise exponent", lambda: st.pink_noise(key, 2, (4, 4, 1), exponent=nan), "exponent"),
        ("photos size 0", lambda: st.photos(0), "size"),
        ("photos unknown", lambda: st.photos(8, names=["dog"]), "names"),
        ("patches n 0", lambda: st.natural_patches(key, 0, 8), "n"),
        ("patches scale 0", lambda: st.natural_patches(key, 2, 8, scale=0), "scale"),
        ("patches too large", lambda: st.natural_patches(key, 2, 500, scale=4), "size * scale"),
        ("faces size 0", lambda: st.faces_and_nonfaces(0), "size"),
        ("transform blur nan", lambda: transform(ds, blur=nan), "blur"),
        ("transform no classes", lambda: transform(ds, classes=[]), "classes"),
        ("transform unknown class", lambda: transform(ds, classes=["zebra"]), "classes"),
        ("transform negative weight", lambda: transform(ds, class_weights={"a": -1.0}, key=key), "class_weights['a']"),
        ("transform nan weight", lambda: transform(ds, class_weights={"a": nan}, key=key), "class_weights['a']"),
        ("transform all weights 0", lambda: transform(ds, class_weights=dict.fromkeys("abcd", 0.0), key=key),
         "class_weights"),
        ("transform no key", lambda: transform(ds, class_weights={"a": 2.0}), "key"),
        ("transform bad key", lambda: transform(ds, class_weights={"a": 2.0}, key=5), "key"),
        ("radial_amplitude ndim", lambda: radial_amplitude(np.zeros((4, 4, 1))), "images"),
        ("radial_amplitude n_bins", lambda: radial_amplitude(np.random.rand(2, 8, 8, 1), n_bins=0), "n_bins"),
    ]


_CASES = _cases()


@pytest.mark.parametrize("call, argument", [c[1:] for c in _CASES], ids=[c[0] for c in _CASES])
def test_a_bad_argument_is_named(call, argument, tmp_path, monkeypatch):
    monkeypatch.setenv("INSILICO_DATA", str(tmp_path))        # a check that ran after reading data would fail here
    with pytest.raises(ArgumentError) as info:
        call()
    msg = str(info.value)
    assert msg.startswith(f"{argument} ") and "\n" not in msg, msg
