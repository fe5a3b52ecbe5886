"""Real data in: every format the seed systems document loads with the defaults, keeps its splits, and loses nothing.

Each test builds small files in one documented layout and checks the records field by field; the `data` and `score`
commands are run the way a user runs them."""
import json, warnings
from pathlib import Path

import pytest
from PIL import Image

from medgemma_lora.cli import build_parser, run_command
from medgemma_lora.data import read_jsonl
from medgemma_lora.pediatric_data import draw_hand, load_pediatric
from medgemma_lora.eval_rtl import load_rtl
from medgemma_lora.sources import load_source, make_dataset
from medgemma_lora.synth import draw_chest
from numpy.random import default_rng


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in rows), encoding='utf-8')


def _json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2), encoding='utf-8')


def _cli(*argv):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return run_command([str(a) for a in argv])


# ---------------------------------------------------------------- clinical: MedBillDozer's data/lora_training/

def _medbilldozer(root):
    "MedBillDozer's layout: train/val as JSONL and JSON twins (16/8), dataset_stats.json, README.md, images by name."
    mods = ('xray', 'histopathology', 'mri', 'ultrasound')
    (root / 'images').mkdir(parents=True)
    for m in mods:
        for j in range(3): draw_chest(default_rng(j), 32).save(root / 'images' / f'{m}_{j}.png')
    rows = []
    for m in mods:
        for k in range(6):
            err = k % 2 == 0
            rows.append(dict(id=f'{m}_{k:03d}', instruction='You are a medical AI assistant trained to detect clinical errors...',
                             input=f'**Patient Information:**\n- Age: {40 + k}\n**Clinical Finding:** ...\n**Treatment:** ...',
                             output='ERROR - Surgery not indicated by imaging' if err else 'CORRECT - Treatment matches imaging findings',
                             image_file=f'{m}_{k // 2}.png', image_path=f'/Users/someone/medbilldozer/images/{m}_{k // 2}.png',
                             metadata=dict(scenario_id=f'{m}_{k:03d}', modality=m, image_type='positive',
                                           error_type='unnecessary_procedure' if err else 'none',
                                           severity='critical' if err else 'none', cost_impact='$45,000' if err else 0)))
    train, val = [r for i, r in enumerate(rows) if i % 3], [r for i, r in enumerate(rows) if not i % 3]
    d = root / 'data' / 'lora_training'
    _jsonl(d / 'train.jsonl', train); _jsonl(d / 'val.jsonl', val)
    _json(d / 'train.json', train); _json(d / 'val.json', val)
    _json(d / 'dataset_stats.json', {'total': 24}); (d / 'README.md').write_text('# MedGemma LoRA Fine-Tuning Dataset\n')
    return d, train, val


def test_medbilldozer_folder_keeps_its_16_8_split(tmp_path):
    d, train, val = _medbilldozer(tmp_path / 'mbd')
    stats = _cli('data', 'clinical', '--from', d, '--images-root', tmp_path / 'mbd' / 'images', '--out', tmp_path / 'ds')
    assert {k: v['n'] for k, v in stats['splits'].items()} == {'train': 16, 'eval': 8}
    assert stats['accounting'] == {'loaded': 24, 'train': 16, 'val': 0, 'eval': 8, 'left_out': 0, 'skipped': 0}
    assert stats['source_splits'] == {'train': 16, 'val': 8} and "own splits" in stats['split_rule']
    ev = {r.id: r for r in read_jsonl(tmp_path / 'ds' / 'eval.jsonl')}
    assert set(ev) == {r['id'] for r in val}
    r, src = ev['xray_000'], val[0]
    # field by field: prompt, target, fields, and every metadata field of the row kept
    assert (r.prompt, r.target) == (src['input'], src['output'])
    assert r.fields == {'instruction': src['instruction'], 'image_file': src['image_file']}
    assert {k: r.metadata[k] for k in ('scenario_id', 'modality', 'image_type', 'error_type', 'severity', 'cost_impact', 'label', 'source_split')} == \
        {'scenario_id': 'xray_000', 'modality': 'xray', 'image_type': 'positive', 'error_type': 'unnecessary_procedure',
         'severity': 'critical', 'cost_impact': 45000, 'label': 'ERROR', 'source_split': 'val'}
    assert r.images == ['images/xray_000_0.png'] and (tmp_path / 'ds' / r.images[0]).is_file()
    # the two splits share image files: kept (the authors' split), and said
    assert stats['source_split_shared_patients']['count'] == 8


def test_small_source_with_defaults_and_eval_only(tmp_path):
    "A 16-row file works with the defaults (no --n-eval 50), and can be converted wholly to an eval set."
    d, train, _ = _medbilldozer(tmp_path / 'mbd')
    img = ('--images-root', tmp_path / 'mbd' / 'images')
    stats = _cli('data', 'clinical', '--from', d / 'train.jsonl', *img, '--out', tmp_path / 'a')
    assert sum(v['n'] for v in stats['splits'].values()) == 16 and 'by patient' in stats['split_rule']
    stats = _cli('data', 'clinical', '--from', d / 'train.json', *img, '--eval-only', '--out', tmp_path / 'b')
    assert {k: v['n'] for k, v in stats['splits'].items()} == {'train': 0, 'eval': 16}
    stats = _cli('data', 'clinical', '--from', d / 'train.jsonl', *img, '--n-train', '0', '--out', tmp_path / 'c')
    assert stats['splits']['eval']['n'] == 16
    stats = _cli('data', 'clinical', '--from', d, *img, '--resplit', '--out', tmp_path / 'e')
    assert 'resplit' in stats['split_rule'] and 'source_split_shared_patients' not in stats


def test_failed_data_run_leaves_nothing(tmp_path, capsys):
    d, _, _ = _medbilldozer(tmp_path / 'mbd')
    with pytest.raises(SystemExit) as e:
        _cli('data', 'clinical', '--from', d / 'train.jsonl', '--images-root', tmp_path / 'mbd' / 'images', '--n-eval', '50', '--out', tmp_path / 'D')
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert '--n-eval' in err and not (tmp_path / 'D').exists() and not list(tmp_path.glob('.D*'))


# ---------------------------------------------------------------- pediatric: PediRad-8K and pedirad-custom trees

def test_pedirad_8k_tree_keeps_splits_and_fractures(tmp_path):
    root = tmp_path / 'data' / 'pedirad-8k'
    (root / 'processed').mkdir(parents=True)
    for s, n in (('train', 5), ('val', 2), ('test', 3)):
        rows = []
        for k in range(n):
            draw_hand(default_rng(k), 32).save(root / 'processed' / f'{s}{k}.png')
            rows.append({'image_id': f'{s}{k}', 'patient': {'patient_id': f'{s}-P{k}', 'chronological_age_months': 120 + k, 'sex': 'F'},
                         'radiology': {'study_type': 'bone_age', 'bone_age_months': 126.0 + k, 'confidence': 0.8,
                                       **({'fractures': [{'type': 'greenstick', 'bone': 'distal_radius'}]} if k == 1 else {})},
                         'scanner': 'DR-9'})
        _json(root / 'annotations' / f'{s}_annotations.json', rows)
    stats = _cli('data', 'pediatric', '--from', root, '--out', tmp_path / 'ds')
    assert {k: v['n'] for k, v in stats['splits'].items()} == {'train': 6, 'val': 3, 'eval': 4}
    assert stats['extra_fields'] == {'scanner': 13}
    ev = {r.id: r for r in read_jsonl(tmp_path / 'ds' / 'eval.jsonl')}
    assert set(ev) == {'bone_age:test0', 'bone_age:test1', 'bone_age:test2', 'fracture:test1'}
    b, f = ev['bone_age:test1'], ev['fracture:test1']
    assert b.target == '{"bone_age_months": 127, "confidence": 0.8}' and b.fields == {'age_months': 121, 'sex': 'female'}
    assert 'Chronological age: 121 months' in b.prompt and b.metadata['extra'] == {'scanner': 'DR-9'}
    assert f.target == '{"fracture_present": true, "type": "distal_radius", "confidence": 0.8}'
    assert (f.patient_id, f.metadata['fracture_type_source'], f.fields) == ('test-P1', [{'type': 'greenstick', 'bone': 'distal_radius'}],
                                                                          {'age_years': 10, 'sex': 'female'})


def test_pedirad_custom_pediscreen_vocabulary(tmp_path):
    root = tmp_path / 'pedirad-custom'
    for rel in ('rop_screening/val/zone_i_stage2/r1.png', 'rop_screening/val/normal_pupil/r2.png', 'fractures/val/buckle/f1.png',
                'fractures/val/distal_ulna/f2.png', 'fractures/val/normal/f3.png'):
        (root / rel).parent.mkdir(parents=True, exist_ok=True); Image.new('L', (16, 16), 90).save(root / rel)
    _json(root / 'rop_screening' / 'val_annotations.json', [
        {'image_path': 'val/zone_i_stage2/r1.png', 'zone': 'I', 'stage': 2, 'plus_disease': True, 'ga_weeks': 26, 'eye': 'OS'},
        {'image_path': 'val/normal_pupil/r2.png', 'stage': 'none', 'ga_weeks': 31, 'eye': 'right', 'pma_weeks': 36}])
    _json(root / 'fractures' / 'val_annotations.json', [
        {'image_path': 'val/buckle/f1.png', 'type': 'buckle', 'bone': 'distal_radius', 'age_years': 7, 'sex': 'M'},
        {'image_path': 'val/distal_ulna/f2.png', 'type': 'complete', 'bone': 'distal_ulna', 'fracture_present': True},
        {'image_path': 'val/normal/f3.png', 'fracture_present': False}])
    recs = {r.id: r for r in load_pediatric(root)}
    r1, r2 = recs['rop:r1'], recs['rop:r2']
    assert r1.target == '{"zone": "I", "stage": 2, "plus_disease": true, "confidence": 0.85}'
    assert r1.fields == {'gestational_age_weeks': 26, 'eye': 'left'} and 'Eye: left' in r1.prompt
    assert (r2.metadata['stage'], r2.metadata['zone'], r2.metadata['zone_given'], r2.metadata['plus_disease_given']) == (0, 'III', False, False)
    assert r2.fields == {'gestational_age_weeks': 31, 'postmenstrual_age_weeks': 36, 'eye': 'right'}
    assert [recs[f'fracture:{i}'].metadata['fracture_type'] for i in ('f1', 'f2', 'f3')] == ['buckle', 'other', 'none']
    assert (recs['fracture:f2'].metadata['fracture_type_source'], recs['fracture:f2'].metadata['fracture_bone']) == ('complete', 'distal_ulna')
    assert all(r.metadata['source_split'] == 'val' for r in recs.values())


def test_image_task_without_image(tmp_path):
    root = tmp_path / 'ped'
    _json(root / 'bone_age' / 'train_annotations.json', [{'id': 'b1', 'bone_age_months': 100, 'age_months': 96}])
    with pytest.raises(ValueError, match=r"train_annotations\.json\[0\] \(id 'b1'\): no image"):
        load_pediatric(root)
    r = load_pediatric(root, keep_text_only=True)[0]
    assert r.images == [] and r.metadata['image_dependent'] is False and '(no image available)' in r.prompt and '(see image)' not in r.prompt
    # the CLI names its own flag
    with pytest.raises(SystemExit):
        _cli('data', 'pediatric', '--from', root, '--out', tmp_path / 'x')


def test_cli_errors_name_flags(tmp_path, capsys):
    root = tmp_path / 'ped'
    _json(root / 'bone_age' / 'train_annotations.json', [{'id': f'b{i}', 'bone_age_months': 100} for i in range(12)])
    with pytest.raises(SystemExit):
        _cli('data', 'pediatric', '--from', root, '--out', tmp_path / 'x')
    err = capsys.readouterr().err
    assert '--keep-text-only' in err and '--skip-bad' in err and 'keep_text_only' not in err and 'skip_bad' not in err
    assert err.index(' b2,') < err.index(' b10,')   # ids in natural order, not as strings


def test_data_help_documents_every_option(capsys):
    p = build_parser(['data'])
    sub = next(a for a in p._actions if a.dest == 'cmd').choices['data']
    for a in sub._actions:
        if a.dest == 'help': continue
        assert a.help and len(a.help) > 10, a.dest
    for flag in ('--from', '--images-root', '--subtask', '--resplit', '--eval-only', '--keep-text-only', '--n-train', '--n-val', '--n-eval'):
        assert flag in sub.format_help(), flag


# ---------------------------------------------------------------- rtl: the three shapes of the RTL system's files

def test_rtl_folder_of_three_shapes(tmp_path):
    d = tmp_path / 'rtl' / 'data'
    al = {'alignments': [{'claim_id': 'c1', 'label': 'supported', 'evidence': 'opacity', 'confidence': 0.9},
                         {'claim_id': 'c2', 'label': 'uncertain', 'evidence': 'faint', 'confidence': 0.5}]}
    _jsonl(d / 'rtl_train.jsonl', [{'prompt': f'Report claims:\nc1 ... {i}', 'completion': json.dumps(al), 'case_id': f'case{i}'} for i in range(6)])
    _jsonl(d / 'uncertainty_train.jsonl', [{'input': 'This is definitely pneumonia.', 'output': 'Findings may represent pneumonia.'}])
    gemma = '<bos><start_of_turn>user\nReport claims:\nc1 ... v{}<end_of_turn>\n<start_of_turn>model\n{}<end_of_turn>\n'
    _jsonl(d / 'chat_val.jsonl', [{'text': gemma.format(i, json.dumps(al)), 'origin': 'gen'} for i in range(3)])
    recs = {r.id: r for r in load_rtl(d)}
    a, w, c = recs['rtl_train_1'], recs['uncertainty_train_1'], recs['chat_val_2']
    assert (a.prompt, a.patient_id, a.metadata['kind'], a.metadata['labels']) == ('Report claims:\nc1 ... 0', 'case0', 'alignment', ['supported', 'uncertain'])
    assert json.loads(a.target) == al and a.metadata['source_split'] == 'train' and a.metadata['image_dependent'] is False
    assert (w.target, w.fields, w.metadata['kind'], w.metadata['source_split']) == ('Findings may represent pneumonia.', {'original': 'This is definitely pneumonia.'}, 'rewrite', 'train')
    assert w.prompt.endswith('This is definitely pneumonia.')
    assert (c.prompt, json.loads(c.target), c.metadata['source_split'], c.metadata['extra']) == ('Report claims:\nc1 ... v1', al, 'val', {'origin': 'gen'})
    stats = _cli('data', 'rtl', '--from', d, '--out', tmp_path / 'ds')
    assert {k: v['n'] for k, v in stats['splits'].items()} == {'train': 7, 'eval': 3}
    # the RTL dataset's *_chat twins hold the same cases as chat messages: each case loads once, the twins counted
    _jsonl(d / 'rtl_train_chat.jsonl', [{'messages': [{'role': 'user', 'content': f'Report claims:\nc1 ... {i}'},
                                                      {'role': 'assistant', 'content': json.dumps(al)}]} for i in range(4)])
    stats = _cli('data', 'rtl', '--from', d, '--out', tmp_path / 'ds2')
    assert {k: v['n'] for k, v in stats['splits'].items()} == {'train': 7, 'eval': 3}
    assert stats['excluded'] == {'rows repeating an earlier case (same prompt, answer and images), loaded once': 4}


def test_rtl_alignment_fields_kept(tmp_path):
    al = {'alignments': [{'claim_id': 'c1', 'label': 'supported', 'evidence': 'opacity', 'confidence': 0.9,
                          'related_finding_ids': ['F2', 'F3'], 'claim_text': 'Right lower lobe opacity.'}]}
    _jsonl(tmp_path / 'rtl_train.jsonl', [{'prompt': 'Report claims:\nc1 ...', 'completion': json.dumps(al)}])
    (r,) = load_rtl(tmp_path / 'rtl_train.jsonl')
    assert json.loads(r.target)['alignments'][0]['related_finding_ids'] == ['F2', 'F3']
    assert r.metadata['extra'] == {'alignments': [{'claim_id': 'c1', 'claim_text': 'Right lower lobe opacity.'}]}


def test_rtl_unknown_shape_says_so(tmp_path):
    _jsonl(tmp_path / 'x.jsonl', [{'question': 'q', 'answer': 'a'}])
    with pytest.raises(ValueError, match=r"x\.jsonl:1.*unsupported RTL row with fields \['answer', 'question'\]"):
        load_source('rtl', tmp_path / 'x.jsonl')


# ---------------------------------------------------------------- score: plain references (id, task, target)

@pytest.mark.parametrize('task', ['rtl', 'clinical', 'pediatric'])
def test_score_accepts_plain_references(tmp_path, task):
    ds = tmp_path / 'ds'
    make_dataset(task, ds, n_train=4, n_eval=24, seed=3, verbose=False)
    refs = read_jsonl(ds / 'eval.jsonl')
    plain = [{'id': r.id, 'task': r.task, **({'subtask': r.subtask} if r.subtask else {}), 'target': r.target} for r in refs]
    _jsonl(tmp_path / 'plain.jsonl', plain)
    preds = [{'id': r.id, 'output': r.target if i % 3 else 'not an answer'} for i, r in enumerate(refs)]
    _jsonl(tmp_path / 'preds.jsonl', preds)
    full = _cli('score', task, '--predictions', tmp_path / 'preds.jsonl', '--references', ds / 'eval.jsonl', '--out', tmp_path / 'full')
    bare = _cli('score', task, '--predictions', tmp_path / 'preds.jsonl', '--references', tmp_path / 'plain.jsonl', '--out', tmp_path / 'bare')
    key = {'rtl': 'label_accuracy', 'clinical': 'accuracy', 'pediatric': 'invalid_rate'}[task]
    f, b = full['runs']['preds'], bare['runs']['preds']
    assert f[key] == b[key]
    if task == 'clinical':
        assert 'mean_clinical_reward' in f and 'mean_clinical_reward' not in b and b['n_unknown_label']['severity'] > 0


# ---------------------------------------------------------------- public datasets by their published layout

def _rsna(root, n=12):
    "RSNA Pediatric Bone Age as Kaggle publishes it (kmader/rsna-bone-age): the training CSV `id,boneage,male`, images "
    "nested twice, and the test CSV `Case ID,Sex` without answers (Halabi et al., Radiology 2019)."
    imgs = root / 'boneage-training-dataset' / 'boneage-training-dataset'
    imgs.mkdir(parents=True)
    rows = ['id,boneage,male']
    for i in range(n):
        draw_hand(default_rng(i), 32, 60 + 10 * i).save(imgs / f'{1377 + i}.png')
        rows.append(f'{1377 + i},{60 + 10 * i},{"True" if i % 2 else "False"}')
    (root / 'boneage-training-dataset.csv').write_text('\n'.join(rows) + '\n')
    test_imgs = root / 'boneage-test-dataset' / 'boneage-test-dataset'
    test_imgs.mkdir(parents=True)
    for i in range(3):
        draw_hand(default_rng(50 + i), 32).save(test_imgs / f'{4360 + i}.png')
    (root / 'boneage-test-dataset.csv').write_text('Case ID,Sex\n4360,M\n4361,F\n4362,M\n')


def test_rsna_bone_age_loads_by_its_layout_and_trains(tmp_path):
    _rsna(tmp_path / 'rsna')
    stats = _cli('data', 'pediatric', '--from', tmp_path / 'rsna', '--out', tmp_path / 'ds')
    assert stats['excluded'] == {'RSNA test rows without an answer (no answers file beside boneage-test-dataset.csv)': 3}
    assert stats['split_rule'] == 'split by patient' and stats['accounting']['loaded'] == 12
    recs = [r for s in ('train', 'val', 'eval') if (tmp_path / 'ds' / f'{s}.jsonl').exists()
            for r in read_jsonl(tmp_path / 'ds' / f'{s}.jsonl')]
    assert {r.fields['sex'] for r in recs} == {'male', 'female'} and all(r.subtask == 'bone_age' for r in recs)
    # with the answers file beside the test CSV, the test rows are the eval split: the challenge's own split
    (tmp_path / 'rsna' / 'Bone age ground truth.csv').write_text(
        'Case ID,Sex,Ground truth bone age (months)\n4360,M,168.9\n4361,F,100\n4362,M,37\n')
    stats = _cli('data', 'pediatric', '--from', tmp_path / 'rsna', '--out', tmp_path / 'ds2')
    assert 'excluded' not in stats and stats['source_splits'] == {'test': 3, 'train': 12}
    ev = read_jsonl(tmp_path / 'ds2' / 'eval.jsonl')
    assert sorted(r.target for r in ev)[0] == '{"bone_age_months": 100, "confidence": 0.85}' and len(ev) == 3
    # and it trains, predicts and scores
    _cli('train', '--data', tmp_path / 'ds2', '--out', tmp_path / 'ad', '--max-steps', '1')
    _cli('predict', '--adapter', tmp_path / 'ad', '--data', tmp_path / 'ds2' / 'eval.jsonl', '--out', tmp_path / 'p.jsonl')
    _cli('score', 'pediatric', '--predictions', tmp_path / 'p.jsonl', '--references', tmp_path / 'ds2' / 'eval.jsonl',
         '--out', tmp_path / 'm.json')
    (m,) = json.loads((tmp_path / 'm.json').read_text())['runs'].values()
    assert m['n_cases'] == 3 and 'mae_months' in m, sorted(m)


def _grazpedwri(root):
    "GRAZPEDWRI-DX's layout (Nagy et al., Sci Data 9, 222 (2022)): dataset.csv, one row per radiograph, PNGs in parts."
    rows = ['filestem,patient_id,gender,age,ao_classification,fracture_visible,diagnosis_uncertain,metal']
    codes = ['23r-M/2.1', '', '23r-M/3.1', '23u-E/7', '', '23r-M/2.1;23u-M/2.1']
    for p in range(10):
        for view in (1, 2):
            stem = f'{p:04d}_{view}'
            part = root / f'images_part{1 + p % 2}'
            part.mkdir(parents=True, exist_ok=True)
            Image.new('L', (24, 24), 40 + 10 * p).save(part / f'{stem}.png')
            code = codes[p % len(codes)]
            rows.append(f'{stem},{p:04d},{"MF"[p % 2]},{6 + p},{code},{1 if code else ""},{1 if p == 9 else ""},')
    (root / 'dataset.csv').write_text('\n'.join(rows) + '\n')


def test_grazpedwri_dx_loads_by_its_layout_patients_in_one_split(tmp_path):
    _grazpedwri(tmp_path / 'graz')
    stats = _cli('data', 'pediatric', '--from', tmp_path / 'graz', '--out', tmp_path / 'ds')
    assert stats['excluded'] == {'GRAZPEDWRI-DX rows with diagnosis_uncertain = 1': 2}
    splits = {s: read_jsonl(tmp_path / 'ds' / f'{s}.jsonl') for s in ('train', 'val', 'eval')
              if (tmp_path / 'ds' / f'{s}.jsonl').exists()}
    pats = {s: {r.patient_id for r in recs} for s, recs in splits.items()}
    assert not (pats['train'] & pats['eval']) and sum(len(v) for v in splits.values()) == 18
    types = {r.id: r.metadata['fracture_type'] for recs in splits.values() for r in recs}
    assert (types['fracture:0000_1'], types['fracture:0001_2'], types['fracture:0003_1'], types['fracture:0005_1']) == (
        'buckle', 'none', 'other', 'buckle')
    r = next(r for recs in splits.values() for r in recs if r.id == 'fracture:0002_1')
    assert r.metadata['extra']['ao_classification'] == '23r-M/3.1' and r.fields == {'age_years': 8, 'sex': 'male'}
    _cli('train', '--data', tmp_path / 'ds', '--out', tmp_path / 'ad', '--max-steps', '1')  # and it trains and scores
    _cli('predict', '--adapter', tmp_path / 'ad', '--data', tmp_path / 'ds' / 'eval.jsonl', '--out', tmp_path / 'p.jsonl')
    _cli('score', 'pediatric', '--predictions', tmp_path / 'p.jsonl', '--references', tmp_path / 'ds' / 'eval.jsonl',
         '--out', tmp_path / 'm.json')
    (m,) = json.loads((tmp_path / 'm.json').read_text())['runs'].values()
    assert m['n_cases'] == len(splits['eval']) and 'fracture_f1' in m, sorted(m)


def test_an_empty_eval_split_is_refused(tmp_path, capsys):
    _grazpedwri(tmp_path / 'graz')
    csv = tmp_path / 'graz' / 'dataset.csv'
    csv.write_text(''.join(csv.read_text().splitlines(True)[:3]))  # two radiographs: 20% of them rounds to none
    with pytest.raises(SystemExit) as e:
        _cli('data', 'pediatric', '--from', tmp_path / 'graz', '--out', tmp_path / 'ds')
    assert e.value.code == 2 and 'the eval split is empty' in capsys.readouterr().err
    assert not (tmp_path / 'ds').exists()


def test_an_annotation_file_alone_names_the_images_root(tmp_path, capsys):
    root = tmp_path / 'pedirad-8k'
    (root / 'processed').mkdir(parents=True)
    draw_hand(default_rng(0), 32).save(root / 'processed' / 'PR1.png')
    _json(root / 'annotations' / 'train_annotations.json',
          [{'image_id': 'PR1', 'radiology': {'study_type': 'bone_age', 'bone_age_months': 100}}])
    with pytest.raises(SystemExit):
        _cli('data', 'pediatric', '--from', root / 'annotations' / 'train_annotations.json', '--out', tmp_path / 'x')
    assert f"pass --images-root {root / 'processed'}" in capsys.readouterr().err


# ---------------------------------------------------------------- your own JSONL: checked up front, its split kept

def test_own_jsonl_split_kept_and_targets_checked_before_training(tmp_path, capsys):
    ds = tmp_path / 'ds'
    make_dataset('pediatric', ds, n_train=12, n_eval=4, seed=1, verbose=False, subtask='bone_age')
    rows = [json.loads(line) for s in ('train', 'eval') for line in (ds / f'{s}.jsonl').read_text().splitlines()]
    for i, r in enumerate(rows):
        r['split'] = 'test' if i >= 12 else 'Train'
        r['images'] = [str(ds / p) for p in r['images']]
    _jsonl(tmp_path / 'mine.jsonl', rows)
    stats = _cli('data', 'pediatric', '--from', tmp_path / 'mine.jsonl', '--out', tmp_path / 'out')
    assert stats['source_splits'] == {'test': 4, 'train': 12} and stats['splits']['eval']['n'] == 4
    # a bone-age target without its confidence fails at `data`, naming the record, not at `score` after training
    rows[0]['target'] = json.dumps({'bone_age_months': json.loads(rows[0]['target'])['bone_age_months']})
    _jsonl(tmp_path / 'bad.jsonl', rows)
    with pytest.raises(SystemExit):
        _cli('data', 'pediatric', '--from', tmp_path / 'bad.jsonl', '--out', tmp_path / 'out2')
    err = capsys.readouterr().err
    assert rows[0]['id'] in err and 'confidence' in err and 'score would refuse it' in err


# ---------------------------------------------------------------- any CSV: --columns names its columns, --vocab its words

def test_csv_with_foreign_columns_and_words(tmp_path, capsys):
    d = tmp_path / 'rop_site'
    d.mkdir()
    rows = ['Image File,Pt,Zone (ICROP3),ROP Stage,Plus,Camera']
    words = [('posterior zone II', '4A', 'pre-plus'), ('Zone I', '3', 'yes'), ('zone III', 'none', 'no')]
    for i in range(12):
        Image.new('RGB', (24, 24), (120 + i, 40, 30)).save(d / f'f{i}.png')
        zone, stage, plus = words[i % 3]
        rows.append(f'f{i}.png,P{i},{zone},{stage},{plus},RetCam')
    (d / 'labels.csv').write_text('\n'.join(rows) + '\n')
    cols = 'image=Image File,patient_id=Pt,zone=Zone (ICROP3),stage=ROP Stage,plus_disease=Plus'
    # unknown words without a mapping: one error, every distinct word with its count, the --vocab entry to write
    with pytest.raises(SystemExit):
        _cli('data', 'pediatric', '--subtask', 'rop', '--from', d / 'labels.csv', '--columns', cols, '--out', tmp_path / 'x')
    err = capsys.readouterr().err
    assert "stage '4A' (4 row(s)" in err and "zone 'posterior zone II' (4 row(s)" in err and '--vocab FILE' in err
    (tmp_path / 'vocab.json').write_text(json.dumps({'stage': {'4A': 3}, 'zone': {'posterior zone II': 'II'}}))
    stats = _cli('data', 'pediatric', '--subtask', 'rop', '--from', d / 'labels.csv', '--columns', cols,
                 '--vocab', tmp_path / 'vocab.json', '--out', tmp_path / 'ds')
    assert stats['vocab_mapped'] == {'stage: 4A -> 3': 4, 'zone: posterior zone II -> II': 4}
    assert stats['vocab']['map'] == {'stage': {'4a': 3}, 'zone': {'posterior_zone_ii': 'II'}}
    assert stats['columns']['zone'] == 'Zone (ICROP3)' and stats['extra_fields'] == {'Camera': 12}
    recs = {r.id: r for s in ('train', 'val', 'eval') if (tmp_path / 'ds' / f'{s}.jsonl').exists()
            for r in read_jsonl(tmp_path / 'ds' / f'{s}.jsonl')}
    r0 = recs['rop:f0']
    assert (r0.metadata['zone'], r0.metadata['stage'], r0.metadata['plus_disease'], r0.patient_id) == ('II', 3, False, 'P0')
    assert r0.metadata['plus_disease_source'] == 'pre-plus'


def test_resplit_keeps_each_image_in_one_split(tmp_path):
    ds = tmp_path / 'ds'
    make_dataset('pediatric', ds, n_train=16, n_eval=4, seed=1, verbose=False, subtask='bone_age')
    rows = [json.loads(line) for s in ('train', 'eval') for line in (ds / f'{s}.jsonl').read_text().splitlines()]
    for r in rows:
        r['images'] = [str(ds / p) for p in r['images']]
    for r in rows[1:4]:  # one radiograph under four ids and patients (a bone-age and a fracture reading, say)
        r['images'] = rows[0]['images']
    _jsonl(tmp_path / 'mine.jsonl', rows)
    shared = {r['id'] for r in rows[:4]}
    for seed in range(4):
        out = tmp_path / f'out{seed}'
        _cli('data', 'pediatric', '--from', tmp_path / 'mine.jsonl', '--resplit', '--seed', seed, '--out', out)
        where = {r.id: s for s in ('train', 'val', 'eval') if (out / f'{s}.jsonl').exists()
                 for r in read_jsonl(out / f'{s}.jsonl')}
        assert len({where[i] for i in shared}) == 1, (seed, {i: where[i] for i in shared})


def test_readme_own_jsonl_examples_load_train_and_score(tmp_path):
    "The README's one example record per task, as a user would copy it: it loads, trains and scores."
    readme = (Path(__file__).parent.parent / 'README.md').read_text()
    block = readme.split('```jsonl\n', 1)[1].split('```', 1)[0]
    examples = [json.loads(line) for line in block.splitlines() if line.strip()]
    assert [e['task'] for e in examples] == ['rtl', 'clinical', 'pediatric', 'classify']
    for e in examples:
        d = tmp_path / e['task']
        rows = []
        for k in range(10):  # ten patients, each a copy of the example with its own image
            r = json.loads(json.dumps(e))
            r['id'], r['metadata']['patient_id'] = f"{e['id']}_{k}", f'P{k}'
            r['images'] = [f"images/{e['id']}_{k}.png"]
            r.pop('split', None)
            (d / 'images').mkdir(parents=True, exist_ok=True)
            Image.new('RGB', (32, 32), (20 * k, 90, 40)).save(d / r['images'][0])
            rows.append(r)
        _jsonl(d / 'mine.jsonl', rows)
        stats = _cli('data', e['task'], '--from', d / 'mine.jsonl', '--out', d / 'ds')
        assert stats['accounting']['loaded'] == 10
        _cli('train', '--data', d / 'ds', '--out', d / 'ad', '--max-steps', '1')
        _cli('predict', '--adapter', d / 'ad', '--data', d / 'ds' / 'eval.jsonl', '--out', d / 'p.jsonl')
        _cli('score', e['task'], '--predictions', d / 'p.jsonl', '--references', d / 'ds' / 'eval.jsonl',
             '--out', d / 'm.json')
        (m,) = json.loads((d / 'm.json').read_text())['runs'].values()
        assert m['n_cases'] == stats['splits']['eval']['n'] > 0, (e['task'], m)
