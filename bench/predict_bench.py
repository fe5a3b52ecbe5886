"""Generation throughput: the seeds' one-case-at-a-time loop, batched `predict`, and batched `predict` with option
probabilities, on the same model and the same cases, in one run.

    python bench/predict_bench.py                                  # tiny model, CPU: rop and clinical cases
    python bench/predict_bench.py --model runs/clinical/merged     # a trained model (it writes whole answers)
    python bench/predict_bench.py --full-size                      # random MedGemma-4B architecture (GPU), no download;
                                                                   # it answers in the tiny vocabulary with eos off, so
                                                                   # every answer is max_new_tokens real tokens
    python bench/predict_bench.py --constrained                    # also time xgrammar-constrained decoding

Prints cases/s for each way (the fastest of `--repeats` runs; the loop runs once) and the ratios. All ways decode greedily with the same max_new_tokens, so they generate
the same answers; the loop is what the seed systems did (one `generate` per case).
"""
import argparse, sys, tempfile, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_model_dir, print_table
from medgemma_lora.synth import synthesize
from medgemma_lora.generate import json_schema_logits_processor, predict
from medgemma_lora.models import load_model, load_processor

TASKS = {'rop': ('pediatric', 'rop'), 'fracture': ('pediatric', 'fracture'), 'bone_age': ('pediatric', 'bone_age'),
         'clinical': ('clinical', None), 'rtl': ('rtl', None)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='tiny'); p.add_argument('--full-size', action='store_true')
    p.add_argument('--tasks', default='rop,clinical', help=f'comma-separated, from {",".join(TASKS)}')
    p.add_argument('--n', type=int, default=48); p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--max-new-tokens', type=int, default=48); p.add_argument('--constrained', action='store_true')
    p.add_argument('--no-loop', action='store_true', help='skip the one-case-at-a-time loop')
    p.add_argument('--repeats', type=int, default=5, help='time each way this many times and keep the fastest (default: 5)')
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp())
    model_id = str(bench_model_dir(work/'medgemma-4b-random')) if a.full_size else a.model
    model, processor = load_model(model_id), load_processor(model_id)
    size = processor.image_processor.size['height']
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f'CPU ({torch.get_num_threads()} threads)'
    print(f'model {model_id} on {dev}; {a.n} cases per task, batch {a.batch_size}, max_new_tokens {a.max_new_tokens}, greedy')
    rows = []
    for key in a.tasks.split(','):
        task, subtask = TASKS[key]
        recs = synthesize(task, a.n, seed=0, out_dir=work, subtask=subtask, image_size=size)
        kw = dict(max_new_tokens=a.max_new_tokens, progress=False)
        predict(model, processor, recs[:2], work, batch_size=2, **kw)  # warm-up
        def timed(name, fn, repeats=a.repeats):
            times = []
            for _ in range(repeats):
                sync(); t0 = time.perf_counter(); out = fn(); sync(); times.append(time.perf_counter() - t0)
            dt = min(times)
            rows.append(dict(task=key, way=name, cases=a.n, seconds=round(dt, 2), cases_per_s=round(a.n / dt, 2)))
            return out
        if not a.no_loop:
            timed('one case at a time (seeds)', lambda: [predict(model, processor, [r], work, batch_size=1, with_option_probs=False, **kw) for r in recs],
                  repeats=1)
        plain = timed(f'batched predict (batch {a.batch_size})', lambda: predict(model, processor, recs, work, batch_size=a.batch_size,
                                                                                 with_option_probs=False, **kw))
        scored = timed(f'batched + option probabilities', lambda: predict(model, processor, recs, work, batch_size=a.batch_size, **kw))
        assert [r['output'] for r in plain] == [r['output'] for r in scored], 'option probabilities changed an answer'
        if a.constrained:
            timed(f'batched + xgrammar', lambda: predict(model, processor, recs, work, batch_size=a.batch_size, with_option_probs=False,
                  logits_processor_factory=lambda rs: json_schema_logits_processor(processor, rs), **kw))
        words = sum(len(r['output'].split()) for r in plain) / len(plain)
        print(f'{key}: answers average {words:.1f} words; fields scored per case: '
              f"{sum(len(r.get('option_probs', {})) for r in scored) / len(scored):.2f}")
    for r in rows:
        base = next(x for x in rows if x['task'] == r['task'] and x['way'].startswith('batched predict'))
        r['vs_batched_plain'] = f"{r['cases_per_s'] / base['cases_per_s']:.2f}x"
    print_table(rows, ['task', 'way', 'cases', 'seconds', 'cases_per_s', 'vs_batched_plain'])


if __name__ == '__main__':
    main()
