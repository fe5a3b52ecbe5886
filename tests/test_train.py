"""Training, resuming, merging and the model layer, end to end on the embedded tiny model (CPU)."""
import json, math, os, re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medgemma_lora.data import write_jsonl
from medgemma_lora.synth import synthesize
from medgemma_lora.models import QUANT_SKIP_MODULES, compute_dtype, load_model, load_processor
from medgemma_lora.train import ALL_LINEAR, TrainConfig, lora_target_regex, train


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('rtl')
    recs = synthesize('rtl', 40, seed=3, out_dir=d)
    write_jsonl(recs[:32], d/'train.jsonl'); write_jsonl(recs[32:], d/'eval.jsonl')
    return d


def _cfg(data_dir, out, **kw):
    base = dict(data=str(data_dir), out=str(out), r=4, alpha=8, targets=ALL_LINEAR, learning_rate=3e-3, max_steps=8,
                per_device_train_batch_size=4, gradient_accumulation_steps=1, save_steps=4, logging_steps=2, dropout=0.0)
    return TrainConfig.preset_config('rtl', **{**base, **kw})


def test_precision_policy_never_fp16():
    assert compute_dtype('cpu') is torch.float32
    assert compute_dtype('cuda', bf16_supported=False) is torch.float32   # T4
    assert compute_dtype('cuda', bf16_supported=True) is torch.bfloat16


def test_lora_regex_never_touches_vision_tower():
    model = load_model('tiny')
    rx = re.compile(lora_target_regex())
    hits = [n for n, _ in model.named_modules() if rx.fullmatch(n)]
    assert hits and all(n.startswith('model.language_model.layers.') for n in hits)
    from peft import LoraConfig, get_peft_model
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=lora_target_regex(('q_proj', 'k_proj', 'v_proj'))))
    lora_names = [n for n, _ in peft_model.named_parameters() if 'lora_' in n]
    assert lora_names and not any('vision_tower' in n or 'multi_modal_projector' in n for n in lora_names)


def test_4bit_loading_quantizes_language_model_only():
    model = load_model('tiny', quantization='4bit')
    kinds = {n: type(m).__name__ for n, m in model.named_modules()}
    q = [n for n, k in kinds.items() if k == 'Linear4bit']
    assert q and all(n.startswith('model.language_model.') for n in q)
    assert not any(n.startswith(tuple(QUANT_SKIP_MODULES)) for n in q)
    assert kinds['model.vision_tower.encoder.layers.0.self_attn.q_proj'] == 'Linear'


def test_resume_matches_uninterrupted_run(data_dir, tmp_path):
    full = train(_cfg(data_dir, tmp_path/'full'))
    stopped = train(_cfg(data_dir, tmp_path/'killed'), stop_at_step=4)
    assert stopped['steps'] == 4 and stopped['stopped_early']
    assert (tmp_path/'killed'/'checkpoints'/'checkpoint-4').is_dir()
    resumed = train(_cfg(data_dir, tmp_path/'killed'), resume=True)
    assert resumed['steps'] == full['steps'] == 8
    files = lambda d: sorted(p.name for p in d.iterdir() if p.is_file())
    assert files(tmp_path/'full') == files(tmp_path/'killed')
    a, b = load_file(tmp_path/'full'/'adapter_model.safetensors'), load_file(tmp_path/'killed'/'adapter_model.safetensors')
    assert a.keys() == b.keys()
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_qlora_trains_and_merges_via_cli(data_dir, tmp_path, capsys):
    from medgemma_lora.cli import main
    main(['train', '--data', str(data_dir), '--out', str(tmp_path/'qlora'), '--preset', 'pediatric', '--quantization', '4bit',
          '--max-steps', '4', '--per_device_train_batch_size', '4', '--learning-rate', '3e-3', '--r', '4', '--alpha', '8'])
    out = capsys.readouterr().out
    assert f'wrote adapter to {tmp_path/"qlora"}' in out
    summary = json.loads((tmp_path/'qlora'/'train_summary.json').read_text())
    assert summary['steps'] == 4 and summary['quantization'] == '4bit' and summary['trainable_params'] > 0
    cfg = json.loads((tmp_path/'qlora'/'train_config.json').read_text())
    assert cfg['r'] == 4 and cfg['dropout'] == 0.1 and tuple(cfg['targets']) == ALL_LINEAR   # preset + overrides
    main(['merge', '--adapter', str(tmp_path/'qlora'), '--out', str(tmp_path/'merged')])
    out = capsys.readouterr().out
    assert 'wrote merged model to' in out and 'greedy identical True' in out
    report = json.loads((tmp_path/'merged'/'merge_report.json').read_text())
    assert report['passed'] and report['dtype'] == 'float32'   # merged into the full-precision base, not 4-bit


def test_train_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='train.jsonl'):
        train(_cfg(tmp_path, tmp_path/'out'))


@pytest.mark.skipif(os.environ.get('HF_HUB_OFFLINE') != '1', reason='needs HF_HUB_OFFLINE=1 (tests/run.sh sets it)')
def test_unavailable_gated_model_says_how_to_get_access():
    for load in (lambda: load_model('google/medgemma-4b-it'), lambda: load_processor('google/medgemma-4b-it')):
        with pytest.raises(OSError, match='HF_TOKEN') as e: load()
        assert 'Kaggle Models' in str(e.value)


@pytest.mark.parametrize('scheduler', ['constant', 'cosine'])
def test_the_schedule_reaches_the_trainer(data_dir, tmp_path, scheduler):
    """The learning rate the trainer logs follows TRL's `lr_scheduler_type`: flat for `constant`; for `cosine`, after the
    warm-up, peak * (1 + cos(pi * progress)) / 2 (40 steps: about 0.88 of peak at step 10 and 0.17 at step 30)."""
    cfg = _cfg(data_dir, tmp_path/scheduler, lr_scheduler_type=scheduler, max_steps=40, per_device_train_batch_size=2,
               logging_steps=1, save_steps=40, warmup_steps=0.0, learning_rate=1e-3)
    train(cfg)
    lrs = {h['step']: h['learning_rate'] for h in json.loads((tmp_path/scheduler/'log_history.json').read_text()) if 'learning_rate' in h}
    assert len(lrs) == 40
    if scheduler == 'constant':
        assert all(abs(lr - 1e-3) < 1e-12 for lr in lrs.values()), lrs
    else:  # the value logged at step s is the rate step s was taken with: s - 1 steps into the schedule
        for s, lr in lrs.items(): assert abs(lr - 1e-3 * (1 + math.cos(math.pi * (s - 1) / 40)) / 2) < 1e-9, (s, lr)
        assert 0.86 < lrs[10] / 1e-3 < 0.90 and 0.15 < lrs[30] / 1e-3 < 0.19


def test_every_setting_has_one_home():
    """Each `TrainConfig` field is ours (TRL has no setting of that name) and read by name in medgemma_lora/train.py;
    the `train`/`run` argument builders write no flag by hand, neither ours nor TRL's."""
    import inspect
    from dataclasses import fields
    from trl import SFTConfig
    import medgemma_lora.cli as cli, medgemma_lora.train
    train_src = Path(medgemma_lora.train.__file__).read_text()
    train_args, run_args = inspect.getsource(cli._train_args), inspect.getsource(cli._run_args)
    trl = {f.name for f in fields(SFTConfig)}
    for f in fields(TrainConfig):
        assert f.name not in trl, f'{f.name} is a TRL setting: take it from SFTConfig'
        assert re.search(rf'\bcfg\.{f.name}\b', train_src), f'{f.name} is never used'
    for name in [f.name for f in fields(TrainConfig)] + sorted(trl):
        for flag in (f"'--{name}'", f"'--{name.replace('_', '-')}'"):
            assert flag not in train_args and (name in cli.RUN_SETS or flag not in run_args), f'{flag} is written by hand'
