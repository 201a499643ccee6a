#!/usr/bin/env bash
# The benchmark suite at accelerator sizes on one GPU, from the source tree, offline; prints one table (device,
# jax/flax/torch versions, each probe's first call and warm time, PyTorch on the same device where a twin exists,
# and the cold-process session of bench_session.py). Budgeted to finish in under 8 minutes.
#
#   benchmarks/accelerator.sh [--json PATH] [accelerator.py options]    # the GPU sizes
#   benchmarks/accelerator.sh --smoke                                   # tiny sizes on the CPU, under a minute
#
# PYTHON picks the interpreter (default: python3); INSILICO_DATA, when set, gives CIFAR-10 and the RSA data
# (without it: natural-image patches and random RDMs). Nothing is downloaded.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
for arg in "$@"; do
    if [[ "$arg" == "--smoke" ]]; then
        export JAX_PLATFORMS=cpu
    fi
done
if [[ -z "${JAX_PLATFORMS:-}" ]] && command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$PY" benchmarks/accelerator.py "$@"
