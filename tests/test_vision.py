"""Honest vision: the image ablation, intervals that respect correlated claims, and intervals that stay in range."""
import json

from medgemma_lora.images import permute_images
from medgemma_lora.score import rate, score
from medgemma_lora.synth import synthesize


def _flip(target: str) -> str:
    d = json.loads(target)
    for a in d['alignments']: a['label'] = 'needs_review' if a['label'] != 'needs_review' else 'supported'
    return json.dumps(d)


def test_claim_rates_resample_whole_cases():
    """Claims of one report are right or wrong together here: the interval must be wider than a Wilson interval that
    treats the claims as independent, and say how it was made."""
    refs = synthesize('rtl', 40, seed=0)
    preds = [{'id': r.id, 'output': r.target if i % 2 else _flip(r.target)} for i, r in enumerate(refs)]
    acc = score('rtl', preds, refs)['label_accuracy']
    naive = rate(round(acc['value'] * acc['n']), acc['n'])
    assert acc['ci_method'] == 'cluster bootstrap' and acc['n_clusters'] == 40
    assert acc['ci95'][1] - acc['ci95'][0] > 1.5 * (naive['ci95'][1] - naive['ci95'][0])


def test_mae_interval_stays_non_negative():
    refs = synthesize('pediatric', 30, seed=1, subtask='bone_age')
    preds = [{'id': r.id, 'output': json.dumps({**json.loads(r.target), 'bone_age_months': json.loads(r.target)['bone_age_months'] + (i % 3 == 0)})}
             for i, r in enumerate(refs)]
    mae = score('pediatric', preds, refs)['mae_months']
    assert 0 <= mae['ci95'][0] <= mae['value'] <= mae['ci95'][1]


def test_permuted_images_keep_everything_but_the_image(tmp_path):
    refs = synthesize('clinical', 40, seed=2, out_dir=tmp_path)
    abl = permute_images(refs, seed=0)
    assert [(a.id, a.prompt, a.target) for a in abl] == [(r.id, r.prompt, r.target) for r in refs]
    for a, r in zip(abl, refs):
        if a.metadata['image_ablated']: assert a.images != r.images
    by_modality = lambda recs: sorted((r.metadata['modality'], r.images[0]) for r in recs)
    assert by_modality(abl) == by_modality(refs)          # every image stays within its modality
