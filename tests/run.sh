#!/usr/bin/env bash
# The README's test command: every notebook on the tiny model (nbdev_test), then the pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
nbdev_test --n_workers 2 --timing
python -m pytest tests -q -p no:cacheprovider
