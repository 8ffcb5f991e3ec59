"""factual-qa sets an exam aside when asked (exam: {size: N}), through the core's exam helper:
questions about facts its pairs teach, worded apart from them, and held-out facts no pair or
conversation holds. Scripted backend (factual_fakes)."""

import json
import re

from atk_core import TrainingQuestions, turns_of
from atk_core.testing import read_jsonl
from factual_fakes import run


def normal(text):
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def training_texts(out):
    return [normal(" ".join(t for _, t in turns_of(row)))
            for file in ("qa_pairs.jsonl", "conversations.messages.jsonl") for row in read_jsonl(out / file)]


def test_no_exam_unless_asked(tmp_path):
    assert run(tmp_path).exit_code == 0
    assert not (tmp_path / "out" / "exam.jsonl").exists()
    assert "exam" not in json.loads((tmp_path / "out" / "manifest.json").read_text())


def test_the_exam_asks_in_other_words_about_what_the_pairs_teach(tmp_path):
    result = run(tmp_path, exam={"size": 4})
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    items = read_jsonl(out / "exam.jsonl")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["declared_outputs"]["exam.jsonl"]["kind"] == "exam"
    assert manifest["exam"]["facts"] == 4 and 2 <= len(items) <= 4, manifest["exam"]
    questions = [q for row in read_jsonl(out / "conversations.messages.jsonl")
                 for role, q in turns_of(row) if role == "user"]
    near = TrainingQuestions(questions + [p["question"] for p in read_jsonl(out / "qa_pairs.jsonl")])
    for item in items:
        assert item["seen"] and item["taught_by"], item
        assert near.problem(item["question"]) is None, item["question"]


def test_held_out_facts_are_in_no_pair_or_conversation(tmp_path):
    result = run(tmp_path, exam={"size": 4, "unseen_share": 0.5})
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    held = [i for i in read_jsonl(out / "exam.jsonl") if not i["seen"]]
    assert held, read_jsonl(out / "exam.jsonl")
    texts = training_texts(out)
    for item in held:
        assert not any(normal(item["sentence"]) in text for text in texts), item
        assert normal(item["sentence"]) in normal(item["context"])  # the exam keeps the passage whole


def test_an_exam_a_shard_at_a_time_is_the_exam_of_one_pass(tmp_path):
    # The facts are chosen among every judged chunk: a shard at a time, every shard is judged
    # first and the facts chosen in passes over what was kept; a held-out fact's sentence is
    # cut from its chunk in whichever shard that is. The bytes of one pass over the corpus.
    for name, shard_bytes in (("sharded", 1), ("whole", 10_000_000)):
        result = run(tmp_path, name=name, exam={"size": 4, "unseen_share": 0.5}, shard_bytes=shard_bytes)
        assert result.exit_code == 0, result.error
    items = read_jsonl(tmp_path / "whole" / "exam.jsonl")
    assert {item["seen"] for item in items} == {True, False}, items
    for file in ("exam.jsonl", "qa_pairs.jsonl", "conversations.sharegpt.jsonl", "conversations.messages.jsonl",
                 "failures.jsonl"):
        assert (tmp_path / "sharded" / file).read_bytes() == (tmp_path / "whole" / file).read_bytes(), file
    manifests = [json.loads((tmp_path / name / "manifest.json").read_text()) for name in ("sharded", "whole")]
    assert manifests[0]["exam"] == manifests[1]["exam"] and manifests[0]["steps"] == manifests[1]["steps"]
