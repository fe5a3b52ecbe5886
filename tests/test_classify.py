"""The classify task's loaders (class folders with split folders and masks, CSV files) and its scorer against
scikit-learn."""

import json
import warnings
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from medgemma_lora.data import Record, get_task
from medgemma_lora.eval_classify import classify_prompt, classify_target, load_classify, score_classify
from medgemma_lora.score import Case, score
from medgemma_lora.sources import load_source, make_dataset


def _png(path, colour=(128, 128, 128)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (8, 8), colour).save(path)


@pytest.fixture
def busi_splits(tmp_path):
    "A BUSI-like tree below Kermany-like split folders: DIR/{train,test}/<class>/<image> with a mask beside each."
    root = tmp_path / 'busi'
    for split, n in (('train', 3), ('test', 2)):
        for cls in ('benign', 'malignant', 'normal'):
            for i in range(n):
                _png(root / split / cls / f'{cls} ({split}{i}).png')
                _png(root / split / cls / f'{cls} ({split}{i})_mask.png')
    _png(root / 'train' / 'malignant' / 'malignant (train0)_mask_1.png')
    (root / 'train' / 'benign' / 'readme.txt').write_text('not an image')
    (root / '.DS_Store').write_text('hidden')
    return root


def test_class_folders_with_split_folders_and_masks(busi_splits):
    recs = load_classify(busi_splits)
    assert len(recs) == 15
    assert recs.excluded == {'mask image': 16, 'not an image': 1}
    assert Counter(r.metadata['source_split'] for r in recs) == {'train': 9, 'test': 6}
    assert {tuple(r.fields['classes']) for r in recs} == {('benign', 'malignant', 'normal')}
    r = next(r for r in recs if r.id == 'train/benign/benign (train0)')
    assert (r.label, r.patient_id, r.prompt) == ('benign', 'benign (train0)', 'Classes: benign, malignant, normal.')
    assert json.loads(r.target) == {'label': 'benign', 'confidence': 0.9}
    assert not any('_mask' in p for r in recs for p in r.images)


def test_class_folders_go_through_load_source_and_keep_their_split(busi_splits, tmp_path):
    assert len(load_source('classify', busi_splits)) == 15
    stats = make_dataset('classify', tmp_path / 'ds', source=busi_splits, verbose=False)
    assert stats['accounting']['eval'] == 6 and stats['source_splits'] == {'test': 6, 'train': 9}


def test_csv_with_foreign_column_names(tmp_path):
    src = tmp_path / 'derm'
    for name in ('a', 'b', 'c'):
        _png(src / 'images' / f'{name}.png')
    (src / 'meta.csv').write_text(
        'lesion_file,dx,subject,cohort,history,site\n'
        'a.png,melanoma,s1,train,"Back, 40 years.",A\n'
        'images/b.png,naevus,s2,test,,B\n'
        'c,naevus,s3,train,,A\n'
    )
    cols = {'image': 'lesion_file', 'label': 'dx', 'patient_id': 'subject', 'split': 'cohort', 'text': 'history'}
    recs = load_classify(src / 'meta.csv', columns=cols)
    assert [r.id for r in recs] == ['a', 'images/b', 'c']
    assert [r.label for r in recs] == ['melanoma', 'naevus', 'naevus']
    assert [r.patient_id for r in recs] == ['s1', 's2', 's3']
    assert [r.metadata['source_split'] for r in recs] == ['train', 'test', 'train']
    assert recs[0].prompt == 'Classes: melanoma, naevus.\nBack, 40 years.'
    assert recs[0].metadata['extra'] == {'site': 'A'}
    assert load_classify(src / 'meta.csv', columns='image=lesion_file,label=dx')[1].label == 'naevus'  # the CLI's text
    with pytest.raises(ValueError, match=r"meta\.csv: no 'image' or 'label' column .*--columns image=COL,label=COL"):
        load_classify(src / 'meta.csv')
    from medgemma_lora.cli import run_command  # the same file through the command line, columns and all

    out = tmp_path / 'ds'
    stats = run_command(['data', 'classify', '--from', str(src / 'meta.csv'), '--out', str(out),
                         '--columns', 'image=lesion_file,label=dx,patient_id=subject,split=cohort'])
    assert stats['source_splits'] == {'test': 1, 'train': 2} and stats['accounting']['eval'] == 1
    assert stats['columns'] == {'image': 'lesion_file', 'label': 'dx', 'patient_id': 'subject', 'split': 'cohort'}


def test_bad_csv_errors_name_the_file_and_line(tmp_path):
    _png(tmp_path / 'a.png')
    _png(tmp_path / 'b.png')
    _png(tmp_path / 'c.png')
    bad = tmp_path / 'labels.csv'
    bad.write_text('image,label\na.png,x\nmissing.png,y\nb.png,\nc.png,y\n')
    with pytest.raises(ValueError, match=r"labels\.csv:3 \(id 'missing'\): image not found: 'missing\.png'"):
        load_classify(bad)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        recs = load_classify(bad, skip_bad=True)
    assert [r.id for r in recs] == ['a', 'c']
    assert [(p['where'].rsplit(':', 1)[1], p['reason']) for p in recs.skipped] == [
        ('3', "image not found: 'missing.png'"),
        ('4', 'empty label'),
    ]
    (tmp_path / 'wide.csv').write_text('image,label\na.png,x,extra\n')
    with pytest.raises(ValueError, match=r'wide\.csv:2: 3 fields, the header has 2'):
        load_classify(tmp_path / 'wide.csv')


def _ref(i, label, classes):
    return Record(
        f'c{i}',
        'classify',
        classify_prompt(classes),
        classify_target(label),
        [],
        None,
        {'classes': list(classes)},
        {'patient_id': f'p{i}', 'label': label},
    )


def test_scorer_matches_scikit_learn():
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    classes = ['NORMAL', 'PNEUMONIA', 'TB']
    rs = np.random.default_rng(7)
    n = 80
    y = rs.integers(0, 3, n)
    p = np.where(rs.random(n) < 0.7, y, rs.integers(0, 3, n))
    probs = rs.dirichlet(np.ones(3), n) + np.eye(3)[p]
    probs /= probs.sum(1, keepdims=True)
    refs = [_ref(i, classes[k], classes) for i, k in enumerate(y)]
    preds = [
        {
            'id': r.id,
            'output': classify_target(classes[k], 0.8),
            'option_probs': {'label': dict(zip(classes, map(float, q)))},
        }
        for r, k, q in zip(refs, p, probs)
    ]
    m = score('classify', preds, refs)
    assert m['accuracy']['value'] == pytest.approx(accuracy_score(y, p))
    assert m['balanced_accuracy']['value'] == pytest.approx(balanced_accuracy_score(y, p))
    assert m['macro_f1']['value'] == pytest.approx(f1_score(y, p, average='macro'))
    prec, rec, f1, sup = precision_recall_fscore_support(y, p, labels=[0, 1, 2])
    for k, c in enumerate(classes):
        assert m['precision'][c]['value'] == pytest.approx(prec[k])
        assert m['recall'][c]['value'] == pytest.approx(rec[k])
        assert m['f1'][c]['value'] == pytest.approx(f1[k])
        assert m['n_by_class'][c] == sup[k]
        assert m['auc'][c]['value'] == pytest.approx(roc_auc_score(y == k, probs[:, k]))
    assert m['macro_auc']['value'] == pytest.approx(roc_auc_score(y, probs, multi_class='ovr', average='macro'))
    assert m['auc_scores'] == {'option_probs': n, 'parsed': 0, 'invalid': 0}
    assert m['invalid_rate']['value'] == 0 and m['unknown_label_rate']['value'] == 0
    for key in get_task('classify').headline:
        assert m[key]['ci95'] is not None, key


def test_scorer_counts_invalid_and_unknown_labels_as_wrong():
    classes = ['a', 'b']
    refs = [_ref(i, y, classes) for i, y in enumerate('aabb')]
    outs = [classify_target('a'), 'a', classify_target('zebra'), classify_target('b')]
    m = score_classify([Case(r, o) for r, o in zip(refs, outs)])
    assert (m['accuracy']['value'], m['invalid_rate']['value'], m['unknown_label_rate']['value']) == (0.5, 0.25, 0.25)
    assert m['balanced_accuracy']['value'] == pytest.approx(0.5)
    assert m['_details']['confusion']['counts'] == [[1, 0, 0, 1], [0, 1, 1, 0]]


def test_run_classify_from_class_folders_reads_the_image(tmp_path):
    "`run classify --from DIR` on three tissue classes the tiny model can tell apart: it beats chance and the ablation."
    from medgemma_lora.cli import run_command
    from medgemma_lora.eval_classify import draw_tissue

    root, out, rng = tmp_path / 'tissue', tmp_path / 'run', np.random.default_rng(0)
    for split, n in (('train', 16), ('test', 8)):
        for cls in ('adipose', 'lymphocytes', 'stroma'):
            for i in range(n):
                (root / split / cls).mkdir(parents=True, exist_ok=True)
                draw_tissue(rng, 64, cls).save(root / split / cls / f'{cls}_{i}.png')
    _png(root / 'train' / 'stroma' / 'stroma_0_mask.png')  # a mask beside its image is not a case
    res = run_command(['run', 'classify', '--from', str(root), '--out', str(out), '--max-steps', '40'])
    stats = json.loads((out / 'data' / 'stats.json').read_text())
    assert stats['accounting']['train'] == 48 and stats['accounting']['eval'] == 24 and stats['excluded'] == {'mask image': 1}
    m = json.loads((out / 'metrics.json').read_text())
    acc = m['runs']['merged']['accuracy']
    assert acc['n'] == 24 and acc['ci95'][0] > 1 / 3, acc  # the whole interval above chance
    (vs_ablated,) = [c for c in m['comparisons'] if c['names'] == ['merged, images permuted', 'merged']]
    assert vs_ablated['metrics']['accuracy']['delta'] > 0 and vs_ablated['metrics']['accuracy']['p_value'] < 0.05
    report = (out / 'report.md').read_text()
    assert all(f'recall.{c}' in report and f'f1.{c}' in report for c in ('adipose', 'lymphocytes', 'stroma'))
    assert (out / 'confusion.png').is_file() and res['headline']['metric'] == 'accuracy'
