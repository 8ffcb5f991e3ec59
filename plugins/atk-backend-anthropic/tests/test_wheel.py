"""Installed from its wheel (not editable) in a fresh venv beside atk-core and the pipeline
family, the anthropic backend is listed as its package's, and every pipeline's template, run
against FakeAnthropicServer, writes what it writes through the openai backend against
FakeOpenAIServer with the same scripted answers; the cache saves what it should on the way."""

import json
from pathlib import Path

import pytest

from atk_core.testing import FakeAnthropicServer, FakeOpenAIServer, venv_cli
from anthropic_fakes import CACHE_MIN_TOKENS, anthropic_answer, anthropic_role, openai_answer, openai_role

PIPELINES = ("factual-qa", "repvar", "rag-data", "correction", "domain-expert")
# What a run writes about itself rather than its data: the rest must be the same bytes.
NOT_DATA = {"manifest.json", "progress.jsonl", "config.resolved.yaml", "store.sqlite", "store.sqlite-wal",
            "store.sqlite-shm"}


def data_files(folder: Path) -> dict:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name not in NOT_DATA}


def test_listed_as_its_packages(installed_python, tmp_path):
    atk = venv_cli(installed_python, cwd=tmp_path)
    listed = {b["name"]: b for b in json.loads(atk("list", "backends", "--json").stdout)}
    assert listed["anthropic"]["distribution"] == "atk-backend-anthropic"


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_template_writes_what_the_openai_backend_writes(pipeline, installed_python, tmp_path):
    atk = venv_cli(installed_python, cwd=tmp_path)
    atk("init", pipeline, "--samples")
    with FakeOpenAIServer(answer=openai_answer) as openai, \
            FakeAnthropicServer(answer=anthropic_answer, cache_min_tokens=CACHE_MIN_TOKENS) as anthropic:
        for name, role in (("openai", openai_role(openai)), ("anthropic", anthropic_role(anthropic))):
            settings = [f"--set=models.{r}={json.dumps(role)}" for r in ("small", "large")]
            atk("run", f"{pipeline}.yaml", *settings, f"--set=output_dir=out-{name}", "--progress", "jsonl",
                timeout=900)
        assert len(anthropic.requests) == len(openai.requests) > 0
    written = data_files(tmp_path / "out-anthropic")
    assert written == data_files(tmp_path / "out-openai")
    assert any(name.endswith(".jsonl") and name != "failures.jsonl" and data for name, data in written.items())
    manifest = json.loads((tmp_path / "out-anthropic" / "manifest.json").read_text())
    assert manifest["models"]["large"]["identity"]["backend"] == "anthropic"
    used = manifest["models"]["large"]["usage_sent"]
    assert used["cache_read_tokens"] > 0 and used["cache_read_tokens"] < used["prompt_tokens"]
