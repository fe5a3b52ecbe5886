"""Shared pieces of the benchmarks: a Markdown table printer, the T4 precision policy on a bigger GPU, a random
MedGemma-4B-architecture checkpoint that answers, and peak-memory readings."""

import resource, sys
from pathlib import Path

import torch


def print_table(rows, cols):
    "A Markdown table of `rows` (dicts) over `cols`."
    print('| ' + ' | '.join(cols) + ' |')
    print('|' + '---|' * len(cols))
    for r in rows:
        print('| ' + ' | '.join(str(r.get(c, '')) for c in cols) + ' |')


def force_t4_policy(memory_gib: float = 15.0):
    """Make this process behave as on a 16 GB T4: no bf16 (so the precision policy computes in fp32) and at most
    `memory_gib` of GPU memory (`torch.cuda.set_per_process_memory_fraction`). Returns a description for the table."""
    total = torch.cuda.get_device_properties(0).total_memory / 2**30
    torch.cuda.set_per_process_memory_fraction(min(1.0, memory_gib / total), 0)
    torch.cuda.is_bf16_supported = lambda *a, **k: False
    return f'T4 policy (fp32 compute, {memory_gib:g} GiB cap)'


def peak_rss_gib() -> float:
    "This process's peak resident memory so far, in GiB (Linux reports ru_maxrss in KiB, macOS in bytes)."
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (2**30 if sys.platform == 'darwin' else 2**20), 2)


def answer_in_vocab(model, vocab: int):
    """Zero the embedding rows (tied with `lm_head`) at ids >= `vocab`: their logits become 0 while the largest of the
    random rows in the vocabulary is positive, so greedy decoding picks tokens the tokenizer has (ids past it decode
    to '')."""
    with torch.no_grad():
        model.get_input_embeddings().weight[vocab:] = 0


def bench_model_dir(path, layers: int | None = None, seed: int = 0, dtype=torch.bfloat16) -> Path:
    """Write (once) a random MedGemma-4B-architecture checkpoint to `path`, in `dtype` (MedGemma ships bf16), that
    answers: it generates tokens of the tiny vocabulary and never stops early (eos disabled), so every generation is
    exactly `max_new_tokens` real tokens (a random model tends to repeat one token; here often a newline). `layers`
    keeps MedGemma's widths (hidden 2560, vocabulary 262,208, SigLIP at 896 px, 256 image tokens) with that many text
    and vision layers: the full-width model for CPU memory measurements."""
    from medgemma_lora.models import GEMMA3_SPECIAL_TOKENS, full_size_parts, random_gemma3, save_checkpoint

    path = Path(path)
    if (path / 'config.json').exists():
        return path
    cfg, proc = full_size_parts()
    if layers:
        cfg.text_config.num_hidden_layers = layers
        cfg.text_config.layer_types = (['sliding_attention'] * (layers - 1) + ['full_attention'])[:layers]
        cfg.vision_config.num_hidden_layers = layers
    tok = proc.tokenizer
    ids = dict(zip(GEMMA3_SPECIAL_TOKENS, tok.convert_tokens_to_ids(list(GEMMA3_SPECIAL_TOKENS))))
    cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id = (
        ids['<pad>'],
        ids['<bos>'],
        [ids['<eos>'], ids['<end_of_turn>']],
    )
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model = random_gemma3(cfg, seed, device=device)
    answer_in_vocab(model, len(tok))
    g = model.generation_config
    g.bos_token_id, g.pad_token_id, g.eos_token_id = ids['<bos>'], ids['<pad>'], None  # a fixed number of tokens
    save_checkpoint(model.to(dtype), proc, path)
    (path / 'BENCHMARK_ONLY.txt').write_text(
        'random weights with MedGemma-4B widths: for speed and memory measurements only; answers are tokens of the '
        'tiny vocabulary and eos is disabled, so generations are exactly max_new_tokens long\n'
    )
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return path
