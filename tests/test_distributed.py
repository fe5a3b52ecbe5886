"""Data-parallel training through accelerate, on CPU: `train --num-processes 2` runs two processes over gloo, records
`world_size: 2`, keeps the effective batch, and gives the adapter of one process (QLoRA here; plain LoRA is checked
more tightly in chapter 02b). Bad launches are refused before any process starts."""
import json, os, subprocess, sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medgemma_lora.cli import main, run_command


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp('ddp')/'data'
    main(['data', 'clinical', '--out', str(d), '--n-train', '48', '--n-val', '8', '--n-eval', '8'])
    return d


def _flags(data, out, *extra):
    return ['train', '--data', str(data), '--out', str(out), '--preset', 'rtl', '--max-steps', '6', '--per_device_train_batch_size', '8',
            '--gradient_accumulation_steps', '1',
            '--r', '8', '--alpha', '16', '--learning_rate', '3e-3', '--logging_steps', '1', '--save_steps', '3', *extra]


def test_qlora_two_processes_match_one(data, tmp_path):
    """Two processes started from Python (`launch_train(None, ...)`, the route of the pipeline and of a notebook after
    CUDA started; the CLI's route is chapter 02b's) give the adapter of one process started by the CLI."""
    from medgemma_lora.distributed import launch_train
    from medgemma_lora.train import TrainConfig
    cfg = TrainConfig.preset_config('rtl', data=str(data), out=str(tmp_path/'two'), quantization='4bit', max_steps=6,
                                    per_device_train_batch_size=8, gradient_accumulation_steps=1, r=8, alpha=16, learning_rate=3e-3,
                                    logging_steps=1, save_steps=3)
    two = launch_train(None, 2, cfg)
    one = run_command(_flags(data, tmp_path/'one', '--quantization', '4bit'))
    assert (two['world_size'], two['per_device_batch_size'], two['grad_accum_per_process'], two['effective_batch']) == (2, 4, 1, 8)
    assert (one['world_size'], one['per_device_batch_size'], one['effective_batch']) == (1, 8, 8)
    assert two['steps'] == one['steps'] == 6 and two['quantization'] == '4bit'
    a, b = load_file(tmp_path/'one'/'adapter_model.safetensors'), load_file(tmp_path/'two'/'adapter_model.safetensors')
    assert a.keys() == b.keys()
    flat = lambda w: torch.cat([w[k].flatten() for k in sorted(w)])
    # measured: 1e-3 whole-adapter, 4e-3 worst tensor; the 4-bit kernels round differently for batches of 4 and 8
    assert float((flat(a) - flat(b)).norm() / flat(a).norm()) < 1e-2
    assert max(float((a[k] - b[k]).norm() / a[k].norm()) for k in a) < 2e-2
    losses = lambda p: [h['loss'] for h in json.loads((p/'log_history.json').read_text()) if 'loss' in h]
    assert max(abs(x - y) for x, y in zip(losses(tmp_path/'one'), losses(tmp_path/'two'), strict=True)) < 1e-2


def test_refused_before_launch(data, tmp_path, capsys):
    with pytest.raises(SystemExit) as e: main(_flags(data, tmp_path/'odd', '--per_device_train_batch_size', '1', '--num-processes', '2'))
    assert e.value.code == 2 and 'multiple of 2' in capsys.readouterr().err
    assert not (tmp_path/'odd').exists()
    (tmp_path/'busy').mkdir(); (tmp_path/'busy'/'notes.txt').write_text('mine')
    with pytest.raises(SystemExit) as e: main(_flags(data, tmp_path/'busy', '--num-processes', '2'))
    assert e.value.code == 2 and 'already holds' in capsys.readouterr().err
    assert [p.name for p in (tmp_path/'busy').iterdir()] == ['notes.txt']


_FORK_CHECK = '''
import json, sys
from pathlib import Path
import accelerate, torch
from medgemma_lora.models import no_cuda_calls

calls = []


def launcher(fn, args=(), num_processes=None, **kw):
    "Stands in for the fork: records what the cell asked for and writes the summary rank 0 would."
    calls.append(dict(n=num_processes, cuda=torch.cuda.is_initialized(), bnb='bitsandbytes' in sys.modules))
    out = Path(args[0]['out'])
    out.mkdir(parents=True, exist_ok=True)
    keys = ('world_size', 'per_device_batch_size', 'effective_batch', 'train_samples_per_second', 'train_loss')
    (out / 'train_summary.json').write_text(json.dumps(dict.fromkeys(keys, 0)))


accelerate.notebook_launcher = launcher
with no_cuda_calls():
    try:
        torch.cuda.is_available()
        raise SystemExit('no_cuda_calls let a CUDA call through')
    except RuntimeError:
        pass
    from medgemma_lora.distributed import notebook_train
    exec(CELL)
print(json.dumps(calls))
'''


def test_the_t4x2_cell_touches_no_cuda_before_the_fork(tmp_path):
    """Chapter 02b's GPU cell, run on a CPU as on a Kaggle T4 x2: a stand-in nvidia-smi reports two T4s, every
    torch.cuda call that could start CUDA raises, and a stand-in launcher records the fork it would make."""
    nb = json.loads((Path(__file__).resolve().parents[1]/'nbs'/'02b_distributed.ipynb').read_text())
    cell = next(''.join(c['source']) for c in nb['cells'] if 'notebook_train(t4x2' in ''.join(c['source']))
    (tmp_path/'bin').mkdir()
    smi = tmp_path/'bin'/'nvidia-smi'
    smi.write_text('#!/bin/sh\necho "0, GPU-a, Tesla T4, 7.5, 15360"\necho "1, GPU-b, Tesla T4, 7.5, 15360"\n')
    smi.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != 'CUDA_VISIBLE_DEVICES'}
    env['PATH'] = f"{tmp_path/'bin'}{os.pathsep}{env['PATH']}"
    r = subprocess.run([sys.executable, '-c', f'CELL = {cell!r}\n' + _FORK_CHECK], capture_output=True, text=True,
                       cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [dict(n=2, cuda=False, bnb=False)]
