"""What a pipeline declares it writes: the declaration's own checks, which declaration a written
file takes, and the manifest that lists each file under it (a file written but not declared
is named in a warning)."""

import json

import pytest

from atk_core import Output, Pipeline, PluginError
from atk_core.toolkit.outputs import declaration_of


def noop(**kwargs):
    return None


@pytest.mark.parametrize("arguments, message", [
    (("x.jsonl", "training"), "kind 'training' is not one of pretraining, sft, preference, exam, records"),
    (("x.jsonl", "sft"), "a sft output names its format (messages, sharegpt, segments)"),
    (("x.jsonl", "pretraining", "messages"), "a pretraining output's format is one of text, not 'messages'"),
    (("../x.jsonl", "records"), "a file is a relative path ending in .jsonl"),
    (("/tmp/x.jsonl", "records"), "a file is a relative path ending in .jsonl"),
    (("x.csv", "records"), "a file is a relative path ending in .jsonl"),
])
def test_a_declaration_that_cannot_be_right_is_refused(arguments, message):
    with pytest.raises(PluginError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Output(*arguments)


def test_a_pipeline_declares_each_file_once_one_primary_and_its_sources():
    messages = Output("a.jsonl", "sft", "messages", primary=True)
    with pytest.raises(PluginError, match="output 'a.jsonl' is declared twice"):
        Pipeline(name="p", function=noop, outputs=(messages, Output("a.jsonl", "records")))
    with pytest.raises(PluginError, match="only one output is primary"):
        Pipeline(name="p", function=noop, outputs=(messages, Output("b.jsonl", "records", primary=True)))
    with pytest.raises(PluginError, match="names sources 'where.jsonl', which is not declared"):
        Pipeline(name="p", function=noop, outputs=(Output("t.jsonl", "pretraining", sources="where.jsonl"),))
    with pytest.raises(PluginError, match="outputs must be a list of atk_core.Output"):
        Pipeline(name="p", function=noop, outputs=messages)
    pipeline = Pipeline(name="p", function=noop, outputs=[messages, Output("b.jsonl", "records")])
    assert pipeline.primary_output() is messages and pipeline.outputs[1].format == "records"


def test_a_file_takes_the_declaration_naming_it_else_the_first_pattern_it_matches():
    outputs = (Output("*.sources.jsonl", "records"), Output("pretraining/*.jsonl", "pretraining"),
               Output("pretraining/special.jsonl", "records"))
    assert declaration_of(outputs, "pretraining/a.jsonl").kind == "pretraining"
    assert declaration_of(outputs, "pretraining/a.sources.jsonl").kind == "records"
    assert declaration_of(outputs, "pretraining/special.jsonl").file == "pretraining/special.jsonl"
    assert declaration_of(outputs, "elsewhere.jsonl") is None


def test_the_manifest_lists_what_was_written_under_its_declaration(site, tmp_path):
    from atk_core.testing import run_cli

    site.add("atk-pipeline-declares", {"declares_pipeline.py": '''
        from pathlib import Path
        from atk_core import Conversation, Output, Pipeline, RunRecord, hookimpl, write_conversations

        OUTPUTS = (Output("chat.sharegpt.jsonl", "sft", "sharegpt", primary=True),
                   Output("chat.segments.jsonl", "sft", "segments"))

        def declares(*, output_dir, task_id=None, **kwargs):
            record = RunRecord()
            chats = [Conversation("c-1", [{"role": "user", "content": "Hi?"},
                                          {"role": "assistant", "content": "Wrong.", "weight": 0},
                                          {"role": "user", "content": "Sure?"},
                                          {"role": "assistant", "content": "Right."}])]
            write_conversations(output_dir, chats, OUTPUTS, record)
            (Path(output_dir) / "extra.jsonl").write_text("{}\\n")
            record.write(output_dir, outputs={"extra.jsonl": 1})

        @hookimpl
        def atk_register_pipelines(register):
            register(Pipeline(name="declares", function=declares, outputs=OUTPUTS))
        '''}, {"declares": "declares_pipeline"})
    (tmp_path / "declares.yaml").write_text("pipeline: declares\noutput_dir: out\nprogress: []\n")
    result = run_cli("run", "declares.yaml", env=site.env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["declared_outputs"] == {
        "chat.sharegpt.jsonl": {"kind": "sft", "format": "sharegpt", "primary": True},
        "chat.segments.jsonl": {"kind": "sft", "format": "segments"}}
    assert manifest["outputs"] == {"chat.sharegpt.jsonl": 1, "chat.segments.jsonl": 1, "extra.jsonl": 1,
                                   "failures.jsonl": 0}
    assert manifest["primary_output"] == "chat.sharegpt.jsonl"  # the declared primary
    (sharegpt,) = [json.loads(line) for line in (out / "chat.sharegpt.jsonl").read_text().splitlines()]
    assert sharegpt["id"] == "c-1"
    assert [t["from"] for t in sharegpt["conversations"]] == ["human", "gpt", "human", "gpt"]
    assert sharegpt["conversations"][1]["weight"] == 0  # the untrained turn says so in every format
    (segments,) = [json.loads(line) for line in (out / "chat.segments.jsonl").read_text().splitlines()]
    # the turn of weight 0 is context, not trained
    assert [s["text"] for s in segments["segments"] if s["label"]] == ["Right.<|im_end|>\n"]
    assert "pipeline declares wrote extra.jsonl, which it does not declare in its outputs" in result.stderr
