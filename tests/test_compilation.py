"""The persistent compilation cache: on by default under INSILICO_CACHE, the user's own choice respected, off on
request; a second process reads the programs the first one compiled."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import json, os, sys
    import insilico
    imported_jax = "jax" in sys.modules
    import jax, jax.numpy as jnp
    from insilico import compilation
    jax.jit(lambda x: jnp.tanh(x) @ x.T + float(sys.argv[1]))(jnp.ones((8, 8))).block_until_ready()
    print(json.dumps({"imported_jax": imported_jax, "dir": jax.config.jax_compilation_cache_dir,
                      "max": jax.config.jax_compilation_cache_max_size, "path": compilation.path()}))
""")


def run(tmp_path, *, value="1.0", **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT",
                                                                   "INSILICO_COMPILATION"))}
    out = subprocess.run([sys.executable, "-c", PROBE, value], capture_output=True, text=True, timeout=300,
                         env={**base, "INSILICO_CACHE": str(tmp_path), "JAX_PLATFORMS": "cpu", **env})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def entries(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def test_on_by_default_under_insilico_cache(tmp_path):
    got = run(tmp_path)
    assert not got["imported_jax"]                       # import insilico alone does not import JAX
    assert got["dir"] == str(tmp_path / "xla") == got["path"] and got["max"] == 4 * 1024 ** 3
    first = entries(tmp_path / "xla")
    assert first, "the compiled program was not stored"
    run(tmp_path)                                        # the same program in a new process: read, not added
    assert entries(tmp_path / "xla") == first
    run(tmp_path, value="2.0")                           # another program: one more entry
    assert len(entries(tmp_path / "xla")) > len(first)


@pytest.mark.parametrize("off", ["0", "off", "false"])
def test_off_on_request(tmp_path, off):
    got = run(tmp_path, INSILICO_COMPILATION_CACHE=off)
    assert got["dir"] is None and not entries(tmp_path / "xla")


def test_a_cache_the_user_chose_is_kept(tmp_path):
    mine = tmp_path / "mine"
    got = run(tmp_path, JAX_COMPILATION_CACHE_DIR=str(mine))
    assert got["dir"] == str(mine) == got["path"] and not entries(tmp_path / "xla")


SWITCH = textwrap.dedent("""
    import sys
    import insilico
    import jax, jax.numpy as jnp
    from insilico import compilation
    jax.jit(lambda x: jnp.tanh(x) + 1.0)(jnp.ones(4)).block_until_ready()       # the cache is open now
    compilation.enable(sys.argv[1])
    jax.jit(lambda x: jnp.tanh(x) @ x.T + 3.0)(jnp.ones((8, 8))).block_until_ready()
""")


def test_enable_after_a_compilation_moves_the_cache(tmp_path):
    """JAX opens its cache at the first compilation; enable(new directory) later must still take effect."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT",
                                                                   "INSILICO_COMPILATION"))}
    out = subprocess.run([sys.executable, "-c", SWITCH, str(tmp_path / "new")], capture_output=True, text=True,
                         timeout=300, env={**base, "INSILICO_CACHE": str(tmp_path / "old"), "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert entries(tmp_path / "new"), "the program compiled after enable() went to the old cache"
