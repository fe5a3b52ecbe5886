"""Tables of realistic model outputs for `medgemma_lora.prompts`: schemas, the parser's three outcomes, overconfidence.

The notebook (nbs/01_prompts.ipynb) shows a few representative cases; these tables pin down the rest.
"""
import json, random

import pytest
from jsonschema import Draft202012Validator

from medgemma_lora.data import get_task, task_names
from medgemma_lora.pediatric_data import PEDIATRIC_SUBTASKS
from medgemma_lora.eval_rtl import is_overconfident
from medgemma_lora.prompts import (MAX_ANSWER_CHARS, ParsedAnswer, instruction,
                                   overconfident_phrases, parse_answer, schema_for, system_prompt, validate_answer)

# ---------------------------------------------------------------------------------------------------------------
# Schemas: valid and invalid examples for every schema

BONE = '{"bone_age_months": 126, "confidence": 0.7}'
ROP = '{"zone": "II", "stage": 2, "plus_disease": false, "confidence": 0.6}'
FRAC = '{"fracture_present": true, "type": "distal_radius", "confidence": 0.85}'
RTL = ('{"alignments": [{"claim_id": "c1", "label": "uncertain", "evidence": "faint opacity right base", "confidence": 0.5}, '
       '{"claim_id": "c2", "label": "supported", "evidence": "normal cardiac silhouette", "confidence": 0.9}]}')


def al(**kw):
    "One rtl alignment with defaults."
    return {'claim_id': 'c1', 'label': 'uncertain', 'evidence': 'faint opacity', 'confidence': 0.5, **kw}


SCHEMA_VALID = [
    ('rtl', {'alignments': [al()]}),
    ('rtl', {'alignments': [al(), al(claim_id='c2', label='supported', confidence=0.95)]}),
    ('rtl', {'alignments': [al(related_finding_ids=['f1', 'f2'])]}),
    ('rtl', {'alignments': [al(related_finding_ids=[])]}),
    ('rtl', {'alignments': [al(label='not_assessable', confidence=0), al(claim_id='c2', label='needs_review', confidence=1)]}),
    ('rtl', {'alignments': [al(), al()]}),  # the same claim twice with the same label: nothing conflicts
    ('bone_age', {'bone_age_months': 0, 'confidence': 0.1}),
    ('bone_age', {'bone_age_months': 240, 'confidence': 1}),
    ('bone_age', {'bone_age_months': 126.5, 'confidence': 0.7}),
    ('rop', {'zone': 'I', 'stage': 3, 'plus_disease': True, 'confidence': 0.8}),
    ('rop', {'zone': 'III', 'stage': 0, 'plus_disease': False, 'confidence': 0.4}),
    ('fracture', {'fracture_present': True, 'type': 'buckle', 'confidence': 0.8}),
    ('fracture', {'fracture_present': True, 'type': 'distal_radius', 'confidence': 0.6}),
    ('fracture', {'fracture_present': False, 'type': 'none', 'confidence': 0.9}),
]

SCHEMA_INVALID = [  # (kind, object, a fragment of the expected error)
    ('rtl', {}, "'alignments' is a required property"),
    ('rtl', {'alignments': []}, 'should be non-empty'),
    ('rtl', {'alignments': [al()], 'summary': 'x'}, 'Additional properties'),
    ('rtl', {'alignments': [al(label='probably_supported')]}, 'alignments/0/label'),
    ('rtl', {'alignments': [al(label='Supported')]}, 'is not one of'),
    ('rtl', {'alignments': [al(confidence=1.2)]}, 'greater than the maximum'),
    ('rtl', {'alignments': [al(confidence=-0.1)]}, 'less than the minimum'),
    ('rtl', {'alignments': [al(confidence='0.5')]}, "not of type 'number'"),
    ('rtl', {'alignments': [al(confidence=float('nan'))]}, 'not a finite number'),
    ('rtl', {'alignments': [al(evidence='')]}, 'should be non-empty'),
    ('rtl', {'alignments': [al(claim_id=1)]}, "not of type 'string'"),
    ('rtl', {'alignments': [{k: v for k, v in al().items() if k != 'evidence'}]}, "'evidence' is a required property"),
    ('rtl', {'alignments': [al(related_finding_ids='f1')]}, "not of type 'array'"),
    ('rtl', {'alignments': [al(notes='x')]}, 'Additional properties'),
    ('rtl', [al()], "not of type 'object'"),
    ('rtl', {'alignments': [al(), al(label='supported')]}, "claim_id 'c1' is given two different labels"),
    ('bone_age', {'bone_age_months': 126}, "'confidence' is a required property"),
    ('bone_age', {'bone_age_months': '126', 'confidence': 0.7}, "not of type 'number'"),
    ('bone_age', {'bone_age_months': -3, 'confidence': 0.7}, 'less than the minimum'),
    ('bone_age', {'bone_age_months': 900, 'confidence': 0.7}, 'greater than the maximum'),
    ('bone_age', {'bone_age_months': True, 'confidence': 0.7}, "not of type 'number'"),
    ('bone_age', {'bone_age_years': 10.5, 'confidence': 0.7}, 'Additional properties'),
    ('bone_age', {'bone_age_months': float('inf'), 'confidence': 0.7}, 'not a finite number'),
    ('rop', {'zone': 'IV', 'stage': 2, 'plus_disease': False, 'confidence': 0.6}, 'zone'),
    ('rop', {'zone': 2, 'stage': 2, 'plus_disease': False, 'confidence': 0.6}, 'zone'),
    ('rop', {'zone': 'II', 'stage': 4, 'plus_disease': False, 'confidence': 0.6}, 'greater than the maximum'),
    ('rop', {'zone': 'II', 'stage': 1.5, 'plus_disease': False, 'confidence': 0.6}, "not of type 'integer'"),
    ('rop', {'zone': 'II', 'stage': 2, 'plus_disease': 'no', 'confidence': 0.6}, "not of type 'boolean'"),
    ('rop', {'zone': 'II', 'stage': 2, 'confidence': 0.6}, "'plus_disease' is a required property"),
    ('fracture', {'fracture_present': False, 'type': 'buckle', 'confidence': 0.8}, "'none' was expected"),
    ('fracture', {'fracture_present': True, 'type': 'none', 'confidence': 0.8}, 'should not be valid'),
    ('fracture', {'fracture_present': 'yes', 'type': 'buckle', 'confidence': 0.8}, "not of type 'boolean'"),
    ('fracture', {'fracture_present': True, 'type': 'greenstick', 'confidence': 0.8}, 'is not one of'),
    ('fracture', {'fracture_present': True, 'type': 'buckle'}, "'confidence' is a required property"),
]


def _task(kind):
    return ('rtl', None) if kind in ('rtl', 'clinical') else ('pediatric', kind)


SCHEMAS = {
    kind: a.schema for t in ('rtl', 'pediatric') for sub, a in get_task(t).answers.items() for kind in [sub or t]
}


def test_schemas_are_draft_2020_12():
    assert set(SCHEMAS) == {'rtl', *PEDIATRIC_SUBTASKS}
    for s in SCHEMAS.values(): Draft202012Validator.check_schema(s)
    assert schema_for('rtl') is get_task('rtl').answer().schema
    assert schema_for('pediatric', 'fracture') is get_task('pediatric').answer('fracture').schema
    with pytest.raises(ValueError, match='no schema'): schema_for('clinical')
    with pytest.raises(ValueError, match='subtask'): schema_for('pediatric')


@pytest.mark.parametrize('kind,obj', SCHEMA_VALID)
def test_schema_valid(kind, obj):
    task, sub = _task(kind)
    assert validate_answer(task, obj, sub) == []


@pytest.mark.parametrize('kind,obj,why', SCHEMA_INVALID)
def test_schema_invalid(kind, obj, why):
    task, sub = _task(kind)
    errs = validate_answer(task, obj, sub)
    assert errs and any(why in e for e in errs), errs


@pytest.mark.parametrize('kind', sorted(SCHEMAS))
def test_every_schema_has_both_kinds_of_example(kind):
    assert any(k == kind for k, _ in SCHEMA_VALID) and any(k == kind for k, _, _ in SCHEMA_INVALID)


def test_clinical_validation():
    assert validate_answer('clinical', 'ERROR') == [] == validate_answer('clinical', 'CORRECT')
    assert validate_answer('clinical', 'error') and validate_answer('clinical', None)

# ---------------------------------------------------------------------------------------------------------------
# Parser: three outcomes on realistic model outputs (>= 20 each)

B, RP, FR = ('pediatric', 'bone_age'), ('pediatric', 'rop'), ('pediatric', 'fracture')
R, C = ('rtl', None), ('clinical', None)

VALID = [  # (task, subtask), output, expected value
    (R, RTL, json.loads(RTL)),
    (R, json.dumps(json.loads(RTL), indent=2), json.loads(RTL)),
    (R, '\n\n' + RTL + '\n', json.loads(RTL)),
    (R, '{"alignments":[{"claim_id":"c1","label":"not_assessable","evidence":"no prior study available","confidence":0.3}]}', None),
    (R, '{"alignments": [{"claim_id": "c1", "label": "supported", "evidence": "fluid level at right base", "confidence": 0.95, '
        '"related_finding_ids": ["f2"]}]}', None),
    (R, '{"alignments": [{"claim_id": "c3", "label": "needs_review", "evidence": "opacité basale droite ≥ 2 cm", "confidence": 0.4}]}', None),
    (R, '{"alignments": [{"claim_id": "c1", "label": "uncertain", "evidence": "equivocal density", "confidence": 0}]}', None),
    (B, BONE, json.loads(BONE)),
    (B, '{"bone_age_months": 126.5, "confidence": 0.65}', {'bone_age_months': 126.5, 'confidence': 0.65}),
    (B, '{"confidence": 0.7, "bone_age_months": 84}', {'bone_age_months': 84, 'confidence': 0.7}),
    (B, '{\n  "bone_age_months": 1.5e2,\n  "confidence": 7e-1\n}', {'bone_age_months': 150.0, 'confidence': 0.7}),
    (RP, ROP, json.loads(ROP)),
    (RP, '{"zone": "I", "stage": 3, "plus_disease": true, "confidence": 0.8}', None),
    (RP, '{"zone":"III","stage":0,"plus_disease":false,"confidence":0.4}', None),
    (FR, FRAC, json.loads(FRAC)),
    (FR, '{"fracture_present": false, "type": "none", "confidence": 0.9}', None),
    (FR, '  {"fracture_present": true, "type": "buckle", "confidence": 0.75}  ', None),
    (C, 'ERROR - Lumpectomy is not indicated for normal breast tissue', 'ERROR'),
    (C, 'CORRECT - Treatment matches imaging findings', 'CORRECT'),
    (C, 'ERROR', 'ERROR'),
    (C, 'correct - antibiotics fit the lobar consolidation', 'CORRECT'),
    (C, 'Error: a core biopsy is unnecessary for a simple cyst', 'ERROR'),
    (C, '\n  CORRECT - observation is appropriate for a benign nodule\n', 'CORRECT'),
    (C, 'CORRECT.', 'CORRECT'),
    (C, 'ERROR - Surgery is not indicated.\nReason: imaging shows normal tissue.', 'ERROR'),
]

REPAIRED = [  # (task, subtask), output, expected repairs
    (B, f'```json\n{BONE}\n```', ['code_fence']),
    (B, f'```\n{BONE}\n```', ['code_fence']),
    (RP, f'Here is my assessment:\n```json\n{ROP}\n```\nLet me know if you need more detail.', ['code_fence']),
    (FR, f'```json\n{FRAC}', ['code_fence']),  # fence never closed (generation stopped)
    (FR, f'```text\nPA wrist\n```\n```json\n{FRAC}\n```', ['code_fence']),  # the first fence holding an object
    (B, f'Answer: {BONE}\n```\nmethod: Greulich-Pyle atlas\n```', ['extracted_object']),  # a fence without JSON is ignored
    (B, f'Based on the ossification centres, the estimate is {BONE}', ['extracted_object']),
    (B, f'{BONE}\nThe carpal bones suggest a bone age close to the chronological age.', ['extracted_object']),
    (B, f'My answer: {BONE}. To repeat: {BONE}', ['extracted_object']),  # the same answer twice conflicts with nothing
    (B, f'```json\n{BONE}\n```\n```json\n{BONE}\n```', ['code_fence']),
    (R, f'Audit result: {RTL} (c2 is supported by the cardiac silhouette).', ['extracted_object']),
    (B, 'Format: {"type": "object"}\nAnswer: ' + BONE, ['extracted_object']),
    (B, '\ufeff' + BONE, ['extracted_object']),  # byte-order mark left by a decoder
    (B, '{"bone_age_months": 126, "confidence": 0.7,}', ['json_repair']),
    (RP, "{'zone': 'II', 'stage': 2, 'plus_disease': False, 'confidence': 0.6}", ['json_repair']),
    (FR, '{"fracture_present": True, "type": "buckle", "confidence": 0.8}', ['json_repair']),
    (R, RTL[:-2], ['json_repair']),  # truncated: the closing "]}" is missing
    (R, RTL[:-1] + ',]}', ['json_repair']),
    (B, '{"bone_age_months": 126, "confidence": 0.7', ['json_repair']),
    (B, '{bone_age_months: 126, confidence: 0.7}', ['json_repair']),
    (B, '{“bone_age_months”: 126, “confidence”: 0.7}', ['json_repair']),
    (B, '{"bone_age_months": 126, /* from the Greulich-Pyle atlas */ "confidence": 0.7}', ['json_repair']),
    (RP, '{"zone": "II" "stage": 2 "plus_disease": false "confidence": 0.6}', ['json_repair']),
    (B, '```json\n{"bone_age_months": 126, "confidence": 0.7,}\n```', ['code_fence', 'json_repair']),
    (FR, "The radiograph shows a buckle fracture: {'fracture_present': True, 'type': 'buckle', 'confidence': 0.7}",
     ['extracted_object', 'json_repair']),
    (R, "```json\n{'alignments': [{'claim_id': 'c1', 'label': 'uncertain', 'evidence': 'faint opacity', 'confidence': 0.5},]}\n```",
     ['code_fence', 'json_repair']),
    (C, '**ERROR** - Chemotherapy is not indicated for a benign lesion', ['markdown']),
    (C, '# CORRECT\nThe treatment fits the finding.', ['markdown']),
    (C, '> ERROR - unnecessary biopsy', ['markdown']),
    (C, '- CORRECT - antibiotics for pneumonia', ['markdown']),
    (C, '`ERROR` - overtreatment', ['markdown']),
    (C, '"CORRECT - observation is appropriate"', ['markdown']),
    (C, '```\nCORRECT - Treatment matches imaging findings\n```', ['code_fence']),
]

INVALID = [  # (task, subtask), output, a fragment of the expected error
    (B, None, 'None'),
    (B, '', 'empty'),
    (B, '  \n\t', 'empty'),
    (B, 'The bone age is approximately 10.5 years.', 'no JSON object'),
    (R, 'I cannot assess the claims without a prior study.', 'no JSON object'),
    (B, '{garbage}', 'nothing recoverable'),  # json_repair: ['garbage}']
    (B, '{}', 'required property'),
    (B, '{,}', 'nothing recoverable'),  # json_repair: {}
    (B, '{"bone_age_months": 126}', "'confidence' is a required property"),
    (B, '{"bone_age_months": 126, "confidence": 0.7, "sex": "F"}', 'Additional properties'),
    (B, '{"bone_age_months": "126", "confidence": 0.7}', "not of type 'number'"),
    (B, f'[{BONE}]', 'JSON list of objects'),  # one object was asked for: a list is invalid wherever it stands
    (B, f'Answer: [{BONE}]', 'JSON list of objects'),
    (B, f'```json\n[{BONE}]\n```', 'JSON list of objects'),
    (B, f'```json\n{BONE}\n```\nor perhaps\n```json\n{BONE.replace("126", "132")}\n```', 'conflicting answers'),
    (B, f'First I thought {BONE}, but on reflection {BONE.replace("0.7", "0.5")}', 'conflicting answers'),
    (R, '{"alignments": [{"claim_id": "c1", "label": "supported", "evidence": "x", "confidence": 0.9}, '
        '{"claim_id": "c1", "label": "uncertain", "evidence": "y", "confidence": 0.5}]}', 'two different labels'),
    (B, '{"bone_age_months": NaN, "confidence": 0.7}', 'not a finite number'),
    (B, '{"bone_age_months": -12, "confidence": 0.7}', 'less than the minimum'),
    (B, 'null', "not of type 'object'"),
    (B, '126', "not of type 'object'"),
    (B, json.dumps(BONE), "not of type 'object'"),  # JSON-in-a-string
    (R, '{"alignments": []}', 'non-empty'),
    (R, '{"alignments": [{"claim_id": "c1", "label": "probably supported", "evidence": "x", "confidence": 0.5}]}', 'is not one of'),
    (R, RTL[:RTL.index('"confidence"')], "'confidence' is a required property"),  # cut off mid-answer
    (R, '{"alignments": [{"claim_id": "c1", "label": "supported", "evidence": "x", "confidence": 1.5}]}', 'maximum'),
    (RP, '{"zone": "IV", "stage": 2, "plus_disease": false, "confidence": 0.6}', 'is not one of'),
    (RP, "{'zone': 'II', 'stage': 4, 'plus_disease': False, 'confidence': 0.6}", 'maximum'),  # repairs, then fails
    (FR, '{"fracture_present": yes, "type": "buckle", "confidence": 0.8}', "not of type 'boolean'"),
    (FR, '{"fracture_present": false, "type": "buckle", "confidence": 0.8}', "'none' was expected"),
    (B, b'{"bone_age_months": 126, "confidence": 0.7\xff}', 'not valid UTF-8'),
    (B, '{"bone_age_months": 126, "confidence": 0.7, "note": "\ufffd\ufffd"}', 'U+FFFD'),
    (B, '{"bone_age_months": 126, "confidence": 0.7}' + ' ' * MAX_ANSWER_CHARS, 'longer than MAX_ANSWER_CHARS'),
    (B, '{"a": ' * 40 + '1', 'nested'),
    (B, 'undefined undefined undefined', 'no JSON object'),
    (C, 'Incorrect treatment for this finding.', 'does not start with ERROR or CORRECT'),
    (C, 'Answer: ERROR - surgery not indicated', 'does not start'),
    (C, 'The treatment is correct.', 'does not start'),
    (C, 'CORRECTLY prescribed antibiotics', 'does not start'),
    (C, 'ERRORS were found in the prescription', 'does not start'),
    (C, '{"verdict": "ERROR"}', 'does not start'),
    (C, '', 'empty'),
    (C, b'\x80ERROR', 'not valid UTF-8'),
]


def _check_invariants(r: ParsedAnswer):
    assert isinstance(r, ParsedAnswer) and r.status in ('valid', 'repaired', 'invalid')
    assert (r.value is None) == (r.status == 'invalid') == (r.error is not None) == (not r.ok)
    assert (r.repairs == []) == (r.status != 'repaired') or r.status == 'invalid'


@pytest.mark.parametrize('table', [VALID, REPAIRED, INVALID], ids=['valid', 'repaired', 'invalid'])
def test_tables_cover_every_answer_kind(table):
    "Each outcome is pinned down for every answer format, with at least 20 distinct outputs."
    assert {kind for kind, *_ in table} == {R, C, B, RP, FR}
    assert len({(kind, out) for kind, out, _ in table}) >= 20


@pytest.mark.parametrize('tsk,out,value', VALID)
def test_parse_valid(tsk, out, value):
    r = parse_answer(tsk[0], out, tsk[1])
    _check_invariants(r)
    assert r.status == 'valid' and r.repairs == [], r
    assert r.value == (value if value is not None else json.loads(out))


@pytest.mark.parametrize('tsk,out,repairs', REPAIRED)
def test_parse_repaired(tsk, out, repairs):
    r = parse_answer(tsk[0], out, tsk[1])
    _check_invariants(r)
    assert (r.status, r.repairs) == ('repaired', repairs), r
    assert validate_answer(tsk[0], r.value, tsk[1]) == []


@pytest.mark.parametrize('tsk,out,why', INVALID)
def test_parse_invalid(tsk, out, why):
    r = parse_answer(tsk[0], out, tsk[1])
    _check_invariants(r)
    assert r.status == 'invalid' and why in r.error, r


def test_repaired_values():
    "Repairs recover the intended content, not just something schema-shaped."
    assert parse_answer('pediatric', "{'zone': 'I', 'stage': 3, 'plus_disease': True, 'confidence': 0.8,}", 'rop').value == \
        {'zone': 'I', 'stage': 3, 'plus_disease': True, 'confidence': 0.8}
    assert parse_answer('rtl', RTL[:-2]).value == json.loads(RTL)
    assert parse_answer('clinical', '**error** - x').value == 'ERROR'


def test_bytes_are_decoded():
    assert parse_answer('pediatric', BONE.encode(), 'bone_age').status == 'valid'
    assert parse_answer('clinical', 'CORRECT - ok'.encode()).value == 'CORRECT'


def test_bad_task_raises():
    with pytest.raises(ValueError, match='unknown task'): parse_answer('derm', BONE)
    with pytest.raises(ValueError, match='subtask'): parse_answer('pediatric', BONE)


def _fuzz_inputs(n=400, seed=0):
    "Seeded junk: random slices and mutations of real answers, random bytes, brackets and unicode."
    rng = random.Random(seed)
    pieces = [BONE, ROP, FRAC, RTL, 'ERROR - x', '```json', '```', '{', '}', '[', ']', '"', "'", ',', ':', 'True', 'None',
              'NaN', '\\', '\ufffd', '\x00', 'é', '🙂', '\n', ' ']
    for _ in range(n):
        kind = rng.random()
        if kind < 0.4:
            s = rng.choice([BONE, ROP, FRAC, RTL]); i, j = sorted(rng.sample(range(len(s) + 1), 2)); yield s[i:j]
        elif kind < 0.7: yield ''.join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        elif kind < 0.85: yield bytes(rng.randrange(256) for _ in range(rng.randint(0, 60)))
        else: yield ''.join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x2FFF), rng.randrange(0xD800, 0xE000)]))
                            for _ in range(rng.randint(0, 60)))


def test_never_raises_on_junk():
    for text in _fuzz_inputs():
        for task, sub in [R, C, B, RP, FR]:
            _check_invariants(parse_answer(task, text, sub))

# ---------------------------------------------------------------------------------------------------------------
# Overconfidence

FLAGGED = [
    ('The opacity is clearly pneumonia.', ['clearly']),
    ('This definitely represents a displaced distal radius fracture.', ['definitely']),
    ('CT confirms the reported consolidation.', ['confirms']),
    ('Malignancy is confirmed.', ['confirmed']),
    ('There is no doubt that the mass is malignant.', ['no doubt']),
    ('Without a doubt, the treatment is appropriate.', ['without a doubt']),
    ('The nodule is malignant beyond any doubt.', ['beyond any doubt']),
    ('This is, without question, a buckle fracture.', ['without question']),
    ('The findings are unequivocally benign.', ['unequivocally']),
    ('I am absolutely certain this is a buckle fracture.', ['absolutely certain']),
    ("I'm certain the effusion is new.", ["i'm certain"]),
    ('We are 100% sure of the diagnosis.', ['100% sure']),
    ('The diagnosis can be made with complete certainty.', ['with complete certainty']),
    ('Obvious displaced fracture of the distal radius.', ['obvious']),
    ('Clearly not a fracture.', ['clearly']),
    ('ERROR - Surgery is obviously unnecessary for a benign cyst', ['obviously']),
    ('CORRECT - antibiotics are certainly indicated', ['certainly']),
    ('No effusion; the fracture is clearly displaced.', ['clearly']),
    ('No pneumothorax, but the consolidation is definitely present.', ['definitely']),
    ('There is no effusion and the heart is undoubtedly enlarged.', ['undoubtedly']),
    ('DEFINITELY malignant.', ['definitely']),
    ('The image conclusively demonstrates a fracture and clearly shows displacement.', ['conclusively', 'clearly']),
    ('{"claim_id": "c2", "label": "supported", "evidence": "Consolidation clearly visible", "confidence": 0.9}', ['clearly']),
    ('It is not possible on this view to say definitely.', ['definitely']),  # documented limit: cue 5+ words back
]

CALIBRATED = [
    'The image does not clearly support the claim of cardiomegaly.',  # the seed's own calibrated phrasing
    'does not clearly support',
    'Cannot definitely exclude a small left effusion.',
    'The finding is not certain.',
    'The opacity may not be definitely pneumonia.',
    'No clear evidence of fracture.',
    'There is no definite fracture.',
    'No obvious consolidation.',
    'Findings need to be confirmed with CT.',
    'The diagnosis remains to be confirmed.',
    'Malignancy has not been confirmed.',
    'If confirmed, this would warrant biopsy.',
    'It is unclear whether the margin is clearly irregular.',
    'Lungs are clear.',
    'The costophrenic angles are clear; no effusion.',
    'This cannot be determined with certainty.',
    'Not conclusively demonstrated on this projection.',
    "The fracture line isn't clearly visible.",
    "The fracture line isn’t clearly visible.",  # typographic apostrophe
    'Inconclusive findings; uncertain significance.',
    'The fracture line is more clearly seen on the lateral view.',
    'Possibly consolidation, not clearly distinguishable from atelectasis.',
    'Certain features suggest a benign lesion.',
    'I am not sure the effusion is real.',
    'The appearance could not definitely be characterised.',
    'There is no evidence that clearly shows a fracture.',
    'Probably benign; confirmation requires biopsy.',
    'The nodule is possibly malignant; correlation is suggested.',
    'Findings are likely, but not definitely, infectious.',
    'The claim cannot be assessed without a prior study.',
    '',
]


@pytest.mark.parametrize('text,terms', FLAGGED)
def test_overconfident_flagged(text, terms):
    assert overconfident_phrases(text) == terms


@pytest.mark.parametrize('text', CALIBRATED)
def test_overconfident_not_flagged(text):
    assert overconfident_phrases(text) == []
    assert not is_overconfident(text)


def audit(*alignments):
    return json.dumps({'alignments': [al(**a) for a in alignments]})


@pytest.mark.parametrize('text,expected', [
    (audit({'label': 'supported', 'confidence': 0.95}), False),
    (audit({'label': 'uncertain', 'confidence': 0.89}), False),
    (audit({'label': 'uncertain', 'confidence': 0.9}), True),
    (audit({'label': 'not_assessable', 'confidence': 1}), True),
    (audit({'label': 'supported', 'confidence': 0.9}, {'claim_id': 'c2', 'label': 'needs_review', 'confidence': 0.95}), True),
    (audit({'label': 'uncertain', 'confidence': 0.5, 'evidence': 'definitely pneumonia'}), True),
    (audit({'label': 'uncertain', 'confidence': 0.5, 'evidence': 'does not clearly support the claim'}), False),
    ('```json\n' + audit({'label': 'needs_review', 'confidence': 0.99}) + '\n```', True),  # repaired answers count too
    ('The claims look fine.', False),
    (None, False),
])
def test_is_overconfident_rtl(text, expected):
    assert is_overconfident(text) is expected


def test_is_overconfident_value_argument():
    assert is_overconfident('text', value={'alignments': [{'label': 'uncertain', 'confidence': 0.93}]})
    assert is_overconfident('text', value=parse_answer('rtl', audit({'label': 'uncertain', 'confidence': 0.93})))
    assert not is_overconfident('text', value={'alignments': [{'label': 'uncertain', 'confidence': True}]})
    assert not is_overconfident('text', value={'alignments': 'junk'})
    assert not overconfident_phrases('{"bone_age_months": 120, "confidence": 0.99}')

# ---------------------------------------------------------------------------------------------------------------
# Prompts


def test_prompts_per_kind():
    for task in task_names():
        for sub in get_task(task).subtasks or (None,):
            assert system_prompt(task, sub) and len(instruction(task, sub).split()) < 120
            assert overconfident_phrases(instruction(task, sub)) == []
    assert 'calibrated' in system_prompt('rtl')
