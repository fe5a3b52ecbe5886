"""QLoRA training speed and memory on a full-size random MedGemma-4B-architecture model (GPU; no download).

    python bench/train_bench.py [--steps 20] [--answer-tokens 512] [--quantization 4bit] [--t4]

Batch 1, one 896 px image and a 512-token answer per sample, gradient checkpointing, the precision policy
(bf16 on Ampere+, fp32 compute on a T4). `--t4` makes a bigger GPU behave as a 16 GB T4: no bf16 (fp32 compute) and
memory capped at 15 GiB. Prints samples/s, tokens/s and peak GPU memory. Random weights: only speed and memory mean
anything.
"""
import argparse, json, sys, tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_model_dir, force_t4_policy, print_table
from medgemma_lora.data import Record, write_jsonl
from medgemma_lora.synth import synthesize
from medgemma_lora.generate import render
from medgemma_lora.models import compute_dtype, load_processor
from medgemma_lora.train import TrainConfig, train


def long_answer_records(work, n, answer_tokens, processor, image_size=896):
    "rtl records with one `image_size` px image whose answer is `answer_tokens` tokens long (a long evidence list)."
    recs = synthesize('rtl', n, seed=0, out_dir=work, image_size=image_size)
    tok = processor.tokenizer
    out = []
    for r in recs:
        text, i = r.target, 0
        while len(tok(text, add_special_tokens=False).input_ids) < answer_tokens:
            i += 1; text = r.target + ' ' + ' '.join(['finding reviewed against the image'] * i)
        ids = tok(text, add_special_tokens=False).input_ids[:answer_tokens]
        out.append(Record.from_dict({**r.to_dict(), 'target': tok.decode(ids)}))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--steps', type=int, default=20); p.add_argument('--answer-tokens', type=int, default=512)
    p.add_argument('--quantization', default='4bit'); p.add_argument('--model', default=None, help='default: full-size random MedGemma')
    p.add_argument('--t4', action='store_true', help='fp32 compute and a 15 GiB memory cap, as on a T4')
    a = p.parse_args(argv)
    if not torch.cuda.is_available(): sys.exit('train_bench needs a GPU')
    policy = force_t4_policy() if a.t4 else 'as the GPU allows'
    work = Path(tempfile.mkdtemp())
    model_id = a.model or str(bench_model_dir(work/'medgemma-4b-random'))
    processor = load_processor(model_id)
    recs = long_answer_records(work, a.steps + 4, a.answer_tokens, processor)
    write_jsonl(recs[:a.steps], work/'train.jsonl'); write_jsonl(recs[a.steps:], work/'eval.jsonl')
    seq = len(processor.tokenizer(render(processor, recs[0], with_answer=True), add_special_tokens=False).input_ids) - 1 + 256
    cfg = TrainConfig.preset_config('pediatric', data=str(work), out=str(work/'adapter'), model=model_id, quantization=a.quantization,
                                    max_steps=a.steps, per_device_train_batch_size=1, gradient_accumulation_steps=1, save_steps=10_000, logging_steps=5, max_eval_samples=2)
    s = train(cfg)
    row = dict(gpu=torch.cuda.get_device_name(0), policy=policy, compute=str(compute_dtype('cuda')).replace('torch.', ''), quantization=a.quantization,
               lora=f'r{cfg.r} all-linear', seq_tokens=seq, steps=s['steps'], samples_per_s=round(s['train_samples_per_second'], 3),
               tokens_per_s=round(s['train_samples_per_second'] * seq, 1), peak_gpu_gib=s['peak_gpu_mem_gib'],
               trainable_params=f"{s['trainable_params']:,}")
    print_table([row], list(row))
    print(json.dumps(s, indent=1))


if __name__ == '__main__':
    main()
