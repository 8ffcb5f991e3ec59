"""factual-qa end to end with the scripted backend: outputs, failures, determinism, resume."""

import json
import os
import sqlite3
from pathlib import Path

import pytest

from atk_core.testing import read_jsonl, run_cli, stderr_lines
from factual_fakes import respond, run, scripted

TESTS = Path(__file__).resolve().parent
DATASET_FILES = ("qa_pairs.jsonl", "conversations.sharegpt.jsonl",
                 "conversations.messages.jsonl", "failures.jsonl")


def test_full_pipeline_writes_both_chat_formats_and_every_failure(tmp_path):
    result = run(tmp_path)
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"

    pairs = read_jsonl(out / "qa_pairs.jsonl")
    assert pairs and all(set(p) == {"id", "question", "answer", "source", "start", "end", "chunk_id"}
                         for p in pairs)
    assert all("in winter" not in p["question"] for p in pairs)  # failed the vote
    sources = {p["source"] for p in pairs}
    assert sources == {"bees.md", "records.jsonl#L1", "report.pdf"}  # the page was judged unsuitable
    # Every answer kept is what its chunk says (the ungrounded one was asked again).
    assert [p["answer"] for p in pairs if p["source"] == "report.pdf"] == [
        "Lighthouse keepers wound the clockwork every night."]

    sharegpt = read_jsonl(out / "conversations.sharegpt.jsonl")
    messages = read_jsonl(out / "conversations.messages.jsonl")
    assert len(sharegpt) == len(messages) > 0
    for share, chat in zip(sharegpt, messages):
        turns = share["conversations"]
        assert [t["from"] for t in turns] == ["system"] + ["human", "gpt"] * ((len(turns) - 1) // 2)
        assert [m["role"] for m in chat["messages"]] == ["system"] + ["user", "assistant"] * ((len(turns) - 1) // 2)
        assert [t["value"] for t in turns] == [m["content"] for m in chat["messages"]]
        assert all(isinstance(t["value"], str) and t["value"] for t in turns)

    failures = {(f["sample_id"], f["step"]): f["reason"] for f in read_jsonl(out / "failures.jsonl")}
    assert failures[("scan.pdf", "read")] == "read: PDF has no text layer (scanned?)"
    assert failures[("picture.bin", "read")] == "read: unsupported file type .bin"
    assert failures[("latin1.txt", "read")].startswith("read: not UTF-8 text")
    assert {f["sample_id"]: f["reader"] for f in read_jsonl(out / "failures.jsonl") if f["step"] == "read"} == {
        "blank.txt": "text", "latin1.txt": "text", "picture.bin": None, "records.jsonl#L2": "jsonl",
        "records.jsonl#L3": "jsonl", "scan.pdf": "pdf"}
    manifest = json.loads((out / "manifest.json").read_text())
    # The page's footer ("Share this page") is not its article: where trafilatura reads web pages
    # (the manifest says so) it is never read, and the article's one sentence is too little
    # content; read as the page's visible text, the small model's vote judges it out.
    html = manifest["reading"]["readers"]["html"]["notes"]
    by_trafilatura = any(note.startswith("article by trafilatura") for note in html)
    judged = [r for (sid, step), r in failures.items() if step == "judge"]
    assert judged == ([] if by_trafilatura else ["judge: 0 of 2 votes passed, 2 of 3 needed"])
    never = [r for (sid, step), r in failures.items() if step == "generate"]
    assert never == ["generate: the answer is not valid JSON: Expecting value at line 1 column 1 (after 3 attempts)"]
    votes = [r for (sid, step), r in failures.items() if step == "check_question"]
    assert votes and all("0 of 2 votes passed, 2 of 3 needed" in r for r in votes)
    kinds = {(f["step"], f["kind"]) for f in read_jsonl(out / "failures.jsonl")}
    assert {("generate", "malformed answer"), ("check_question", "failed the vote"),
            ("read", "unsupported file type .bin")} <= kinds
    assert ("judge", "failed the vote") in kinds or by_trafilatura

    steps = {s["name"]: s for s in manifest["steps"]}
    assert [s["name"] for s in manifest["steps"]] == [
        "read", "chunk", "content", "judge", "generate", "deduplicate", "check_question",
        "check_answer", "conversation"]
    assert steps["read"]["in"] == 11 and steps["read"]["out"] == 5  # jsonl lines count one each
    assert steps["generate"]["dropped"] == {"malformed answer": 1}
    assert manifest["outputs"]["qa_pairs.jsonl"] == len(pairs)
    assert manifest["outputs"]["failures.jsonl"] == len(failures)
    assert manifest["pipeline"] == "factual-qa" and manifest["distribution"] == "atk-pipeline-factual"
    assert manifest["config_hash"].startswith("sha256:")
    assert set(manifest["models"]) == {"small", "large"}
    assert manifest["models"]["large"]["usage_total"]["completion_tokens"] > 0


def test_malformed_answer_is_retried_with_the_problem_in_the_prompt(tmp_path):
    calls = tmp_path / "calls.jsonl"
    result = run(tmp_path, models={"small": scripted(), "large": scripted(log=str(calls))})
    assert result.exit_code == 0, result.error
    asks = [json.loads(line)["messages"][-1]["content"] for line in calls.read_text().splitlines()]
    waggle = [text for text in asks if "Sentence: The waggle" in text]
    assert len(waggle) == 2
    assert "Your previous answer was rejected: the answer is not valid JSON" in waggle[1]
    # A gate's problem is shown the same way: the ungrounded answer was asked for again.
    lighthouse = [text for text in asks if "Sentence: Lighthouse" in text]
    assert len(lighthouse) == 2
    assert ("Your previous answer was rejected: the answer names Golden, Coast, which the passage"
            " does not; use only what the passage says.") in lighthouse[1]


def test_outputs_are_byte_identical_on_a_fresh_run_and_on_a_rerun(tmp_path):
    assert run(tmp_path, "first").exit_code == 0
    assert run(tmp_path, "second").exit_code == 0
    assert run(tmp_path, "first").exit_code == 0  # resume of a finished run
    for name in DATASET_FILES:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name


def test_resume_after_an_interrupted_run_repeats_no_call(tmp_path):
    logs = {name: tmp_path / f"{name}.jsonl" for name in ("clean", "first", "second")}

    def models(log, **small):
        return {"small": scripted(log=str(log), **small), "large": scripted(log=str(log))}

    assert run(tmp_path, "clean", models=models(logs["clean"])).exit_code == 0
    clean_calls = len(logs["clean"].read_text().splitlines())

    interrupted = run(tmp_path, "resumed",
                      models=models(logs["first"], faults=[{"kind": "fatal", "calls": [12]}]))
    assert interrupted.exit_code == 1 and "scripted: fatal failure" in interrupted.error
    assert not (tmp_path / "resumed" / "qa_pairs.jsonl").exists()  # nothing half-written
    with sqlite3.connect(tmp_path / "resumed" / "store.sqlite") as db:
        answered = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert 0 < answered < clean_calls

    assert run(tmp_path, "resumed", models=models(logs["second"])).exit_code == 0
    # Exactly the requests without a stored answer were sent again.
    assert len(logs["second"].read_text().splitlines()) == clean_calls - answered
    for name in DATASET_FILES:
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()


def test_answers_can_be_the_sentences_asked_about(tmp_path):
    calls = tmp_path / "calls.jsonl"
    models = {"small": scripted(), "large": scripted(log=str(calls))}
    result = run(tmp_path, models=models, answers="sentence", rewrite_conversations=False)
    assert result.exit_code == 0, result.error
    pairs = read_jsonl(tmp_path / "out" / "qa_pairs.jsonl")
    assert sorted((p["source"], p["answer"]) for p in pairs) == [
        ("bees.md", "The waggle dance tells other bees where flowers are."),
        ("bees.md", "Worker bees live about six weeks in summer."),
        ("never.txt", "UNANSWERABLE-FOREVER is written here, in a sentence nobody can turn into a"
                      " question."),
        ("records.jsonl#L1", "Honey holds less than twenty percent water."),
        ("report.pdf", "Lighthouse keepers wound the clockwork every night.")]
    # A question that only repeats its sentence is not a question about it: asked again.
    asks = [json.loads(line)["messages"][-1]["content"] for line in calls.read_text().splitlines()]
    waggle = [text for text in asks if "Sentence: The waggle" in text]
    assert len(waggle) == 2 and "the question already says most of the answer" in waggle[1]


def test_a_policy_per_model_check(tmp_path):
    """One check noted, one off, the third enforced (left out): the small model is asked for
    the judge and the answer check only, and the note counts what it rejected."""
    log = tmp_path / "small.jsonl"
    result = run(tmp_path, models={"small": scripted(log=str(log)), "large": scripted()},
                 verdicts={"judge": "note", "check_question": "skip"}, rewrite_conversations=False)
    assert result.exit_code == 0, result.error
    steps = [s["name"] for s in json.loads((tmp_path / "out" / "manifest.json").read_text())["steps"]]
    assert "check_question" not in steps and "judge" in steps and "check_answer" in steps
    asked = {json.loads(line)["messages"][0]["content"][:40] for line in log.read_text().splitlines()}
    assert asked and not any("check quiz questions" in text for text in asked)


def test_skip_flags_and_plain_conversations(tmp_path):
    log = tmp_path / "small.jsonl"
    result = run(tmp_path, models={"small": scripted(log=str(log)), "large": scripted()},
                 verdicts={"judge": "skip", "check_question": "skip", "check_answer": "skip"},
                 rewrite_conversations=False, pairs_per_conversation=2)
    assert result.exit_code == 0, result.error
    assert not log.exists()  # the small model was never asked
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [s["name"] for s in manifest["steps"]] == [
        "read", "chunk", "content", "generate", "deduplicate", "conversation"]
    sizes = [len(r["messages"]) for r in read_jsonl(tmp_path / "out" / "conversations.messages.jsonl")]
    # The system prompt and one or two pairs (bees.md has two sentences to ask about; no chunk
    # gives a conversation more than pairs_per_conversation).
    assert 1 + 2 * 2 in sizes and set(sizes) <= {1 + 2, 1 + 2 * 2}


def test_subset_is_deterministic(tmp_path):
    first = run(tmp_path, "a", use_subset=True, subset_size=2)
    second = run(tmp_path, "b", use_subset=True, subset_size=2)
    assert first.exit_code == second.exit_code == 0
    chunk_step = [s for s in json.loads((tmp_path / "a" / "manifest.json").read_text())["steps"]
                  if s["name"] == "chunk"][0]
    assert chunk_step["out"] == 2
    assert (tmp_path / "a" / "qa_pairs.jsonl").read_bytes() == (tmp_path / "b" / "qa_pairs.jsonl").read_bytes()


def test_no_readable_document_is_a_pipeline_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.bin").write_bytes(b"\x00\x01")
    result = run(tmp_path)
    assert result.exit_code == 1
    assert result.error.startswith(f"no readable documents in {tmp_path / 'in'} (1 file(s) skipped")


def config_file(tmp_path, **fields):
    fields.setdefault("models", {"small": {"backend": "scripted"}, "large": {"backend": "scripted"}})
    fields.setdefault("output_dir", str(tmp_path / "out"))
    lines = ["pipeline: factual-qa", "progress: [jsonl]"]
    lines += [f"{k}: {json.dumps(v)}" for k, v in fields.items()]
    path = tmp_path / "factual.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("fields, message", [
    ({}, "pipeline 'factual-qa' needs field 'input_dir'"),
    ({"input_dir": "/no/such/folder"}, "input_dir '/no/such/folder' does not exist"),
    ({"input_dir": "docs", "chunk_size": 10}, "chunk_size must be a whole number of at least 200, not 10"),
    ({"input_dir": "docs", "vote_threshold": 2}, "vote_threshold must be a number above 0 and at most 1, not 2"),
    ({"input_dir": "docs", "system_prompts": []}, "system_prompts must be a non-empty list of texts, not []"),
    ({"input_dir": "docs", "system_prompts": ["Be brief.", 3]}, "system_prompts must be a non-empty list of texts, not ['Be brief.', 3]"),
    ({"input_dir": "docs", "skip_judge": True}, "skip_judge is now part of verdicts: verdicts:"
                                                " {judge: skip} turns that check off"),
    ({"input_dir": "docs", "verdicts": {"judge": "sometimes"}},
     "verdicts.judge must be one of enforce, note, skip, not 'sometimes'"),
    ({"input_dir": "docs", "verdicts": {"jduge": "skip"}}, "verdicts: 'jduge' is not a step that gives verdicts"),
    ({"input_dir": "docs", "max_attempts": True}, "max_attempts must be a whole number of at least 1, not True"),
    ({"input_dir": "docs", "seed": "x"}, "seed must be a whole number, not 'x'"),
    ({"input_dir": "docs", "temperature": -3}, "temperature must be a number from 0 to 2, not -3"),
    ({"input_dir": "empty"}, "input_dir 'empty' is empty; put the documents to read there"),
    ({"input_dir": "docs", "output_dir": "docs/out"}, "output_dir 'docs/out' is inside input_dir 'docs'"),
    ({"input_dir": "docs", "models": {"large": {"backend": "scripted"}}},
     "models: has no 'small' role, which the judge, check_question, check_answer step(s) use"
     " (defined: large)"),
    ({"input_dir": "docs", "models": {"small": {"backend": "scripted"}}, "rewrite_conversations": False},
     "models: has no 'large' role, which the generate step(s) use (defined: small)"),
])
def test_config_errors_are_one_line_and_exit_2(tmp_path, fields, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("A document.")
    result = run_cli("run", config_file(tmp_path, **fields), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = stderr_lines(result)
    assert message in line and line.startswith("atk: error: ")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_small_is_not_needed_when_every_small_step_is_skipped(tmp_path):
    result = run(tmp_path, models={"large": scripted()}, verdicts="skip", rewrite_conversations=False)
    assert result.exit_code == 0, result.error


def test_sample_documents_run_through_the_cli(tmp_path):
    """`atk init --samples` then `atk run` on the scripted backend, as the quickstart does."""
    init = run_cli("init", "factual-qa", "--samples", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert sorted(os.listdir(tmp_path / "documents")) == [
        "gettysburg_address.txt", "honeybees.md", "lighthouses.html"]
    scripted = "{backend: scripted, respond: 'factual_fakes:respond'}"
    env = dict(os.environ, PYTHONPATH=str(TESTS))  # where factual_fakes is
    result = run_cli("run", "factual-qa.yaml", "--set", f"models.small={scripted}", "--set",
                     f"models.large={scripted}", "--set", "rewrite_conversations=false",
                     cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    sources = {p["source"] for p in read_jsonl(tmp_path / "output" / "qa_pairs.jsonl")}
    assert sources == {"gettysburg_address.txt", "honeybees.md", "lighthouses.html"}
    inspect = run_cli("inspect", tmp_path / "output", "-n", "1", cwd=tmp_path)
    assert inspect.returncode == 0
    assert "steps (in -> out, and what was dropped):" in inspect.stdout
    assert "1 of " in inspect.stdout and "system: " in inspect.stdout


def test_a_conversation_the_model_cannot_write_falls_back_to_the_pairs(tmp_path, caplog):
    def no_conversations(request):
        if "natural conversation" in request.messages[0]["content"]:
            return "not a conversation"
        return respond(request)

    models = {"small": scripted(), "large": scripted(respond=no_conversations)}
    result = run(tmp_path, "fallback", models=models)
    assert result.exit_code == 0, result.error
    conversations = read_jsonl(tmp_path / "fallback" / "conversations.messages.jsonl")
    pairs = read_jsonl(tmp_path / "fallback" / "qa_pairs.jsonl")
    turns = [m["content"] for c in conversations for m in c["messages"] if m["role"] != "system"]
    assert turns == [text for p in pairs for text in (p["question"], p["answer"])]
    step = [s for s in json.loads((tmp_path / "fallback" / "manifest.json").read_text())["steps"]
            if s["name"] == "conversation"][0]
    assert step["in"] == step["out"] == len(conversations)
    assert step["notes"] == {"built from the pairs as they are": len(conversations)}
    # Kept, but said: one warning with how many and why.
    warnings = [r.getMessage() for r in caplog.records if r.name == "atk" and r.levelname == "WARNING"]
    assert warnings == [
        f"factual-qa: {len(conversations)} of {len(conversations)} conversations were built from"
        " the checked pairs as they are, because the model's rewrite failed (most often:"
        " conversation: the answer is not valid JSON: Expecting value at line 1 column 1 (after 3 attempts)); set"
        " conversation_fallback: false to drop them instead"]

    strict = run(tmp_path, "strict", models=models, conversation_fallback=False)
    assert strict.exit_code == 1 and "no conversation survived" in strict.error
    dropped = [f for f in read_jsonl(tmp_path / "strict" / "failures.jsonl") if f["step"] == "conversation"]
    assert len(dropped) == len(conversations)


def test_the_bar_says_what_a_step_is_waiting_for_before_its_first_answer(tmp_path):
    """A newcomer saw "reading documents" for 13 minutes while the model's first answers were
    slow: each step says, before its first answer, which model it waits for."""
    result = run(tmp_path, verdicts="skip", rewrite_conversations=False)
    assert result.exit_code == 0, result.error
    messages = [json.loads(line).get("message") or "" for line in
                (tmp_path / "out" / "progress.jsonl").read_text().splitlines()]
    waiting = [m for m in messages if "waiting for the" in m]
    assert waiting and waiting[0].startswith("generate: 0/") and waiting[0].endswith(
        "waiting for the large model's first answers")
    assert messages.index(waiting[0]) < next(i for i, m in enumerate(messages) if m.startswith("generate: 1/"))
