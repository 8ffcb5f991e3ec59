"""Installed from its wheel (not editable) beside atk-core in a fresh venv, repvar finds its
config template, prompts (the forms in prompts/variations/ too) and sample documents."""

import json
import os
from pathlib import Path

from atk_core.testing import read_jsonl, venv_cli


def test_runs_from_a_wheel_in_a_fresh_venv(installed_python, tmp_path):
    # The scripted model's answers come from the fakes beside this file (not the package).
    atk = venv_cli(installed_python, cwd=tmp_path, helpers=Path(__file__).resolve().parent)

    listed = {p["name"]: p for p in json.loads(atk("list", "pipelines", "--json").stdout)}
    assert listed["repvar"]["distribution"] == "atk-pipeline-repvar"
    atk("init", "repvar", "--samples")
    assert sorted(os.listdir(tmp_path / "documents")) == ["bread.md", "tides.txt"]
    atk("prompts", "repvar", "my_prompts")
    assert len(os.listdir(tmp_path / "my_prompts" / "variations")) == 8
    scripted = "{backend: scripted, respond: 'repvar_fakes:respond'}"
    atk("run", "repvar.yaml", "--set", f"models.small={scripted}", "--set", f"models.large={scripted}",
        "--set", "prompt_overrides=my_prompts")
    sources = read_jsonl(tmp_path / "output" / "sources.jsonl")
    assert {s["source"] for s in sources} == {"bread.md", "tides.txt"}
    assert {"chunk", "variation", "typos"} <= {s["kind"] for s in sources}
