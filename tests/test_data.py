"""Bad input and the `data` command end to end (what the data, synth and sources notebooks are a poor home for)."""
import hashlib, json, warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from medgemma_lora.data import Record, check_no_leak, read_jsonl, split_records, write_jsonl
from medgemma_lora.eval_clinical import CLINICAL_MODALITIES, ERROR_TYPES, SEVERITIES, load_clinical
from medgemma_lora.pediatric_data import FRACTURE_TYPES, PEDIATRIC_SUBTASKS, load_pediatric
from medgemma_lora.eval_rtl import RTL_LABELS, load_rtl

from medgemma_lora.images import load_image, materialize_images
from medgemma_lora.synth import draw_chest, synthesize
from medgemma_lora.sources import ImageResolver, load_source, make_dataset

TASKS = ('rtl', 'clinical', 'pediatric')  # the seed systems' tasks
from medgemma_lora.prompts import chat_messages, instruction, system_prompt, to_hf_dataset
from medgemma_lora.cli import run_command


def _digest(d):
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(d).rglob('*')) if p.is_file()}


def _rows(path):
    return [json.loads(l) for l in Path(path).read_text(encoding='utf-8').splitlines() if l.strip()]


def _record(i='r1', **kw):
    d = dict(id=i, task='clinical', prompt='p', target='CORRECT - Treatment matches imaging findings', images=[],
             metadata=dict(modality='mri', error_type='none', severity='none', label='CORRECT', patient_id='p' + i))
    d.update(kw)
    return d


def _quiet(fn, *a, **kw):
    "Call `fn`, returning (result, warning messages)."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        out = fn(*a, **kw)
    return out, [str(x.message) for x in w]


# ---------------------------------------------------------------- JSONL: malformed lines, bad records, duplicates

def test_malformed_json_line_names_file_and_line(tmp_path):
    p = tmp_path / 'cases.jsonl'
    p.write_text(json.dumps(_record('a')) + '\n\n' + '{"id": "b", "task": \n' + json.dumps(_record('c')) + '\n')
    with pytest.raises(ValueError, match=r'cases\.jsonl:3: malformed JSON'):
        read_jsonl(p)
    recs, msgs = _quiet(read_jsonl, p, skip_bad=True)
    assert [r.id for r in recs] == ['a', 'c']
    assert len(recs.skipped) == 1 and recs.skipped[0]['where'].endswith('cases.jsonl:3')
    assert any('skipped 1' in m for m in msgs)


@pytest.mark.parametrize('change, expect', [
    (dict(task='dermatology'), "unknown task 'dermatology'"),
    (dict(metadata=dict(modality='', error_type='none', severity='none', label='CORRECT', patient_id='x')), 'metadata.modality must name'),
    (dict(target='ERROR - Surgery not indicated', metadata=dict(modality='mri', error_type='overtreatment', severity='none', label='ERROR', patient_id='x')), 'severity'),
    (dict(metadata=dict(modality='mri', error_type='none', severity='none', label='MAYBE', patient_id='x')), "metadata.label 'MAYBE' contradicts the target, which says 'CORRECT'"),
    (dict(target='ERROR - Surgery not indicated', metadata=dict(modality='mri', error_type='none', severity='none', label='MAYBE', patient_id='x')), "contradicts the target"),
    (dict(metadata=dict(modality='mri', error_type='none', severity='none', label='CORRECT')), 'patient_id must be a non-empty string'),
    (dict(task='rtl', metadata=dict(label='probably', patient_id='x')), "metadata.label 'probably' contradicts the target"),
    (dict(task='rtl', target='{"alignments": []}', metadata=dict(label='probably', patient_id='x')), "unknown rtl label 'probably'"),
    (dict(task='pediatric', subtask='dental', metadata=dict(patient_id='x')), "unknown pediatric subtask 'dental'"),
    (dict(task='pediatric', subtask='fracture', metadata=dict(patient_id='x', fracture_type='greenstick')), "unknown fracture type 'greenstick'"),
    (dict(task='pediatric', subtask='rop', metadata=dict(patient_id='x', zone='II', stage=5)), 'unknown ROP stage 5'),
    (dict(target=''), 'empty target'),
    (dict(extra=1), "unknown field(s) ['extra']"),
])
def test_invalid_record_names_line_and_id(tmp_path, change, expect):
    p = tmp_path / 'bad.jsonl'
    write_jsonl([_record('ok'), _record('bad1', **change)], p)
    with pytest.raises(ValueError) as e:
        read_jsonl(p)
    assert 'bad.jsonl:2' in str(e.value) and expect in str(e.value)
    recs, _ = _quiet(read_jsonl, p, skip_bad=True)
    assert [r.id for r in recs] == ['ok'] and recs.skipped[0]['id'] == 'bad1'


def test_duplicate_ids(tmp_path):
    p = tmp_path / 'dup.jsonl'
    write_jsonl([_record('a'), _record('b'), _record('a')], p)
    with pytest.raises(ValueError, match=r"dup\.jsonl:3.*duplicate id \(first seen at .*dup\.jsonl:1\)"):
        read_jsonl(p)
    recs, msgs = _quiet(read_jsonl, p, skip_bad=True)
    assert [r.id for r in recs] == ['a', 'b'] and recs.skipped[0]['id'] == 'a' and "a" in msgs[0]


def test_all_problems_are_counted(tmp_path):
    p = tmp_path / 'many.jsonl'
    write_jsonl([_record('a', task='x'), _record('b', task='y'), _record('c')], p)
    with pytest.raises(ValueError, match=r'and 1 more problem'):
        read_jsonl(p)


def test_missing_file():
    with pytest.raises(ValueError, match='no such JSONL file'):
        read_jsonl('/nonexistent/train.jsonl')


# ---------------------------------------------------------------- images: missing, unreadable, DICOM, odd PNGs

def test_missing_and_unreadable_images_list_ids(tmp_path):
    ok = tmp_path / 'ok.png'
    draw_chest(np.random.default_rng(0)).save(ok)
    (tmp_path / 'junk.png').write_bytes(b'\x89PNG but not really')
    recs = [Record.from_dict(_record(i, images=[str(p)])) for i, p in
            (('good', ok), ('gone', tmp_path / 'gone.png'), ('junk', tmp_path / 'junk.png'))]
    with pytest.raises(ValueError) as e:
        materialize_images(recs, tmp_path / 'out')
    msg = str(e.value)
    assert 'gone' in msg and 'junk' in msg and 'missing or unreadable image' in msg
    out, msgs = _quiet(materialize_images, recs, tmp_path / 'out2', skip_bad=True)
    assert [r.id for r in out] == ['good'] and sorted(s['id'] for s in out.skipped) == ['gone', 'junk']
    assert 'skipped 2' in msgs[0]
    with pytest.raises(ValueError, match='gone'):
        to_hf_dataset(recs[:2], tmp_path)


@pytest.mark.parametrize('name, size', [('CT_small.dcm', (128, 128)), ('MR_small.dcm', (64, 64))])
def test_dicom_real_files(name, size):
    im = load_image(get_testdata_file(name))
    a = np.asarray(im)
    assert im.mode == 'RGB' and im.size == size and a.dtype == np.uint8
    assert a[..., 0].max() == 255 and a[..., 0].min() == 0 or a.std() > 20
    assert (a[..., 0] == a[..., 1]).all()


def test_dicom_without_extension_and_monochrome1(tmp_path):
    ds = pydicom.dcmread(get_testdata_file('CT_small.dcm'))
    ds.save_as(tmp_path / 'noext')
    ref = np.asarray(load_image(get_testdata_file('CT_small.dcm'))).astype(int)
    assert (np.asarray(load_image(tmp_path / 'noext')).astype(int) == ref).all()
    ds.PhotometricInterpretation = 'MONOCHROME1'
    ds.save_as(tmp_path / 'inv.dcm')
    assert (np.asarray(load_image(tmp_path / 'inv.dcm')).astype(int) == 255 - ref).all()


def test_sixteen_bit_png_and_palette(tmp_path):
    a = np.zeros((32, 32), np.uint16)
    a[:, 16:] = 4000                      # a 12-bit image stored in 16 bits: naive conversion saturates
    Image.fromarray(a).save(tmp_path / 'g16.png')
    out = np.asarray(load_image(tmp_path / 'g16.png'))
    assert out[0, 0, 0] == 0 and out[0, 31, 0] == 255
    pal = Image.new('P', (8, 8))
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / 'pal.png')
    assert load_image(tmp_path / 'pal.png').getpixel((1, 1)) == (255, 0, 0)


def test_ambiguous_image_name(tmp_path):
    for d in ('a', 'b'):
        (tmp_path / d).mkdir()
        Image.new('L', (2, 2)).save(tmp_path / d / 'x.png')
    with pytest.raises(ValueError, match='ambiguous'):
        ImageResolver(images_root=tmp_path).resolve('/far/away/x.png')


# ---------------------------------------------------------------- real formats: clinical, pediatric, RTL

def _clinical_fixture(tmp_path):
    imgs = tmp_path / 'kaggle_images'
    imgs.mkdir()
    for m in CLINICAL_MODALITIES:
        for v in ('positive', 'negative'):
            draw_chest(np.random.default_rng(len(m)), effusion=v == 'positive').save(imgs / f'{m}_{v}.png')
    rows = []
    for k, m in enumerate(CLINICAL_MODALITIES):
        for j in range(3):
            err = j > 0
            rows.append(dict(
                id=f'{m}_{k}{j:02d}_case', instruction='You are a medical AI assistant trained to detect clinical errors...',
                input=f'**Patient Information:**\n- Age: {40 + j}\n- Gender: Male\n**Clinical Finding:** ...\n**Prescribed Treatment:** ...',
                output=('ERROR - Surgery not indicated by imaging' if err else 'CORRECT - Treatment matches imaging findings'),
                image_file=f'{m}_{"negative" if err else "positive"}.png',
                image_path=f'/Users/someone/medbilldozer/data/images/{m}_{"negative" if err else "positive"}.png',
                metadata=dict(scenario_id=f'{m}_{k}{j:02d}_case', modality=m, image_type='scan',
                              error_type='unnecessary_procedure' if err else 'none',
                              severity=('critical' if j == 1 else 'moderate') if err else 'none', cost_impact=5000 * j)))
    return rows, imgs


def test_clinical_json_array_and_jsonl(tmp_path):
    rows, imgs = _clinical_fixture(tmp_path)
    (tmp_path / 'train.json').write_text(json.dumps(rows, indent=2))
    write_jsonl(rows, tmp_path / 'train.jsonl')
    a = load_clinical(tmp_path / 'train.json', images_root=imgs)
    b = load_clinical(tmp_path / 'train.jsonl', images_root=imgs)
    assert [r.to_dict() for r in a] == [r.to_dict() for r in b] and len(a) == 12
    assert {r.metadata['error_type'] for r in a} == {'none', 'unnecessary_procedure'}
    assert all(Path(p).parent == imgs for r in a for p in r.images)
    # rows sharing an image are one pseudo-patient, so they can never straddle a split
    assert len({r.patient_id for r in a}) == 8


def test_clinical_bad_rows(tmp_path):
    rows, imgs = _clinical_fixture(tmp_path)
    bad = [dict(rows[0], id='no_verdict', output='Looks fine to me'),
           dict(rows[1], id='err_no_type', metadata=dict(modality='mri')),
           dict(rows[2], id='ct_case', metadata=dict(rows[2]['metadata'], modality='pet')),
           dict(rows[3], id='lost_image', image_file='nowhere.png', image_path='C:\\data\\nowhere.png')]
    write_jsonl(rows[4:] + bad, tmp_path / 'mixed.jsonl')
    with pytest.raises(ValueError) as e:
        load_clinical(tmp_path / 'mixed.jsonl', images_root=imgs)
    assert 'mixed.jsonl:9' in str(e.value) and 'unknown verdict' in str(e.value) and 'and 2 more' in str(e.value)
    recs, _ = _quiet(load_clinical, tmp_path / 'mixed.jsonl', images_root=imgs, skip_bad=True)
    assert len(recs) == 9 and [s['id'] for s in recs.skipped] == ['no_verdict', 'err_no_type', 'lost_image']
    reasons = ' '.join(s['reason'] for s in recs.skipped)
    assert 'error_type' in reasons and 'image not found' in reasons
    assert next(r for r in recs if r.id == 'ct_case').modality == 'pet'  # modalities are open: a PET study is kept
    clash = dict(rows[0], id='clash', image_file='a.png', image_path='b.png')  # which image, and whose?
    write_jsonl([clash], tmp_path / 'clash.jsonl')
    with pytest.raises(ValueError, match=r"image_path and image_file name different images \['a.png', 'b.png'\]"):
        load_clinical(tmp_path / 'clash.jsonl', images_root=imgs)
    (tmp_path / 'broken.json').write_text('[\n  {"id": "a",\n  oops\n]')
    with pytest.raises(ValueError, match=r'broken\.json:3: malformed JSON'):
        load_clinical(tmp_path / 'broken.json')


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_pedirad_custom_with_dicom(tmp_path):
    root = tmp_path / 'pedirad-custom'
    ba = root / 'bone_age' / 'train'
    ba.mkdir(parents=True)
    pydicom.dcmread(get_testdata_file('CT_small.dcm')).save_as(ba / 'hand_001.dcm')
    _write(root / 'bone_age' / 'train_annotations.json', [{'image_id': 'hand_001', 'bone_age_years': 8.5, 'age_months': 96, 'sex': 'M', 'patient_id': 'A'}])
    for split, rel in (('train', 'train/zone_i_stage2/r1.png'), ('val', 'val/normal_pupil/r2.png')):
        (root / 'rop_screening' / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new('RGB', (8, 8), (200, 90, 40)).save(root / 'rop_screening' / rel)
        _write(root / 'rop_screening' / f'{split}_annotations.json', [{'image_path': rel, 'plus_disease': split == 'train', 'patient_id': f'R{split}'}])
    recs = load_pediatric(root)
    assert [r.id for r in recs] == ['bone_age:hand_001', 'rop:r1', 'rop:r2']
    assert json.loads(recs[0].target) == {'bone_age_months': 102, 'confidence': 0.85}
    assert json.loads(recs[1].target) == {'zone': 'I', 'stage': 2, 'plus_disease': True, 'confidence': 0.85}
    assert json.loads(recs[2].target)['stage'] == 0
    st = make_dataset('pediatric', tmp_path / 'out', source=root, n_eval=1, verbose=False)
    assert st['splits']['train']['n'] + st['splits']['eval']['n'] == 3
    rows = _rows(tmp_path / 'out' / 'train.jsonl') + _rows(tmp_path / 'out' / 'eval.jsonl')
    dcm_row = next(r for r in rows if r['subtask'] == 'bone_age')
    assert dcm_row['images'] == ['images/bone_age_hand_001_0.png']
    im = Image.open(tmp_path / 'out' / dcm_row['images'][0])
    assert im.format == 'PNG' and im.mode == 'RGB' and im.size == (128, 128)


def test_pedirad_8k_nested_and_bad_annotations(tmp_path):
    root = tmp_path / 'pedirad-8k'
    (root / 'processed').mkdir(parents=True)
    for i in range(4):
        Image.new('L', (8, 8), i * 40).save(root / 'processed' / f'img{i}.png')
    good = [{'image_id': f'img{i}', 'patient': {'patient_id': f'P{i // 2}', 'age_months': 100, 'sex': 'female'},
             'radiology': {'task': 'fracture', 'fracture_type': t}} for i, t in enumerate(['torus', 'normal', 'distal radius', 'buckle'])]
    _write(root / 'annotations' / 'train_annotations.json', good)
    recs = load_pediatric(root)
    assert [r.metadata['fracture_type'] for r in recs] == ['buckle', 'none', 'distal_radius', 'buckle']
    assert [r.patient_id for r in recs] == ['P0', 'P0', 'P1', 'P1'] and 'Age: 8 years' in recs[0].prompt
    bad = [
        {'image_id': 'img0', 'radiology': {'task': 'fracture', 'fracture_type': 'banana'}, 'id': 'g1'},
        {'image_id': 'img1', 'radiology': {'task': 'bone_age'}, 'id': 'no_answer'},
        {'image_id': 'img2', 'radiology': {'task': 'rop', 'zone': 'IV', 'stage': 1}, 'id': 'z4'},
        {'image_id': 'img3', 'radiology': {'task': 'fracture', 'fracture_type': 'buckle', 'fracture_present': False}, 'id': 'contra'},
        {'image_id': 'ghost', 'radiology': {'task': 'fracture', 'fracture_type': 'none'}, 'id': 'ghost'},
        {'image_id': 'img1', 'radiology': {'task': 'fracture', 'fracture_type': 'none'}},  # duplicate of img1
    ]
    _write(root / 'annotations' / 'val_annotations.json', bad)
    with pytest.raises(ValueError, match=r'val_annotations\.json\[0\].*unknown fracture type'):
        load_pediatric(root)
    recs, msgs = _quiet(load_pediatric, root, skip_bad=True)
    assert len(recs) == 4
    assert sorted(str(s['id']) for s in recs.skipped) == sorted(['g1', 'no_answer', 'z4', 'contra', 'ghost', 'fracture:img1'])
    reasons = ' '.join(s['reason'] for s in recs.skipped)
    for words in ('missing bone_age_months', "unknown ROP zone 'IV'", 'contradicts', 'image not found', 'duplicate id'):
        assert words in reasons
    # keeping one subtask: the rows of the others are not even read, so only the bad ROP row is reported
    with pytest.raises(ValueError, match='no pediatric records left after filtering'), pytest.warns(UserWarning, match='skipped 1 .*z4'):
        load_pediatric(root, subtask='rop', skip_bad=True)


def test_rtl_prompt_completion(tmp_path):
    p = tmp_path / 'rtl.jsonl'
    good = {'prompt': 'Claims:\nc1 (finding): Right pleural effusion.', 'patient_id': 'S1',
            'completion': json.dumps({'alignments': [{'claim_id': 'c1', 'label': 'uncertain', 'evidence': 'blunted angle', 'confidence': 0.5}]})}
    rows = [good, dict(good, completion='The effusion is definitely present.'),
            dict(good, completion=json.dumps({'alignments': [{'claim_id': 'c1', 'label': 'contradicted', 'confidence': 0.5}]})),
            dict(good, completion=json.dumps([{'claim_id': 'c1', 'label': 'supported', 'evidence': 'x', 'confidence': 1.5}]))]
    write_jsonl(rows, p)
    with pytest.raises(ValueError, match=r'rtl\.jsonl:2.*not alignment JSON'):
        load_rtl(p)
    recs, _ = _quiet(load_rtl, p, skip_bad=True)
    assert [r.id for r in recs] == ['rtl_1'] and recs[0].label == 'uncertain' and recs[0].patient_id == 'S1'
    assert [s['id'] for s in recs.skipped] == [None, None, None] and "unknown rtl label 'contradicted'" in recs.skipped[1]['reason']
    assert 'confidence' in recs.skipped[2]['reason']


# ---------------------------------------------------------------- splits

def test_split_groups_patients_and_hits_sizes():
    recs = synthesize('rtl', 300, seed=7)
    tr, ev = split_records(recs, n_eval=60, seed=0)
    assert (len(tr), len(ev)) == (240, 60)
    assert not {r.patient_id for r in tr} & {r.patient_id for r in ev}
    multi = {p for p in {r.patient_id for r in recs} if sum(r.patient_id == p for r in recs) > 1}
    assert multi and all(sum(r.patient_id == p for r in ev) in (0, sum(r.patient_id == p for r in recs)) for p in multi)
    with pytest.raises(ValueError, match='patient leak'):
        check_no_leak(tr, ev + [tr[0]])


def test_split_empty():
    recs = synthesize('clinical', 5)
    with pytest.raises(ValueError, match='empty split'):
        split_records(recs, eval_frac=0.0)
    with pytest.raises(ValueError, match='no records'):
        split_records([])


# ---------------------------------------------------------------- the data command end to end

@pytest.mark.parametrize('task', TASKS)
def test_make_dataset_synthetic(tmp_path, task):
    st = make_dataset(task, tmp_path / 'a', n_train=40, n_eval=12, seed=3, verbose=False)
    d = tmp_path / 'a'
    assert {p.name for p in d.iterdir()} == {'train.jsonl', 'val.jsonl', 'eval.jsonl', 'images', 'stats.json', '.medgemma-lora.json'}
    train, val, ev = _rows(d / 'train.jsonl'), _rows(d / 'val.jsonl'), _rows(d / 'eval.jsonl')
    assert (len(train), len(val), len(ev)) == (40, 4, 12) == tuple(st['splits'][s]['n'] for s in ('train', 'val', 'eval'))
    for r in train + val + ev:
        assert {'id', 'task', 'target'} <= set(r) and r['task'] == task
        assert all(p.startswith('images/') and (d / p).is_file() for p in r['images'])
        if task == 'pediatric':
            assert r['subtask'] in PEDIATRIC_SUBTASKS
        if task == 'clinical':
            m = r['metadata']
            assert m['modality'] in CLINICAL_MODALITIES and m['error_type'] in ERROR_TYPES and m['severity'] in SEVERITIES
        if task == 'rtl':
            assert all(a['label'] in RTL_LABELS for a in json.loads(r['target'])['alignments'])
    splits = [read_jsonl(d / f'{s}.jsonl') for s in ('train', 'val', 'eval')]
    for i in range(3): check_no_leak(splits[i], splits[(i + 1) % 3])
    assert json.loads((d / 'stats.json').read_text()) == st
    make_dataset(task, tmp_path / 'b', n_train=40, n_eval=12, seed=3, verbose=False)
    assert _digest(tmp_path / 'a') == _digest(tmp_path / 'b')
    make_dataset(task, tmp_path / 'c', n_train=40, n_eval=12, seed=4, verbose=False)
    assert _digest(tmp_path / 'a') != _digest(tmp_path / 'c')
    ds = to_hf_dataset(read_jsonl(d / 'eval.jsonl'), d, shape='prompt_completion')
    assert len(ds) == 12 and ds[0]['images'][0].mode == 'RGB' and ds[0]['completion'][0]['content'][0]['text'] == ev[0]['target']


def test_make_dataset_prints_card(tmp_path, capsys):
    make_dataset('clinical', tmp_path, n_train=16, n_eval=8)
    out = capsys.readouterr().out
    assert '16 train / 1 validation / 8 eval' in out and 'label' in out and 'ERROR' in out and 'histopathology' in out


def test_make_dataset_from_clinical_source(tmp_path):
    rows, imgs = _clinical_fixture(tmp_path)
    rows.append(dict(rows[0], id='bad_img', image_file='missing.png', image_path='/Users/x/missing.png'))
    (tmp_path / 'val.json').write_text(json.dumps(rows))
    with pytest.raises(ValueError, match='bad_img'):
        make_dataset('clinical', tmp_path / 'out', source=tmp_path / 'val.json', images_root=imgs, verbose=False)
    st, msgs = _quiet(make_dataset, 'clinical', tmp_path / 'out', source=tmp_path / 'val.json', images_root=imgs,
                      skip_bad=True, verbose=False)
    assert st['skipped']['count'] == 1 and st['skipped']['ids'] == ['bad_img'] and any('bad_img' in m for m in msgs)
    assert sum(st['splits'][s]['n'] for s in ('train', 'val', 'eval')) == 12 and st['splits']['val']['n'] == 1   # 2 to eval, then a tenth of the other 10
    assert json.loads((tmp_path / 'out' / 'stats.json').read_text())['skipped']['ids'] == ['bad_img']
    tr, va, ev = (read_jsonl(tmp_path / 'out' / f'{s}.jsonl') for s in ('train', 'val', 'eval'))
    check_no_leak(tr, ev); check_no_leak(tr, va); check_no_leak(va, ev)
    assert all(p.startswith('images/') for r in tr + va + ev for p in r.images)


def test_make_dataset_from_rtl_and_own_jsonl(tmp_path):
    src = tmp_path / 'src'
    recs = synthesize('rtl', 20, seed=1, out_dir=src)
    write_jsonl(recs, src / 'cases.jsonl')
    st = make_dataset('rtl', tmp_path / 'own', source=src / 'cases.jsonl', n_eval=5, verbose=False)
    assert st['splits']['eval']['n'] == 5 and st['source'].endswith('cases.jsonl')
    pc = tmp_path / 'pc.jsonl'
    write_jsonl([{'prompt': r.prompt, 'completion': r.target, 'image': str(src / r.images[0])} for r in recs], pc)
    st = make_dataset('rtl', tmp_path / 'pc', source=pc, n_train=10, verbose=False)
    assert st['splits']['train']['n'] == 10 and st['splits']['eval']['n'] == 4


def test_make_dataset_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown task 'radiology'"):
        make_dataset('radiology', tmp_path)
    with pytest.raises(ValueError, match='unknown subtask'):
        make_dataset('clinical', tmp_path, subtask='rop')
    with pytest.raises(ValueError, match='--n-eval must be a whole number >= 1'):
        make_dataset('rtl', tmp_path, n_train=10, n_eval=0, verbose=False)
    with pytest.raises(ValueError, match='no such file or directory'):
        make_dataset('clinical', tmp_path / 'out', source=tmp_path / 'nope.jsonl')
    assert not (tmp_path / 'out').exists()


def test_messages_shape():
    r = synthesize('rtl', 1)[0]
    m = chat_messages(r)
    assert m[0] == {'role': 'system', 'content': [{'type': 'text', 'text': system_prompt('rtl')}]}
    assert m[1]['content'] == [{'type': 'image'}, {'type': 'text', 'text': instruction('rtl') + '\n\n' + r.prompt}]
    assert m[2] == {'role': 'assistant', 'content': [{'type': 'text', 'text': r.target}]}


def test_cli_data_command(tmp_path):
    stats = run_command(['data', 'pediatric', '--out', str(tmp_path), '--n-train', '8', '--n-eval', '4', '--seed', '1', '--subtask', 'rop'])
    assert len(_rows(tmp_path / 'train.jsonl')) == 8 and len(_rows(tmp_path / 'eval.jsonl')) == 4
    assert {r['subtask'] for r in _rows(tmp_path / 'train.jsonl')} == {'rop'} and stats['subtask'] == 'rop'
    assert (tmp_path / 'stats.json').is_file() and (tmp_path / 'images').is_dir()
