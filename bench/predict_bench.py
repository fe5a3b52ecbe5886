"""Batched `predict` vs the seeds' one-case-at-a-time loop, on the same model and the same eval set.

    python bench/predict_bench.py                       # tiny model, CPU
    python bench/predict_bench.py --full-size           # random MedGemma-4B architecture (GPU), no download
    python bench/predict_bench.py --constrained         # also time xgrammar-constrained decoding

Prints cases/s for each way and the ratio. Both use greedy decoding with the same max_new_tokens, so they do the
same work; the loop is what the seed systems did (one `generate` per case).
"""
import argparse, sys, tempfile, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table
from medgemma_lora.synth import synthesize
from medgemma_lora.generate import json_schema_logits_processor, predict
from medgemma_lora.models import full_size_random_dir, load_model, load_processor


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='tiny'); p.add_argument('--full-size', action='store_true')
    p.add_argument('--task', default='pediatric'); p.add_argument('--subtask', default='fracture')
    p.add_argument('--n', type=int, default=64); p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--max-new-tokens', type=int, default=48); p.add_argument('--constrained', action='store_true')
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp())
    model_id = str(full_size_random_dir(work/'medgemma-4b-random')) if a.full_size else a.model
    model, processor = load_model(model_id), load_processor(model_id)
    size = processor.image_processor.size['height']
    recs = synthesize(a.task, a.n, seed=0, out_dir=work, subtask=a.subtask if a.task == 'pediatric' else None, image_size=size)
    kw = dict(max_new_tokens=a.max_new_tokens, with_option_probs=False, progress=False)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    predict(model, processor, recs[:2], work, batch_size=2, **kw)  # warm-up
    rows = []
    def timed(name, fn):
        sync(); t0 = time.perf_counter(); fn(); sync(); dt = time.perf_counter() - t0
        rows.append(dict(way=name, cases=a.n, seconds=round(dt, 2), cases_per_s=round(a.n / dt, 2)))
    timed('one case at a time (seeds)', lambda: [predict(model, processor, [r], work, batch_size=1, **kw) for r in recs])
    timed(f'batched predict (batch {a.batch_size})', lambda: predict(model, processor, recs, work, batch_size=a.batch_size, **kw))
    if a.constrained:
        timed(f'batched + xgrammar (batch {a.batch_size})', lambda: predict(model, processor, recs, work, batch_size=a.batch_size,
              logits_processor_factory=lambda rs: json_schema_logits_processor(processor, rs), **kw))
    for r in rows: r['vs_loop'] = f"{r['cases_per_s'] / rows[0]['cases_per_s']:.2f}x"
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f'CPU ({torch.get_num_threads()} threads)'
    print(f'model {model_id} on {dev}; {a.n} {a.task} cases, max_new_tokens {a.max_new_tokens}, greedy')
    print_table(rows, ['way', 'cases', 'seconds', 'cases_per_s', 'vs_loop'])


if __name__ == '__main__':
    main()
