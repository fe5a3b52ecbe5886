#!/usr/bin/env bash
# The README's test command: every notebook on the tiny model (nbdev_test), then the pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
# Two notebooks at a time, one BLAS/OpenMP thread each: two multi-threaded torch processes on two cores
# oversubscribe and spin (measured: >18 min instead of ~2 min).
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nbdev_test --n_workers 2 --timing
python -m pytest tests -q -p no:cacheprovider
