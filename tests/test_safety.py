"""Users' files are safe: bad input ends in one message and exit status 2 before anything is written, no command writes
over its input or an earlier result it was not told to replace, and a run killed while writing a checkpoint resumes
from the last complete one. HOSTILE holds what a hard week of real use found (issue 25): users' files inside our
folders, outputs inside inputs, links out of the dataset, nested or truncated files, pipes, locks, the wrong base,
a decompression bomb, copied rows; and a command killed outright has its earlier result put back by the next one."""
import hashlib, json, os, shutil, signal, subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medgemma_lora.cli import main
from medgemma_lora.data import read_jsonl, write_jsonl


def _snapshot(root: Path) -> dict:
    "Every file under `root` (links not followed) with its sha256 and modification time: what 'nothing was written' compares."
    def sig(p):
        if p.is_symlink(): return ('link', os.readlink(p))
        return (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return {p.relative_to(root).as_posix(): sig(p) for p in sorted(root.rglob('*')) if p.is_symlink() or p.is_file()}


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    "A workspace: a dataset, an adapter trained for two steps, its merged model, predictions, and a few bad inputs."
    w = tmp_path_factory.mktemp('ws')
    main(['data', 'pediatric', '--out', str(w/'data'), '--n-train', '8', '--n-eval', '4'])
    main(['train', '--data', str(w/'data'), '--out', str(w/'adapter'), '--preset', 'pediatric', '--max-steps', '2',
          '--per_device_train_batch_size', '4', '--gradient_accumulation_steps', '1', '--r', '4', '--alpha', '8'])
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
    _hostile(w, good)
    return w


def _hostile(w: Path, good: dict):
    "What a hard week of real use puts in a workspace: users' own files in our folders, links out, broken files."
    from PIL import Image
    def copy(src, dst, extra=None):
        shutil.copytree(w/src, w/dst, symlinks=True)
        for name, text in (extra or {}).items(): (w/dst/name).write_text(text)
    copy('data', 'data_notes', {'my_notes.txt': 'notes'})
    copy('data', 'data_adapter'); shutil.copytree(w/'adapter', w/'data_adapter'/'adapter')
    copy('merged', 'merged_notes', {'notes.txt': 'mine'})
    copy('adapter', 'adapter_notes', {'notes.txt': 'mine'})
    copy('adapter', 'adapter_r')
    cfg = json.loads((w/'adapter_r'/'adapter_config.json').read_text()); cfg['r'] = 'four'
    (w/'adapter_r'/'adapter_config.json').write_text(json.dumps(cfg))
    copy('adapter', 'adapter_cut')
    wt = w/'adapter_cut'/'adapter_model.safetensors'; wt.write_bytes(wt.read_bytes()[:-64])
    (w/'outside').mkdir(); Image.new('L', (32, 32), 90).save(w/'outside'/'x.png')
    first_image = good['images'][0]
    copy('data', 'linked'); (w/'linked'/first_image).unlink(); (w/'linked'/first_image).symlink_to(w/'outside'/'x.png')
    copy('data', 'linked_dir'); shutil.rmtree(w/'linked_dir'/'images'); (w/'linked_dir'/'images').symlink_to(w/'data'/'images')
    copy('data', 'bomb'); Image.new('1', (9000, 9000)).save(w/'bomb'/first_image)  # 81 megapixels, a few kilobytes
    deep = '{"id": "x", "output": ' + '[' * 100000 + ']' * 100000 + '}\n'
    (w/'src'/'deep.jsonl').write_text(deep)
    os.mkfifo(w/'src'/'fifo.jsonl')
    (w/'src'/'huge.jsonl').write_text(json.dumps({**good, 'prompt': 'x' * 300_000}) + '\n')  # a pasted file
    shutil.copytree(w/'data'/'images', w/'dup'/'images')
    rows = [{**json.loads(l), 'metadata': {**json.loads(l)['metadata'], 'source_split': split}}
            for split in ('train', 'test') for l in (w/'data'/f"{'eval' if split == 'test' else split}.jsonl").read_text().splitlines()]
    rows.append({**rows[0], 'id': rows[0]['id'] + '-again', 'metadata': {**rows[0]['metadata'], 'source_split': 'test'}})
    (w/'dup'/'rows.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))  # a training row copied into test
    (w/'plots').mkdir(); (w/'plots'/'rates.png').write_bytes(b'my own plot')
    copy('data', 'leaky')
    with open(w/'leaky'/'eval.jsonl', 'a') as f: f.write((w/'data'/'train.jsonl').read_text().splitlines()[0] + '\n')
    copy('data', 'empty_train'); (w/'empty_train'/'train.jsonl').write_text('')
    (w/'out_link').symlink_to(w/'mine')
    me = json.dumps({'pid': os.getpid(), 'start': Path(f'/proc/{os.getpid()}/stat').read_text().rsplit(')', 1)[1].split()[19]})
    (w/'.busy.jsonl.lock').write_text(me)   # this process holds it: a `predict` to busy.jsonl runs now
    (w/'.busy_score.json.lock').write_text(me)


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
    ('train with --gradient_accumulation_steps 0', TRAIN + ['--gradient_accumulation_steps', '0'], 'gradient_accumulation_steps must be a finite number > 0'),
    ('train with --max-steps -5', TRAIN[:-1] + ['-5'], 'max_steps must be -1'),
    ('train with --num_train_epochs 0', TRAIN[:-2] + ['--num_train_epochs', '0'], 'num_train_epochs must be a finite number > 0'),
    ('train with a negative learning rate', TRAIN + ['--learning_rate', '-1'], 'learning_rate must be a finite number > 0'),
    ('train with an infinite learning rate', TRAIN + ['--learning-rate', 'inf'], 'learning_rate must be a finite number > 0, got inf'),
    ('train with an old flag', TRAIN + ['--lr', '1e-3'], '--lr: now --learning_rate'),
    ('train setting the output folder twice', TRAIN + ['--output_dir', 'x'], '--output_dir: set by the run'),
    ('train with an unknown target module', TRAIN + ['--targets', 'q_proj,qkv'], 'unknown LoRA target modules'),
    ('train with an unknown schedule', TRAIN + ['--lr_scheduler_type', 'cosine_annealing'], "invalid choice: 'cosine_annealing'"),
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
    ('predict with an adapter for a model of other shapes', ['predict', '--model', f'{W}/other_base', '--adapter', f'{W}/adapter', '--data', f'{W}/data/eval.jsonl', '--out', f'{W}/x.jsonl'], 'they differ'),
    ('predict over earlier predictions', ['predict', '--data', f'{W}/data/eval.jsonl', '--out', f'{W}/preds.jsonl'], 'pass --overwrite'),
    ('score over its predictions', ['score', 'pediatric', '--predictions', f'{W}/preds.json', '--references', f'{W}/data/eval.jsonl', '--out', f'{W}/preds.json', '--overwrite'], 'would overwrite the input'),
    ('score malformed predictions', ['score', 'pediatric', '--predictions', f'{W}/bad_preds.jsonl', '--references', f'{W}/data/eval.jsonl', '--out', f'{W}/x.json'], 'bad_preds.jsonl:2'),
    ('score a prediction without a reference', ['score', 'pediatric', '--predictions', f'{W}/unknown_id.jsonl', '--references', f'{W}/data/eval.jsonl', '--out', f'{W}/x.json'], "no reference: 'nobody'"),
    ('score over earlier metrics', ['score', 'pediatric', '--predictions', f'{W}/preds.jsonl', '--references', f'{W}/data/eval.jsonl', '--out', f'{W}/score/metrics.json'], 'pass --overwrite'),
    ('run into a folder of other files', ['run', 'clinical', '--out', f'{W}/mine', '--overwrite'], 'did not write'),
]
EVAL, PRED = f'{W}/data/eval.jsonl', f'{W}/preds.jsonl'
SCORE = ['score', 'pediatric', '--predictions', PRED, '--references', EVAL]
HOSTILE = [  # issue 25: (name, argv, words); a word starting with '!' must NOT be in the message
    # replace only what we wrote
    ('data --overwrite over a dataset holding the user\'s notes', ['data', 'rtl', '--out', f'{W}/data_notes', '--overwrite'], 'my_notes.txt); it is never replaced'),
    ('data --overwrite over a dataset holding an adapter', ['data', 'rtl', '--out', f'{W}/data_adapter', '--overwrite'], 'adapter/adapter_config.json'),
    ('merge --overwrite over a merged model holding the user\'s notes', ['merge', '--adapter', f'{W}/adapter', '--out', f'{W}/merged_notes', '--overwrite'], 'did not write (notes.txt)'),
    ('train --overwrite over a run holding the user\'s notes', ['train', '--data', f'{W}/data', '--out', f'{W}/adapter_notes', '--overwrite', '--max-steps', '2'], 'notes.txt'),
    ('train into a folder inside its data', ['train', '--data', f'{W}/data', '--out', f'{W}/data/adapter', '--max-steps', '2'], 'inside the input folder'),
    ('merge into a folder inside its adapter', ['merge', '--adapter', f'{W}/adapter', '--out', f'{W}/adapter/merged'], 'inside the input folder'),
    ('predict into its model folder', ['predict', '--model', f'{W}/merged', '--data', EVAL, '--out', f'{W}/merged/p.jsonl'], 'inside the input folder'),
    ('score over the user\'s plot without --overwrite', SCORE + ['--out', f'{W}/plots/metrics.json'], 'rates.png already exist'),
    ('score beside another report, other metrics name', SCORE + ['--out', f'{W}/score/other.json'], 'report.md already exists'),
    ('data into a symlinked --out', ['data', 'rtl', '--out', f'{W}/out_link', '--overwrite'], 'is a symbolic link'),
    ('predict into a symlinked --out', ['predict', '--data', EVAL, '--out', f'{W}/out_link'], 'is a symbolic link'),
    # paths resolved before they are trusted
    ('data with an image linked to a file outside', ['data', 'pediatric', '--from', f'{W}/linked/eval.jsonl', '--out', f'{W}/x'], '--allow-outside-images'),
    ('data with a linked images folder', ['data', 'pediatric', '--from', f'{W}/linked_dir/eval.jsonl', '--out', f'{W}/x'], '--allow-outside-images'),
    ('predict with an image linked to a file outside', ['predict', '--data', f'{W}/linked/eval.jsonl', '--out', f'{W}/x.jsonl'], 'through a symbolic link'),
    # no traceback, ever
    ('data from deeply nested JSON', ['data', 'pediatric', '--from', f'{W}/src/deep.jsonl', '--out', f'{W}/x'], 'nested too deeply'),
    ('score deeply nested predictions', SCORE[:3] + [f'{W}/src/deep.jsonl'] + SCORE[4:] + ['--out', f'{W}/x.json'], 'nested too deeply'),
    ('predict deeply nested records', ['predict', '--data', f'{W}/src/deep.jsonl', '--out', f'{W}/x.jsonl'], 'nested too deeply'),
    ('merge a truncated adapter', ['merge', '--adapter', f'{W}/adapter_cut', '--out', f'{W}/x'], 'damaged or truncated'),
    ('predict with a truncated adapter', ['predict', '--adapter', f'{W}/adapter_cut', '--data', EVAL, '--out', f'{W}/x.jsonl'], 'damaged or truncated'),
    ('merge an adapter whose r is a word', ['merge', '--adapter', f'{W}/adapter_r', '--out', f'{W}/x'], "'r' must be a positive number, got 'four'"),
    ('predict with an adapter whose r is a word', ['predict', '--adapter', f'{W}/adapter_r', '--data', EVAL, '--out', f'{W}/x.jsonl'], "got 'four'"),
    ('data from a named pipe', ['data', 'pediatric', '--from', f'{W}/src/fifo.jsonl', '--out', f'{W}/x'], 'not a regular file'),
    ('predict from a named pipe', ['predict', '--data', f'{W}/src/fifo.jsonl', '--out', f'{W}/x.jsonl'], 'not a regular file'),
    # locks
    ('predict while another predict writes the file', ['predict', '--data', EVAL, '--out', f'{W}/busy.jsonl'], 'being written by another command'),
    ('score while another score writes the file', SCORE + ['--out', f'{W}/busy_score.json'], 'being written by another command'),
    # the model you meant
    ('predict an adapter on its own merged model', ['predict', '--model', f'{W}/merged', '--adapter', f'{W}/adapter', '--data', EVAL, '--out', f'{W}/x.jsonl'], 'already holds'),
    ('predict loads an adapter on the base it records', ['predict', '--adapter', f'{W}/mismatched', '--data', EVAL, '--out', f'{W}/x.jsonl'], 'other_base'),
    # limits
    ('data with a decompression bomb', ['data', 'pediatric', '--from', f'{W}/bomb/eval.jsonl', '--out', f'{W}/x'], 'more than the 67108864 allowed'),
    ('predict with a decompression bomb', ['predict', '--data', f'{W}/bomb/eval.jsonl', '--out', f'{W}/x.jsonl'], 'more than the 67108864 allowed'),
    ('predict with a prompt of 300000 characters', ['predict', '--data', f'{W}/src/huge.jsonl', '--out', f'{W}/x.jsonl'], 'more than 200000 allowed'),
    ('data with a prompt of 300000 characters', ['data', 'pediatric', '--from', f'{W}/src/huge.jsonl', '--out', f'{W}/x'], 'more than 200000 allowed'),
    ('data with a training row copied into eval', ['data', 'pediatric', '--from', f'{W}/dup/rows.jsonl', '--out', f'{W}/x'], 'identical but for the id'),
    ('train with a training record in eval.jsonl', ['train', '--data', f'{W}/leaky', '--out', f'{W}/x', '--max-steps', '2'], 'train.jsonl and eval.jsonl: record leak'),
    ('train with an empty train.jsonl', ['train', '--data', f'{W}/empty_train', '--out', f'{W}/x', '--max-steps', '2'], 'train.jsonl holds no records'),
    ('rl with an empty train.jsonl', ['rl', '--data', f'{W}/empty_train', '--adapter', f'{W}/adapter', '--out', f'{W}/x'], 'train.jsonl: no records'),
    # messages name only this command's flags
    ('score with a missing prediction names no library argument', SCORE[:3] + [f'{W}/bad_preds.jsonl'] + SCORE[4:] + ['--out', f'{W}/x.json'], ('bad_preds.jsonl:2', '!--skip-bad', '!skip_bad')),
]


@pytest.mark.parametrize('name,argv,words', BAD + HOSTILE, ids=[b[0] for b in BAD + HOSTILE])
def test_bad_input_exits_2_with_a_message_and_writes_nothing(ws, capsys, name, argv, words):
    before = _snapshot(ws)
    with pytest.raises(SystemExit) as e: main([a.replace(W, str(ws)) for a in argv])
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert err.count(': error: ') == 1 and 'Traceback' not in err, err   # one line of error (beside argparse's usage)
    for word in (words,) if isinstance(words, str) else words:
        assert (word[1:] not in err) if word.startswith('!') else (word.replace(W, str(ws)) in err), (word, err)
    assert _snapshot(ws) == before, f'{name}: files changed'


def test_the_table_is_long_enough_and_covers_every_command():
    assert len(BAD) >= 25 and {argv[0] for _, argv, _ in BAD} >= {'data', 'train', 'merge', 'predict', 'score'}
    assert len(HOSTILE) >= 30 and {argv[0] for _, argv, _ in HOSTILE} >= {'data', 'train', 'merge', 'predict', 'score'}


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
    args = dict(data=str(ws/'data'), r=4, alpha=8, max_steps=6, per_device_train_batch_size=2, gradient_accumulation_steps=1,
                save_steps=2, logging_steps=1, learning_rate=3e-3)
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


def _run(args, **kw):
    return subprocess.run([sys.executable, '-c', *args], capture_output=True, text=True, **kw)


def test_train_overwrite_killed_puts_the_earlier_run_back(ws, tmp_path, capsys):
    "SIGKILL while `train --overwrite` trains: the earlier run is aside; the next command on the folder puts it back."
    shutil.copytree(ws/'adapter', tmp_path/'a')
    before = _snapshot(tmp_path/'a')
    kill = textwrap.dedent(f'''
        import os, signal, medgemma_lora.train as t
        t.build_trainer = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        from medgemma_lora.cli import main
        main(['train', '--data', {str(ws/"data")!r}, '--out', {str(tmp_path/"a")!r}, '--overwrite', '--max-steps', '2'])
    ''')
    r = _run([kill])
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert [p.name for p in tmp_path.glob('.a.replaced-*')] and _snapshot(tmp_path/'a') != before
    with pytest.raises(SystemExit) as e: main(['train', '--data', str(ws/'data'), '--out', str(tmp_path/'a'), '--max-steps', '2'])
    out, err = capsys.readouterr()
    assert e.value.code == 2 and 'pass --resume' in err and 'restored the earlier result' in out, out + err
    assert _snapshot(tmp_path/'a') == before and sorted(p.name for p in tmp_path.iterdir()) == ['a']


def test_merge_killed_between_its_renames_puts_the_earlier_model_back(ws, tmp_path, capsys):
    "SIGKILL after the earlier merged model was renamed aside and before the new one took its place."
    shutil.copytree(ws/'merged', tmp_path/'m')
    before = _snapshot(tmp_path/'m')
    kill = textwrap.dedent(f'''
        import os, pathlib, signal
        rename = pathlib.Path.rename
        def die_after(self, target):
            out = rename(self, target)
            if '.old-' in str(target): os.kill(os.getpid(), signal.SIGKILL)
            return out
        pathlib.Path.rename = die_after
        from medgemma_lora.cli import main
        main(['merge', '--adapter', {str(ws/"adapter")!r}, '--out', {str(tmp_path/"m")!r}, '--overwrite'])
    ''')
    r = _run([kill])
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert not (tmp_path/'m').exists() and list(tmp_path.glob('.m.old-*')) and list(tmp_path.glob('.m.tmp-*'))
    with pytest.raises(SystemExit) as e: main(['merge', '--adapter', str(ws/'adapter'), '--out', str(tmp_path/'m')])
    out, err = capsys.readouterr()
    assert e.value.code == 2 and 'pass --overwrite' in err and 'restored the earlier result' in out and 'Traceback' not in err, err
    assert _snapshot(tmp_path/'m') == before and sorted(p.name for p in tmp_path.iterdir()) == ['m']  # the temp folder is gone


def test_ctrl_c_exits_130_and_leaves_nothing_half_written(ws, tmp_path, monkeypatch, capsys):
    import medgemma_lora.sources as sources
    real = sources.materialize_images
    def interrupted(recs, out, **kw):
        real(recs, out, **kw)   # images half copied into the temporary folder...
        raise KeyboardInterrupt  # ...when the user presses Ctrl-C
    monkeypatch.setattr(sources, 'materialize_images', interrupted)
    with pytest.raises(SystemExit) as e:
        main(['data', 'pediatric', '--from', str(ws/'data'/'eval.jsonl'), '--out', str(tmp_path/'d')])
    err = capsys.readouterr().err
    assert e.value.code == 130 and 'interrupted' in err and 'Traceback' not in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_stale_lock_whose_process_id_was_reused_is_taken_over(tmp_path):
    "The lock names a live process (this one) but another start time: the process that wrote it is gone."
    (tmp_path/'.d.lock').write_text(json.dumps({'pid': os.getpid(), 'start': '1'}))
    r = subprocess.run(['medgemma-lora', 'data', 'rtl', '--out', str(tmp_path/'d'), '--n-train', '4', '--n-eval', '2'],
                       capture_output=True, text=True)
    assert r.returncode == 0 and (tmp_path/'d'/'train.jsonl').is_file() and not (tmp_path/'.d.lock').exists(), r.stderr


def test_a_full_disk_is_one_line_and_leaves_the_earlier_dataset(ws, tmp_path, monkeypatch, capsys):
    import errno, medgemma_lora.sources as sources
    shutil.copytree(ws/'data_notes', tmp_path/'d'); (tmp_path/'d'/'my_notes.txt').unlink(); (tmp_path/'d'/'broken_last_image.jsonl').unlink()
    before = _snapshot(tmp_path)
    def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device', str(tmp_path/'.d.tmp-1'/'train.jsonl'))
    monkeypatch.setattr(sources, 'write_jsonl', full)
    with pytest.raises(SystemExit) as e:
        main(['data', 'pediatric', '--out', str(tmp_path/'d'), '--n-train', '6', '--n-eval', '3', '--overwrite'])
    err = capsys.readouterr().err
    assert e.value.code == 2 and 'the disk is full' in err and 'Traceback' not in err, err
    assert _snapshot(tmp_path) == before


def test_a_failed_first_run_leaves_nothing_that_refuses_the_corrected_one(ws, tmp_path, monkeypatch, capsys):
    import medgemma_lora.train as t
    def fails(*a, **k): raise ValueError('learning rate must be finite, got inf')  # found once the model is loaded
    monkeypatch.setattr(t, 'build_trainer', fails)
    with pytest.raises(SystemExit) as e: main(['train', '--data', str(ws/'data'), '--out', str(tmp_path/'a'), '--max-steps', '2'])
    assert e.value.code == 2 and 'must be finite' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []   # no run.json left to say 'already holds a training run'



def test_a_cache_that_cannot_be_written_says_so_before_the_model_loads(tmp_path, monkeypatch, capsys):
    from medgemma_lora.sources import make_dataset

    make_dataset('clinical', tmp_path / 'ds', n_train=4, n_eval=2, verbose=False)
    (tmp_path / 'a-file').write_text('not a folder')
    monkeypatch.setenv('MEDGEMMA_LORA_CACHE', str(tmp_path / 'a-file' / 'cache'))
    with pytest.raises(SystemExit) as e:
        main(['train', '--data', str(tmp_path / 'ds'), '--out', str(tmp_path / 'ad'), '--max-steps', '1'])
    err = capsys.readouterr().err
    assert e.value.code == 2 and 'the model cache cannot be written' in err and 'gated' not in err
    assert 'Traceback' not in err and not (tmp_path / 'ad').exists()
