"""Installed from its wheel (not editable) beside atk-core in a fresh venv, repvar finds its
config template, prompts (the forms in prompts/variations/ too) and sample documents."""

import os
from pathlib import Path

from atk_core.testing import ScriptedPipeline, read_jsonl
from repvar_fakes import write_inputs

KIT = ScriptedPipeline("repvar", respond="repvar_fakes:respond", inputs=write_inputs,
                       helpers=Path(__file__).resolve().parent)


def test_runs_from_a_wheel_in_a_fresh_venv(installed_python, tmp_path):
    out = KIT.run_from_wheel(installed_python, tmp_path, distribution="atk-pipeline-repvar")
    assert sorted(os.listdir(tmp_path / "documents")) == ["bread.md", "tides.txt"]
    assert len(os.listdir(tmp_path / "my_prompts" / "variations")) == 8
    sources = read_jsonl(out / "sources.jsonl")
    assert {s["source"] for s in sources} == {"bread.md", "tides.txt"}
    assert {"chunk", "variation", "typos"} <= {s["kind"] for s in sources}
