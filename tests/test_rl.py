"""The seeds' other phases from the command line: `probe` (Phase 1, the image-only baseline) and `rl` (Phase 3, GRPO
from an SFT adapter), on the tiny model: the files they promise, the report rows, resuming, and refusals."""
import json

import pytest

from medgemma_lora.cli import main, run_command


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    w = tmp_path_factory.mktemp('rl')
    main(['data', 'clinical', '--out', str(w/'data'), '--n-train', '48', '--n-val', '4', '--n-eval', '8'])
    main(['train', '--data', str(w/'data'), '--out', str(w/'sft'), '--preset', 'clinical', '--max-steps', '20', '--per_device_train_batch_size', '8',
          '--gradient_accumulation_steps', '1', '--learning_rate', '3e-3', '--targets', 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj'])
    return w


def test_probe_command(ws, capsys):
    m = run_command(['probe', 'clinical', '--data', str(ws/'data'), '--out', str(ws/'probe')])
    assert list(m['runs']) == ['image-only probe'] and m['runs']['image-only probe']['n_cases'] == 8
    assert m['runs']['image-only probe']['invalid_rate']['value'] == 0
    report = (ws/'probe'/'report.md').read_text()
    assert 'image-only baseline, no prompt' in report and '| image-only probe |' in capsys.readouterr().out
    rows = [json.loads(l) for l in (ws/'probe'/'predictions_image-only_probe.jsonl').read_text().splitlines()]
    assert len(rows) == 8 and all(set(r['option_probs']['verdict']) == {'ERROR', 'CORRECT'} for r in rows)


def test_rl_command_trains_compares_and_resumes(ws):
    flags = ['rl', '--data', str(ws/'data'), '--adapter', str(ws/'sft'), '--out', str(ws/'rl'), '--save-steps', '2']
    res = run_command(flags + ['--max-steps', '4'])
    assert res['train']['steps'] == 4 and res['train']['task'] == 'clinical'
    for f in ('adapter/adapter_model.safetensors', 'adapter/train_config.json', 'sft_merged/model.safetensors', 'merged/model.safetensors',
              'reward_curve.png', 'rl_summary.json', 'rl_config.json', 'log_history.json', 'eval/report.md', 'eval/metrics.json'):
        assert (ws/'rl'/f).is_file(), f
    assert json.loads((ws/'rl'/'rl_config.json').read_text())['lr'] == 3e-4   # TINY_RL under the flags: the SFT base is tiny
    assert list(res['metrics']['runs']) == ['SFT', 'SFT+GRPO'] and res['metrics']['comparisons'][0]['names'] == ['SFT', 'SFT+GRPO']
    log = json.loads((ws/'rl'/'log_history.json').read_text())
    assert sum('rewards/task_reward/mean' in h and 'rewards/format_reward/mean' in h and 'kl' in h for h in log) == 4
    assert sum('frac_reward_zero_std' in h for h in log) == 4   # groups without reward variance: logged each step
    zero = [h['frac_reward_zero_std'] for h in log if 'frac_reward_zero_std' in h]
    assert res['train']['frac_reward_zero_std_mean'] == sum(zero) / 4 and 0 <= min(zero) <= max(zero) <= 1
    with pytest.raises(SystemExit) as e: main(flags + ['--max-steps', '6'])     # an earlier run: --resume or --overwrite
    assert e.value.code == 2
    more = run_command(flags + ['--max-steps', '6', '--resume'])                  # continues from checkpoint-4
    assert more['train']['steps'] == 6


def test_rl_refuses_bad_input(ws, capsys, tmp_path):
    with pytest.raises(SystemExit) as e: main(['rl', '--data', str(ws/'data'), '--adapter', str(ws/'data'), '--out', str(tmp_path/'x')])
    assert e.value.code == 2 and 'not an adapter' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(['rl', '--data', str(ws/'data'), '--adapter', str(ws/'sft'), '--out', str(tmp_path/'x'), '--batch-size', '6'])
    assert e.value.code == 2 and 'multiple of --num-generations' in capsys.readouterr().err
    assert not (tmp_path/'x').exists()
