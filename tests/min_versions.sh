#!/usr/bin/env bash
# Dependency floors that hold: in a fresh venv, install every floor of settings.ini `requirements` exactly
# (`pkg>=X` becomes `pkg==X`), the package itself without dependencies, and run the tiny end to end on the CPU:
# `medgemma-lora run rtl` shrunk (data, LoRA training with TRL, merge, generation, scoring, report) and a 4-bit
# QLoRA training step (bitsandbytes). Then the extras' floors (every `<name>_requirements` but dev) go in, and what
# needs them runs: `predict --constrained` (xgrammar) and `kaggle push --dry-run` (the kaggle CLI).
# A floor that fails here is not a floor: raise it in settings.ini.
#
#   bash tests/min_versions.sh [VENV]        VENV: where to build the venv (default: a temporary folder, removed)
#
# torch is installed first, on its own, at its floor: `torch==2.13.0` would take the CPU build that lies on this
# machine's disk; an older floor takes PyPI's (CUDA) build, which runs on a CPU too (about 3 GB, a minute to install).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
venv=${1:-$work/venv}
export MEDGEMMA_LORA_CACHE="$work/cache"      # the tiny model is built from scratch by the floor versions
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }

# `pkg==floor` for each requirement of settings.ini (`floors requirements`) or of its extras (`floors extras`);
# a requirement without a plain `>=` floor is an error
floors() {
python3 - "$ROOT/settings.ini" "$1" <<'PY'
import configparser, re, shlex, sys
cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(sys.argv[1], encoding='utf-8')
d = cfg['DEFAULT']
keys = ['requirements'] if sys.argv[2] == 'requirements' else [k for k in d if k.endswith('_requirements') and k != 'dev_requirements']
bad = []
for req in (r for k in keys for r in shlex.split(d[k])):
    m = re.fullmatch(r'([A-Za-z0-9][A-Za-z0-9._-]*)>=([0-9][^,;<>=!\s]*)(,<[^,;\s]+)?', req)
    if m: print(f'{m[1]}=={m[2]}')
    else: bad.append(req)
if bad: sys.exit(f'settings.ini {keys}: requirements without a plain >= floor: {bad}')
PY
}
pins=$(floors requirements)
extra_pins=$(floors extras)
torch_pin=$(grep -E '^torch==' <<<"$pins")
echo "== floors from settings.ini:" $pins "| extras:" $extra_pins

python3 -m venv "$venv"
. "$venv/bin/activate"
python -m pip install -q "$torch_pin"
python -m pip install -q $pins                  # every floor exactly; what they need, pip resolves
python -m pip install -q --no-deps -e "$ROOT"   # editable: no stale build/ copy
python -m pip check
echo "== installed in $(elapsed)"
python - <<'PY'
import importlib.metadata as md
names = 'torch transformers peft trl accelerate datasets bitsandbytes huggingface_hub tokenizers safetensors numpy scipy scikit-learn'
print(' | '.join(f'{n} {md.version(n)}' for n in names.split()))
PY

cd "$work"
medgemma-lora run rtl --out run --n-train 24 --n-eval 6 --max-steps 6
for f in adapter/adapter_model.safetensors merged/model.safetensors predictions_merged.jsonl metrics.json report.md; do
  test -s "run/$f" || { echo "min_versions: run/$f missing"; exit 1; }
done
medgemma-lora train --data run/data --out qlora --preset rtl --quantization 4bit --max-steps 2 --per_device_train_batch_size 2
python - <<'PY'
import json
s = json.load(open('qlora/train_summary.json'))
assert s['steps'] == 2 and s['quantization'] == '4bit', s
PY

python -m pip install -q $extra_pins $pins      # the extras at their floors, everything else held at its own
python -m pip check
medgemma-lora data pediatric --subtask fracture --out fx --n-train 4 --n-eval 4
medgemma-lora predict --model tiny --data fx/eval.jsonl --out constrained.jsonl --constrained
python - <<'PY'
import json
rows = [json.loads(l) for l in open('constrained.jsonl')]
assert rows and all(isinstance(json.loads(r['output']), dict) for r in rows), rows   # a random model, held to the schema's JSON
PY
(cd "$ROOT/nbs" && medgemma-lora kaggle push --dry-run | tail -n 1)
echo "== floors hold: tiny end to end, 4-bit training, constrained decoding and kaggle push --dry-run passed in $(elapsed)"
