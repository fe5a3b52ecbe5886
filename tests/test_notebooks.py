"""The book's layout: each chapter reads like fastcore's and claudette's notebooks, each module has one job and stays
small, and the README is the index notebook."""
import ast, json, re, statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT/'nbs').glob('[0-9][0-9]*_*.ipynb'))


def _cells(nb): return json.loads(nb.read_text(encoding='utf-8'))['cells']
def _src(c): return ''.join(c['source'])
def _is_export(c): return c['cell_type'] == 'code' and _src(c).split('\n')[0].strip() in ('#| export', '#| exporti')


@pytest.mark.parametrize('nb', CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_its_module_a_title_and_a_summary(nb):
    cells = _cells(nb)
    assert re.fullmatch(r'#\| default_exp \w+', _src(cells[0]).strip()), 'cell 1 must be #| default_exp <module>'
    md = next(_src(c) for c in cells if c['cell_type'] == 'markdown')
    assert md.startswith('# ') and '\n> ' in md, 'the first markdown cell holds the H1 title and a one-line > summary'


@pytest.mark.parametrize('nb', CHAPTERS, ids=lambda p: p.stem)
def test_one_public_name_per_export_cell_each_exercised_by_the_next_code_cell(nb):
    cells, sizes = _cells(nb), []
    for i, c in enumerate(cells):
        if not _is_export(c): continue
        sizes.append(len(_src(c).splitlines()))
        public = [n.name for n in ast.parse(_src(c)).body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith('_')]
        assert len(public) <= 1, f'cell {i} exports {public}: one public function or class per cell'
        if public:
            nxt = next((d for d in cells[i + 1:] if d['cell_type'] == 'code'), None)
            assert nxt is not None and not _is_export(nxt) and re.search(r'\b(test_\w+|assert)\b', _src(nxt)), \
                f'cell {i} ({public[0]}) is not followed by a cell that tests it'
    assert sizes and statistics.median(sizes) <= 25, f'median export cell is {statistics.median(sizes)} lines'


@pytest.mark.parametrize('nb', CHAPTERS, ids=lambda p: p.stem)
def test_kept_outputs_carry_no_progress_bars(nb):
    for c in _cells(nb):
        for o in c.get('outputs', []):
            text = ''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', ''))
            assert '%|' not in text and 'it/s]' not in text, 'a progress bar was saved in an output'


def test_modules_have_one_job_and_stay_small():
    lib = ROOT/'medgemma_lora'
    sizes = {p.stem: len(p.read_text().splitlines()) for p in lib.glob('*.py') if p.stem not in ('_modidx', '__init__')}
    assert max(sizes.values()) <= 700, sizes
    tasks = [p.stem for p in lib.glob('eval_*.py')]
    for task in tasks:   # a task module builds on the shared modules, never on another task
        others = [t for t in tasks if t != task and f'.{t} import' in (lib/f'{task}.py').read_text()]
        assert not others, f'{task} imports from {others}'
    exported = [_src(_cells(nb)[0]).split()[-1] for nb in CHAPTERS]
    assert len(set(exported)) == len(exported), 'one chapter per module'
    assert set(exported) == set(sizes), f'modules without a chapter: {set(sizes) - set(exported)}'


def test_readme_and_index_notebook_in_step():
    md = '\n'.join(_src(c) for c in _cells(ROOT/'nbs'/'index.ipynb') if c['cell_type'] == 'markdown')
    readme = (ROOT/'README.md').read_text()
    for para in [p.strip() for p in readme.split('\n\n') if p.strip()]:
        assert para in md, f'README paragraph missing from nbs/index.ipynb: {para[:80]!r}'
    for nb in CHAPTERS: assert f'`nbs/{nb.name}`' in readme, f'{nb.name} is missing from the README table'


def test_library_lines_are_at_most_120_characters():
    "ruff checks the notebooks (the source); here the exported modules, where only nbdev's own `__all__` may be wider."
    long = [f'{p.name}:{i}' for p in sorted((ROOT/'medgemma_lora').glob('*.py')) if p.stem != '_modidx'
            for i, line in enumerate(p.read_text(encoding='utf-8').splitlines(), 1)
            if len(line) > 120 and not line.startswith('__all__ = [')]
    assert not long, long
