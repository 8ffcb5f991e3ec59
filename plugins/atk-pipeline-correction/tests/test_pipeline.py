"""correction end to end on the scripted backend: the gates, both ways of making a wrong
answer, the model's check, the formats, resume."""

import json
from pathlib import Path

import pytest

from atk_core import grounding_problem
from atk_core.testing import PipelinePromises, ScriptedPipeline, read_jsonl, run_cli
from correction_fakes import write_inputs

TESTS = Path(__file__).resolve().parent
OUTPUTS = ("correction.segments.jsonl", "correction.messages.jsonl", "correction.preference.jsonl",
           "corrections.jsonl", "failures.jsonl")
KIT = ScriptedPipeline("correction", respond="correction_fakes:respond", inputs=write_inputs,
                       helpers=TESTS, questions_per_chunk=3)
run = KIT.run



def outputs(out):
    return (read_jsonl(out / "correction.segments.jsonl"), read_jsonl(out / "correction.messages.jsonl"),
            read_jsonl(out / "corrections.jsonl"))


def test_the_flawed_answer_is_context_and_only_the_correction_is_trained(tmp_path):
    result = run(tmp_path, verdicts="skip")
    assert result.exit_code == 0, result.error
    segments, messages, records = outputs(tmp_path / "out")
    assert len(segments) == len(messages) == len(records) == 6  # 7 sentences; one never gets a wrong answer
    for segment, chat, record in zip(segments, messages, records):
        roles = [m["role"] for m in chat["messages"]]
        assert roles == ["system", "user", "assistant", "user", "assistant"]
        system, question, flawed, follow_up, final = chat["messages"]
        assert (question["content"], flawed["content"], follow_up["content"]) == (
            record["question"], record["flawed_answer"], record["follow_up"])
        assert flawed["weight"] == 0 and final["weight"] == 1
        assert "weight" not in question and "weight" not in follow_up
        assert final["content"].endswith(" " + record["correction"])
        trained = [s["text"] for s in segment["segments"] if s["label"]]
        assert trained == [final["content"] + "<|im_end|>\n"]
        untrained = "".join(s["text"] for s in segment["segments"] if not s["label"])
        assert record["flawed_answer"] in untrained and record["flawed_answer"] not in trained[0]
        # traceable: the chunk in its file, and the sentence the sample is about in it
        text = (tmp_path / "in" / record["source"]).read_text()
        assert record["focus"] in text[record["start"]:record["end"]]
        # the wrong answer says something the document does not; the correction does not
        assert grounding_problem(record["flawed_answer"], text, threshold=1.0) is not None
        assert grounding_problem(record["correction"], text) is None


def test_each_sample_is_a_preference_pair_the_dpo_loaders_read(tmp_path):
    """The question (after the system prompt) with the correction chosen and the wrong answer
    rejected: TRL's conversational preference form, which Axolotl's chat_template.default DPO
    type reads too; the same ids as the conversations; declared as preference pairs."""
    datasets = pytest.importorskip("datasets")
    result = run(tmp_path, verdicts="skip")
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    pairs = read_jsonl(out / "correction.preference.jsonl")
    _, messages, records = outputs(out)
    assert len(pairs) == len(records) > 0
    for pair, chat, record in zip(pairs, messages, records):
        assert pair["id"] == chat["id"] == record["id"]
        assert [m["role"] for m in pair["prompt"]] == ["system", "user"]
        assert pair["prompt"][1]["content"] == record["question"]
        assert pair["chosen"] == [{"role": "assistant", "content": record["correction"]}]
        assert pair["rejected"] == [{"role": "assistant", "content": record["flawed_answer"]}]
    loaded = datasets.load_dataset("json", data_files=str(out / "correction.preference.jsonl"),
                                   split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert {"prompt", "chosen", "rejected"} <= set(loaded.column_names)
    assert all(row["prompt"] and row["chosen"] and row["rejected"] for row in loaded)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["declared_outputs"]["correction.preference.jsonl"]["kind"] == "preference"
    assert manifest["primary_output"] == "correction.messages.jsonl"
    # atk inspect says each output's kind, and shows a preference pair as its turns
    shown = run_cli("inspect", out, "--file", "correction.preference.jsonl", "-n", "1")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.split()[:4] == ["correction.preference.jsonl", str(len(pairs)), "records", "preference"]
               for line in lines), lines
    assert any(line.split()[:2] == ["correction.messages.jsonl", str(len(pairs))]
               and line.endswith("SFT conversations (messages), primary") for line in lines), lines
    assert any(line.startswith("chosen assistant: ") for line in lines)
    assert any(line.startswith("rejected assistant: ") for line in lines)


def test_a_wrong_answer_that_is_right_is_asked_again_then_dropped(tmp_path):
    calls = tmp_path / "calls.jsonl"
    result = run(tmp_path, models=KIT.models(large={"log": str(calls)}),
                 verdicts="skip")
    assert result.exit_code == 0, result.error
    asks = [json.loads(line)["messages"][-1]["content"] for line in calls.read_text().splitlines()]
    retried = [text for text in asks if "rejected" in text]
    assert any("Bees" in text and "get one detail wrong" in text for text in retried)
    assert any("Worker" in text and "the follow-up repeats an answer" in text for text in retried)
    records = read_jsonl(tmp_path / "out" / "corrections.jsonl")
    assert any(r["focus"].startswith("Bees") for r in records)  # right the second time
    failures = read_jsonl(tmp_path / "out" / "failures.jsonl")
    assert [(f["step"], f["kind"]) for f in failures] == [("generate", "flawed answer is the correction")]
    assert "after 3 attempts" in failures[0]["reason"]


def test_flaws_altered_by_code_change_one_detail_by_the_seed(tmp_path):
    result = run(tmp_path, flaws="altered", answers="sentence", verdicts="skip")
    assert result.exit_code == 0, result.error
    records = read_jsonl(tmp_path / "out" / "corrections.jsonl")
    follow_ups = (TESTS.parent / "atk_pipeline_correction" / "prompts" / "follow_ups.txt").read_text()
    for record in records:
        assert record["correction"] == record["focus"]
        assert record["follow_up"] in follow_ups.splitlines()
        kind, change = record["flaw"].split(" ", 1)
        assert kind in ("number", "name", "negated")
        assert record["flawed_answer"] != record["correction"]
        changed = [(a, b) for a, b in zip(record["correction"].split(), record["flawed_answer"].split())
                   if a != b]
        assert len(changed) == 1 or kind == "negated", record  # one detail
    flaws = {r["focus"]: r["flaw"] for r in records}
    assert flaws["Most coasts have two high tides in about 25 hours."].startswith("number two ->") or \
        flaws["Most coasts have two high tides in about 25 hours."].startswith("number 25 ->")
    assert flaws["Tides are caused mainly by the pull of the Moon on the oceans."] == "negated 'are'"
    assert flaws["Worker bees in Europe make honey from the nectar of flowers."] == "name Europe -> Moon"
    # A sentence with nothing to change is dropped, and says why.
    failures = read_jsonl(tmp_path / "out" / "failures.jsonl")
    assert [(f["step"], f["kind"]) for f in failures] == [("alter", "nothing to alter")] * len(failures)
    assert len(failures) == 7 - len(records) >= 1
    # The same seed gives the same flaws; another seed may pick others, never breaks them.
    assert run(tmp_path, "again", flaws="altered", answers="sentence", verdicts="skip").exit_code == 0
    assert (tmp_path / "again" / "corrections.jsonl").read_bytes() == \
        (tmp_path / "out" / "corrections.jsonl").read_bytes()


def test_the_small_models_check_is_enforced_or_noted(tmp_path):
    assert run(tmp_path, "enforced", verdicts="enforce", check_votes=1).exit_code == 0
    records = read_jsonl(tmp_path / "enforced" / "corrections.jsonl")
    assert records and not any(r["focus"].startswith("Kneading") for r in records)
    failures = read_jsonl(tmp_path / "enforced" / "failures.jsonl")
    assert [f["kind"] for f in failures if f["step"] == "check"] == ["failed the vote"]
    assert run(tmp_path, "noted", verdicts="note", check_votes=1).exit_code == 0
    noted = read_jsonl(tmp_path / "noted" / "corrections.jsonl")
    assert len(noted) == len(records) + 1
    manifest = json.loads((tmp_path / "noted" / "manifest.json").read_text())
    notes = {s["name"]: s.get("notes", {}) for s in manifest["steps"]}["check"]
    assert notes == {"correction not confirmed by the model, kept": 1}


def test_follow_ups_and_acknowledgements_come_from_the_prompt_files(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "follow_ups.txt").write_text("Hm, is that so?\n")
    (mine / "acknowledgements.txt").write_text("\nOops, I was wrong.\n\n")
    result = run(tmp_path, flaws="altered", verdicts="skip", prompt_overrides=str(mine))
    assert result.exit_code == 0, result.error
    for chat in read_jsonl(tmp_path / "out" / "correction.messages.jsonl"):
        assert chat["messages"][3]["content"] == "Hm, is that so?"
        assert chat["messages"][4]["content"].startswith("Oops, I was wrong. ")
    (mine / "follow_ups.txt").write_text("\n\n")
    result = run(tmp_path, "empty", flaws="altered", verdicts="skip", prompt_overrides=str(mine))
    assert result.exit_code != 0 and "follow_ups.txt has no line to pick from" in result.error
    assert not (tmp_path / "empty" / "corrections.jsonl").exists()


def test_the_messages_weigh_only_the_assistants_turns(tmp_path):
    datasets = pytest.importorskip("datasets")
    assert run(tmp_path, verdicts="skip").exit_code == 0
    loaded = datasets.load_dataset("json", data_files=str(tmp_path / "out" / "correction.messages.jsonl"),
                                   split="train", cache_dir=str(tmp_path / "hf-cache"))
    # OpenAI's format: only the assistant messages carry a weight.
    assert [m.get("weight") for m in loaded[0]["messages"]] == [None, None, 0, None, 1]


class TestPromises(PipelinePromises):
    kit, outputs, fields = KIT, OUTPUTS, {}
    mistakes = [
        ({"flaws": "subtle"}, "flaws must be one of 'written', 'altered'"),
        ({"answers": "quoted"}, "answers must be one of 'written', 'sentence'"),
        ({"check_votes": 0}, "check_votes must be a whole number of at least 1, not 0"),
        ({"gates": {"question_max_words": "many"}},
         "gates.question_max_words must be a whole number"),
        ({"models": {"large": {"backend": "scripted"}}},
         "models: has no 'small' role, which the filter, check step(s) use"),
    ]
