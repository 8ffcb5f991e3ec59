"""Installed from its wheel (not editable) beside atk-core in a fresh venv, correction finds
its config template, prompts (the line files too) and sample documents."""

import json
import os
from pathlib import Path

from atk_core.testing import read_jsonl, venv_cli


def test_runs_from_a_wheel_in_a_fresh_venv(installed_python, tmp_path):
    # The scripted model's answers come from the fakes beside this file (not the package).
    atk = venv_cli(installed_python, cwd=tmp_path, helpers=Path(__file__).resolve().parent)
    listed = {p["name"]: p for p in json.loads(atk("list", "pipelines", "--json").stdout)}
    assert listed["correction"]["distribution"] == "atk-pipeline-correction"
    atk("init", "correction", "--samples")
    assert sorted(os.listdir(tmp_path / "documents")) == ["glassmaking.md", "monarchs.txt"]
    atk("prompts", "correction", "my_prompts")
    assert {"follow_ups.txt", "acknowledgements.txt", "system.txt", "write_correction.yaml",
            "check_correction.yaml"} <= set(os.listdir(tmp_path / "my_prompts"))
    scripted = "{backend: scripted, respond: 'correction_fakes:respond'}"
    atk("run", "correction.yaml", "--set", f"models.small={scripted}", "--set", f"models.large={scripted}",
        "--set", "prompt_overrides=my_prompts", "--set", "flaws=written")
    records = read_jsonl(tmp_path / "output" / "corrections.jsonl")
    assert records and {r["source"] for r in records} <= {"glassmaking.md", "monarchs.txt"}
    assert all(r["flaw"] == "written" for r in records)
