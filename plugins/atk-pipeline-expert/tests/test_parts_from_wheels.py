"""Any pipeline that declares what it writes can be a part of domain-expert, installed from
wheels as users install it: a glossary pipeline written here from the docs alone, and one
made with `atk new pipeline`, join the mix beside the four with the shares asked for; a
pipeline that writes only plain records is refused as a part in one line; `atk export`
writes a config per declared output."""

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from atk_core.testing import build_wheel, make_venv, read_jsonl, run_cli, venv_cli
from expert_fakes import write_inputs

TESTS = Path(__file__).resolve().parent
PARTS = ("atk-core", "atk-pipeline-expert", "atk-pipeline-factual", "atk-pipeline-rag",
         "atk-pipeline-correction", "atk-pipeline-repvar")

# A third party's package: only atk_core's public names, as docs/writing-a-pipeline.md shows.
GLOSSARY = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "atk-pipeline-glossary"
        version = "0.1.0"
        dependencies = ["atk-core"]

        [project.entry-points.atk]
        glossary = "atk_pipeline_glossary"

        [tool.setuptools.packages.find]
        include = ["atk_pipeline_glossary*"]

        [tool.setuptools.package-data]
        atk_pipeline_glossary = ["config.yaml", "prompts/*"]
        """,
    "atk_pipeline_glossary/__init__.py": '''
        from pathlib import Path

        from atk_core import (Conversation, Output, Pipeline, PipelineStep, RunRecord, chunk_folder,
                              hookimpl, write_conversations, write_records)

        GLOSSARY = (Output("glossary.messages.jsonl", "sft", "messages", primary=True,
                           description="What does TERM mean? and its definition"),)
        COUNTS = (Output("counts.jsonl", "records", primary=True, description="words per chunk"),)
        SCHEMA = {"type": "object", "required": ["term", "definition"],
                  "properties": {"term": {"type": "string"}, "definition": {"type": "string"}}}


        async def glossary(*, input_dir, output_dir, chunk_size: int = 2000, task_id=None, **kwargs):
            record = RunRecord()
            chunks = chunk_folder(input_dir, record, chunk_size=chunk_size)
            samples = [{"id": c.id, "passage": c.text} for c in chunks]
            step = PipelineStep(name="define", prompt="define", model="large", json_schema=SCHEMA)
            conversations = [
                Conversation(sample["id"], [
                    {"role": "user", "content": f"What does {result.value['term']} mean?"},
                    {"role": "assistant", "content": result.value["definition"]}])
                for sample, result in record.step("define", samples, await step.run(samples))]
            write_conversations(output_dir, conversations, GLOSSARY, record)
            record.write(output_dir)


        def word_counts(*, input_dir, output_dir, task_id=None, **kwargs):
            record = RunRecord()
            chunks = chunk_folder(input_dir, record, chunk_size=2000)
            rows = [{"id": c.id, "words": len(c.text.split())} for c in chunks]
            write_records(output_dir, rows, COUNTS[0], record)
            record.write(output_dir)


        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="glossary", function=glossary, outputs=GLOSSARY,
                              description="A term of each chunk and its definition"))
            register(Pipeline(name="word-counts", function=word_counts, outputs=COUNTS,
                              description="How many words each chunk has"))
        ''',
    "atk_pipeline_glossary/config.yaml": """
        pipeline: glossary
        input_dir: ./documents
        output_dir: ./output
        models:
          large: {backend: llamacpp}
        """,
    "atk_pipeline_glossary/prompts/define.yaml": """
        - role: system
          content: You keep a glossary. Name one term the passage uses and define it from the passage.
        - role: user
          content: "Passage:\\n\\n{passage}"
        """,
}

SHARES = {"factual-qa": 0.3, "rag-data": 0.2, "correction": 0.2, "glossary": 0.15, "doc-summary": 0.15}


@pytest.fixture(scope="module")
def python(atk_wheels, tmp_path_factory):
    """A fresh venv with atk-core, domain-expert and its four parts, the glossary package and
    a scaffolded pipeline, every one from its wheel."""
    root = tmp_path_factory.mktemp("parts")
    source = root / "atk-pipeline-glossary"
    for name, text in GLOSSARY.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    made = run_cli("new", "pipeline", "doc-summary", "--dir", root / "src")
    assert made.returncode == 0, made.stderr
    wheels = [atk_wheels[name] for name in PARTS]
    wheels += [build_wheel(source, root / "dist"), build_wheel(root / "src" / "atk-pipeline-doc-summary", root / "dist")]
    return make_venv(root / "venv", wheels)


def expert_config(atk, work: Path, parts, mix) -> None:
    """domain-expert's own template, with these parts and shares, on the scripted model."""
    atk("init", "domain-expert")
    config = yaml.safe_load((work / "domain-expert.yaml").read_text())
    write_inputs(work / "documents")
    role = {"backend": "scripted", "respond": "third_party_fakes:respond"}
    config.update(parts=parts, mix=mix, models={"small": role, "large": role})
    (work / "domain-expert.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_declared_outputs_are_listed(python, tmp_path):
    atk = venv_cli(python, cwd=tmp_path, helpers=TESTS)
    listed = {p["name"]: p for p in json.loads(atk("list", "pipelines", "--json").stdout)}
    assert listed["glossary"]["outputs"] == [{"file": "glossary.messages.jsonl", "kind": "sft",
                                              "format": "messages", "primary": True,
                                              "description": "What does TERM mean? and its definition"}]
    assert [o["kind"] for o in listed["doc-summary"]["outputs"]] == ["sft", "records"]
    assert {o["kind"] for o in listed["correction"]["outputs"]} == {"sft", "preference", "records"}
    shown = atk("list", "pipelines").stdout
    assert "glossary.messages.jsonl  SFT conversations (messages)  [primary]" in shown
    written = atk("init", "doc-summary").stdout
    assert "summaries.messages.jsonl  SFT conversations (messages)  [primary]" in written


def test_a_third_party_and_a_scaffolded_pipeline_join_the_mix(python, tmp_path):
    atk = venv_cli(python, cwd=tmp_path, helpers=TESTS)
    parts = {"repvar": {}, "factual-qa": {"pairs_per_conversation": 1}, "rag-data": {}, "correction": {},
             "glossary": {}, "doc-summary": {}}
    expert_config(atk, tmp_path, parts, SHARES)
    atk("run", "domain-expert.yaml", timeout=600)
    out = tmp_path / "output"
    manifest = json.loads((out / "manifest.json").read_text())
    report = manifest["mix"]
    assert list(report) == list(SHARES)
    for name, share in SHARES.items():
        assert report[name]["records"] > 0
        assert abs(report[name]["share"] - share) <= report[name]["bound"], (name, report[name])
    rows, origins = read_jsonl(out / "sft/mix.jsonl"), read_jsonl(out / "sft/mix.sources.jsonl")
    glossary = [row for row, origin in zip(rows, origins) if origin["part"] == "glossary"]
    assert len(glossary) == report["glossary"]["records"]
    assert all(row["messages"][0]["content"].startswith("What does ") for row in glossary)
    summaries = [row for row, origin in zip(rows, origins) if origin["part"] == "doc-summary"]
    assert len(summaries) == report["doc-summary"]["records"]
    sft = yaml.safe_load((out / "axolotl/sft.yaml").read_text())
    assert [d["path"] for d in sft["datasets"]] == ["sft/mix.jsonl"]
    assert (out / "axolotl/dpo.yaml").is_file()  # correction's preference pairs: a DPO stage
    # atk export (the core, reading declarations) writes a config for every declared output.
    part = out / "parts" / "glossary" / "1-coast"
    exported = run_cli("export", part, "--format", "hf", tmp_path / "exported", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr  # datasets is in the [test] extra: no skip
    card = (tmp_path / "exported" / "README.md").read_text()
    assert "| glossary_messages | `glossary.messages.jsonl` | SFT conversations (messages) |" in card
    exported = run_cli("export", out, "--format", "hf", tmp_path / "exported-run", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    configs = sorted(p.name for p in (tmp_path / "exported-run" / "data").iterdir())
    assert {"sft_mix", "pretraining_repvar", "preference_pairs"} <= set(configs)


def test_a_part_that_writes_only_records_is_refused_in_one_line(python, tmp_path):
    atk = venv_cli(python, cwd=tmp_path, helpers=TESTS)
    expert_config(atk, tmp_path, ["repvar", "factual-qa", "word-counts"], {"factual-qa": 1.0})
    result = run_cli("run", "domain-expert.yaml", python=python, cwd=tmp_path,
                     env={"HOME": str(tmp_path / ".home"), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(TESTS)})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["atk: error: domain-expert.yaml: parts: word-counts declares only records"
                     " (counts.jsonl); a part must write pretraining text, SFT conversations or"
                     " preference pairs"], lines
    assert not (tmp_path / "output").exists()
