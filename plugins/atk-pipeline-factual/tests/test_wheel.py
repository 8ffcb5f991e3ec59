"""Installed from its wheel (not editable) beside atk-core in a fresh venv, the pipeline
still finds its config template, prompts and sample documents."""

import json
import os
import subprocess
from pathlib import Path

from atk_core.testing import read_jsonl, venv_cli


def test_runs_from_a_wheel_in_a_fresh_venv(installed_python, tmp_path):
    # The scripted model's answers come from the fakes beside this file (not the package).
    atk = venv_cli(installed_python, cwd=tmp_path, helpers=Path(__file__).resolve().parent)

    listed = json.loads(atk("list", "pipelines", "--json").stdout)
    (factual,) = [p for p in listed if p["name"] == "factual-qa"]
    assert factual["distribution"] == "atk-pipeline-factual"

    atk("init", "factual-qa", "--samples")
    assert "pipeline: factual-qa" in (tmp_path / "factual-qa.yaml").read_text()
    atk("prompts", "factual-qa", "my_prompts")
    assert sorted(p.name for p in (tmp_path / "my_prompts").iterdir()) == [
        "ask_question.yaml", "check_answer.yaml", "check_question.yaml", "generate_question.yaml",
        "judge_chunk.yaml", "retry_note.txt", "write_conversation.yaml"]

    scripted = "{backend: scripted, respond: 'factual_fakes:respond'}"
    atk("run", "factual-qa.yaml", "--set", f"models.small={scripted}", "--set",
        f"models.large={scripted}", "--set", "rewrite_conversations=false", "--set",
        "prompt_overrides=my_prompts")
    conversations = read_jsonl(tmp_path / "output" / "conversations.sharegpt.jsonl")
    assert conversations and all(c["conversations"][0]["from"] == "system" for c in conversations)
    # the pipeline's package really came from the venv, not from this source tree
    origin = subprocess.run(
        [str(installed_python), "-c", "import atk_pipeline_factual; print(atk_pipeline_factual.__file__)"],
        capture_output=True, text=True, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}).stdout
    assert origin.startswith(str(installed_python.parent.parent)), origin
