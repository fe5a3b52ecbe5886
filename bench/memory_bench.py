"""Peak memory of merge and of eval on the full-width CPU model: MedGemma-4B's widths (hidden 2560, vocabulary
262,208, SigLIP at 896 px, 256 image tokens) with 2 text and 2 vision layers, bf16 on disk as MedGemma ships.

    python bench/memory_bench.py build DIR      # the checkpoint and a random rank-16 all-linear LoRA adapter on it
    python bench/memory_bench.py merge DIR      # merge the adapter (merge's own device/dtype choice)
    python bench/memory_bench.py merge DIR bfloat16   # in bf16, one copy: what a machine short of RAM does
    python bench/memory_bench.py eval DIR       # predict 8 ROP cases (896 px) in one batch, with option probabilities
    python bench/memory_bench.py all DIR        # the three, each in its own process

Each stage runs in its own process and prints one JSON line with its peak resident memory (ru_maxrss) and seconds, so
the numbers are per stage. Memory is what to compare; seconds depend on what else runs on the machine.
"""

import json, subprocess, sys, tempfile, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_model_dir, peak_rss_gib


def build(d: Path):
    "The full-width checkpoint, 8 ROP cases at 896 px, and a LoRA adapter folder `merge` accepts."
    from peft import LoraConfig, get_peft_model
    from medgemma_lora.data import write_jsonl
    from medgemma_lora.models import load_model, load_processor
    from medgemma_lora.synth import synthesize
    from medgemma_lora.train import TrainConfig, lora_target_regex

    base = bench_model_dir(d / 'base', layers=2)
    recs = synthesize('pediatric', 8, seed=0, out_dir=d / 'cases', subtask='rop', image_size=896)
    write_jsonl(recs, d / 'cases' / 'train.jsonl')
    model = load_model(str(base), device='cpu')
    torch.manual_seed(0)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=lora_target_regex(), init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():  # a small update, as training makes: random A and B at 1e-3 scale
        for n, p in peft_model.named_parameters():
            if 'lora_' in n:
                p.mul_(1e-2)
    peft_model.save_pretrained(str(d / 'adapter'))
    load_processor(str(base)).save_pretrained(str(d / 'adapter'))
    cfg = TrainConfig(data=str(d / 'cases'), out=str(d / 'adapter'), model=str(base), preset='pediatric')
    cfg.save(d / 'adapter' / 'train_config.json')


def merge_stage(d: Path, dtype: str | None = None):
    "Merge in `dtype` (None: merge's own choice; bfloat16: one copy, as when the RAM cannot hold one fp32 copy)."
    from medgemma_lora.merge import merge

    kw = {'dtype': getattr(torch, dtype)} if dtype else {}
    rep = merge(d / 'adapter', d / f'merged-{dtype or "auto"}', overwrite=True, **kw)
    keys = ('device', 'dtype', 'saved_dtype', 'logit_scale', 'max_abs_diff', 'max_abs_diff_reloaded', 'tolerance')
    return {k: rep.get(k) for k in keys + ('greedy_equal', 'greedy_equal_reloaded', 'passed')}


def eval_stage(d: Path):
    from medgemma_lora.data import read_jsonl
    from medgemma_lora.generate import _encode, predict, render
    from medgemma_lora.models import load_model, load_processor

    base = d / 'base'
    model, proc = load_model(str(base), device='cpu'), load_processor(str(base))
    recs = read_jsonl(d / 'cases' / 'train.jsonl')
    rows = predict(model, proc, recs, d / 'cases', batch_size=8, max_new_tokens=8, progress=False)
    prompt = _encode(proc, recs, d / 'cases', [render(proc, r) for r in recs])['input_ids'].shape[1]
    return dict(
        rows=len(rows),
        prompt_tokens=prompt,
        fields_scored=sum(len(r.get('option_probs', {})) for r in rows),
        answer_words=sum(len(r['output'].split()) for r in rows),
    )


def main(argv=None):
    argv = argv or sys.argv[1:]
    stage, d = argv[0], Path(argv[1] if len(argv) > 1 else tempfile.mkdtemp())
    if stage == 'all':
        for s in ('build', 'merge', 'eval'):
            subprocess.run([sys.executable, __file__, s, str(d)], check=True)
        return
    t0 = time.perf_counter()
    out = {'build': build, 'merge': merge_stage, 'eval': eval_stage}[stage](d, *argv[2:]) or {}
    print(json.dumps(dict(stage=stage, peak_rss_gib=peak_rss_gib(), seconds=round(time.perf_counter() - t0, 1), **out)))


if __name__ == '__main__':
    main()
