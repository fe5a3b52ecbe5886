"""GGUF export (chapter 03f) end to end. CI converts in the chapter itself (the `convert` extra is in `.[dev]`); these
tests quantize and answer through llama.cpp, so they need llama-cpp-python (`.[gguf]`, a source build) and skip
without it."""

import dataclasses, json

import pytest

from medgemma_lora.cli import run_command

pytest.importorskip('llama_cpp')


def test_run_export_scores_the_quantized_model_beside_the_merged(tmp_path):
    "`run rtl --export Q4_K_M` on tiny: the GGUF files, its row in the report, paired with the merged model's."
    from medgemma_lora.data import read_jsonl
    from medgemma_lora.gguf_export import load_gguf, predict_gguf

    out = tmp_path / 'run'
    run_command(
        ['run', 'rtl', '--out', str(out), '--n-train', '24', '--n-eval', '6', '--max-steps', '6', '--export', 'Q4_K_M']
    )
    for f in ('model-Q4_K_M.gguf', 'mmproj-F16.gguf', 'Modelfile', 'README.md', 'export.json', 'quantize.log'):
        assert (out / 'gguf' / f).is_file(), f
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['runs']['merged Q4_K_M']['n_cases'] == 6
    assert ['merged', 'merged Q4_K_M'] in [c['names'] for c in metrics['comparisons']]
    report = (out / 'report.md').read_text()
    assert '| merged Q4_K_M − merged | p |' in report and 'Q4_K_M GGUF export' in report
    rows = [json.loads(l) for l in (out / 'predictions_merged_Q4_K_M.jsonl').read_text().splitlines()]
    assert len(rows) == 6 and all(isinstance(r['output'], str) for r in rows)
    # the exported files answer an image: its soft tokens are in the prompt llama.cpp evaluated
    llm, rec = load_gguf(out / 'gguf'), read_jsonl(out / 'data' / 'eval.jsonl')[0]
    seen, blind = (
        predict_gguf(llm, [r], out / 'data', max_new_tokens=4, progress=False)[0]
        for r in (rec, dataclasses.replace(rec, images=[]))
    )
    assert seen['tokens']['prompt'] - blind['tokens']['prompt'] >= 16, (seen, blind)
    # unquantized, the export answers every case exactly as transformers did: the differences above are quantization's
    run_command(['export', '--merged', str(out / 'merged'), '--out', str(tmp_path / 'f32'), '--quant', 'F32'])
    merged = {
        r['id']: r['output'] for r in map(json.loads, (out / 'predictions_merged.jsonl').read_text().splitlines())
    }
    refs = read_jsonl(out / 'data' / 'eval.jsonl')
    rows = predict_gguf(load_gguf(tmp_path / 'f32'), refs, out / 'data', progress=False)
    assert [r['output'] for r in rows] == [merged[r.id] for r in refs]
