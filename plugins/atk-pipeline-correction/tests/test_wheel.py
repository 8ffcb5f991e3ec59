"""Installed from its wheel (not editable) beside atk-core in a fresh venv, correction finds
its config template, prompts (the line files too) and sample documents."""

import os
from pathlib import Path

from atk_core.testing import ScriptedPipeline, read_jsonl
from correction_fakes import write_inputs

KIT = ScriptedPipeline("correction", respond="correction_fakes:respond", inputs=write_inputs,
                       helpers=Path(__file__).resolve().parent)


def test_runs_from_a_wheel_in_a_fresh_venv(installed_python, tmp_path):
    out = KIT.run_from_wheel(installed_python, tmp_path, distribution="atk-pipeline-correction",
                             flaws="written")
    samples = ["glassmaking.md", "monarchs.txt"]
    assert sorted(os.listdir(tmp_path / "documents")) == samples
    assert {"follow_ups.txt", "acknowledgements.txt", "system.txt", "write_correction.yaml",
            "check_correction.yaml"} <= set(os.listdir(tmp_path / "my_prompts"))
    records = read_jsonl(out / "corrections.jsonl")
    assert records and {r["source"] for r in records} <= set(samples)
    assert all(r["flaw"] == "written" for r in records)
