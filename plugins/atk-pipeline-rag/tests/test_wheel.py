"""Installed from its wheel (not editable) beside atk-core in a fresh venv, rag-data finds its
config template, prompts and sample documents."""

import json
import os
from pathlib import Path

from atk_core.testing import read_jsonl, venv_cli


def test_runs_from_a_wheel_in_a_fresh_venv(installed_python, tmp_path):
    # The scripted model's answers come from the fakes beside this file (not the package).
    atk = venv_cli(installed_python, cwd=tmp_path, helpers=Path(__file__).resolve().parent)

    listed = {p["name"]: p for p in json.loads(atk("list", "pipelines", "--json").stdout)}
    assert listed["rag-data"]["distribution"] == "atk-pipeline-rag"
    atk("init", "rag-data", "--samples")
    assert sorted(os.listdir(tmp_path / "documents")) == ["bread.md", "honeybees.md", "tides.txt"]
    atk("prompts", "rag-data", "my_prompts")
    assert {"system.txt", "refusal.txt", "write_refusal.yaml"} <= set(os.listdir(tmp_path / "my_prompts"))
    scripted = "{backend: scripted, respond: 'rag_fakes:respond'}"
    atk("run", "rag-data.yaml", "--set", f"models.small={scripted}", "--set", f"models.large={scripted}",
        "--set", "prompt_overrides=my_prompts")
    retrieval = read_jsonl(tmp_path / "output" / "retrieval.jsonl")
    assert retrieval and {r["source"] for r in retrieval} <= {"bread.md", "honeybees.md", "tides.txt"}
