"""The Kaggle kernels as a user meets them: metadata generated from settings.ini and the notebooks, badges and install
cells rewritten by one command, offline validation from anywhere in the checkout, and the optional extras."""
import json, os, re, runpy, shutil, subprocess, sys
from pathlib import Path

import pytest
import setuptools

from medgemma_lora.kaggle_kernels import (KAGGLE_MEDGEMMA_SOURCE, badge_line, install_cell, kaggle_push, kaggle_settings,
                                          kernel_needs, kernel_slug, sync_kaggle, validate_kernel_folder, write_kaggle_folders)

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT/'nbs').glob('[0-9][0-9]*_*.ipynb'))


def _copy_repo(dst, readme=False):
    "settings.ini and nbs/ (and README.md) of this checkout in `dst`: the rewriting commands never touch the real notebooks."
    shutil.copy(ROOT/'settings.ini', dst); shutil.copytree(ROOT/'nbs', dst/'nbs')
    if readme: shutil.copy(ROOT/'README.md', dst)
    return dst


def _set(ini: Path, **kw):
    text = ini.read_text()
    for k, v in kw.items():
        text, n = re.subn(rf'(?m)^{k} = .*$', f'{k} = {v}', text)
        assert n == 1, k
    ini.write_text(text)


def _cells(nb: Path): return json.loads(nb.read_text())['cells']


def _md(nb: Path): return '\n'.join(''.join(c['source']) for c in _cells(nb) if c['cell_type'] == 'markdown')


# --- push --dry-run from the checkout -------------------------------------------------------------------------------

@pytest.mark.parametrize('where', ['.', 'nbs', 'kaggle/02_train_qlora'])
def test_dry_run_passes_from_the_checkout_and_its_subfolders(where):
    r = subprocess.run(['medgemma-lora', 'kaggle', 'push', '--dry-run'], capture_output=True, text=True, cwd=ROOT/where)
    assert r.returncode == 0, r.stderr
    assert f'{len(CHAPTERS)} kernel folders valid; dry run: nothing pushed' in r.stdout
    assert len(re.findall(r'(?m)^ok  ', r.stdout)) == len(CHAPTERS)
    s = kaggle_settings(ROOT)   # no release tag needed: every kernel attaches the wheel that push uploads
    assert f"every kernel installs {s['repo']} {s['version']} from the wheel dataset {s['wheel_dataset']}" in r.stdout


def test_push_needs_the_wheel_dataset_and_the_release_tag(tmp_path):
    """A kernel that does not attach the wheel dataset is refused; a real push refuses, with exit 2 and before any
    upload, when the tag Colab installs from is not on the remote."""
    repo = _copy_repo(tmp_path)
    _set(repo/'settings.ini', git_url='https://github.com/medgemma-lora-no-such-owner/no-such-repo', version='0.0.0.dev9')
    write_kaggle_folders(repo)
    r = subprocess.run(['medgemma-lora', 'kaggle', 'push', '--dir', str(repo/'kaggle')], capture_output=True, text=True)
    assert r.returncode == 2 and 'the release tag 0.0.0.dev9 is not on' in r.stderr, r
    assert not (repo/'kaggle'/'_wheel').exists()   # nothing built, nothing uploaded
    f = repo/'kaggle'/'00_data'/'kernel-metadata.json'
    meta = json.loads(f.read_text()); meta['dataset_sources'] = []; f.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r'00_data do not attach the wheel dataset medgemma-lora/no-such-repo-wheel'):
        kaggle_push(repo/'kaggle', dry_run=True)


def test_dry_run_outside_a_checkout_says_where_it_looked(tmp_path):
    r = subprocess.run(['medgemma-lora', 'kaggle', 'push', '--dry-run'], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and 'settings.ini not found' in r.stderr and str(tmp_path.resolve()) in r.stderr, r


# --- kernel metadata from settings.ini and the notebooks -----------------------------------------------------------

def test_committed_kernel_folders_are_what_the_notebooks_and_settings_make(tmp_path):
    """Every chapter has its folder, exactly as write_kaggle_folders writes it now (a new chapter or a changed `#| gpu`
    cell without a rerun fails here); GPU kernels are the chapters whose `#| gpu` cells use MedGemma."""
    assert sorted(p.parent.name for p in (ROOT/'kaggle').glob('*/kernel-metadata.json')) == CHAPTERS
    made = write_kaggle_folders(_copy_repo(tmp_path))
    for d in made:
        assert (d/'kernel-metadata.json').read_text() == (ROOT/'kaggle'/d.name/'kernel-metadata.json').read_text(), d.name
    slugs = [kernel_slug(n) for n in CHAPTERS]
    gpu = []
    for nb in CHAPTERS:
        meta = json.loads((ROOT/'kaggle'/nb/'kernel-metadata.json').read_text())
        needs = kernel_needs(ROOT/'nbs'/f'{nb}.ipynb', slugs)
        assert meta['enable_gpu'] == needs['gpu'] and meta['is_private'] is not kaggle_settings(ROOT)['public']
        assert (ROOT/'kaggle'/nb/meta['code_file']).resolve() == (ROOT/'nbs'/f'{nb}.ipynb').resolve()
        if meta['enable_gpu']:
            gpu.append(nb)
            assert meta['machine_shape'] == 'NvidiaTeslaT4' and meta['model_sources'] == [KAGGLE_MEDGEMMA_SOURCE]
        else: assert meta['model_sources'] == [] and 'machine_shape' not in meta, nb
    assert '02_train_qlora' in gpu and '00_data' not in gpu and '06a_kaggle_kernels' not in gpu


def test_user_visibility_and_kernel_sources_follow_settings_and_gpu_cells(tmp_path, capsys):
    repo = _copy_repo(tmp_path)
    _set(repo/'settings.ini', kaggle_user='someone-else', kaggle_public='True')
    nb = lambda name, *cells: (repo/'nbs'/f'{name}.ipynb').write_text(json.dumps(
        {'cells': [{'cell_type': 'code', 'metadata': {}, 'source': s} for s in cells],
         'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}, 'nbformat': 4, 'nbformat_minor': 5}))
    nb('09_merge_it', '#| default_exp merge_it', "#| gpu\nadapter = glob('/kaggle/input/**/medgemma-lora-02-train-qlora/rtl-adapter')\nmerge(adapter, MODEL_ID)")
    nb('09b_random_gpu', '#| default_exp random_gpu', '#| gpu\nfull_size_random_dir("x")   # GPU work, no MedGemma')
    metas = {d.name: json.loads((d/'kernel-metadata.json').read_text()) for d in write_kaggle_folders(repo)}
    assert all(m['id'].startswith('someone-else/medgemma-lora-') and m['is_private'] is False for m in metas.values())
    m = metas['09_merge_it']
    assert (m['enable_gpu'], m['kernel_sources'], m['model_sources']) == (True, ['someone-else/medgemma-lora-02-train-qlora'], [KAGGLE_MEDGEMMA_SOURCE])
    m = metas['09b_random_gpu']
    assert (m['enable_gpu'], m['kernel_sources'], m['model_sources']) == (False, [], [])
    ids = kaggle_push(repo/'kaggle', dry_run=True)
    assert 'someone-else/medgemma-lora-09-merge-it' in ids
    assert re.search(r'09_merge_it .*\(T4, MedGemma; reads someone-else/medgemma-lora-02-train-qlora\)  public', capsys.readouterr().out)


def test_push_refuses_a_kernel_source_that_is_not_one_of_ours(tmp_path):
    repo = _copy_repo(tmp_path); write_kaggle_folders(repo)
    f = repo/'kaggle'/'03_merge'/'kernel-metadata.json'
    meta = json.loads(f.read_text()); meta['kernel_sources'] = [meta['id'].split('/')[0] + '/medgemma-lora-99-nowhere']
    f.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r'03_merge: kernel sources .*99-nowhere.* are not kernels'): kaggle_push(repo/'kaggle')


@pytest.mark.parametrize('field,value,msg', [('id', 'medgemma-lora/Bad_Slug', 'slug'), ('title', 'abc', 'at least 5'),
                                             ('code_file', '../../nbs/nope.ipynb', 'does not exist'),
                                             ('model_sources', ['google/medgemma'], 'model source'),
                                             ('kernel_type', 'app', 'kernel_type'), ('is_private', 'yes', 'is_private'),
                                             ('enable_gpu', False, 'a CPU kernel attaches no model')])
def test_kaggle_validation_fails_on_a_broken_folder(tmp_path, field, value, msg):
    bad = tmp_path/'kaggle'/'02_train_qlora'
    shutil.copytree(ROOT/'kaggle'/'02_train_qlora', bad)
    shutil.copytree(ROOT/'nbs', tmp_path/'nbs')
    meta = json.loads((bad/'kernel-metadata.json').read_text()); meta[field] = value
    (bad/'kernel-metadata.json').write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=msg): validate_kernel_folder(bad)
    with pytest.raises(ValueError, match='02_train_qlora'): kaggle_push(tmp_path/'kaggle', dry_run=True)


def test_kaggle_validation_rejects_non_python3_kernelspec(tmp_path):
    shutil.copytree(ROOT/'kaggle'/'00_data', tmp_path/'kaggle'/'00_data')
    (tmp_path/'nbs').mkdir()
    nb = json.loads((ROOT/'nbs'/'00_data.ipynb').read_text()); nb['metadata']['kernelspec']['name'] = 'ir'
    (tmp_path/'nbs'/'00_data.ipynb').write_text(json.dumps(nb))
    with pytest.raises(ValueError, match='python3'): validate_kernel_folder(tmp_path/'kaggle'/'00_data')


# --- badges and install cells: one command, on a copy ---------------------------------------------------------------

def test_sync_rewrites_badges_and_install_cells_from_settings(tmp_path):
    repo = _copy_repo(tmp_path, readme=True)
    _set(repo/'settings.ini', kaggle_user='someone-else', git_url='https://github.com/me/fork', branch='dev', version='9.9.9')
    res = sync_kaggle(repo)
    s = kaggle_settings(repo)
    assert res['kernel_folders'] == len(CHAPTERS) and 'README.md' in res['changed']
    for name in CHAPTERS:
        nb = repo/'nbs'/f'{name}.ipynb'
        cells = _cells(nb)
        assert ''.join(cells[0]['source']).startswith('#| default_exp') and ''.join(cells[1]['source']) == install_cell(s), name
        assert "'git+https://github.com/me/fork@9.9.9'" in install_cell(s)
        assert badge_line(name, s) in _md(nb), name
    for text in [_md(repo/'nbs'/'index.ipynb'), (repo/'README.md').read_text()]:
        urls = re.findall(r'\[!\[Open [Ii]n (?:Kaggle|Colab)\]\([^)]*\)\]\(([^)]*)\)', text)
        assert urls and all('github.com/me/fork/blob/dev/nbs/' in u or 'github/me/fork/blob/dev/nbs/' in u for u in urls), urls
    assert sync_kaggle(repo)['changed'] == []            # nothing left to rewrite
    _set(repo/'settings.ini', kaggle_public='True')         # public kernels: the Kaggle badge opens the kernel itself
    sync_kaggle(repo)
    assert '(https://www.kaggle.com/code/someone-else/medgemma-lora-02-train-qlora)' in _md(repo/'nbs'/'02_train_qlora.ipynb')


def test_synced_notebooks_are_already_clean(tmp_path):
    "CI fails when nbdev_clean changes a file: what sync_kaggle writes must be what nbdev_clean writes."
    pytest.importorskip('nbdev')
    repo = _copy_repo(tmp_path)
    clean = lambda: subprocess.run([str(Path(sys.executable).parent/'nbdev_clean')], cwd=repo, capture_output=True, text=True, check=True)
    clean()                                               # as committed
    _set(repo/'settings.ini', version='9.9.9')
    assert sync_kaggle(repo)['changed']
    before = {p.name: p.read_bytes() for p in (repo/'nbs').glob('*.ipynb')}
    clean()
    assert [n for n, b in before.items() if (repo/'nbs'/n).read_bytes() != b] == []


@pytest.mark.parametrize('version,installs', [(None, []), ('9.9.9', ['git+https://github.com/medgemma-lora/medgemma-lora@9.9.9'])])
def test_install_cell_installs_only_a_missing_or_other_version(tmp_path, version, installs):
    "The generated cell run for real on a pretend Kaggle, with pip replaced by a recorder: the installed package is the settings' version."
    s = kaggle_settings(ROOT)
    if version: s = {**s, 'version': version}
    (tmp_path/'cell.py').write_text(install_cell(s))
    code = ("import json, subprocess; calls = []\nsubprocess.run = lambda cmd, **kw: calls.append(cmd[-1])\n"
            "exec(open('cell.py').read())\nprint(json.dumps(calls))")
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, 'KAGGLE_KERNEL_RUN_TYPE': 'Interactive'})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1]) == installs     # fastcore is installed here: never reinstalled


# --- extras -------------------------------------------------------------------------------------------------------

def test_setup_declares_the_extras_from_settings(monkeypatch):
    got = {}
    monkeypatch.setattr(setuptools, 'setup', lambda **kw: got.update(kw))
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT/'setup.py'))
    extras, reqs = got['extras_require'], got['install_requires']
    names = lambda rs: {re.split(r'[<>=!\[ ]', r)[0].lower() for r in rs}
    assert {'xgrammar'} <= names(extras['constrained']) and {'kaggle', 'six', 'python-slugify'} <= names(extras['kaggle'])
    assert names(extras['constrained']) | names(extras['kaggle']) | {'nbdev', 'pytest'} <= names(extras['dev'])
    assert not names(reqs) & {'xgrammar', 'kaggle', 'nbdev', 'fastcore'}
    assert all(re.fullmatch(r'[A-Za-z0-9._-]+>=[0-9][^,;<>=!\s]*', r) for r in reqs), reqs   # tests/min_versions.sh needs a floor each


def test_missing_xgrammar_names_the_extra_and_the_real_error(monkeypatch):
    from medgemma_lora.generate import json_schema_logits_processor
    monkeypatch.setitem(sys.modules, 'xgrammar', None)          # importing it now fails as if it were not installed
    with pytest.raises(ValueError, match=r'pip install "medgemma-lora\[constrained\]"') as e: json_schema_logits_processor(None, [])
    assert 'ModuleNotFoundError: import of xgrammar halted' in str(e.value)     # the real error, shown


def test_missing_kaggle_names_the_extra(monkeypatch):
    import importlib.metadata
    from medgemma_lora import kaggle_kernels
    def missing(name): raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, 'distribution', missing)
    with pytest.raises(ValueError, match=r'not installed: pip install "medgemma-lora\[kaggle\]"'): kaggle_kernels._kaggle_api()


def test_broken_kaggle_is_reported_with_its_own_error(tmp_path):
    """A kaggle package that is installed but stops on import (kaggle < 2.2.4 without credentials does: it prints and
    exits) is reported with what it said, not as 'not installed'."""
    site = tmp_path/'site'; (site/'kaggle').mkdir(parents=True); (site/'kaggle-1.7.0.dist-info').mkdir()
    (site/'kaggle'/'__init__.py').write_text("print('Could not find kaggle.json. Make sure it is located in ~/.kaggle')\nraise SystemExit(1)\n")
    (site/'kaggle-1.7.0.dist-info'/'METADATA').write_text('Metadata-Version: 2.1\nName: kaggle\nVersion: 1.7.0\n')
    r = subprocess.run(['medgemma-lora', 'kaggle', 'push', '--dry-run'], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, 'PYTHONPATH': str(site)})
    assert r.returncode == 2, r
    assert 'installed but failed to import: SystemExit: 1' in r.stderr and 'Could not find kaggle.json' in r.stderr
    assert 'not installed' not in r.stderr
