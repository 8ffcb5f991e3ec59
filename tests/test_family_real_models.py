"""The pipeline family as a user gets it: each pipeline installed from its wheel into a fresh
venv, run with its own config template on documents no part of atk was written for
(``unseen_documents/``), through the openai backend against llama.cpp's own server and on
the embedded model. Its outputs must be valid in every format it names, load with
Hugging Face ``datasets``, explain every dropped sample, and a re-run must send nothing
and change no byte.

Slow next to the scripted tests (a real model writes everything): a few minutes in all.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from atk_core import grounding_problem, placeholder_problem, question_problem
from atk_core.testing import kill_midway, read_jsonl, venv_cli
from llama_server import MODEL_ALIAS

UNSEEN = Path(__file__).resolve().parent / "unseen_documents"
PIPELINES = ("repvar", "rag-data", "correction")


def check_repvar(out: Path):
    rows, sources = read_jsonl(out / "pretraining.jsonl"), read_jsonl(out / "sources.jsonl")
    assert rows and len(rows) == len(sources)
    assert all(set(row) == {"text"} and row["text"].strip() for row in rows)
    for row, source in zip(rows, sources):
        document = (UNSEEN / source["source"]).read_text()
        if source["kind"] == "chunk":
            assert document[source["start"]:source["end"]] == row["text"]
        else:
            assert source["kind"] in ("facts", "variation", "typos")
    assert {s["kind"] for s in sources} > {"chunk"}, "no restatement survived"
    for source, row in zip(sources, rows):
        if source["kind"] == "variation":
            assert placeholder_problem(row["text"]) is None, row["text"]


def check_rag(out: Path):
    messages, segments = read_jsonl(out / "rag.messages.jsonl"), read_jsonl(out / "rag.segments.jsonl")
    sharegpt, retrieval = read_jsonl(out / "rag.sharegpt.jsonl"), read_jsonl(out / "retrieval.jsonl")
    assert messages and len(messages) == len(segments) == len(sharegpt) == len(retrieval)
    for chat, segment, share, sample in zip(messages, segments, sharegpt, retrieval):
        system, question, answer = chat["messages"]
        assert [system["role"], question["role"], answer["role"]] == ["system", "user", "assistant"]
        assert [t["from"] for t in share["conversations"]] == ["system", "human", "gpt"]
        assert system["content"].count("Document ") == len(sample["context"]) >= 1
        assert [s["text"] for s in segment["segments"] if s["label"]] == [answer["content"] + "<|im_end|>\n"]
        assert question_problem(question["content"]) is None, question["content"]
        for given in sample["context"]:
            assert given["source"] in {p.name for p in UNSEEN.iterdir()}
            # a distractor is a search hit for the question, with its BM25 score
            assert given["is_source"] or given["score"] > 0
        if not sample["failure"]:
            source = next(c for c in sample["context"] if c["is_source"])
            chunk = (UNSEEN / source["source"]).read_text()[source["start"]:source["end"]]
            assert grounding_problem(answer["content"], chunk) is None, answer["content"]


def check_correction(out: Path):
    messages, segments = (read_jsonl(out / "correction.messages.jsonl"),
                          read_jsonl(out / "correction.segments.jsonl"))
    records = read_jsonl(out / "corrections.jsonl")
    assert records and len(records) == len(messages) == len(segments)
    for chat, segment, record in zip(messages, segments, records):
        assert [m["role"] for m in chat["messages"]] == ["system", "user", "assistant", "user", "assistant"]
        flawed, final = chat["messages"][2], chat["messages"][4]
        assert (flawed["weight"], final["weight"]) == (0, 1)
        assert flawed["content"] == record["flawed_answer"] != record["correction"]
        trained = [s["text"] for s in segment["segments"] if s["label"]]
        assert trained == [final["content"] + "<|im_end|>\n"]  # the flawed answer is not trained
        document = (UNSEEN / record["source"]).read_text()
        assert grounding_problem(record["correction"], document[record["start"]:record["end"]]) is None


CHECKS = {"repvar": check_repvar, "rag-data": check_rag, "correction": check_correction}
# The templates' settings, but fewer restatements (a restatement is long to write), failure
# samples for sure, and more chances per chunk: the 135M model writes few real questions
# about documents it has never seen (most answers are statements or not about the text).
SETTINGS = {"repvar": ["variations=2"],
            "rag-data": ["failure_share=0.5", "questions_per_chunk=6", "max_attempts=4"],
            "correction": ["questions_per_chunk=6", "max_attempts=4"]}


@pytest.mark.parametrize("where", ["llama.cpp server", "embedded model"])
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_a_pipeline_from_its_wheel_on_unseen_documents(pipeline, where, installed_python, tmp_path,
                                                       request):
    atk = venv_cli(installed_python, cwd=tmp_path)
    atk("init", pipeline)
    shutil.copytree(UNSEEN, tmp_path / "documents")
    settings = [f"--set={field}" for field in SETTINGS[pipeline]]
    if where == "llama.cpp server":
        base_url = request.getfixturevalue("llama_server")
        role = (f"{{backend: openai, base_url: '{base_url}', model: {MODEL_ALIAS},"
                " structured_output: json_object, concurrency: 1, timeout: 600}")
        settings += [f"--set=models.small={role}", f"--set=models.large={role}"]
    run = ("run", f"{pipeline}.yaml", *settings, "--progress", "jsonl")
    atk(*run, timeout=1800)
    out = tmp_path / "output"
    CHECKS[pipeline](out)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["large"]["requests_sent"] > 0
    failures = read_jsonl(out / "failures.jsonl")
    assert len(failures) == sum(sum(s["dropped"].values()) for s in manifest["steps"])
    assert all(f["kind"] and f["reason"] for f in failures)
    files = sorted(p.name for p in out.glob("*.jsonl") if p.name != "progress.jsonl")
    datasets = pytest.importorskip("datasets")
    for name in files:
        if name != "failures.jsonl" or failures:
            loaded = datasets.load_dataset("json", data_files=str(out / name), split="train")
            assert len(loaded) == len(read_jsonl(out / name)), name

    # Again: up to date, nothing runs; forced (--again), every answer comes from the store,
    # and every output is the same bytes.
    before = {name: (out / name).read_bytes() for name in files}
    assert "is up to date" in atk(*run, timeout=600).stderr
    atk(*run, "--again", timeout=600)
    again = json.loads((out / "manifest.json").read_text())
    assert {role: m["requests_sent"] for role, m in again["models"].items()} == \
        {role: 0 for role in again["models"]}
    assert {name: (out / name).read_bytes() for name in files} == before


# -- domain-expert: the four as parts, over two folders ----------------------------------------------

UNSEEN_MORE = Path(__file__).resolve().parent / "unseen_more"
AXOLOTL = json.loads((Path(__file__).resolve().parents[1] / "plugins" / "atk-pipeline-expert" / "tests"
                      / "axolotl_schema.json").read_text())
EXPERT_SETTINGS = ["input_dirs=[docs/first, docs/second]", "max_attempts=4", "parts.repvar.variations=1",
                   "parts.rag-data.questions_per_chunk=6", "parts.rag-data.failure_share=0.5",
                   "parts.correction.questions_per_chunk=6", "parts.factual-qa.questions_per_chunk=6"]


def test_domain_expert_from_its_wheel_on_two_unseen_folders(installed_python, tmp_path, llama_server):
    atk = venv_cli(installed_python, cwd=tmp_path)
    atk("init", "domain-expert")
    shutil.copytree(UNSEEN, tmp_path / "docs" / "first")
    shutil.copytree(UNSEEN_MORE, tmp_path / "docs" / "second")
    folders = {"first": {p.name for p in UNSEEN.iterdir()}, "second": {p.name for p in UNSEEN_MORE.iterdir()}}
    role = (f"{{backend: openai, base_url: '{llama_server}', model: {MODEL_ALIAS},"
            " structured_output: json_object, concurrency: 1, timeout: 600}")
    settings = [f"--set={s}" for s in EXPERT_SETTINGS]
    settings += [f"--set=models.small={role}", f"--set=models.large={role}"]
    run = ("run", "domain-expert.yaml", *settings, "--progress", "jsonl")
    atk(*run, timeout=3600)
    out = tmp_path / "output"
    manifest = json.loads((out / "manifest.json").read_text())

    # Each folder's parts read that folder's documents only, and every record of the mix and
    # of the pretraining text is a line of the same folder's part.
    for part in manifest["parts"]:
        folder = Path(part["folder"]).name
        place = out / part["output_dir"]
        named = set()
        for name in ("sources.jsonl", "qa_pairs.jsonl", "corrections.jsonl", "retrieval.jsonl"):
            if (place / name).exists():
                for row in read_jsonl(place / name):
                    named |= {row["source"]} | {c["source"] for c in row.get("context", [])}
        assert named and named <= folders[folder], (part["pipeline"], folder, named)
    for name in ("pretraining/repvar", "sft/mix", "preference/pairs"):
        rows, origins = read_jsonl(out / f"{name}.jsonl"), read_jsonl(out / f"{name}.sources.jsonl")
        assert rows and len(rows) == len(origins), name
        for origin in origins:
            assert origin["part_output"].split("/")[2].endswith("-" + Path(origin["folder"]).name)
            assert read_jsonl(out / origin["part_output"])[origin["line"] - 1]
    assert {Path(o["folder"]).name for o in read_jsonl(out / "sft/mix.sources.jsonl")} == set(folders)

    # The mix holds each source to its share, within the bound the manifest states.
    for source, entry in manifest["mix"].items():
        assert abs(entry["share"] - entry["target_share"]) <= entry["bound"] + 1e-6, (source, entry)
    mixed = sum(manifest["tokens"]["mix"].values())
    assert manifest["tokens"]["files"]["sft/mix.jsonl"] == mixed > 0

    # The Axolotl configs: Axolotl's own keys, naming files that are there, of the right type.
    for stage in ("pretrain", "sft"):
        config = yaml.safe_load((out / "axolotl" / f"{stage}.yaml").read_text())
        assert set(config) <= set(AXOLOTL["top_level"]) and "sequence_len" in config
        for entry in config["datasets"]:
            assert set(entry) <= set(AXOLOTL["dataset"])
            rows = read_jsonl(out / entry["path"])
            if entry["type"] == "completion":
                assert all(set(row) == {"text"} for row in rows)
            else:
                assert entry["type"] == "chat_template"
                assert all(isinstance(m["training"], bool) for row in rows for m in row["messages"])

    # Again: nothing is sent, no byte changes.
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()
                   and p.suffix in (".jsonl", ".yaml") and p.name not in ("progress.jsonl", "config.resolved.yaml"))
    before = {p: (out / p).read_bytes() for p in files}
    assert "is up to date" in atk(*run, timeout=600).stderr
    atk(*run, "--again", timeout=600)
    again = json.loads((out / "manifest.json").read_text())
    assert {role: m["requests_sent"] for role, m in again["models"].items()} == {"small": 0, "large": 0}
    assert {p: (out / p).read_bytes() for p in files} == before



EXPERT_FAKES = Path(__file__).resolve().parents[1] / "plugins" / "atk-pipeline-expert" / "tests"


def test_domain_expert_killed_halfway_from_its_wheel_resumes_to_the_same_bytes(installed_python, tmp_path):
    """The same two unseen folders through a local OpenAI-compatible server that answers like
    a model, the same way every time (a real model need not: a request re-sent after a kill
    may get another answer, so byte-identical outputs after a kill are atk's promise only
    where the model keeps its own). Killed with SIGKILL halfway into a new folder, then run
    again: the same bytes as the uninterrupted run, and only what was in flight asked again."""
    import sys
    from types import SimpleNamespace

    from atk_core.testing import FakeOpenAIServer

    sys.path.insert(0, str(EXPERT_FAKES))
    try:
        from expert_fakes import respond
    finally:
        sys.path.remove(str(EXPERT_FAKES))

    def answer(text, payload):
        return respond(SimpleNamespace(messages=payload["messages"]))

    atk = venv_cli(installed_python, cwd=tmp_path)
    atk("init", "domain-expert")
    shutil.copytree(UNSEEN, tmp_path / "docs" / "first")
    shutil.copytree(UNSEEN_MORE, tmp_path / "docs" / "second")
    settings = [f"--set={s}" for s in EXPERT_SETTINGS] + ["--progress", "jsonl"]

    def roles(server):
        role = (f"{{backend: openai, base_url: '{server.url}', model: fake, concurrency: 2,"
                " retry_base_delay: 0.01}")
        return [f"--set=models.small={role}", f"--set=models.large={role}"]

    with FakeOpenAIServer(answer=answer, delay=0.02) as server:
        atk("run", "domain-expert.yaml", *settings, *roles(server), timeout=900)
        sent = len(server.requests)
    out = tmp_path / "output"
    events = len((out / "progress.jsonl").read_text().splitlines())
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()
                   and p.suffix in (".jsonl", ".yaml")
                   and p.name not in ("progress.jsonl", "config.resolved.yaml"))
    assert any(p.name == "mix.jsonl" for p in files) and len(files) > 20
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ATK_LOAD_PLUGINS")}
    resumed = tmp_path / "resumed"
    with FakeOpenAIServer(answer=answer, delay=0.02) as server:
        kill_midway(tmp_path / "domain-expert.yaml", log=resumed / "progress.jsonl", calls=events // 2,
                    args=(*settings, *roles(server), "--set=output_dir=resumed"), env=env,
                    cwd=tmp_path, python=installed_python, timeout=900)
        assert not (resumed / "sft" / "mix.jsonl").exists()
        assert 0 < len(server.requests) < sent  # killed before the end
        atk("run", "domain-expert.yaml", *settings, *roles(server), "--set=output_dir=resumed", timeout=900)
        # Asked again: at most the requests in flight at the kill (2 roles x 2), answered or not.
        assert len(server.answered_twice()) <= len(server.requests) - sent <= 4
    for path in files:
        assert (resumed / path).read_bytes() == (out / path).read_bytes(), path
