"""Shared benchmark plumbing: timing (median of repeats, compile separately), peak memory in a fresh
process, environment description, and the markdown table in docs/benchmarks.md."""
from __future__ import annotations

import datetime
import json
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def timed(fn, repeats: int):
    """(first-call seconds, median seconds of ``repeats`` further calls, all times). ``fn`` must block."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return first, statistics.median(times), times


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(script: str, *args) -> dict:
    """Run ``python script --worker args`` in a fresh process; its last stdout line is a JSON result."""
    r = subprocess.run([sys.executable, script, "--worker", *map(str, args)], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"worker {args} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def environment() -> str:
    import jax

    try:
        import torch
        tv = torch.__version__
    except ImportError:
        tv = "n/a"
    dev = jax.devices()[0]
    return (f"{datetime.date.today().isoformat()}; {platform.processor() or platform.machine()} "
            f"({__import__('os').cpu_count()} cores), jax {jax.__version__} on {dev.platform} "
            f"({getattr(dev, 'device_kind', '')}), torch {tv}, python {platform.python_version()}")


def update_docs(section: str, body: str):
    """Replace (or append) the ``## section`` block of docs/benchmarks.md with ``body``."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    block = f"## {section}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: block + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(text)
