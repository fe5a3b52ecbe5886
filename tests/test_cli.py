"""The command line end to end, as a user meets it (the Kaggle kernel folders: tests/test_kaggle.py)."""
import json, re, subprocess, sys
from pathlib import Path

import pytest

from medgemma_lora.cli import COMMANDS, main, run_command
from medgemma_lora.score import get_scorer

ROOT = Path(__file__).resolve().parents[1]


def test_console_script_lists_every_command_and_each_has_help():
    out = subprocess.run(['medgemma-lora', '--help'], capture_output=True, text=True, check=True).stdout
    listed = [m.group(1) for l in out.split('COMMAND')[-1].splitlines() if (m := re.match(r'^    (\S+)', l))]
    assert listed == list(COMMANDS), listed
    for cmd in COMMANDS:
        sub = subprocess.run(['medgemma-lora', cmd, '--help'], capture_output=True, text=True)
        assert sub.returncode == 0 and sub.stdout.startswith(f'usage: medgemma-lora {cmd}'), (cmd, sub.stderr)
    done = subprocess.run(['medgemma-lora', 'kaggle', 'push', '--dry-run'], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and 'nothing pushed' in done.stdout and not done.stderr.strip(), done   # a command that succeeds exits 0


def test_cli_import_and_help_load_no_model_library():
    code = ('import sys\nimport medgemma_lora.cli\nassert "torch" not in sys.modules, "import"\n'
            'try: medgemma_lora.cli.main(["--help"])\nexcept SystemExit: pass\nassert "torch" not in sys.modules, "--help"')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize('task', ['rtl', 'clinical', 'pediatric'])
def test_run_end_to_end_small(tmp_path, capsys, task):
    """`medgemma-lora run` on the tiny model, shrunk: every artefact lands under one folder, the table and the task's
    headline metric print, and the headline is the scorer's."""
    out = tmp_path/'run'
    res = run_command(['run', task, '--out', str(out), '--n-train', '24', '--n-eval', '6', '--max-steps', '6'])
    printed = capsys.readouterr().out
    h = get_scorer(task).headline[0]
    assert ('| Metric | base | merged | merged, images permuted | image-only probe | merged − base | p | '
            'merged − merged, images permuted | p |') in printed
    assert f'{h}: base ' in printed and '(images permuted: ' in printed and 'image-only probe: ' in printed and f'Everything is in {out}/' in printed
    for f in ('data/train.jsonl', 'data/eval.jsonl', 'data/stats.json', 'adapter/adapter_model.safetensors',
              'adapter/loss_curve.png', 'merged/model.safetensors', 'merged/README.md', 'predictions_base.jsonl',
              'predictions_merged.jsonl', 'predictions_merged_images_permuted.jsonl', 'predictions_image-only_probe.jsonl', 'data/val.jsonl', 'metrics.json', 'report.md', 'rates.png'):
        assert (out/f).is_file(), f
    metrics = json.loads((out/'metrics.json').read_text())
    assert set(metrics['runs']) == {'base', 'merged', 'merged, images permuted', 'image-only probe'} and metrics['runs']['merged']['n_cases'] == 6
    assert metrics['runs']['image-only probe']['n_cases'] == 6
    assert [c['names'] for c in metrics['comparisons']] == [['base', 'merged'], ['merged, images permuted', 'merged']]
    assert res['headline']['metric'] == h and json.loads((out/'adapter'/'train_config.json').read_text())['sft']['max_steps'] == 6
    assert len((out/'predictions_merged.jsonl').read_text().splitlines()) == 6
    if task != 'rtl':  # a trained model writes its fields: the fast option probabilities are the reference's
        from medgemma_lora.data import read_jsonl
        from medgemma_lora.generate import _teacher_forced_option_probs, load_for_inference, render
        model, processor = load_for_inference(str(out/'merged'))
        refs = {r.id: r for r in read_jsonl(out/'data'/'eval.jsonl')}
        for row in map(json.loads, (out/'predictions_merged.jsonl').read_text().splitlines()):
            r = refs[row['id']]
            ref = _teacher_forced_option_probs(model, processor, r, out/'data', render(processor, r), row['output'])
            assert list(ref) == list(row.get('option_probs', {})), (ref, row)
            for f in ref: assert max(abs(a - b) for a, b in zip(ref[f].values(), row['option_probs'][f].values())) < 1e-5


def test_predict_and_score_cli(tmp_path, capsys):
    main(['data', 'pediatric', '--out', str(tmp_path/'d'), '--n-train', '6', '--n-eval', '9'])
    main(['predict', '--model', 'tiny', '--data', str(tmp_path/'d'/'eval.jsonl'), '--out', str(tmp_path/'p.jsonl'), '--batch-size', '4'])
    assert 'wrote 9 predictions' in capsys.readouterr().out
    rows = [json.loads(l) for l in (tmp_path/'p.jsonl').read_text().splitlines()]
    refs = {json.loads(l)['id']: json.loads(l) for l in (tmp_path/'d'/'eval.jsonl').read_text().splitlines()}
    assert len(rows) == 9
    for r in rows:  # ROP and fracture answers have choice fields, bone age (a number) has none
        assert ('option_probs' in r) == (refs[r['id']]['subtask'] in ('rop', 'fracture')), r
    assert any('option_probs' in r for r in rows)
    for r in rows:
        for field, probs in r.get('option_probs', {}).items():
            assert abs(sum(probs.values()) - 1) < 1e-5, (field, probs)
    main(['score', 'pediatric', '--predictions', str(tmp_path/'p.jsonl'), '--references', str(tmp_path/'d'/'eval.jsonl'),
          '--out', str(tmp_path/'m'/'metrics.json')])
    assert (tmp_path/'m'/'report.md').is_file() and (tmp_path/'m'/'metrics.json').is_file()


def test_score_cli_bad_input_is_a_clear_error(tmp_path, capsys):
    main(['data', 'clinical', '--out', str(tmp_path/'d'), '--n-train', '4', '--n-eval', '4'])
    (tmp_path/'p.jsonl').write_text('{"id": "x", "output": "ERROR"}\nnot json\n')
    with pytest.raises(SystemExit) as e:
        main(['score', 'clinical', '--predictions', str(tmp_path/'p.jsonl'), '--references', str(tmp_path/'d'/'eval.jsonl'), '--out', str(tmp_path/'m.json')])
    assert e.value.code == 2
    assert 'p.jsonl:2' in capsys.readouterr().err
