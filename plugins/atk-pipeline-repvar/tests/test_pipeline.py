"""repvar end to end on the scripted backend: rows, sources, forms, typos, determinism, resume."""

import json
from pathlib import Path

from atk_core.testing import PipelinePromises, ScriptedPipeline, read_jsonl
from repvar_fakes import write_inputs

TESTS = Path(__file__).resolve().parent
OUTPUTS = ("pretraining.jsonl", "sources.jsonl", "failures.jsonl")
FORMS = ["essay", "json", "list", "logic_chain", "qa", "reverse_causality", "stream_of_thought", "xml"]
KIT = ScriptedPipeline("repvar", respond="repvar_fakes:respond", inputs=write_inputs,
                       helpers=TESTS, typo_variations=1)
run = KIT.run



def test_rows_are_chunks_facts_variations_and_typos_each_traced_to_its_source(tmp_path):
    result = run(tmp_path, dataset_context="From the test corpus.")
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    rows, sources = read_jsonl(out / "pretraining.jsonl"), read_jsonl(out / "sources.jsonl")
    assert len(rows) == len(sources) > 0 and all(set(r) == {"text"} for r in rows)
    assert all(r["text"].startswith("From the test corpus.\n\n") for r in rows)
    kinds = {}
    for row, source in zip(rows, sources):
        kinds.setdefault(source["source"], []).append(source["kind"])
        text = row["text"].split("\n\n", 1)[1]
        document = (tmp_path / "in" / source["source"]).read_text()
        if source["kind"] == "chunk":
            assert document[source["start"]:source["end"]] == text
    # tides: the chunk, its facts, 4 variations and one typo copy; nav.html was filtered out;
    # odd.txt's facts were all ungrounded, so it has no facts row but still its variations.
    assert kinds["tides.txt"] == ["chunk", "facts"] + ["variation"] * 4 + ["typos"]
    assert "nav.html" not in kinds
    assert kinds["odd.txt"][:2] == ["chunk", "variation"]
    forms = [s["form"] for s in sources if s["kind"] == "variation" and s["source"] == "tides.txt"]
    assert len(set(forms)) == 4 and set(forms) <= set(FORMS)  # all different while there are enough
    failures = read_jsonl(out / "failures.jsonl")
    assert {(f["step"], f["kind"]) for f in failures} >= {
        ("read", "unsupported file type .png"), ("filter", "failed the vote"),
        ("facts", "no grounded fact")}
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in manifest["steps"]] == [
        "read", "chunk", "content", "filter", "facts", "variation", "typos"]
    assert manifest["outputs"]["pretraining.jsonl"] == len(rows)


def test_a_copy_of_the_chunk_is_not_a_variation_and_is_asked_for_again(tmp_path):
    calls = tmp_path / "calls.jsonl"
    result = run(tmp_path, models=KIT.models(large={"log": str(calls)}),
                 forms=["essay"], variations=1)
    assert result.exit_code == 0, result.error
    essays = [json.loads(line)["messages"][-1]["content"] for line in calls.read_text().splitlines()]
    tides = [text for text in essays if "Tides are the regular" in text]
    assert len(tides) == 2 and "repeats the passage word for word" in tides[1]


def test_forms_and_typos_are_the_same_on_every_run_and_a_rerun_sends_nothing(tmp_path):
    KIT.assert_rerun_is_free(tmp_path, OUTPUTS)
    other = run(tmp_path, "c", seed=1)
    assert other.exit_code == 0
    forms = lambda name: [s["form"] for s in read_jsonl(tmp_path / name / "sources.jsonl")]  # noqa: E731
    assert forms("c") != forms("a")


def test_a_form_of_your_own_is_a_prompt_file_in_the_overrides(tmp_path):
    overrides = tmp_path / "mine" / "variations"
    overrides.mkdir(parents=True)
    (overrides / "haiku.yaml").write_text(
        "- role: system\n  content: You restate what a passage says, as short lines of verse.\n"
        "- role: user\n  content: |\n    \"\"\"\n    {chunk}\n    \"\"\"\n    {facts}{retry_note}\n")
    result = run(tmp_path, prompt_overrides=tmp_path / "mine", forms=["haiku"], variations=1)
    assert result.exit_code == 0, result.error
    forms = {s["form"] for s in read_jsonl(tmp_path / "out" / "sources.jsonl") if s["form"]}
    assert forms == {"haiku"}


class TestPromises(PipelinePromises):
    kit, outputs, fields = KIT, OUTPUTS, {}
    mistakes = [
        ({"variations": -1}, "variations must be a whole number of at least 0, not -1"),
        ({"typo_rate": 0}, "typo_rate must be a number above 0 and at most 1, not 0"),
        ({"forms": ["essay", "sonnet"]}, "forms: no variation prompt for sonnet"),
        ({"models": {"small": {"backend": "scripted"}}},
         "models: has no 'large' role, which the variation step(s) use"),
    ]
