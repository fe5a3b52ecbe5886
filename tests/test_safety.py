"""Users' files are safe: bad input ends in one message and exit status 2 before anything is written, no command writes
over its input or an earlier result it was not told to replace, and a run killed while writing a checkpoint resumes
from the last complete one."""
import json, os, shutil, subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medgemma_lora.cli import main
from medgemma_lora.data import read_jsonl, write_jsonl


def _snapshot(root: Path) -> dict:
    "Every file under `root` with its size and modification time: what 'nothing was written' compares."
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    "A workspace: a dataset, an adapter trained for two steps, its merged model, predictions, and a few bad inputs."
    w = tmp_path_factory.mktemp('ws')
    main(['data', 'pediatric', '--out', str(w/'data'), '--n-train', '8', '--n-eval', '4'])
    main(['train', '--data', str(w/'data'), '--out', str(w/'adapter'), '--preset', 'pediatric', '--max-steps', '2',
          '--batch-size', '4', '--grad-accum', '1', '--r', '4', '--alpha', '8'])
    main(['merge', '--adapter', str(w/'adapter'), '--out', str(w/'merged')])
    main(['predict', '--data', str(w/'data'/'eval.jsonl'), '--out', str(w/'preds.jsonl'), '--batch-size', '4'])
    main(['score', 'pediatric', '--predictions', str(w/'preds.jsonl'), '--references', str(w/'data'/'eval.jsonl'), '--out', str(w/'score'/'metrics.json')])
    good = json.loads((w/'data'/'eval.jsonl').read_text().splitlines()[0])
    (w/'src').mkdir()
    (w/'src'/'nan.jsonl').write_text(json.dumps(good).replace('"patient_id": "', '"patient_id": NaN, "x": "') + '\n')
    (w/'src'/'inf.jsonl').write_text(json.dumps({**good, 'fields': {**good['fields'], 'age_months': 1}}).replace('"age_months": 1', '"age_months": Infinity') + '\n')
    (w/'src'/'escape.jsonl').write_text(json.dumps({**good, 'images': ['../../etc/hosts']}) + '\n')
    (w/'src'/'absolute.jsonl').write_text(json.dumps({**good, 'images': ['/etc/hosts']}) + '\n')
    broken = read_jsonl(w/'data'/'eval.jsonl'); broken[-1].images = ['images/missing.png']
    write_jsonl(broken, w/'data'/'broken_last_image.jsonl')
    (w/'bad_preds.jsonl').write_text('{"id": "x", "output": "{}"}\nnot json\n')
    rows = (w/'preds.jsonl').read_text().splitlines()
    (w/'unknown_id.jsonl').write_text('\n'.join(rows + ['{"id": "nobody", "output": "{}"}']) + '\n')
    shutil.copy(w/'preds.jsonl', w/'preds.json')
    (w/'mine').mkdir(); (w/'mine'/'thesis.tex').write_text('years of work')
    (w/'changed').mkdir(); shutil.copytree(w/'data', w/'changed'/'data')
    (w/'changed'/'data'/'train.jsonl').write_text(''.join(l + '\n' for l in (w/'data'/'train.jsonl').read_text().splitlines()[:-1]))
    # an adapter whose recorded base has other shapes than the one it was trained on
    from medgemma_lora.models import load_processor, random_gemma3, save_checkpoint, tiny_config
    proc = load_processor('tiny'); cfg = tiny_config(proc); cfg.text_config.hidden_size = 32; cfg.text_config.head_dim = 8
    save_checkpoint(random_gemma3(cfg), proc, w/'other_base')
    shutil.copytree(w/'adapter', w/'mismatched')
    tc = json.loads((w/'mismatched'/'train_config.json').read_text()); tc['model'] = str(w/'other_base')
    (w/'mismatched'/'train_config.json').write_text(json.dumps(tc))
    return w


W = '{w}'
TRAIN = ['train', '--data', f'{W}/data', '--out', f'{W}/new_adapter', '--max-steps', '2']
BAD = [  # (name, argv with {w} for the workspace, words the message must hold)
    ('data into an earlier dataset', ['data', 'rtl', '--out', f'{W}/data'], 'pass --overwrite'),
    ('data over its own source', ['data', 'pediatric', '--from', f'{W}/data/train.jsonl', '--out', f'{W}/data', '--overwrite'], 'would overwrite the input'),
    ('data into a folder of other files', ['data', 'rtl', '--out', f'{W}/mine', '--overwrite'], 'did not write'),
    ('data with --n-train -1', ['data', 'rtl', '--out', f'{W}/x', '--n-train', '-1'], 'must be a whole number >= 0'),
    ('data with --n-eval -3', ['data', 'rtl', '--out', f'{W}/x', '--n-eval', '-3'], 'must be >= 1'),
    ('data from a missing file', ['data', 'clinical', '--from', f'{W}/nope.jsonl', '--out', f'{W}/x'], 'no such file'),
    ('data with a NaN patient id', ['data', 'pediatric', '--from', f'{W}/src/nan.jsonl', '--out', f'{W}/x'], 'NaN is not valid JSON'),
    ('data with an infinite age', ['data', 'pediatric', '--from', f'{W}/src/inf.jsonl', '--out', f'{W}/x'], 'Infinity is not valid JSON'),
    ('data with an image path that climbs out', ['data', 'pediatric', '--from', f'{W}/src/escape.jsonl', '--out', f'{W}/x'], 'leaves the dataset folder'),
    ('data with an absolute image path', ['data', 'pediatric', '--from', f'{W}/src/absolute.jsonl', '--out', f'{W}/x'], '--allow-outside-images'),
    ('data for an unknown task', ['data', 'radiology', '--out', f'{W}/x'], 'invalid choice'),
    ('data for an unknown subtask', ['data', 'pediatric', '--subtask', 'elbow', '--out', f'{W}/x'], "unknown subtask 'elbow'"),
    ('train with --grad-accum 0', TRAIN + ['--grad-accum', '0'], 'grad_accum must be > 0'),
    ('train with --max-steps -5', TRAIN[:-1] + ['-5'], 'max_steps must be -1'),
    ('train with --epochs 0', TRAIN[:-2] + ['--epochs', '0'], 'epochs must be > 0'),
    ('train with a negative learning rate', TRAIN + ['--lr', '-1'], 'lr must be > 0'),
    ('train with an unknown target module', TRAIN + ['--targets', 'q_proj,qkv'], 'unknown LoRA target modules'),
    ('train with an unknown schedule', TRAIN + ['--scheduler', 'cosine_annealing'], 'unknown scheduler'),
    ('train with 3-bit weights', TRAIN + ['--quantization', '3bit'], 'quantization must be'),
    ('train without data', ['train', '--data', f'{W}/nope', '--out', f'{W}/x'], 'train.jsonl not found'),
    ('train into a finished run', ['train', '--data', f'{W}/data', '--out', f'{W}/adapter', '--max-steps', '2'], 'pass --resume to continue it'),
    ('train resumed on other data', ['train', '--data', f'{W}/changed/data', '--out', f'{W}/adapter', '--max-steps', '4', '--resume'], 'was trained on other data'),
    ('train into its data folder', ['train', '--data', f'{W}/data', '--out', f'{W}/data', '--overwrite'], 'would overwrite the input'),
    ('train into a folder of other files', ['train', '--data', f'{W}/data', '--out', f'{W}/mine', '--overwrite'], 'did not write'),
    ('merge into its adapter', ['merge', '--adapter', f'{W}/adapter', '--out', f'{W}/adapter', '--overwrite'], 'would overwrite the input'),
    ('merge a folder that is no adapter', ['merge', '--adapter', f'{W}/data', '--out', f'{W}/x'], 'adapter_config.json'),
    ('merge into an earlier merged model', ['merge', '--adapter', f'{W}/adapter', '--out', f'{W}/merged'], 'pass --overwrite'),
    ('merge into a folder of other files', ['merge', '--adapter', f'{W}/adapter', '--out', f'{W}/mine', '--overwrite'], 'did not write'),
    ('merge an adapter into a base of other shapes', ['merge', '--adapter', f'{W}/mismatched', '--out', f'{W}/x'], 'does not fit its base'),
    ('predict over its references', ['predict', '--data', f'{W}/data/eval.jsonl', '--out', f'{W}/data/eval.jsonl', '--overwrite'], 'would overwrite the input'),
    ('predict with --batch-size 0', ['predict', '--data', f'{W}/data/eval.jsonl', '--out', f'{W}/x.jsonl', '--batch-size', '0'], 'must be >= 1'),
    ('predict with --batch-size -1', ['predict', '--data', f'{W}/data/eval.jsonl', '--out', f'{W}/x.jsonl', '--batch-size', '-1'], 'must be >= 1'),
    ('predict with a bad last image', ['predict', '--data', f'{W}/data/broken_last_image.jsonl', '--out', f'{W}/x.jsonl'], 'images/missing.png'),
    ('predict with a folder that is no adapter', ['predict', '--data', f'{W}/data/eval.jsonl', '--adapter', f'{W}/data', '--out', f'{W}/x.jsonl'], 'adapter_config.json'),
    ('predict with an adapter for a model of other shapes', ['predict', '--model', f'{W}/other_base', '--adapter', f'{W}/adapter', '--data', f'{W}/data/eval.jsonl', '--out', f'{W}/x.jsonl'], 'does not fit the model'),
    ('predict over earlier predictions', ['predict', '--data', f'{W}/data/eval.jsonl', '--out', f'{W}/preds.jsonl'], 'pass --overwrite'),
    ('score over its predictions', ['score', 'pediatric', '--predictions', f'{W}/preds.json', '--references', f'{W}/data/eval.jsonl', '--out', f'{W}/preds.json', '--overwrite'], 'would overwrite the input'),
    ('score malformed predictions', ['score', 'pediatric', '--predictions', f'{W}/bad_preds.jsonl', '--references', f'{W}/data/eval.jsonl', '--out', f'{W}/x.json'], 'bad_preds.jsonl:2'),
    ('score a prediction without a reference', ['score', 'pediatric', '--predictions', f'{W}/unknown_id.jsonl', '--references', f'{W}/data/eval.jsonl', '--out', f'{W}/x.json'], "no reference: 'nobody'"),
    ('score over earlier metrics', ['score', 'pediatric', '--predictions', f'{W}/preds.jsonl', '--references', f'{W}/data/eval.jsonl', '--out', f'{W}/score/metrics.json'], 'pass --overwrite'),
    ('run into a folder of other files', ['run', 'clinical', '--out', f'{W}/mine', '--overwrite'], 'did not write'),
]


@pytest.mark.parametrize('name,argv,words', BAD, ids=[b[0] for b in BAD])
def test_bad_input_exits_2_with_a_message_and_writes_nothing(ws, capsys, name, argv, words):
    before = _snapshot(ws)
    with pytest.raises(SystemExit) as e: main([a.replace(W, str(ws)) for a in argv])
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert words in err and 'Traceback' not in err, err
    assert _snapshot(ws) == before, f'{name}: files changed'


def test_the_table_is_long_enough_and_covers_every_command():
    assert len(BAD) >= 25 and {argv[0] for _, argv, _ in BAD} >= {'data', 'train', 'merge', 'predict', 'score'}


def test_overwrite_replaces_only_when_asked_and_only_what_it_replaces(ws, tmp_path):
    shutil.copytree(ws/'data', tmp_path/'data')  # with broken_last_image.jsonl, a file that `data` did not write
    argv = ['data', 'pediatric', '--out', str(tmp_path/'data'), '--n-train', '6', '--n-eval', '3', '--seed', '5', '--overwrite']
    with pytest.raises(ValueError, match=r'did not write \(broken_last_image.jsonl\)'):
        from medgemma_lora.sources import make_dataset
        make_dataset('pediatric', tmp_path/'data', n_train=6, n_eval=3, seed=5, overwrite=True)
    (tmp_path/'data'/'broken_last_image.jsonl').unlink()
    main(argv)
    assert len(read_jsonl(tmp_path/'data'/'train.jsonl')) == 6 and sorted(p.name for p in tmp_path.iterdir()) == ['data']


def test_a_run_killed_while_writing_a_checkpoint_resumes_from_the_last_complete_one(ws, tmp_path, capsys):
    """The process dies (os._exit) after checkpoint-4's weights and optimizer are written but before its trainer state:
    resuming passes over checkpoint-4, continues from checkpoint-2, and ends with the uninterrupted run's adapter."""
    args = dict(data=str(ws/'data'), r=4, alpha=8, max_steps=6, batch_size=2, grad_accum=1, save_steps=2, logging_steps=1, lr=3e-3)
    script = textwrap.dedent(f'''
        import os, transformers
        from medgemma_lora.train import TrainConfig, train
        save_rng = transformers.Trainer._save_rng_state
        def die(self, output_dir):
            if self.state.global_step >= 4: os._exit(9)   # killed in the middle of writing checkpoint-4
            return save_rng(self, output_dir)
        transformers.Trainer._save_rng_state = die
        train(TrainConfig.preset_config('rtl', out={str(tmp_path/"killed")!r}, **{args!r}), progress=False)
    ''')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, env=env)
    assert r.returncode == 9, r.stderr[-2000:]
    ck = tmp_path/'killed'/'checkpoints'
    assert (ck/'checkpoint-4'/'adapter_model.safetensors').is_file() and not (ck/'checkpoint-4'/'trainer_state.json').exists()
    from medgemma_lora.train import TrainConfig, train
    resumed = train(TrainConfig.preset_config('rtl', out=str(tmp_path/'killed'), **args), resume=True, progress=False)
    out = capsys.readouterr().out
    assert 'checkpoint-2' in out and 'passing over incomplete checkpoint-4' in out, out
    assert resumed['resumed_from'] == 'checkpoint-2' and resumed['steps'] == 6
    full = train(TrainConfig.preset_config('rtl', out=str(tmp_path/'full'), **args), progress=False)
    a, b = load_file(tmp_path/'full'/'adapter_model.safetensors'), load_file(tmp_path/'killed'/'adapter_model.safetensors')
    assert full['steps'] == 6 and a.keys() == b.keys()
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_two_writers_on_one_output_folder(ws, tmp_path):
    from medgemma_lora.data import output_lock
    with output_lock(tmp_path/'d'):
        r = subprocess.run(['medgemma-lora', 'data', 'rtl', '--out', str(tmp_path/'d'), '--n-train', '4', '--n-eval', '2'],
                           capture_output=True, text=True)
    assert r.returncode == 2 and 'being written by another command' in r.stderr, r.stderr
    assert not (tmp_path/'d').exists()
