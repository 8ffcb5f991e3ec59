"""Installed from its wheel (not editable) beside atk-core and its parts in a fresh venv,
domain-expert finds its template and sample folders, copies its parts' prompts out, and runs."""

import os
from pathlib import Path

import yaml

from atk_core.testing import ScriptedPipeline, read_jsonl
from expert_fakes import write_inputs

KIT = ScriptedPipeline("domain-expert", respond="expert_fakes:respond", inputs=write_inputs,
                       helpers=Path(__file__).resolve().parent)


def test_runs_from_a_wheel_in_a_fresh_venv(installed_python, tmp_path):
    out = KIT.run_from_wheel(installed_python, tmp_path, distribution="atk-pipeline-expert")
    assert sorted(os.listdir(tmp_path / "documents")) == ["coast", "kitchen"]
    prompts = tmp_path / "my_prompts"
    # its own (the exam's), and each part's in a folder named after it
    assert sorted(os.listdir(prompts)) == ["correction", "exam_ask.yaml", "exam_question.yaml", "factual-qa",
                                           "rag-data", "repvar"]
    assert (prompts / "rag-data" / "system.txt").is_file()
    samples = {"coast": {"lighthouses.md", "saltmarsh.txt"}, "kitchen": {"pickling.txt", "sourdough.md"}}
    for origin in read_jsonl(out / "pretraining/repvar.sources.jsonl"):
        assert origin["source"] in samples[Path(origin["folder"]).name]
    sft = yaml.safe_load((out / "axolotl/sft.yaml").read_text())
    assert all((out / entry["path"]).is_file() for entry in sft["datasets"])
    assert read_jsonl(out / "sft/mix.jsonl")
