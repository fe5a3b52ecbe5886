"""Scoring tests: metrics against hand-computed values and scikit-learn/SciPy on seeded random cases, bad input,
edge cases (no positives, all invalid, empty file, missing ids), and the written report. No model is needed."""
import json, math, subprocess, sys

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import (accuracy_score, f1_score, mean_absolute_error, mean_squared_error, precision_score,
                             recall_score, roc_auc_score)

from medgemma_lora.data import write_jsonl
from medgemma_lora.synth import synthesize
from medgemma_lora.intervals import auc_ci, f1_ci, mean_ci, rate, wilson_ci
from medgemma_lora.score import compare, compare_scored, join_predictions, mcnemar_exact, read_predictions, score, within
from medgemma_lora.report import score_files
import medgemma_lora.eval_clinical, medgemma_lora.eval_pediatric  # noqa: F401  (register their scorers)
from medgemma_lora.eval_clinical import clinical_reward


def _write(path, rows):
    path.write_text(''.join(json.dumps(r) + '\n' for r in rows), encoding='utf-8')
    return path


# ---------------------------------------------------------------- statistics

def test_wilson_matches_scipy_on_a_grid():
    for n in range(0, 61):
        for k in range(0, n + 1):
            lo, hi = wilson_ci(k, n)
            if n == 0:
                assert (lo, hi) == (0.0, 1.0)
                continue
            ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method='wilson')
            assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)


def test_wilson_by_hand_and_rate_shape():
    z = 1.959963984540054
    c, h = (8 + z * z / 2) / (10 + z * z), z / (10 + z * z) * math.sqrt(8 * 2 / 10 + z * z / 4)
    assert rate(8, 10) == {'value': 0.8, 'n': 10, 'ci95': [pytest.approx(c - h), pytest.approx(c + h)]}
    assert rate(0, 0) == {'value': None, 'n': 0, 'ci95': [0.0, 1.0]}
    for bad in [(3, 2), (-1, 2), (1.0, 2), (True, 2)]:
        with pytest.raises(ValueError): rate(*bad)


def test_mcnemar_matches_scipy_binomtest():
    rs = np.random.default_rng(0)
    for _ in range(300):
        n = int(rs.integers(1, 80))
        a, b = rs.random(n) < rs.random(), rs.random(n) < rs.random()
        r = mcnemar_exact(a.tolist(), b.tolist())
        assert (r['b'], r['c']) == (int((a & ~b).sum()), int((~a & b).sum()))
        expect = binomtest(r['b'], r['b'] + r['c'], 0.5).pvalue if r['b'] + r['c'] else 1.0
        assert r['p_value'] == pytest.approx(expect, abs=1e-12)


def test_mean_ci_by_hand():
    r = mean_ci([2.0, 4.0, 9.0])
    sd = math.sqrt(((2 - 5) ** 2 + (4 - 5) ** 2 + (9 - 5) ** 2) / 2)
    assert r['value'] == 5.0 and r['ci95'][1] == pytest.approx(5 + 4.302652729911275 * sd / math.sqrt(3))


# ---------------------------------------------------------------- reading and joining

@pytest.fixture(scope='module')
def clinical_refs(tmp_path_factory):
    d = tmp_path_factory.mktemp('clin')
    refs = synthesize('clinical', 40, seed=3)
    write_jsonl(refs, d / 'eval.jsonl')
    return refs, d / 'eval.jsonl'


def test_empty_and_malformed_prediction_files(tmp_path):
    (tmp_path / 'empty.jsonl').write_text('')
    with pytest.raises(ValueError, match='empty'): read_predictions(tmp_path / 'empty.jsonl')
    (tmp_path / 'bad.jsonl').write_text('{"id": "a", "output": "x"}\n\n{"id": "b" "output": "y"}\n')
    with pytest.raises(ValueError, match=r'bad\.jsonl:3: malformed JSON'): read_predictions(tmp_path / 'bad.jsonl')
    (tmp_path / 'dup.jsonl').write_text('{"id": "a", "output": "x"}\n{"id": "a", "output": "y"}\n')
    with pytest.raises(ValueError, match=r"'a' \(line 1 and line 2\)"): read_predictions(tmp_path / 'dup.jsonl')
    (tmp_path / 'type.jsonl').write_text('["a", "x"]\n')
    with pytest.raises(ValueError, match=r'type\.jsonl:1: expected a JSON object'): read_predictions(tmp_path / 'type.jsonl')


def test_missing_and_unknown_ids_are_never_dropped(clinical_refs, tmp_path):
    refs, ref_path = clinical_refs
    rows = [{'id': r.id, 'output': r.target} for r in refs]
    with pytest.raises(ValueError, match=rf"3 reference\(s\) have no prediction: '{refs[0].id}'"):
        score('clinical', rows[3:], refs)
    with pytest.raises(ValueError, match=r"1 prediction\(s\) have no reference: 'ghost'"):
        score('clinical', rows + [{'id': 'ghost', 'output': 'ERROR'}], refs)
    m = score('clinical', rows[3:] + [{'id': 'ghost', 'output': 'ERROR'}], refs, missing='invalid', extra='ignore')
    assert m['n_cases'] == 40 and m['missing_prediction_ids'] == [r.id for r in refs[:3]]
    assert m['ignored_prediction_ids'] == ['ghost'] and m['invalid_rate']['value'] == 3 / 40
    with pytest.raises(ValueError, match="not 'rtl' records"): score('rtl', rows, refs)
    with pytest.raises(ValueError, match="no scorer registered for task 'derm'"): score('derm', rows, refs)
    p = _write(tmp_path / 'p.jsonl', rows[1:])
    with pytest.raises(ValueError, match='have no prediction'): score_files('clinical', p, ref_path, tmp_path / 'o')


# ---------------------------------------------------------------- clinical

def test_clinical_reward_table():
    e = lambda s: {'error_type': 'overtreatment', 'severity': s}
    assert [clinical_reward('ERROR', 'ERROR', e(s)) for s in ('critical', 'high', 'moderate')] == [3.0, 2.5, 2.0]
    assert [clinical_reward(p, 'ERROR', e('critical')) for p in ('CORRECT', None)] == [-3.0, -3.0]
    c = {'error_type': 'none', 'severity': 'none'}
    assert [clinical_reward(p, 'CORRECT', c) for p in ('CORRECT', 'ERROR', None)] == [1.5, -2.0, -2.0]


def test_clinical_vs_sklearn_on_random_cases(clinical_refs):
    refs, _ = clinical_refs
    y = np.array([r.metadata['label'] == 'ERROR' for r in refs], int)
    rs = np.random.default_rng(7)
    for _ in range(25):
        outs = rs.choice(['ERROR - a', 'CORRECT - b', 'no idea'], len(refs), p=[0.4, 0.45, 0.15])
        pe = rs.random(len(refs))
        rows = [{'id': r.id, 'output': str(o), 'option_probs': {'verdict': {'ERROR': float(p), 'CORRECT': float(1 - p)}}}
                for r, o, p in zip(refs, outs, pe)]
        m = score('clinical', rows, refs)
        yp = np.array([1 if o.startswith('ERROR') else 0 if o.startswith('CORRECT') else -1 for o in outs])
        assert m['accuracy']['value'] == pytest.approx(accuracy_score(y, yp))
        assert m['error_sensitivity']['value'] == pytest.approx(recall_score(y, yp, labels=[1], average='macro'))
        assert m['error_specificity']['value'] == pytest.approx(recall_score(y, yp, labels=[0], average='macro'))
        assert m['false_alarm_rate']['value'] == pytest.approx(((yp == 1) & (y == 0)).sum() / (y == 0).sum())
        assert m['invalid_rate']['value'] == pytest.approx((yp == -1).mean())
        assert m['error_f1']['value'] == pytest.approx(f1_score(y, yp, labels=[1], average='macro', zero_division=0))
        assert m['error_auc']['value'] == pytest.approx(roc_auc_score(y, pe))
        rewards = [clinical_reward({1: 'ERROR', 0: 'CORRECT', -1: None}[int(p)], r.metadata['label'], r.metadata) for p, r in zip(yp, refs)]
        assert m['mean_clinical_reward']['value'] == pytest.approx(np.mean(rewards))
        crit = [r.metadata['severity'] == 'critical' for r in refs]
        assert m['critical_misses'] == sum(1 for c, p in zip(crit, yp) if c and p != 1)
        for mod, v in m['per_modality_accuracy'].items():
            idx = [i for i, r in enumerate(refs) if r.metadata['modality'] == mod]
            assert v['value'] == pytest.approx(accuracy_score(y[idx], yp[idx])) and v['n'] == len(idx)


def test_clinical_edge_cases(clinical_refs):
    refs, _ = clinical_refs
    neg = [r for r in refs if r.metadata['label'] == 'CORRECT']
    m = score('clinical', [{'id': r.id, 'output': 'CORRECT'} for r in neg], neg)
    assert m['error_sensitivity'] == {'value': None, 'n': 0, 'ci95': [0.0, 1.0]} and m['error_specificity']['value'] == 1.0
    assert m['error_auc']['value'] is None and 'only negatives' in m['error_auc']['reason']
    assert m['error_f1']['value'] is None and m['critical_misses'] == 0
    m = score('clinical', [{'id': r.id, 'output': ''} for r in refs], refs)
    assert m['accuracy']['value'] == 0 and m['invalid_rate']['value'] == 1 and m['false_alarm_rate']['value'] == 0
    assert m['critical_misses'] == sum(r.metadata['severity'] == 'critical' for r in refs)


# ---------------------------------------------------------------- pediatric

@pytest.fixture(scope='module')
def pediatric_refs():
    return synthesize('pediatric', 90, seed=5)


def _ped_rows(refs, rs, p_invalid=0.1, probs=True):
    rows, truth = [], []
    for r in refs:
        t = json.loads(r.target)
        if rs.random() < p_invalid: rows.append({'id': r.id, 'output': 'cannot tell'}); continue
        row = {'id': r.id}
        if r.subtask == 'bone_age': t['bone_age_months'] = float(np.clip(t['bone_age_months'] + rs.normal(0, 3), 0, 240))
        elif r.subtask == 'rop':
            t.update(zone=str(rs.choice(['I', 'II', 'III'])), stage=int(rs.integers(0, 4)), plus_disease=bool(rs.random() < 0.3))
            if probs:
                z = rs.dirichlet([1, 1, 1]); s = rs.dirichlet([1, 1, 1, 1]); pp = rs.random()
                row['option_probs'] = {'zone': dict(zip(['I', 'II', 'III'], z.tolist())), 'stage': dict(zip('0123', s.tolist())),
                                       'plus_disease': {'true': pp, 'false': 1 - pp}}
        else:
            present = bool(rs.random() < 0.5)
            t.update(fracture_present=present, type=str(rs.choice(['buckle', 'distal_radius'])) if present else 'none')
            if probs: pf = rs.random(); row['option_probs'] = {'fracture_present': {'true': pf, 'false': 1 - pf}}
        rows.append({**row, 'output': json.dumps(t)})
    return rows


def test_pediatric_vs_sklearn_on_random_cases(pediatric_refs):
    refs = pediatric_refs
    rs = np.random.default_rng(11)
    for _ in range(10):
        rows = _ped_rows(refs, rs)
        m = score('pediatric', rows, refs)
        ans = {r['id']: (json.loads(r['output']) if r['output'] != 'cannot tell' else None) for r in rows}
        byid = {r['id']: r for r in rows}
        tru = {r.id: json.loads(r.target) for r in refs}
        # bone age
        ba = [r.id for r in refs if r.subtask == 'bone_age']
        sc = [i for i in ba if ans[i] is not None]
        yt, yp = [tru[i]['bone_age_months'] for i in sc], [ans[i]['bone_age_months'] for i in sc]
        assert m['mae_months']['value'] == pytest.approx(mean_absolute_error(yt, yp))
        assert m['rmse_months']['value'] == pytest.approx(math.sqrt(mean_squared_error(yt, yp)))
        assert m['bias_months']['value'] == pytest.approx(np.mean(np.subtract(yp, yt)))
        assert m['within_3_months_rate']['value'] == pytest.approx(sum(abs(ans[i]['bone_age_months'] - tru[i]['bone_age_months']) <= 3 for i in sc) / len(ba))
        # ROP AUCs from option probabilities
        rop = [r.id for r in refs if r.subtask == 'rop']
        for f, fld, pos, test in [('zone_i', 'zone', ['I'], lambda a: a['zone'] == 'I'), ('stage_ge2', 'stage', ['2', '3'], lambda a: a['stage'] >= 2),
                                  ('plus_disease', 'plus_disease', ['true'], lambda a: a['plus_disease'])]:
            y = [int(test(tru[i])) for i in rop]
            s = []
            for i in rop:
                op = byid[i].get('option_probs')
                s.append(sum(op[fld][k] for k in pos) / sum(op[fld].values()) if op else 0.5)
            if 0 < sum(y) < len(y): assert m['rop_auc'][f]['value'] == pytest.approx(roc_auc_score(y, s))
            else: assert m['rop_auc'][f]['value'] is None
            acc = np.mean([ans[i] is not None and test(ans[i]) == test(tru[i]) for i in rop])
            assert m['rop_accuracy'][f]['value'] == pytest.approx(acc)
        # fracture
        fx = [r.id for r in refs if r.subtask == 'fracture']
        y = [int(tru[i]['fracture_present']) for i in fx]
        yp = [-1 if ans[i] is None else int(ans[i]['fracture_present']) for i in fx]
        assert m['fracture_f1']['value'] == pytest.approx(f1_score(y, yp, labels=[1], average='macro', zero_division=0))
        assert m['fracture_recall']['value'] == pytest.approx(recall_score(y, yp, labels=[1], average='macro'))
        assert m['fracture_specificity']['value'] == pytest.approx(recall_score(y, yp, labels=[0], average='macro'))
        assert m['fracture_precision']['value'] == pytest.approx(precision_score(y, yp, labels=[1], average='macro', zero_division=0))
        s = [byid[i]['option_probs']['fracture_present']['true'] if 'option_probs' in byid[i] else 0.5 for i in fx]
        assert m['fracture_auc']['value'] == pytest.approx(roc_auc_score(y, s))
        for sub, ids in (('bone_age', ba), ('rop', rop), ('fracture', fx)):
            assert m['invalid_rate'][sub]['value'] == pytest.approx(np.mean([ans[i] is None for i in ids]))


def test_pediatric_without_option_probs_scores_the_answer(pediatric_refs):
    refs = [r for r in pediatric_refs if r.subtask == 'fracture']
    rows = _ped_rows(refs, np.random.default_rng(3), p_invalid=0.0, probs=False)
    m = score('pediatric', rows, refs)
    y = [int(json.loads(r.target)['fracture_present']) for r in refs]
    yp = [int(json.loads(r['output'])['fracture_present']) for r in rows]
    assert m['fracture_auc_scores'] == {'option_probs': 0, 'parsed': len(refs), 'invalid': 0}
    assert m['fracture_auc']['value'] == pytest.approx(roc_auc_score(y, yp))
    assert 'mae_months' not in m and 'rop_auc' not in m


def test_pediatric_all_invalid(pediatric_refs):
    m = score('pediatric', [{'id': r.id, 'output': '```'} for r in pediatric_refs], pediatric_refs)
    assert m['invalid_rate']['all']['value'] == 1.0 and m['mae_months']['value'] is None
    assert m['within_2_months_rate']['value'] == 0.0 and m['fracture_recall']['value'] == 0.0 and m['fracture_f1']['value'] == 0.0
    assert m['rop_auc_scores']['zone_i']['invalid'] == m['n_cases_by_subtask']['rop']


# ---------------------------------------------------------------- rtl

def test_rtl_vs_independent_count_on_random_cases():
    refs = synthesize('rtl', 60, seed=9)
    rs = np.random.default_rng(4)
    labels = ['supported', 'uncertain', 'not_assessable', 'needs_review']
    for _ in range(10):
        rows, right, total, kinds = [], 0, 0, []
        for r in refs:
            t = json.loads(r.target)
            truth = {a['claim_id']: a['label'] for a in t['alignments']}
            total += len(truth)
            u = rs.random()
            if u < 0.15: rows.append({'id': r.id, 'output': 'Definitely normal.'}); kinds.append('invalid'); continue
            al = [dict(a, label=str(rs.choice(labels)) if rs.random() < 0.3 else a['label']) for a in t['alignments'] if rs.random() < 0.85]
            if not al: al = [dict(t['alignments'][0])]
            got = {}
            for a in al: got.setdefault(a['claim_id'], a['label'])
            right += sum(got.get(c) == l for c, l in truth.items())
            text = json.dumps({'alignments': al})
            if u < 0.3: text, kind = f'```json\n{text}\n```', 'repaired'
            else: kind = 'valid'
            rows.append({'id': r.id, 'output': text}); kinds.append(kind)
        m = score('rtl', rows, refs)
        assert m['label_accuracy']['value'] == pytest.approx(right / total) and m['label_accuracy']['n'] == total
        for k, kind in (('json_schema_valid_rate', 'valid'), ('schema_repair_needed_rate', 'repaired'), ('invalid_rate', 'invalid')):
            assert m[k]['value'] == pytest.approx(kinds.count(kind) / len(refs))
        assert m['label_value_valid_rate']['value'] == pytest.approx(1 - kinds.count('invalid') / len(refs))
        assert m['overconfidence_rate']['value'] >= kinds.count('invalid') / len(refs)


# ---------------------------------------------------------------- report and comparison

def test_score_files_writes_report_metrics_and_plots(clinical_refs, tmp_path):
    refs, ref_path = clinical_refs
    base = _write(tmp_path / 'base.jsonl', [{'id': r.id, 'output': 'CORRECT - looks fine'} for r in refs])
    tuned = _write(tmp_path / 'adapter.jsonl', [{'id': r.id, 'output': r.target} for r in refs])
    res = score_files('clinical', tuned, ref_path, tmp_path / 'out' / 'metrics.json', compare=base)
    assert list(res['runs']) == ['base', 'adapter']
    row = res['comparison']['metrics']['error_sensitivity']
    n_err = sum(r.metadata['label'] == 'ERROR' for r in refs)
    assert (row['b'], row['c'], row['n_paired']) == (0, n_err, n_err)
    assert row['p_value'] == pytest.approx(binomtest(0, n_err, 0.5).pvalue)
    md = (tmp_path / 'out' / 'report.md').read_text()
    assert '| Metric | base | adapter | adapter − base | p |' in md and "seed: 'TP rate'" in md
    for png in ('rates.png', 'per_modality_accuracy.png'):
        p = tmp_path / 'out' / png
        assert p.is_file() and p.stat().st_size > 1000 and p.read_bytes()[:4] == b'\x89PNG'
    assert json.loads((tmp_path / 'out' / 'metrics.json').read_text()) == res
    # a folder as `out`, a single run
    res = score_files('clinical', tuned, ref_path, tmp_path / 'single')
    assert (tmp_path / 'single' / 'metrics.json').is_file() and res['comparison'] is None
    assert res['runs']['adapter']['accuracy']['value'] == 1.0


def test_compare_needs_the_same_references(clinical_refs):
    refs, _ = clinical_refs
    a = [{'id': r.id, 'output': 'ERROR'} for r in refs]
    c = compare('clinical', a, [{'id': r.id, 'output': r.target} for r in refs], refs)
    assert set(c['metrics']) >= {'accuracy', 'error_sensitivity', 'mean_clinical_reward'}
    assert c['metrics']['mean_clinical_reward']['test'] == 'paired permutation' and c['metrics']['accuracy']['test'] == 'exact McNemar'
    with pytest.raises(ValueError, match='different cases'): compare_scored('clinical', score('clinical', a, refs, details=True), score('clinical', a[1:], refs[1:], details=True))


def test_pediatric_report_plots(pediatric_refs, tmp_path):
    write_jsonl(pediatric_refs, tmp_path / 'eval.jsonl')
    p = _write(tmp_path / 'preds.jsonl', _ped_rows(pediatric_refs, np.random.default_rng(1)))
    score_files('pediatric', p, tmp_path / 'eval.jsonl', tmp_path / 'rep')
    for png in ('rates.png', 'bland_altman.png', 'fracture_confusion.png'):
        assert (tmp_path / 'rep' / png).stat().st_size > 1000


def test_scoring_modules_do_not_import_nbdev_or_fastcore():
    code = ('import sys, medgemma_lora.eval_clinical, medgemma_lora.eval_pediatric; '
            "bad = [m for m in sys.modules if m.split('.')[0] in ('nbdev', 'fastcore', 'execnb')]; assert not bad, bad")
    subprocess.run([sys.executable, '-c', code], check=True)


# ---------------------------------------------------------------- intervals at the boundary (issue 26)

def test_auc_ci_solves_newcombes_equation_by_an_independent_root_search():
    from scipy.optimize import brentq
    z = 1.959963984540054
    for auc, m, n in [(0.8, 6, 8), (0.55, 20, 11), (0.97, 9, 30), (0.1, 12, 12)]:
        k = (m + n) / 2 - 1
        f = lambda t: (auc - t) ** 2 - z * z * t * (1 - t) / (m * n) * (1 + k * ((1 - t) / (2 - t) + t / (1 + t)))
        assert auc_ci(auc, m, n) == pytest.approx((brentq(f, 0, auc), brentq(f, auc, 1)), abs=1e-9)


def test_f1_ci_is_the_range_of_f1_over_the_wilson_rectangle():
    rs = np.random.default_rng(5)
    for _ in range(30):
        tp, fp, fn = (int(x) for x in rs.integers(0, 12, 3))
        if 2 * tp + fp + fn == 0: continue
        (plo, phi), (rlo, rhi) = wilson_ci(tp, tp + fp, 0.975), wilson_ci(tp, tp + fn, 0.975)
        P, R = np.meshgrid(np.linspace(plo, phi, 41), np.linspace(rlo, rhi, 41))
        F = np.where(P + R > 0, 2 * P * R / np.where(P + R > 0, P + R, 1), 0)
        assert f1_ci(tp, fp, fn) == pytest.approx((F.min(), F.max()), abs=1e-12)


def _no_zero_width(leaf, what):
    "An interval with width, or none with the reason: never [x, x]."
    if leaf['ci95'] is None:
        assert leaf['ci_reason'].startswith('not estimable'), (what, leaf)
    else:
        assert leaf['ci95'][1] - leaf['ci95'][0] > 0.05, (what, leaf)


def test_perfect_and_constant_scores_print_no_zero_width_interval(pediatric_refs, clinical_refs, tmp_path):
    import re
    perfect = [{'id': r.id, 'output': r.target} for r in pediatric_refs]
    first = {}  # every case of a subtask gets the first case's answer: a constant score
    for r in pediatric_refs: first.setdefault(r.subtask, r.target)
    constant = [{'id': r.id, 'output': first[r.subtask]} for r in pediatric_refs]
    def _plus_one(r):  # every bone age a month high: a constant error
        t = json.loads(r.target)
        return json.dumps({**t, 'bone_age_months': t['bone_age_months'] + 1}) if r.subtask == 'bone_age' else r.target
    off = [{'id': r.id, 'output': _plus_one(r)} for r in pediatric_refs]
    for rows in (perfect, constant, off):
        m = score('pediatric', rows, pediatric_refs)
        assert m['n_cases_by_subtask']['fracture'] >= 10 and m['mae_months']['n'] >= 10
        for k in ('mae_months', 'rmse_months', 'bias_months', 'fracture_f1', 'fracture_auc', 'rop_auc.zone_i'):
            leaf = m
            for p in k.split('.'): leaf = leaf[p]
            if leaf['value'] is not None: _no_zero_width(leaf, k)
    m = score('pediatric', perfect, pediatric_refs)
    assert m['fracture_f1']['value'] == 1.0 and m['fracture_f1']['ci95'][0] < 0.9
    assert m['fracture_auc']['value'] == 1.0 and m['fracture_auc']['ci95'][0] < 0.9
    assert m['mae_months']['value'] == 0 and 'cases do not vary' in m['mae_months']['ci_reason']
    refs, ref_path = clinical_refs
    m = score('clinical', [{'id': r.id, 'output': r.target} for r in refs], refs)
    for k in ('error_f1', 'error_auc', 'mean_clinical_reward'): _no_zero_width(m[k], k)
    write_jsonl(pediatric_refs, tmp_path / 'eval.jsonl')
    score_files('pediatric', _write(tmp_path / 'p.jsonl', perfect), tmp_path / 'eval.jsonl', tmp_path / 'rep')
    md = (tmp_path / 'rep' / 'report.md').read_text()
    assert not re.search(r'\[(-?[\d.]+), \1\]', md), re.search(r'.*\[(-?[\d.]+), \1\].*', md).group(0)
    assert '[not estimable: every resample of the' in md


def test_within_k_months_is_decided_in_exact_decimals():
    refs = synthesize('pediatric', 6, seed=0, subtask='bone_age')
    refs = [r.__class__(**{**r.__dict__, 'target': json.dumps({**json.loads(r.target), 'bone_age_months': 6.3})}) for r in refs]
    said = [8.3, 8.3, 8.3, 6.3, 6.3, 8.4]  # 2.0 months off (three times), exact (twice), just outside (8.4)
    rows = [{'id': r.id, 'output': json.dumps({'bone_age_months': a, 'confidence': 0.8})} for r, a in zip(refs, said)]
    m = score('pediatric', rows, refs)
    assert m['within_2_months_rate']['value'] == 5 / 6 and m['within_3_months_rate']['value'] == 1.0
    assert within(8.3, 6.3, 2) and not within(8.4, 6.3, 2) and not abs(8.3 - 6.3) <= 2
