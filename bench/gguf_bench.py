"""GGUF through llama.cpp against the merged model through transformers: the same cases, the same greedy answer
budget, on the same machine, in one run. Needs `pip install "medgemma-lora[gguf]"`.

    python bench/gguf_bench.py                          # the tiny model (random weights), rtl cases
    python bench/gguf_bench.py --merged runs/rtl/merged # a trained model (`run` or `merge` output)
    python bench/gguf_bench.py --width-layers 2         # MedGemma's widths (hidden 2560, vocabulary 262,208, SigLIP at
                                                        # 896 px) with 2 text and 2 vision layers: random, no download

Prints, for each way: cases/s, generated tokens/s and the files' size, and how many answers the GGUF gives exactly as
transformers does. transformers runs batch 1 (as llama.cpp does here) and batched; both use every CPU core.
"""

import argparse, os, shutil, sys, tempfile, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_model_dir, print_table
from medgemma_lora.generate import predict
from medgemma_lora.gguf_export import export_gguf, load_gguf, predict_gguf
from medgemma_lora.models import load_model, load_processor, tiny_model_dir
from medgemma_lora.synth import synthesize


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--merged', default=None, help='a merged model folder (default: the tiny model)')
    p.add_argument('--width-layers', type=int, default=None, help="a random model of MedGemma's widths, N layers")
    p.add_argument('--task', default='rtl')
    p.add_argument('--quant', default='Q4_K_M')
    p.add_argument('--n', type=int, default=24)
    p.add_argument('--max-new-tokens', type=int, default=32)
    p.add_argument('--batch-size', type=int, default=8)
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp())
    threads = os.cpu_count()
    torch.set_num_threads(threads)
    if a.width_layers:
        merged = bench_model_dir(work / 'wide', layers=a.width_layers)
        shutil.copy(tiny_model_dir() / 'tokenizer.model', merged / 'tokenizer.model')  # it speaks the tiny vocabulary
        what = f"random MedGemma widths, {a.width_layers} layers"
    else:
        merged = Path(a.merged) if a.merged else tiny_model_dir()
        what = str(a.merged or 'tiny (random weights)')
    info, t_export = _timed(lambda: export_gguf(merged, work / 'gguf', a.quant, task=a.task, verbose=False))
    recs = synthesize(a.task, a.n, seed=1, out_dir=work / 'data')
    model, processor = load_model(str(merged)), load_processor(str(merged))
    tok = processor.tokenizer
    if a.width_layers:  # eos is off (bench_model_dir): every answer is exactly max_new_tokens tokens
        count = lambda rows: len(rows) * a.max_new_tokens
    else:  # the answer's tokens and the stop token (a trained model stops; whitespace it wrote is undercounted)
        count = lambda rows: sum(len(tok(r['output'], add_special_tokens=False)['input_ids']) + 1 for r in rows)
    ways = {}
    for bs in (1, a.batch_size):
        rows, s = _timed(
            lambda: predict(
                model,
                processor,
                recs,
                work / 'data',
                batch_size=bs,
                max_new_tokens=a.max_new_tokens,
                with_option_probs=False,
                progress=False,
            )
        )
        ways[f'transformers, batch {bs}'] = (rows, s, count(rows))
    del model
    llm = load_gguf(work / 'gguf', n_threads=threads)
    rows, s = _timed(lambda: predict_gguf(llm, recs, work / 'data', max_new_tokens=a.max_new_tokens, progress=False))
    ways[f'llama.cpp {a.quant}'] = (rows, s, sum(r['tokens']['generated'] for r in rows))
    ref = {r['id']: r['output'] for r in ways['transformers, batch 1'][0]}
    merged_mib = info['merged_bytes'] / 2**20
    gguf_mib = sum(f['bytes'] for f in info['files'].values()) / 2**20
    table = []
    for name, (rows, s, toks) in ways.items():
        table.append(
            {
                'way': name,
                'cases/s': f'{len(rows) / s:.2f}',
                'generated tokens/s': f'{toks / s:.1f}',
                'files (MiB)': f'{gguf_mib:.1f}' if 'llama' in name else f'{merged_mib:.1f}',
                'same answer as transformers': 'n/a: random weights write blank lines'
                if a.width_layers
                else f"{sum(r['output'] == ref[r['id']] for r in rows)}/{len(rows)}",
            }
        )
    print(
        f'model: {what}; task {a.task}, {a.n} cases, at most {a.max_new_tokens} new tokens, greedy; '
        f'{threads} CPU threads; export to {a.quant} took {t_export:.0f} s'
    )
    print_table(table, list(table[0]))
    for f, v in info['files'].items():
        print(f"- `{f}`: {v['bytes'] / 2**20:.1f} MiB, tensor types {v['tensor_types']}")


if __name__ == '__main__':
    main()
