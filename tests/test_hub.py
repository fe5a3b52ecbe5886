"""Model cards and `--push-to-hub` as a user meets them: the cards after `medgemma-lora run`, `train` and `merge`, and the
upload through huggingface_hub, recorded (no network here) instead of sent. The token never shows."""
import argparse, json
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub import ModelCard

from medgemma_lora.cli import COMMANDS, build_parser, main, run_command
from medgemma_lora.hub import HAI_DEF, HAI_DEF_GATE, eval_table, upload_files

FAKE_TOKEN = 'hf_FAKEtokenForTheTests0123456789abcdef'


@pytest.fixture
def hub_calls(monkeypatch):
    "Record `HfApi.create_repo`, `update_repo_settings` and `upload_folder` calls (the uploaded folder's files and bytes) instead of sending them."
    calls = []
    def create_repo(self, repo_id, **kw):
        calls.append(dict(call='create_repo', repo_id=repo_id, **kw)); return f'https://huggingface.co/{repo_id}'
    def upload_folder(self, **kw):
        d = Path(kw['folder_path'])
        calls.append(dict(call='upload_folder', files={p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob('*')) if p.is_file()}, **kw))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{kw['repo_id']}/commit/0")
    def update_repo_settings(self, repo_id, **kw): calls.append(dict(call='update_repo_settings', repo_id=repo_id, **kw))
    monkeypatch.setattr(huggingface_hub.HfApi, 'create_repo', create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, 'upload_folder', upload_folder)
    monkeypatch.setattr(huggingface_hub.HfApi, 'update_repo_settings', update_repo_settings)
    return calls


def _leaves(d, prefix=''):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and 'value' in v: out[prefix + k] = v['value']
        elif isinstance(v, dict): out.update(_leaves(v, f'{prefix}{k}.'))
    return out


def _no_token_anywhere(capfd, *folders):
    out, err = capfd.readouterr()
    assert FAKE_TOKEN not in out + err, 'the token was printed'
    for folder in folders:
        for p in Path(folder).rglob('*'):
            if p.is_file(): assert FAKE_TOKEN.encode() not in p.read_bytes(), f'the token was written to {p}'
    return out


def test_every_cli_option_has_help_and_shows_its_default():
    parser = build_parser()
    subs = parser._subparsers._group_actions[0].choices
    assert set(subs) == set(COMMANDS)
    for name, sp in subs.items():
        for act in sp._actions:
            if isinstance(act, argparse._HelpAction) or act.help == argparse.SUPPRESS: continue   # hidden: old or refused flags
            what = act.help.split('(default')[0].strip() if act.help else ''
            assert what, f'{name} {act.option_strings or act.dest}: no help text'
            assert act.required or not act.option_strings or 'default' in act.help, f'{name} {act.option_strings}: no default shown in {act.help!r}'
        text = ' '.join(sp.format_help().split())
        assert text.startswith(f'usage: {sp.prog}') and '(default: off)' in text, name   # renders, and a switch says it is off
    for name in ('train', 'merge', 'run'):
        flags = {o for a in subs[name]._actions for o in a.option_strings}
        assert {'--push-to-hub', '--private', '--hub-dry-run'} <= flags, name


def test_run_writes_cards_with_the_eval_table_and_pushes_both(tmp_path, monkeypatch, capfd, hub_calls):
    """`run rtl` on the tiny model: both cards carry the license, the base (none for `tiny`, said so) and the evaluation
    table with intervals and model-index from metrics.json; --push-to-hub uploads the adapter and the merged model."""
    monkeypatch.setenv('HF_TOKEN', FAKE_TOKEN)
    out = tmp_path/'run'
    res = run_command(['run', 'rtl', '--out', str(out), '--n-train', '24', '--n-eval', '6', '--max-steps', '6',
                       '--push-to-hub', 'you/medgemma-rtl', '--private'])
    printed = _no_token_anywhere(capfd, tmp_path)
    metrics = json.loads((out/'metrics.json').read_text())
    merged_values = _leaves(metrics['runs']['merged'])
    for kind, lib, repo in (('adapter', 'peft', 'you/medgemma-rtl'), ('merged', 'transformers', 'you/medgemma-rtl-merged')):
        card = ModelCard.load(out/kind/'README.md')
        assert (card.data.library_name, card.data.pipeline_tag, card.data.license) == (lib, 'image-text-to-text', 'apache-2.0')
        assert card.data.base_model is None and 'the embedded `tiny` test model' in card.content and 'no Hub base model' in card.content
        assert 'More Information Needed' not in card.content and eval_table(metrics) in card.content and '% [' in card.content
        index = {e.metric_type: e.metric_value for e in card.data.eval_results}
        assert index == {k: v for k, v in merged_values.items() if v is not None} and index
        assert card.data.eval_results[0].dataset_revision == json.loads((out/'adapter'/'data_fingerprint.json').read_text())['sha256']
        assert f'{repo!r}' in card.content and card.data.model_name == repo                   # the usage snippet loads from the repo
    creates = [c for c in hub_calls if c['call'] == 'create_repo']
    uploads = [c for c in hub_calls if c['call'] == 'upload_folder']
    assert [(c['repo_id'], c['private'], c['exist_ok'], c['token']) for c in creates] == [
        ('you/medgemma-rtl', True, True, FAKE_TOKEN), ('you/medgemma-rtl-merged', True, True, FAKE_TOKEN)]
    assert [u['repo_id'] for u in uploads] == ['you/medgemma-rtl', 'you/medgemma-rtl-merged'] and all(u['token'] == FAKE_TOKEN for u in uploads)
    adapter, merged = uploads[0]['files'], uploads[1]['files']
    assert sorted(adapter) == upload_files(out/'adapter') and sorted(merged) == upload_files(out/'merged')
    assert {'README.md', 'adapter_model.safetensors', 'adapter_config.json', 'train_config.json', 'data_fingerprint.json', 'tokenizer.json'} <= set(adapter)
    assert not any(f.startswith('checkpoints/') or f == 'run.json' for f in adapter) and (out/'adapter'/'checkpoints').is_dir()
    assert {'README.md', 'model.safetensors', 'config.json', 'merge_report.json', 'train_config.json'} <= set(merged)
    assert adapter['README.md'] == (out/'adapter'/'README.md').read_bytes()               # the card uploaded is the card on disk
    assert adapter['adapter_model.safetensors'] == (out/'adapter'/'adapter_model.safetensors').read_bytes()
    assert [h['repo_id'] for h in res['hub']] == ['you/medgemma-rtl', 'you/medgemma-rtl-merged']
    assert '== hub: uploaded' in printed and 'https://huggingface.co/you/medgemma-rtl-merged (private)' in printed


def test_train_and_merge_from_a_kaggle_mount_name_the_hub_base_and_its_terms(tmp_path, monkeypatch, capfd, hub_calls):
    """A model loaded from a Kaggle Models mount is `google/medgemma-4b-it` on the cards, under MedGemma's terms. `train
    --hub-dry-run` writes what it would upload and uploads nothing; `merge --push-to-hub --private` uploads exactly that
    kind of folder, with the token from the environment, never shown."""
    from medgemma_lora.models import load_model, load_processor
    mount = tmp_path/'kaggle'/'input'/'medgemma'/'transformers'/'medgemma-4b-it'/'1'     # the tiny checkpoint, where Kaggle mounts MedGemma
    load_model('tiny').save_pretrained(mount); load_processor('tiny').save_pretrained(mount)
    main(['data', 'rtl', '--out', str(tmp_path/'data'), '--n-train', '8', '--n-eval', '4'])
    adapter, dry = tmp_path/'adapter', tmp_path/'dry'
    monkeypatch.delenv('HF_TOKEN', raising=False); monkeypatch.delenv('HUGGING_FACE_HUB_TOKEN', raising=False)
    main(['train', '--data', str(tmp_path/'data'), '--model', str(mount), '--out', str(adapter), '--max-steps', '2', '--per_device_train_batch_size', '2',
          '--gradient_accumulation_steps', '1', '--push-to-hub', 'you/rtl-adapter', '--hub-dry-run', str(dry)])   # a dry run needs no token
    assert hub_calls == []
    assert sorted(p.relative_to(dry).as_posix() for p in dry.rglob('*') if p.is_file()) == upload_files(adapter)
    card = ModelCard.load(dry/'README.md')
    assert (card.data.base_model, card.data.library_name, card.data.base_model_relation) == ('google/medgemma-4b-it', 'peft', 'adapter')
    assert {k: card.data.to_dict()[k] for k in HAI_DEF} == HAI_DEF and HAI_DEF['license_link'] in card.content
    assert f'(loaded from `{mount}`)' in card.content and "from_pretrained('google/medgemma-4b-it'" in card.content
    assert "PeftModel.from_pretrained(base, 'you/rtl-adapter')" in card.content and 'tiny-test-model' not in card.data.tags

    monkeypatch.setenv('HF_TOKEN', FAKE_TOKEN)
    main(['merge', '--adapter', str(adapter), '--out', str(tmp_path/'merged'), '--push-to-hub', 'you/rtl-merged', '--private'])
    out = _no_token_anywhere(capfd, tmp_path)
    assert [c['call'] for c in hub_calls] == ['create_repo', 'upload_folder']
    create, upload = hub_calls
    assert (create['repo_id'], create['private'], create['exist_ok'], create['token']) == ('you/rtl-merged', True, True, FAKE_TOKEN)
    assert (upload['repo_id'], upload['token']) == ('you/rtl-merged', FAKE_TOKEN) and sorted(upload['files']) == upload_files(tmp_path/'merged')
    assert not Path(upload['folder_path']).exists()                                         # the staging folder is cleaned up
    card = ModelCard(upload['files']['README.md'].decode())
    assert (card.data.base_model, card.data.library_name, card.data.license_name) == ('google/medgemma-4b-it', 'transformers', HAI_DEF['license_name'])
    assert "from_pretrained('you/rtl-merged'" in card.content and '| tied embeddings equal lm_head after reload | True |' in card.content
    assert {k: card.data.to_dict()[k] for k in HAI_DEF_GATE} == HAI_DEF_GATE           # MedGemma's weights ask for its terms
    assert 'uploaded' in out and 'https://huggingface.co/you/rtl-merged (private)' in out


def test_a_push_without_a_token_fails_before_any_work(tmp_path, monkeypatch, capsys, hub_calls):
    monkeypatch.delenv('HF_TOKEN', raising=False); monkeypatch.delenv('HUGGING_FACE_HUB_TOKEN', raising=False)
    for argv in (['run', 'rtl', '--out', str(tmp_path/'run'), '--push-to-hub', 'you/x'],
                 ['train', '--data', str(tmp_path/'nodata'), '--out', str(tmp_path/'a'), '--push-to-hub', 'you/x'],
                 ['merge', '--adapter', str(tmp_path/'a'), '--out', str(tmp_path/'m'), '--push-to-hub', 'you/x'],
                 ['run', 'rtl', '--out', str(tmp_path/'run'), '--push-to-hub', 'no-owner', '--hub-dry-run', str(tmp_path/'d')]):
        with pytest.raises(SystemExit) as e: run_command(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and ('no Hugging Face token' in err or 'owner/name' in err), (argv, err)
    assert hub_calls == [] and list(tmp_path.iterdir()) == []                               # nothing was made
