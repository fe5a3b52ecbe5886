"""One GPU runbook: what a first Kaggle or Colab run goes through, on the full-size random MedGemma-4B (no download),
as one table of time and peak memory per stage.

    python bench/gpu_check.py                  # GPU: QLoRA with the T4 policy and the native one, merge, predict, rl
    python bench/gpu_check.py --tiny           # CPU: the same stages on the embedded tiny model, in about a minute (CI)
    python bench/gpu_check.py --stages train-native,merge

Stages, each in its own process so its peak memory is its own:

- `train-t4`: QLoRA for `TRAIN['max_steps']` steps as on a 16 GB T4 (fp32 compute, memory capped at 15 GiB);
- `train-native`: the same with the precision this GPU allows (bf16 on Ampere and later);
- `merge`: the native adapter merged into the base (merge's own device and dtype choice) and verified;
- `predict`: the merged model answers `--cases` held-out cases in batches of 8, with option probabilities;
- `rl`: `RL['max_steps']` GRPO steps from the native adapter (this includes merging the SFT adapter once).

With `--tiny` the stages run in one process (a process start costs more than a tiny stage), so peak RSS accumulates.

The random model answers in the tiny vocabulary with eos disabled, so every answer is exactly `max_new_tokens` long:
throughput counts real tokens. Random weights: only time and memory mean anything. On one H100/H200 the whole check
takes under 10 minutes; on a T4 under 30.
"""

import argparse, json, os, subprocess, sys, tempfile, time, warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_model_dir, force_t4_policy, peak_rss_gib, print_table

#: Training settings, by the library's field names (TrainConfig, RLConfig): the one place to change or rename them.
TRAIN = dict(
    max_steps=20,
    per_device_train_batch_size=1,
    gradient_accumulation_steps=1,
    save_steps=10_000,
    logging_steps=5,
    max_eval_samples=2,
)
RL = dict(max_steps=5, batch_size=4, num_generations=2, max_completion_length=32, save_steps=10_000, logging_steps=1)
#: What `--tiny` changes, so the CPU run stays near a minute.
TINY = dict(
    train=dict(max_steps=2, per_device_train_batch_size=2), rl=dict(max_steps=2, max_completion_length=8), answer_tokens=32
)
STAGES = ('train-t4', 'train-native', 'merge', 'predict', 'rl')
ROW = 'GPU_CHECK_ROW '


def _data(work: Path, model_id: str, answer_tokens: int, n_train: int, cases: int):
    """The stages' cases, once, with images at the model's size: rtl with answers `answer_tokens` long (training),
    ROP cases with three choice fields (predict, with option probabilities), and plain rtl cases (GRPO's prompts)."""
    from train_bench import long_answer_records
    from medgemma_lora.data import write_jsonl
    from medgemma_lora.models import load_processor
    from medgemma_lora.synth import synthesize

    if (work / 'rl-data' / 'eval.jsonl').exists():
        return
    proc = load_processor(model_id)
    size = proc.image_processor.size['height']
    recs = long_answer_records(work / 'data', n_train + 2, answer_tokens, proc, image_size=size)
    write_jsonl(recs[:n_train], work / 'data' / 'train.jsonl')
    write_jsonl(recs[n_train:], work / 'data' / 'eval.jsonl')
    rop = synthesize('pediatric', cases, seed=1, out_dir=work / 'cases', subtask='rop', image_size=size)
    write_jsonl(rop, work / 'cases' / 'eval.jsonl')
    rl = synthesize('rtl', 10, seed=2, out_dir=work / 'rl-data', image_size=size)
    write_jsonl(rl[:8], work / 'rl-data' / 'train.jsonl')
    write_jsonl(rl[8:], work / 'rl-data' / 'eval.jsonl')


def run_stage(stage: str, work: Path, model_id: str, tiny: bool, cases: int) -> dict:
    "Run one stage in this process; return its row (seconds, peak memory, and what the stage measured)."
    from medgemma_lora.data import read_jsonl
    from medgemma_lora.generate import load_for_inference, predict
    from medgemma_lora.merge import MergeVerificationError, merge
    from medgemma_lora.models import compute_dtype
    from medgemma_lora.rl import rl_config, rl_train
    from medgemma_lora.train import TrainConfig, train

    gpu = torch.cuda.is_available()
    train_kw = {**TRAIN, **(TINY['train'] if tiny else {})}
    quant = '4bit'
    row = dict(stage=stage)
    t0 = time.perf_counter()
    if stage.startswith('train'):
        row['policy'] = force_t4_policy() if stage == 'train-t4' and gpu else 'native' if gpu else 'CPU (fp32)'
        row['compute'] = str(compute_dtype('cuda' if gpu else 'cpu')).replace('torch.', '')
        name = 'adapter-t4' if stage == 'train-t4' else 'adapter'
        cfg = TrainConfig.preset_config(
            'rtl', data=str(work / 'data'), out=str(work / name), model=model_id, quantization=quant, **train_kw
        )
        s = train(cfg, progress=False, overwrite=True)
        row['detail'] = f"{s['steps']} steps, {s['train_samples_per_second']:.3g} samples/s, loss {s.get('train_loss')}"
    elif stage == 'merge':
        try:
            rep = merge(work / 'adapter', work / 'merged', overwrite=True)
            row['detail'] = (
                f"{rep['device']} {rep['dtype']} -> {rep['saved_dtype']}, max |diff| {rep['max_abs_diff']:.3g} / "
                f"reloaded {rep['max_abs_diff_reloaded']:.3g} (tolerance {rep['tolerance']:.3g}), passed"
            )
        except MergeVerificationError as e:
            row['detail'] = f'REFUSED: {str(e)[:300]}'
    elif stage == 'predict':
        merged = (work / 'merged' / 'merge_report.json').is_file()
        model, proc = load_for_inference(
            str(work / 'merged') if merged else model_id, None if merged else str(work / 'adapter')
        )
        recs = read_jsonl(work / 'cases' / 'eval.jsonl')[:cases]
        new_tokens = 8 if tiny else 32
        predict(
            model, proc, recs[:2], work / 'cases', batch_size=2, max_new_tokens=new_tokens, progress=False
        )  # warm-up
        t0 = time.perf_counter()
        rows = predict(model, proc, recs, work / 'cases', batch_size=8, max_new_tokens=new_tokens, progress=False)
        dt = time.perf_counter() - t0
        scored = sum(len(r.get('option_probs', {})) for r in rows)
        row['detail'] = (
            f"{len(rows)} cases, {len(rows) / dt:.3g} cases/s, {scored} fields scored, up to {new_tokens} new tokens "
            f"an answer ({'exactly: eos is off' if not tiny else 'the tiny model stops early'}), "
            f"{'merged model' if merged else 'adapter (merge refused)'}"
        )
    elif stage == 'rl':
        rl_kw = {**RL, **(TINY['rl'] if tiny else {})}
        cfg = rl_config(
            data=str(work / 'rl-data'), adapter=str(work / 'adapter'), out=str(work / 'rl'), quantization=quant, **rl_kw
        )
        s = rl_train(cfg, overwrite=True, progress=False)
        row['detail'] = f"{s['steps']} GRPO steps, {s['seconds']:.3g} s in the trainer, kl {s['kl_last']}"
    else:
        raise ValueError(f'unknown stage {stage!r}; expected one of {STAGES}')
    row['seconds'] = round(time.perf_counter() - t0, 1)
    row['peak_gpu_gib'] = round(torch.cuda.max_memory_allocated() / 2**30, 2) if gpu else ''
    row['peak_rss_gib'] = peak_rss_gib()
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--tiny', action='store_true', help='the embedded tiny model on the CPU (what CI runs)')
    p.add_argument('--stages', default=','.join(STAGES), help=f'comma-separated, from {",".join(STAGES)}')
    p.add_argument('--work', default=None, help='working folder (default: a new temporary one)')
    p.add_argument('--cases', type=int, default=16, help='held-out cases the predict stage answers (default: 16)')
    p.add_argument('--answer-tokens', type=int, default=256, help='tokens in each training answer (default: 256)')
    p.add_argument('--stage', default=None, help=argparse.SUPPRESS)  # internal: run one stage in this process
    p.add_argument('--json', default=None, help='also write the rows to this JSON file')
    a = p.parse_args(argv)
    warnings.filterwarnings('ignore')
    if not (a.tiny or torch.cuda.is_available()):
        sys.exit('gpu_check needs a GPU; --tiny runs the same stages on the CPU')
    work = Path(a.work or tempfile.mkdtemp(prefix='gpu-check-'))
    model_id = 'tiny' if a.tiny else str(bench_model_dir(work / 'medgemma-4b-random'))
    if a.stage:
        print(ROW + json.dumps(run_stage(a.stage, work, model_id, a.tiny, a.cases)), flush=True)
        return
    tokens = TINY['answer_tokens'] if a.tiny else a.answer_tokens
    train_kw = {**TRAIN, **(TINY['train'] if a.tiny else {})}
    n_train = max(train_kw['max_steps'] * train_kw['per_device_train_batch_size'], 8)
    _data(work, model_id, tokens, n_train=n_train, cases=a.cases)
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f'CPU ({os.cpu_count()} cores)'
    print(f'gpu_check on {dev}: model {model_id}, work {work}', flush=True)
    rows, t0 = [], time.perf_counter()
    for stage in a.stages.split(','):
        if a.tiny:  # CPU: no per-process GPU policy to isolate, and a process start costs more than the stage
            rows.append(run_stage(stage, work, model_id, True, a.cases))
            print(f"{stage}: {rows[-1]['seconds']} s", flush=True)
            continue
        cmd = [sys.executable, __file__, '--stage', stage, '--work', str(work), '--cases', str(a.cases)]
        out = subprocess.run(cmd + (['--tiny'] if a.tiny else []), capture_output=True, text=True)
        got = [json.loads(line[len(ROW) :]) for line in out.stdout.splitlines() if line.startswith(ROW)]
        if out.returncode or not got:
            tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ['no output']
            got = [dict(stage=stage, detail=f'FAILED (exit {out.returncode}): {tail[0][:300]}')]
        rows += got
        print(f"{stage}: {got[0].get('seconds', '?')} s", flush=True)
    print_table(rows, ['stage', 'policy', 'compute', 'seconds', 'peak_gpu_gib', 'peak_rss_gib', 'detail'])
    print(f'total {time.perf_counter() - t0:.0f} s')
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    if any(str(r.get('detail', '')).startswith('FAILED') for r in rows):
        sys.exit(1)


if __name__ == '__main__':
    main()
