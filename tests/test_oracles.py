"""What the synthetic cases ask of a model, measured from the generators' own latent fields: the clinical verdict
needs the image and the treatment, the report shows the oracles as rows, and the give-away check and the rtl reward
compare like with like."""
import json

import numpy as np

from medgemma_lora.data import get_task
from medgemma_lora.eval_clinical import CLINICAL_ORACLES, clinical_oracles, clinical_verdict
from medgemma_lora.eval_rtl import rtl_reward
from medgemma_lora.probe import probe_warning
from medgemma_lora.prompts import parse_answer
from medgemma_lora.report import write_report
from medgemma_lora.score import rate
from medgemma_lora.synth import synthesize


def _oracle_accuracy(refs):
    answers, both = clinical_oracles(refs)
    acc = {k: np.mean([parse_answer('clinical', o).value == r.label for r, o in zip(refs, v)]) for k, v in answers.items()}
    return acc, both


def test_clinical_verdict_needs_the_image_and_the_treatment():
    refs = synthesize('clinical', 400, seed=5)
    for r in refs:   # the rule of the chapter is what the targets say
        assert clinical_verdict(r.modality, r.metadata['finding'], r.fields['treatment'])[0] == r.label
    acc, both = _oracle_accuracy(refs)
    assert list(acc) == list(CLINICAL_ORACLES)
    assert max(v for k, v in acc.items() if k != 'oracle: image and text') <= 0.75, acc
    assert acc['oracle: image and text'] == 1.0 and np.mean(both) >= 0.5
    # on the cases that do not state the finding, neither part alone beats a coin by much
    hidden = [r for r in refs if r.metadata['image_dependent']]
    acc_h, both_h = _oracle_accuracy(hidden)
    assert all(both_h) and acc_h['oracle: text only'] < 0.62 and acc_h['oracle: image only, the finding'] < 0.62
    # with every finding stated, the text decides: no case needs the image
    stated = synthesize('clinical', 40, seed=5, image_share=0)
    acc_s, both_s = _oracle_accuracy(stated)
    assert not any(both_s) and acc_s['oracle: text only'] == 1.0


def test_report_has_the_oracle_rows(tmp_path):
    refs = synthesize('clinical', 40, seed=1)
    answers, both = get_task('clinical').oracles(refs)
    right = {k: sum(parse_answer('clinical', o).value == r.label for r, o in zip(refs, v)) for k, v in answers.items()}
    oracles = {'scored': {k: {'accuracy': rate(n, 40)} for k, n in right.items()}, 'needs_both': both}
    run = {'task': 'clinical', 'n_cases': 40, 'accuracy': rate(20, 40)}
    write_report(tmp_path, {'model': run}, task='clinical', oracles=oracles)
    md = (tmp_path / 'report.md').read_text()
    assert md.index('## Oracles') < md.index('## Notes')
    assert '| oracle: image and text | 100.0% [91.2, 100.0] (n=40) | — |' in md
    assert f'Cases that need both the image and the text: {sum(both)} of 40.' in md
    m = json.loads((tmp_path / 'metrics.json').read_text())['oracles']
    assert m['needs_both']['n'] == 40 and m['oracle: text only']['accuracy']['n'] == 40
    assert clinical_oracles(synthesize('rtl', 3)) == ({}, [])    # no latent fields: no oracles


def test_giveaway_compares_like_with_like():
    probe = {'accuracy': {'value': 0.7}, 'error_auc': {'value': 0.6}}
    assert probe_warning('clinical', probe) is None
    assert '`merged`, 0.72' in probe_warning('clinical', probe, model={'accuracy': {'value': 0.72}})
    assert "ceiling 0.72" in probe_warning('clinical', probe, ceiling={'accuracy': {'value': 0.72}})
    assert probe_warning('clinical', probe, model={'accuracy': {'value': 0.9}}, ceiling={'accuracy': {'value': 1}}) is None


def test_rtl_reward_prices_an_invented_claim():
    r = next(r for r in synthesize('rtl', 12, seed=1) if len(json.loads(r.target)['alignments']) == 2)
    truth = parse_answer('rtl', r.target)
    ans = json.loads(r.target)
    ans['alignments'] += [{**ans['alignments'][0], 'claim_id': f'c{k + 90}'} for k in range(2)]
    text = json.dumps(ans)
    assert rtl_reward(r, parse_answer('rtl', r.target), truth, r.target) == 1.0
    assert abs(rtl_reward(r, parse_answer('rtl', text), truth, text) - 0.0) < 1e-9   # 2 right of 4: no better than chance


def test_evaluate_models_reports_the_oracles(tmp_path):
    "The pipeline's report gets the task's oracle rows, beside a run (here the image-only probe, the cheapest)."
    from medgemma_lora.pipeline import PROBE, evaluate_models
    from medgemma_lora.sources import make_dataset

    make_dataset('clinical', tmp_path / 'data', n_train=16, n_eval=8, seed=0, verbose=False)
    m = evaluate_models('clinical', tmp_path / 'data', {PROBE: {'model': 'tiny', 'probe': True}}, tmp_path / 'out',
                        progress=False)
    assert list(m['oracles']) == [*CLINICAL_ORACLES, 'needs_both'] and m['oracles']['needs_both']['n'] == 8
    assert '## Oracles' in (tmp_path / 'out' / 'report.md').read_text()
