"""Execute the notebooks top to bottom and save them with their outputs, so they can be read without running them.

    python notebooks/execute.py                      # every notebook in notebooks/
    python notebooks/execute.py electrode lesions    # by name (with or without .ipynb), or by path
    python notebooks/execute.py --stale              # only those whose code changed since they were saved

Each notebook runs in a fresh kernel whose working directory is the notebook's folder, on the CPU
(JAX_PLATFORMS=cpu, so the saved numbers do not depend on the machine's accelerator), with ``INSILICO_DATA`` made
absolute when it is set (cells that need the data fall back or say so when it is not). Figures are saved as PNG at
80 dpi whatever dpi a figure asks for (no SVG, no widgets, no JavaScript), so GitHub renders them. What would
change the saved file between two runs of the same code is left out: execution timings, kernel and Python
versions; execution counts run 1, 2, 3, ... in cell order. The notebook's metadata records whether it ran with the
data and a hash of its code cells, so a test can tell when the saved outputs no longer belong to the code.

A notebook that raises, or whose outputs hold a JAX/XLA or Python warning, a progress bar, an unexplained stderr
stream, an output GitHub cannot render or a memory address, is reported and NOT written; the command then exits
with status 1. A notebook saved above 1 MB is written but reported, and also sets status 1.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DPI = 80
MAX_BYTES = 1_000_000
DATA_TAG = "needs-data"          # cell tag: draws its figure only when INSILICO_DATA is set

# Kernel configuration, in a private IPython directory so a reader's own profile (startup files, figure formats)
# cannot change the saved outputs: PNG only, at DPI, tight bounding box.
KERNEL_CONFIG = f"""\
c.InlineBackend.figure_formats = {{"png"}}
c.InlineBackend.print_figure_kwargs = {{"bbox_inches": "tight", "dpi": {DPI}}}
c.InlineBackend.close_figures = True
"""

# The kernel's environment. Each entry silences a source of noise where it starts, not in the saved outputs.
KERNEL_ENV = {
    "JAX_PLATFORMS": "cpu",          # no probing of CUDA/TPU plugins and their "Platform ..." / "An NVIDIA GPU may be
                                     # present ..." warnings; the same numbers on every machine
    "TF_CPP_MIN_LOG_LEVEL": "3",     # XLA's C++ (absl) log lines on stderr: errors only
    "TQDM_DISABLE": "1",             # progress bars of calls that leave `disable` to tqdm's default (tqdm >= 4.66)
    # tqdm.auto, imported by insilico's loops, warns in a kernel without ipywidgets that it cannot draw widget
    # bars; text bars (or none: the notebooks pass progress=False) are what a saved notebook should have.
    "PYTHONWARNINGS": "ignore:IProgress not found",
    "PYTHONHASHSEED": "0",           # set and dict-of-set iteration order fixed between runs
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}

# Text that must not appear in saved outputs: warnings of JAX/XLA and the libraries below them, and progress bars.
WARNING_PATTERNS = (
    r"^[WEF]\d{4} \d\d:\d\d:\d\d",                    # absl/glog lines: W0101 12:00:00.000000  123 file.cc:45] ...
    r"Platform '\w+' is experimental|Unable to initialize backend|backend '\w+' failed to initialize",
    r"An NVIDIA GPU may be present|CUDA-enabled jaxlib is not installed|TPU backend",
    r"external/xla/|xla/service/|xla_bridge\.py",
    r"\b\w*Warning: ",                                # DeprecationWarning: ..., UserWarning: ..., TqdmWarning: ...
    r"IProgress not found",
    r"\d+%\|",                                        # a tqdm bar
)
VOLATILE_PATTERNS = (r"\bat 0x[0-9a-fA-F]{6,}",       # default object reprs: a new address every run
                     r"\btmp[a-z0-9_]{8}\b")           # tempfile's random directory and file names


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def warning_lines(text: str) -> list[str]:
    """The lines of ``text`` that match a known warning or progress-bar pattern."""
    return [line for line in _text(text).splitlines() if any(re.search(p, line) for p in WARNING_PATTERNS)]


def source_hash(nb) -> str:
    """SHA-256 of the notebook's code cells (markdown does not change the outputs)."""
    code = "\n\0".join(_text(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return hashlib.sha256(code.encode()).hexdigest()


def has_png(cell) -> bool:
    return any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def png_count(nb) -> int:
    return sum(1 for c in nb["cells"] for out in c.get("outputs", []) if "image/png" in out.get("data", {}))


def problems(nb) -> list[str]:
    """What in a notebook's outputs must not be saved: errors, warning and progress-bar streams, stderr output,
    outputs GitHub does not render (widgets, JavaScript, SVG), text that changes from run to run (memory
    addresses, temporary paths). Works on plain JSON dicts as well as nbformat notebooks."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            kind = out["output_type"]
            if kind == "error":
                found.append(f"cell {i}: {out['ename']}: {out['evalue']}")
                continue
            if kind == "stream":
                text = _text(out["text"])
                lines = warning_lines(text)
                found += [f"cell {i} ({out['name']}): {line.strip()[:200]}" for line in lines]
                if out["name"] == "stderr" and not lines:
                    found.append(f"cell {i}: output on stderr: {text.strip()[:200]}")
            else:
                data = out.get("data", {})
                found += [f"cell {i}: an output of type {mime}, which GitHub does not render" for mime in data
                          if mime.startswith("application/vnd.jupyter.widget")
                          or mime in ("application/javascript", "image/svg+xml")]
                text = _text(data.get("text/plain", ""))
                if kind == "execute_result" and re.match(r"\[?<matplotlib\.|Text\(|<Figure size", text):
                    found.append(f"cell {i}: shows the repr of a matplotlib object ({text[:60]!r}): end the line "
                                 f"with ';'")
            found += [f"cell {i}: {m.group(0)!r} changes from run to run (a memory address or a temporary path: "
                      f"end the line with ';', or show a value or a relative path)"
                      for p in VOLATILE_PATTERNS for m in re.finditer(p, text)]
    return found


def is_stale(path: Path) -> bool:
    """Whether the notebook's code cells changed since its outputs were saved (or it was never executed here)."""
    import json

    nb = json.loads(path.read_text())
    return nb["metadata"].get("insilico", {}).get("source_sha256") != source_hash(nb)


def find_notebooks(names) -> list[Path]:
    """The notebooks named (stem, file name or path), or every notebook in notebooks/ when none is named."""
    if not names:
        return sorted(HERE.glob("*.ipynb"))
    paths = []
    for name in names:
        p = Path(name)
        candidates = [p, HERE / p.name, HERE / f"{p.name}.ipynb"]
        found = next((c.resolve() for c in candidates if c.suffix == ".ipynb" and c.is_file()), None)
        if found is None:
            valid = ", ".join(q.stem for q in sorted(HERE.glob("*.ipynb")))
            raise SystemExit(f"notebook {name!r} not found; valid names: {valid}")
        paths.append(found)
    return paths


def kernel_environment(ipython_dir: str) -> dict[str, str]:
    """This process's environment plus KERNEL_ENV, a private IPython directory and an absolute INSILICO_DATA."""
    env = dict(os.environ)
    env.update(KERNEL_ENV)
    env["IPYTHONDIR"] = ipython_dir
    if env.get("INSILICO_DATA"):
        env["INSILICO_DATA"] = os.path.abspath(env["INSILICO_DATA"])
    return env


def execute(nb, cwd: Path, timeout: int = 1200):
    """Execute ``nb`` (an nbformat notebook, changed in place) in a fresh kernel configured as above, in ``cwd``.

    Raises nbclient's CellExecutionError when a cell raises."""
    import nbclient
    from traitlets.config import Config

    if not isinstance(timeout, int) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}")
    with tempfile.TemporaryDirectory(prefix="insilico-kernel-") as tmp:
        profile = Path(tmp, "ipython", "profile_default")
        profile.mkdir(parents=True)
        (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
        config = Config()
        config.KernelManager.transport = "ipc"       # local sockets in `tmp`, not unencrypted TCP (the kernel
        config.KernelManager.ip = str(Path(tmp, "kernel"))   # warns on every start about TCP)
        client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                         resources={"metadata": {"path": str(cwd)}}, config=config)
        client.execute(env=kernel_environment(str(Path(tmp, "ipython"))), cwd=str(cwd))
    return nb


def tidy(nb, with_data: bool):
    """Make the saved form stable and self-describing: no timings or versions, execution counts 1, 2, ... in cell
    order, consecutive outputs of one stream merged, and ``metadata.insilico`` = {executed_with_data,
    source_sha256}."""
    count = 0
    for cell in nb.cells:
        for key in ("execution", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        merged = []
        for out in cell.get("outputs", []):
            if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
                continue
            if "execution_count" in out:
                out.execution_count = count
            merged.append(out)
        cell.outputs = merged
    nb.metadata.get("language_info", {}).pop("version", None)
    for key in ("widgets", "papermill"):
        nb.metadata.pop(key, None)
    nb.metadata["insilico"] = {"executed_with_data": with_data, "source_sha256": source_hash(nb)}
    return nb


def run_one(path: Path, timeout: int) -> tuple[bool, str]:
    """Execute the notebook at ``path`` and write it back with its outputs if nothing is wrong with them."""
    import nbformat
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    try:
        execute(nb, path.parent, timeout)
    except CellExecutionError as e:
        return False, f"{path.name}: a cell raised; the notebook was not written:\n{str(e)[-3000:]}"
    seconds = time.perf_counter() - start
    tidy(nb, with_data=bool(os.environ.get("INSILICO_DATA")))
    found = problems(nb)
    if not png_count(nb):
        found.append("no PNG figure in the outputs")
    if found:
        return False, f"{path.name}: not written, {len(found)} problem(s):\n  " + "\n  ".join(found)
    text = nbformat.writes(nb) + "\n"
    size = len(text.encode())
    path.write_text(text)
    over = f"  OVER {MAX_BYTES // 1000} kB" if size > MAX_BYTES else ""
    return size <= MAX_BYTES, f"{path.name:28s} {seconds:7.1f} s {size / 1000:8.1f} kB {png_count(nb):4d} PNG{over}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to execute (default: every notebook in notebooks/)")
    parser.add_argument("--stale", action="store_true",
                        help="only the notebooks whose code changed since their outputs were saved")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell (default 1200)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds; got {args.timeout}")
    paths = find_notebooks(args.names)
    if args.stale:
        paths = [p for p in paths if is_stale(p)]
    data = os.environ.get("INSILICO_DATA")
    print(f"executing {len(paths)} notebook(s); INSILICO_DATA={os.path.abspath(data) if data else '(not set)'}")
    print(f"{'notebook':28s} {'time':>9s} {'size':>11s} {'figures':>8s}", flush=True)
    failed = 0
    for path in paths:
        ok, line = run_one(path, args.timeout)
        failed += not ok
        print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
