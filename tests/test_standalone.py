"""Each notebook runs alone, the way a Kaggle or Colab kernel runs it: copied by itself into an empty folder, with the
package installed from its wheel without its extras, no nbdev, `KAGGLE_KERNEL_RUN_TYPE=Batch`, on a CPU (so every
`#| gpu` cell, and every `#| extra: NAME` cell, must skip itself with a note), executed by nbclient in a fresh kernel."""
import json, os, shutil, subprocess, sys, textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / 'nbs').glob('0*.ipynb'))

# A `sitecustomize` that makes nbdev (and the repository checkout) invisible, as on Kaggle/Colab.
_BLOCK = textwrap.dedent('''
    import sys, importlib.abc
    class _NoNbdev(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('nbdev', 'execnb', 'xgrammar', 'kaggle', 'slugify', 'llama_cpp', 'gguf'):  # no extras either
                raise ModuleNotFoundError(f"No module named {name!r}")
    sys.meta_path.insert(0, _NoNbdev())
''')

_RUN = textwrap.dedent('''
    import sys, nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[1], as_version=4)
    NotebookClient(nb, timeout=1200, kernel_name='python3', resources={'metadata': {'path': '.'}}).execute()
    nbformat.write(nb, sys.argv[1])
''')


@pytest.fixture(scope='session')
def standalone_env(tmp_path_factory):
    "PYTHONPATH with the package installed from a wheel built from this checkout, and nbdev blocked."
    d = tmp_path_factory.mktemp('standalone')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', str(d / 'wheel'), str(ROOT)],
                   check=True, cwd=d)
    wheel = next((d / 'wheel').glob('*.whl'))
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(d / 'site'), str(wheel)], check=True)
    (d / 'block').mkdir(); (d / 'block' / 'sitecustomize.py').write_text(_BLOCK)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env.update(PYTHONPATH=os.pathsep.join([str(d / 'block'), str(d / 'site')]), KAGGLE_KERNEL_RUN_TYPE='Batch',
               CUDA_VISIBLE_DEVICES='', MPLBACKEND='Agg', OMP_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false')
    check = subprocess.run([sys.executable, '-c', 'import medgemma_lora, sys; print(medgemma_lora.__file__); import nbdev'],
                           env=env, capture_output=True, text=True, cwd=d)
    assert str(d / 'site') in check.stdout and "No module named 'nbdev'" in check.stderr, (check.stdout, check.stderr)
    extras = subprocess.run([sys.executable, '-c', 'import xgrammar'], env=env, capture_output=True, text=True, cwd=d)
    assert "No module named 'xgrammar'" in extras.stderr, extras.stderr
    return env


def _execute(nb: Path, env: dict, folder: Path):
    "Copy `nb` alone into `folder` and run it there in a fresh kernel; returns (returncode, output tail, executed cells)."
    folder.mkdir(parents=True)
    shutil.copy(nb, folder / nb.name)
    r = subprocess.run([sys.executable, '-c', _RUN, nb.name], cwd=folder, env=env, capture_output=True, text=True)
    cells = json.loads((folder / nb.name).read_text())['cells'] if r.returncode == 0 else []
    return r.returncode, (r.stdout + r.stderr)[-4000:], cells


@pytest.fixture(scope='session')
def executions(request, standalone_env, tmp_path_factory):
    "The selected notebooks, run two at a time (as nbdev_test does on CI's two cores), in the background."
    names = {item.callspec.params['nb'].stem for item in request.session.items
             if item.originalname == 'test_notebook_runs_alone' and hasattr(item, 'callspec')}
    root = tmp_path_factory.mktemp('alone')
    pool = ThreadPoolExecutor(max_workers=2)
    heavy_first = sorted((nb for nb in NOTEBOOKS if nb.stem in names), key=lambda nb: -nb.stat().st_size)
    yield {nb.stem: pool.submit(_execute, nb, standalone_env, root / nb.stem) for nb in heavy_first}
    pool.shutdown(wait=True)


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_alone(nb, executions):
    code, tail, cells = executions[nb.stem].result()
    assert code == 0, tail
    for c in cells:   # every GPU cell said it was skipped
        src = ''.join(c['source'])
        out = ''.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', ''))  # printed or shown
                      for o in c.get('outputs', []))
        flags = [l.strip() for l in src.splitlines()] if c['cell_type'] == 'code' else []
        if '#| gpu' in flags:
            assert 'skipped: this cell needs a GPU' in out, src[:200]
        if any(f.startswith('#| extra:') for f in flags):   # the extras are missing here: the cell said so
            assert 'extra, which is not installed: pip install' in out, src[:200]
        if '#| slow' in flags:   # nbdev_test skips these (tst_flags): here is where they run, so they must have run
            assert c.get('execution_count') and out.strip(), src[:200]
