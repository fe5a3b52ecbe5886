"""A fourth task registered from outside the package (here, in a test) runs data -> train -> predict -> score through
the command line, with no library file changed; and registering it leaves the tiny tokenizer as it was."""

import hashlib
import json

import numpy as np
from PIL import Image

from medgemma_lora.cli import run_command
from medgemma_lora.data import Answer, Record, Task, register_task, task_names
from medgemma_lora.score import Tally
from medgemma_lora.synth import answer_json, synth_records

LESIONS = ('naevus', 'melanoma')
SCHEMA = {
    'type': 'object',
    'properties': {'lesion': {'enum': list(LESIONS)}, 'confidence': {'type': 'number', 'minimum': 0, 'maximum': 1}},
    'required': ['lesion', 'confidence'],
    'additionalProperties': False,
}


def _case(kind, j, rng, prng, pid):
    "One dermoscopy-like case: a dark lesion is a melanoma, a light one a naevus."
    lesion = LESIONS[int(rng.integers(2))]
    rid = f'derm_{j:05d}'
    target = answer_json({'lesion': lesion, 'confidence': 0.8})
    meta = {'patient_id': pid, 'label': lesion}
    rec = Record(rid, 'derm', 'Dermoscopy image of a skin lesion.', target, [f'images/{rid}.png'], metadata=meta)

    def draw(irng, size):
        arr = np.full((size, size, 3), 210.0) + irng.normal(0, 8, (size, size, 3))
        arr[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (40, 20, 10) if lesion == 'melanoma' else (170, 120, 90)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))

    return rec, draw


def synthesize(n, seed=0, out_dir=None, subtask=None, image_size=64, **options):
    "`n` derm cases on their own random stream (seed code 99)."
    return synth_records([('derm', 99)] * n, seed, _case, out_dir, image_size)


def score(cases):
    "Lesion accuracy: a rate with its n and interval; an invalid answer is wrong."
    t = Tally()
    for c in cases:
        t.add('lesion_accuracy', c.id, c.answer is not None and c.answer.get('lesion') == c.truth['lesion'])
    return {'n': len(cases), 'lesion_accuracy': t.rate('lesion_accuracy')}


DERM = Task(
    name='derm',
    answers={None: Answer('You are a dermatologist.', 'Name the lesion. Reply with JSON only:\n{shape}', schema=SCHEMA)},
    synthesize=synthesize,
    score=score,
    headline=('lesion_accuracy',),
    preset=dict(r=4, alpha=8, dropout=0.0, targets=('q_proj', 'v_proj')),
)


def _tokenizer_sha():
    from medgemma_lora.models import tiny_processor_dir

    return hashlib.sha256((tiny_processor_dir() / 'tokenizer.json').read_bytes()).hexdigest()


def test_a_task_registered_outside_the_package_runs_end_to_end(tmp_path):
    before = _tokenizer_sha()
    register_task(DERM)
    assert 'derm' in task_names() and _tokenizer_sha() == before
    data, adapter = tmp_path / 'data', tmp_path / 'adapter'
    run_command(['data', 'derm', '--out', str(data), '--n-train', '16', '--n-eval', '6'])
    assert (data / 'train.jsonl').is_file() and (data / 'eval.jsonl').is_file()
    res = run_command(['train', '--data', str(data), '--out', str(adapter), '--max-steps', '2', '--per_device_train_batch_size', '4'])
    assert res['steps'] == 2 and (adapter / 'adapter_model.safetensors').is_file()
    preds = tmp_path / 'preds.jsonl'
    run_command(['predict', '--adapter', str(adapter), '--data', str(data / 'eval.jsonl'), '--out', str(preds)])
    assert len(preds.read_text().splitlines()) == 6
    metrics = tmp_path / 'metrics.json'
    run_command(['score', 'derm', '--predictions', str(preds), '--references', str(data / 'eval.jsonl'),
                 '--out', str(metrics)])
    (m,) = json.loads(metrics.read_text())['runs'].values()
    acc = m['lesion_accuracy']
    assert m['n_cases'] == m['n'] == acc['n'] == 6 and 0 <= acc['value'] <= 1 and len(acc['ci95']) == 2, m
    assert 'lesion_accuracy' in (tmp_path / 'report.md').read_text()
