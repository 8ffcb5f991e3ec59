"""factual-qa with the embedded model (SmolLM2-135M, in-process) on a document it was not
written for: what it keeps is real data, whatever the model's own judgment.

Slow next to the scripted tests (the model really writes), so it reads one short
document with the config template's settings, as the quickstart would.
"""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from atk_core import (
    conversation_problem, grounding_problem, placeholder_problem, question_problem,
    refers_to_source,
)
from atk_core.testing import read_jsonl, run_pipeline

UNSEEN = Path(__file__).resolve().parent / "unseen"

pytestmark = [pytest.mark.skipif(importlib.util.find_spec("atk_backend_llamacpp") is None,
                                 reason="needs atk-backend-llamacpp (the embedded model)"),
              pytest.mark.slow]  # runs the embedded model


def template_fields() -> dict:
    from importlib.resources import files

    tree = yaml.safe_load((files("atk_pipeline_factual") / "config.yaml").read_text())
    return {k: v for k, v in tree.items()
            if k not in ("pipeline", "input_dir", "output_dir", "models", "progress")}


def test_the_embedded_model_keeps_only_real_questions_with_grounded_answers(tmp_path):
    fields = {**template_fields(), "max_tokens": 256}  # a looping conversation is cut sooner
    result = run_pipeline("factual-qa", output_dir=tmp_path / "out", input_dir=str(UNSEEN),
                          models={"small": {"backend": "llamacpp"}, "large": {"backend": "llamacpp"}},
                          **fields)
    out = tmp_path / "out"
    assert result.exit_code == 0, result.error
    chunk = (UNSEEN / "lighthouse_of_alexandria.txt").read_text()
    pairs = read_jsonl(out / "qa_pairs.jsonl")
    assert pairs, "the embedded model kept no pair of a plain factual document"
    for pair in pairs:
        question, answer = pair["question"], pair["answer"]
        assert question_problem(question, chunk=chunk, answer=answer) is None, question
        assert refers_to_source(question) is None and refers_to_source(answer) is None
        assert grounding_problem(answer, chunk) is None, answer
        assert placeholder_problem(question) is None and placeholder_problem(answer) is None
    questions = [p["question"].lower() for p in pairs]
    assert len(set(questions)) == len(questions)
    by_answer = {p["answer"] for p in pairs}
    for record in read_jsonl(out / "conversations.messages.jsonl"):
        turns = [m for m in record["messages"] if m["role"] != "system"]
        carried = [a for a in by_answer if a in " ".join(t["content"] for t in turns)]
        assert conversation_problem(turns, carried) is None
    # Every sample that did not make it is explained.
    manifest = json.loads((out / "manifest.json").read_text())
    failures = read_jsonl(out / "failures.jsonl")
    assert len(failures) == sum(sum(s["dropped"].values()) for s in manifest["steps"])
    assert all(f["kind"] and f["reason"] for f in failures)
