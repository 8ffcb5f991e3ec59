"""atk export: a finished run's datasets as a Hugging Face dataset folder, through the real CLI,
loaded back with ``datasets``; and the upload, up to the Hub's first answer (a local server
stands in for the Hub, refusing)."""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from atk_core.testing import read_jsonl, run_cli, run_pipeline, stderr_lines, write_mixed_inputs

datasets = pytest.importorskip("datasets")
FAKES = Path(__file__).resolve().parents[1] / "plugins" / "atk-pipeline-factual" / "tests"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished factual-qa run on the scripted backend."""
    root = tmp_path_factory.mktemp("export")
    sys.path.insert(0, str(FAKES))
    try:
        model = {"backend": "scripted", "respond": "factual_fakes:respond"}
        result = run_pipeline("factual-qa", output_dir=root / "run", input_dir=str(write_mixed_inputs(root / "in")),
                              models={"small": model, "large": model})
    finally:
        sys.path.remove(str(FAKES))
    assert result.exit_code == 0, result.error
    return root / "run"


def test_every_dataset_of_a_run_loads_back_with_datasets_and_the_card_says_what_made_it(run_dir, tmp_path):
    result = run_cli("export", run_dir, "--format", "hf", tmp_path / "hf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    exported = {"conversations_sharegpt": "conversations.sharegpt.jsonl",
                "conversations_messages": "conversations.messages.jsonl", "qa_pairs": "qa_pairs.jsonl"}
    kinds = {"conversations_sharegpt": "SFT conversations (sharegpt)",
             "conversations_messages": "SFT conversations (messages)", "qa_pairs": "plain records"}
    for config, name in exported.items():
        loaded = datasets.load_dataset(str(tmp_path / "hf"), config, split="train",
                                       cache_dir=str(tmp_path / "cache"))
        assert loaded.to_list() == read_jsonl(run_dir / name), config
    # The default config is the run's main output.
    default = datasets.load_dataset(str(tmp_path / "hf"), split="train", cache_dir=str(tmp_path / "cache"))
    assert default.to_list() == read_jsonl(run_dir / manifest["primary_output"])
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "Made by atk's `factual-qa` pipeline (atk-pipeline-factual" in card
    assert f"config hash: `{manifest['config_hash']}`" in card
    for config, name in exported.items():
        assert f"| {config} | `{name}` | {kinds[config]} | {manifest['outputs'][name]} |" in card
    assert "failures" not in card
    assert "model large: `scripted/scripted`" in card


def test_only_declared_outputs_are_exported_and_an_undeclaring_run_exports_every_file(run_dir, tmp_path):
    """The declaration decides: a file the run wrote that its pipeline does not declare is not
    a dataset; a run whose pipeline declares nothing (older, or a plugin without a
    declaration) exports every JSON lines output, its kind said to be undeclared."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "notes.jsonl").write_text('{"note": "not a dataset"}\n')
    manifest["outputs"]["notes.jsonl"] = 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert run_cli("export", copy, "--format", "hf", tmp_path / "declared", cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path / "declared" / "data").iterdir()) == [
        "conversations_messages", "conversations_sharegpt", "qa_pairs"]
    del manifest["declared_outputs"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert run_cli("export", copy, "--format", "hf", tmp_path / "undeclared", cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path / "undeclared" / "data").iterdir()) == [
        "conversations_messages", "conversations_sharegpt", "notes", "qa_pairs"]
    assert "| notes | `notes.jsonl` | undeclared | 1 |" in (tmp_path / "undeclared" / "README.md").read_text()


@pytest.mark.parametrize("args, message, code", [
    (["nowhere"], "nowhere is not a folder", 2),
    (["."], "holds no manifest.json: not a finished run", 2),
])
def test_a_folder_that_is_no_finished_run_is_refused_in_one_line(tmp_path, args, message, code):
    result = run_cli("export", *args, "--format", "hf", tmp_path / "hf", cwd=tmp_path)
    assert result.returncode == code
    (line,) = stderr_lines(result)
    assert line.startswith("atk: error:") and message in line, line
    assert not (tmp_path / "hf").exists()


def test_an_earlier_export_is_replaced_only_with_force(run_dir, tmp_path):
    target = tmp_path / "hf"
    assert run_cli("export", run_dir, "--format", "hf", target, cwd=tmp_path).returncode == 0
    (target / "stale.txt").write_text("from before")
    result = run_cli("export", run_dir, "--format", "hf", target, cwd=tmp_path)
    assert result.returncode == 2 and "already exists; use --force" in result.stderr
    assert (target / "stale.txt").exists()
    assert run_cli("export", run_dir, "--format", "hf", target, "--force", cwd=tmp_path).returncode == 0
    assert not (target / "stale.txt").exists() and (target / "README.md").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_push_without_a_token_is_refused_before_anything_is_written(run_dir, tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": ""}
    result = run_cli("export", run_dir, "--format", "hf", tmp_path / "hf", "--push", "me/data",
                     cwd=tmp_path, env=env)
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert "--push needs a Hugging Face token" in line
    assert not (tmp_path / "hf").exists()


class _Hub(BaseHTTPRequestHandler):
    """Stands in for the Hub: records each request and refuses it."""

    seen: list = []

    def _refuse(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append({"method": self.command, "path": self.path,
                          "authorization": self.headers.get("Authorization"), "body": body.decode()})
        payload = json.dumps({"error": "this token may not create repos"}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_HEAD = _refuse

    def log_message(self, *args):
        pass


def test_push_asks_the_hub_to_make_the_repo_with_the_users_token(run_dir, tmp_path):
    _Hub.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": "hf_testtoken123",
               "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}", "HF_HUB_DISABLE_TELEMETRY": "1"}
        result = run_cli("export", run_dir, "--format", "hf", tmp_path / "hf", "--push", "me/data",
                         cwd=tmp_path, env=env)
    finally:
        server.shutdown()
    assert result.returncode == 1, result.stderr
    (line,) = [l for l in stderr_lines(result) if l.startswith("atk: error:")]
    assert "uploading to me/data failed" in line and "is written" in line, line
    assert "hf_testtoken123" not in result.stderr + result.stdout
    assert (tmp_path / "hf" / "README.md").is_file()  # the folder is kept for another try
    create = _Hub.seen[0]
    assert (create["method"], create["path"]) == ("POST", "/api/repos/create")
    assert create["authorization"] == "Bearer hf_testtoken123"
    assert json.loads(create["body"])["type"] == "dataset" and json.loads(create["body"])["name"] == "data"


def test_force_replaces_only_an_earlier_export_never_the_run_or_a_folder_around_it(run_dir, tmp_path):
    before = sorted(p.name for p in run_dir.iterdir())
    for target in (run_dir, run_dir.parent, run_dir / "inside"):
        result = run_cli("export", run_dir, "--format", "hf", target, "--force", cwd=tmp_path)
        assert result.returncode == 2 and "export to a folder of its own" in result.stderr, result.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    result = run_cli("export", run_dir, "--format", "hf", mine, "--force", cwd=tmp_path)
    assert result.returncode == 2 and "is not an earlier atk export" in result.stderr
    assert (mine / "notes.txt").read_text() == "mine"


def test_rows_with_different_keys_keep_every_column(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"a": 1}, {"a": 2, "b": "x"}, {"b": "y", "c": [1, 2]}]
    (run / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "manifest.json").write_text(json.dumps({"pipeline": "p", "outputs": {"mixed.jsonl": 3}}))
    assert run_cli("export", run, "--format", "hf", tmp_path / "hf", cwd=tmp_path).returncode == 0
    loaded = datasets.load_dataset(str(tmp_path / "hf"), "mixed", split="train", cache_dir=str(tmp_path / "c"))
    assert loaded.to_list() == [{"a": 1, "b": None, "c": None}, {"a": 2, "b": "x", "c": None},
                                {"a": None, "b": "y", "c": [1, 2]}]
    (run / "mixed.jsonl").write_text('{"a": 1}\n{"a": "text"}\n')
    result = run_cli("export", run, "--format", "hf", tmp_path / "hf2", cwd=tmp_path)
    assert result.returncode == 2 and "cannot be written as one table" in result.stderr
    assert not (tmp_path / "hf2").exists()
