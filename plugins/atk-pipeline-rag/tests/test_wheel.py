"""Installed from its wheel (not editable) beside atk-core in a fresh venv, rag-data finds its
config template, prompts and sample documents."""

import os
from pathlib import Path

from atk_core.testing import ScriptedPipeline, read_jsonl
from rag_fakes import write_inputs

KIT = ScriptedPipeline("rag-data", respond="rag_fakes:respond", inputs=write_inputs,
                       helpers=Path(__file__).resolve().parent)


def test_runs_from_a_wheel_in_a_fresh_venv(installed_python, tmp_path):
    out = KIT.run_from_wheel(installed_python, tmp_path, distribution="atk-pipeline-rag")
    samples = ["bread.md", "honeybees.md", "tides.txt"]
    assert sorted(os.listdir(tmp_path / "documents")) == samples
    assert {"system.txt", "refusal.txt", "write_refusal.yaml"} <= set(os.listdir(tmp_path / "my_prompts"))
    retrieval = read_jsonl(out / "retrieval.jsonl")
    assert retrieval and {r["source"] for r in retrieval} <= set(samples)
