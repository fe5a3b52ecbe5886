"""What the first run on a real GPU depends on, checked on the CPU: MedGemma's own chat template works with TRL's
assistant-only loss, and the GPU runbook (bench/gpu_check.py) runs end to end on the tiny model."""

import json, subprocess, sys, time
from pathlib import Path

import pytest

from medgemma_lora.generate import render
from medgemma_lora.models import full_size_parts, load_processor
from medgemma_lora.prompts import chat_messages
from medgemma_lora.synth import synthesize

ROOT = Path(__file__).parents[1]
FIXTURE = Path(__file__).parent / 'fixtures' / 'gemma3_chat_template.json'


@pytest.fixture(scope='module')
def medgemma_template():
    "MedGemma 4B IT's chat template, verbatim (source and caveats in the fixture)."
    import hashlib

    d = json.loads(FIXTURE.read_text(encoding='utf-8'))
    assert hashlib.sha256(d['chat_template'].encode()).hexdigest() == d['sha256_utf8'], 'the fixture was edited'
    return d['chat_template']


@pytest.fixture(scope='module')
def medgemma_processor(medgemma_template):
    "The tiny processor carrying MedGemma's template text (the tokens differ in id only, not in name)."
    proc = load_processor('tiny')
    proc.chat_template = medgemma_template
    return proc


def test_trl_resolves_medgemma_template_for_assistant_only_loss(medgemma_processor):
    "SFTTrainer swaps in TRL's training template by exact text match; MedGemma's template must be one it knows."
    from trl.chat_template_utils import (
        gemma3_training_chat_template,
        get_training_chat_template,
        has_generation_markers,
        is_chat_template_stop_token_trained,
    )

    assert not has_generation_markers(medgemma_processor.chat_template)  # so SFTTrainer must swap a template in
    training = get_training_chat_template(medgemma_processor)
    assert training == gemma3_training_chat_template
    assert is_chat_template_stop_token_trained(medgemma_processor, chat_template=training)


def test_one_changed_character_is_refused(medgemma_processor, medgemma_template):
    "The negative control: TRL matches templates exactly, so a copy that differs by one space would fail training."
    from trl.chat_template_utils import get_training_chat_template

    proc = load_processor('tiny')
    proc.chat_template = medgemma_template.replace('{{ bos_token }}', '{{ bos_token}}', 1)
    with pytest.raises(ValueError, match='not training-compatible'):
        get_training_chat_template(proc)


def test_tiny_and_bench_processors_carry_medgemma_template(medgemma_template):
    "The tests pass on the tiny model only because its template is MedGemma's, character for character."
    assert load_processor('tiny').chat_template == medgemma_template
    assert full_size_parts()[1].chat_template == medgemma_template


def test_training_template_renders_what_inference_prompts(medgemma_processor, tmp_path):
    """Where the code assumes the templates agree: training text (TRL's template) = MedGemma's text, the prompt that
    `predict` renders is its prefix, and the loss mask covers exactly the answer and the turn's end."""
    from trl.chat_template_utils import get_training_chat_template

    proc = medgemma_processor
    training = get_training_chat_template(proc)
    for task in ('rtl', 'clinical', 'pediatric'):
        rec = synthesize(task, 1, seed=5, out_dir=tmp_path / task)[0]
        full = render(proc, rec, with_answer=True)
        msgs = chat_messages(rec, with_answer=True)
        assert proc.apply_chat_template(msgs, tokenize=False, chat_template=training) == full
        prompt = render(proc, rec)
        assert full.startswith(prompt) and full[len(prompt) :] == rec.target.strip() + '<end_of_turn>\n'
        out = proc.tokenizer.apply_chat_template(  # masks come before images are expanded, as in TRL
            msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, chat_template=training
        )
        ids, mask = out['input_ids'], out['assistant_masks']
        masked = proc.tokenizer.decode([i for i, m in zip(ids, mask) if m])
        assert masked == rec.target.strip() + '<end_of_turn>\n', masked[-80:]


def test_prompt_cache_keeps_option_probabilities_identical(tmp_path, monkeypatch):
    "Asking the cache pass for the last position's logits only changes memory, not one answer or probability."
    import torch
    from medgemma_lora import generate
    from medgemma_lora.models import load_model

    model, proc = load_model('tiny'), load_processor('tiny')
    recs = synthesize('pediatric', 4, seed=2, out_dir=tmp_path, subtask='rop') + synthesize(
        'clinical', 3, seed=2, out_dir=tmp_path
    )
    new = generate.predict(model, proc, recs, tmp_path, batch_size=4, max_new_tokens=12, progress=False)

    @torch.no_grad()
    def full_logits_cache(model, enc):  # the cache pass as it was: logits for every prompt position
        ids, mask = enc['input_ids'], enc['attention_mask']
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
        extra = {k: v for k, v in enc.items() if k not in ('input_ids', 'attention_mask', 'token_type_ids')}
        tt = {'token_type_ids': enc['token_type_ids'][:, :-1]} if 'token_type_ids' in enc else {}
        out = model(
            input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=pos[:, :-1], use_cache=True, **tt, **extra
        )
        assert out.logits.shape[1] == ids.shape[1] - 1
        return out.past_key_values

    monkeypatch.setattr(generate, 'prompt_cache', full_logits_cache)
    old = generate.predict(model, proc, recs, tmp_path, batch_size=4, max_new_tokens=12, progress=False)
    assert sum(len(r.get('option_probs', {})) for r in new) >= len(recs)  # something was scored
    assert new == old


def test_gpu_check_runs_tiny_on_cpu(tmp_path):
    "The GPU runbook, every stage, on the tiny model: what CI can check of it without a GPU."
    t0 = time.time()
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / 'bench' / 'gpu_check.py'),
            '--tiny',
            '--cases',
            '8',
            '--work',
            str(tmp_path / 'w'),
            '--json',
            str(tmp_path / 'rows.json'),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    rows = {r['stage']: r for r in json.loads((tmp_path / 'rows.json').read_text())}
    assert list(rows) == ['train-t4', 'train-native', 'merge', 'predict', 'rl']
    assert all(isinstance(r['seconds'], float) and r['peak_rss_gib'] > 0 for r in rows.values())
    assert rows['merge']['detail'].endswith('passed') and 'cpu float32' in rows['merge']['detail']
    assert '8 cases' in rows['predict']['detail'] and '0 fields scored' not in rows['predict']['detail']
    assert rows['rl']['detail'].startswith('2 GRPO steps')
    assert '| stage | policy |' in out.stdout
    print(f'gpu_check --tiny: {time.time() - t0:.0f} s')
