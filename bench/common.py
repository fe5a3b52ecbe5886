"""Shared pieces of the benchmarks: a full-size random MedGemma-architecture checkpoint (no download)."""
import json
from pathlib import Path

import torch


def full_size_random_checkpoint(path, dtype=torch.bfloat16, seed=0):
    """Write a random `Gemma3ForConditionalGeneration` with MedGemma-4B's exact configuration (896 px, 256 image tokens)
    plus a processor for it to `path`; only speed and memory mean anything with it. The tokenizer is the tiny one (its
    ids fit MedGemma's vocabulary); the special-token ids of the config are set to the tokenizer's."""
    from transformers import Gemma3ForConditionalGeneration, Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil
    from medgemma_lora.prompts import load_processor, GEMMA3_SPECIAL_TOKENS
    from medgemma_lora.train import medgemma_4b_config
    path = Path(path)
    if (path/'config.json').exists(): return path
    tiny = load_processor('tiny')
    ids = dict(zip(GEMMA3_SPECIAL_TOKENS, tiny.tokenizer.convert_tokens_to_ids(list(GEMMA3_SPECIAL_TOKENS))))
    cfg = medgemma_4b_config()
    cfg.boi_token_index, cfg.eoi_token_index, cfg.image_token_index = ids['<start_of_image>'], ids['<end_of_image>'], ids['<image_soft_token>']
    cfg.text_config.pad_token_id, cfg.text_config.bos_token_id, cfg.text_config.eos_token_id = ids['<pad>'], ids['<bos>'], ids['<eos>']
    torch.manual_seed(seed)
    with torch.device('cuda' if torch.cuda.is_available() else 'cpu'):
        model = Gemma3ForConditionalGeneration(cfg).to(dtype)
        w = model.model.multi_modal_projector.mm_input_projection_weight
        with torch.no_grad(): w.normal_(0, w.shape[0] ** -0.5)
    model.save_pretrained(str(path))
    ip = Gemma3ImageProcessorPil(size={'height': 896, 'width': 896}, do_pan_and_scan=False, image_mean=[0.5]*3, image_std=[0.5]*3)
    Gemma3Processor(image_processor=ip, tokenizer=tiny.tokenizer, chat_template=tiny.chat_template, image_seq_length=256).save_pretrained(str(path))
    (path/'BENCHMARK_ONLY.txt').write_text('random weights with MedGemma-4B structure: for speed and memory measurements only\n')
    del model; torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return path


def print_table(rows, cols):
    "A Markdown table of `rows` (dicts) over `cols`."
    print('| ' + ' | '.join(cols) + ' |'); print('|' + '---|' * len(cols))
    for r in rows: print('| ' + ' | '.join(str(r.get(c, '')) for c in cols) + ' |')
