"""rag-data end to end on the scripted backend: retrieval, failure samples, formats, resume."""

import json
from pathlib import Path

from atk_core import content_words
from atk_core.testing import PipelinePromises, ScriptedPipeline, read_jsonl
from rag_fakes import write_inputs

TESTS = Path(__file__).resolve().parent
OUTPUTS = ("rag.sharegpt.jsonl", "rag.messages.jsonl", "rag.segments.jsonl", "retrieval.jsonl",
           "failures.jsonl")
KIT = ScriptedPipeline("rag-data", respond="rag_fakes:respond", inputs=write_inputs, helpers=TESTS)
run = KIT.run



def test_context_comes_from_retrieval_and_records_what_was_given(tmp_path):
    result = run(tmp_path, max_chunks=3, failure_share=0.5)
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    retrieval = read_jsonl(out / "retrieval.jsonl")
    assert len(retrieval) == 6
    failures = [r for r in retrieval if r["failure"]]
    assert 0 < len(failures) < len(retrieval)  # about half, by the seed
    for sample in retrieval:
        given = sample["context"]
        assert 1 <= len(given) <= 3
        sources = [c for c in given if c["is_source"]]
        assert sources == ([] if sample["failure"] else [c for c in given if c["chunk_id"] == sample["source_chunk"]])
        question = set(content_words(sample["question"]))
        for chunk in given:
            if chunk["is_source"]:
                continue
            # A distractor is a search hit: it shares words with the question, and has a score.
            text = (tmp_path / "in" / chunk["source"]).read_text()
            assert question & set(content_words(text)) and chunk["score"] > 0
    # Distractors are related, not random: a question about tides gets the other tides text.
    tides = [r for r in retrieval if r["source"] == "tides-1.txt"]
    assert tides and any(c["source"] == "tides-2.txt" for r in tides for c in r["context"]
                         if not c["is_source"])


def test_the_conversations_in_three_formats_and_only_the_answer_trained(tmp_path):
    assert run(tmp_path, failure_share=0.5).exit_code == 0
    out = tmp_path / "out"
    messages = read_jsonl(out / "rag.messages.jsonl")
    sharegpt = read_jsonl(out / "rag.sharegpt.jsonl")
    segments = read_jsonl(out / "rag.segments.jsonl")
    retrieval = read_jsonl(out / "retrieval.jsonl")
    assert len(messages) == len(sharegpt) == len(segments) == len(retrieval)
    for chat, share, segment, sample in zip(messages, sharegpt, segments, retrieval):
        system, user, answer = chat["messages"]
        assert [m["role"] for m in chat["messages"]] == ["system", "user", "assistant"]
        assert system["content"].count("Document ") == len(sample["context"])
        assert [t["from"] for t in share["conversations"]] == ["system", "human", "gpt"]
        trained = [s["text"] for s in segment["segments"] if s["label"]]
        assert trained == [answer["content"] + "<|im_end|>\n"]
        assert "".join(s["text"] for s in segment["segments"]).count("<|im_start|>") == 3
        if sample["failure"]:
            assert "do not say" in answer["content"]


def test_a_reply_that_does_not_refuse_is_asked_for_again(tmp_path):
    calls = tmp_path / "calls.jsonl"
    result = run(tmp_path, models=KIT.models(large={"log": str(calls)}),
                 failure_share=1.0, refusals="written")
    assert result.exit_code == 0, result.error
    asks = [json.loads(line)["messages"] for line in calls.read_text().splitlines()]
    refusals = [m[-1]["content"] for m in asks if "do not hold the answer" in m[0]["content"]]
    retried = [text for text in refusals if "rejected" in text]
    assert retried and all("say so plainly" in text for text in retried)
    chats = read_jsonl(tmp_path / "out" / "rag.messages.jsonl")
    samples = read_jsonl(tmp_path / "out" / "retrieval.jsonl")
    refused = [c["messages"][-1]["content"] for c, s in zip(chats, samples) if s["failure"]]
    assert refused and all("do not say" in answer for answer in refused)
    # A question whose search finds no other chunk cannot be a failure sample: it keeps its source.
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    kept = len(samples) - len(refused)
    notes = {s["name"]: s.get("notes", {}) for s in manifest["steps"]}["retrieve"]
    assert notes.get("no other chunk to retrieve: kept its source", 0) == kept


def test_a_failure_sample_is_never_given_another_document_that_holds_the_answer(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The Thames Barrier opened in 1984 near Woolwich in east London.\n")
    (docs / "b.txt").write_text("The Thames Barrier opened in 1984, near Woolwich in London.\n")
    (docs / "c.txt").write_text("The Thames Barrier has ten steel gates across the river Thames.\n")
    result = run(tmp_path, input_dir=str(docs), failure_share=1.0, max_chunks=3, refusals="fixed",
                 gates={"near_duplicates": False})
    assert result.exit_code == 0, result.error
    by_source = {r["source"]: r for r in read_jsonl(tmp_path / "out" / "retrieval.jsonl")}
    # a and b say the same; c does not say when it opened: a's failure sample gets only c
    given = {name: [c["source"] for c in sample["context"]] for name, sample in by_source.items()}
    assert by_source["a.txt"]["failure"] and given["a.txt"] == ["c.txt"]
    assert given["b.txt"] == ["c.txt"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    notes = {s["name"]: s.get("notes", {}) for s in manifest["steps"]}["retrieve"]
    assert notes["a hit that holds the answer left out of a failure sample"] == 2


def test_a_refusal_may_begin_as_its_sentence_does():
    from atk_pipeline_rag.pipeline import _refusal_gate

    sample = {"question": "When did the Thames Barrier open?",
              "focus": "However, the Thames Barrier opened late, in 1984."}
    assert _refusal_gate({"answer": "However, the documents do not say when."}, sample) is None
    assert _refusal_gate({"answer": "It does not say; it opened in 1984."}, sample).kind == \
        "answers from memory"


class TestPromises(PipelinePromises):
    kit, outputs, fields = KIT, OUTPUTS, {"refusals": "written", "failure_share": 0.5}
    mistakes = [
        ({"max_chunks": 0}, "max_chunks must be a whole number of at least 1, not 0"),
        ({"failure_share": 1.5}, "failure_share must be a number from 0 to 1, not 1.5"),
        ({"refusals": "polite"}, "refusals must be one of 'written', 'fixed'"),
        ({"gates": {"grounding_threshold": 2}},
         "gates.grounding_threshold must be a number from 0 to 1, not 2"),
        ({"models": {"small": {"backend": "scripted"}}},
         "models: has no 'large' role, which the generate, refuse step(s) use"),
    ]
