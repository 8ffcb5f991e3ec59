"""A run's exam, exported: as the ``test`` split of its Hugging Face config, and as an
lm-evaluation-harness task, checked against what lm-eval's own source reads.

lm-eval needs torch and is not installed here; ``lm_eval_task_fields.json`` holds what its
source defines (TaskConfig's fields, output types, metrics, filters), read from the commit it
names. The run is real: a throw-away plugin's pipeline writes an SFT mix and an exam, and
``atk run`` and ``atk export`` run as a user runs them.
"""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import yaml

from atk_core.testing import PluginSite, read_jsonl, run_cli, stderr_lines

datasets = pytest.importorskip("datasets")
jinja2 = pytest.importorskip("jinja2")

LM_EVAL = json.loads((Path(__file__).parent / "lm_eval_task_fields.json").read_text(encoding="utf-8"))
TASK = "atk_kettle_run_exam"  # from the run folder's name, kettle-run

EXAM = [
    {"id": "exam-0123456789abcdef", "question": "How long does the kettle take to boil a full load?",
     "answer": "About three minutes.", "source": "manual.md", "start": 120, "end": 171,
     "sentence": "A full kettle boils in about three minutes.", "chunk_id": "manual.md#0",
     "context": "Fill it to the line. A full kettle boils in about three minutes.", "seen": True,
     "taught_by": [{"file": "sft/mix.jsonl", "line": 1}]},
    {"id": "exam-fedcba9876543210", "question": "Which setting does the \"{{eco}}\" button choose?",
     "answer": "[1, 2]", "source": "manual.md", "start": 200, "end": 240,
     "sentence": "The eco button chooses settings 1 and 2.", "chunk_id": "manual.md#1",
     "context": "The eco button chooses settings 1 and 2.", "seen": False, "taught_by": []},
    {"id": "exam-00112233445566aa", "question": "What is the kettle's lid made of?",
     "answer": "Borosilicate glass – like a café's.", "source": "care.txt", "start": 0, "end": 41,
     "sentence": "The lid is borosilicate glass.", "chunk_id": "care.txt#0",
     "context": "The lid is borosilicate glass.", "seen": True,
     "taught_by": [{"file": "sft/mix.jsonl", "line": 2}, {"file": "sft/mix.jsonl", "line": 3}]},
]

PLUGIN = f'''
from atk_core import Conversation, Output, Pipeline, RunRecord, hookimpl, write_conversations, write_records

EXAM = {EXAM!r}
OUTPUTS = (Output("sft/mix.jsonl", "sft", "messages", primary=True), Output("exam/exam.jsonl", "exam", "exam"))
TRAINING = [Conversation(f"c-{{n}}", [{{"role": "user", "content": f"Question {{n}}?"}},
                                     {{"role": "assistant", "content": f"Answer {{n}}."}}]) for n in range(3)]


def examined(*, output_dir, task_id=None, **kwargs):
    record = RunRecord()
    write_conversations(output_dir, TRAINING, OUTPUTS, record)
    write_records(output_dir, EXAM, OUTPUTS[1], record)
    record.write(output_dir)


def unexamined(*, output_dir, task_id=None, **kwargs):
    record = RunRecord()
    write_conversations(output_dir, TRAINING, OUTPUTS[:1], record)
    record.write(output_dir)


@hookimpl
def atk_register_pipelines(register):
    register(Pipeline(name="examined", function=examined, outputs=OUTPUTS))
    register(Pipeline(name="unexamined", function=unexamined, outputs=OUTPUTS[:1]))
'''


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished runs of the throw-away plugin: ``kettle-run`` wrote an exam, ``no-exam`` did not."""
    root = tmp_path_factory.mktemp("exam-export")
    site = PluginSite(root / "site")
    site.add("atk-pipeline-examined", {"examined_pipeline.py": PLUGIN}, {"examined": "examined_pipeline"})
    for pipeline, folder in (("examined", "kettle-run"), ("unexamined", "no-exam")):
        (root / f"{pipeline}.yaml").write_text(f"pipeline: {pipeline}\noutput_dir: {folder}\nprogress: []\n")
        result = run_cli("run", f"{pipeline}.yaml", env=site.env(), cwd=root)
        assert result.returncode == 0, result.stderr
    assert read_jsonl(root / "kettle-run" / "exam" / "exam.jsonl") == EXAM
    return root


def export(run, fmt, target, *args, cwd):
    return run_cli("export", run, "--format", fmt, target, *args, cwd=cwd)


# -- Hugging Face: the exam is the test split --------------------------------------------------------


def test_the_exam_is_the_test_split_of_its_config_and_in_no_train_split(runs, tmp_path):
    result = export(runs / "kettle-run", "hf", tmp_path / "hf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder, cache = str(tmp_path / "hf"), str(tmp_path / "cache")
    exam = datasets.load_dataset(folder, "exam_exam", cache_dir=cache)
    assert list(exam) == ["test"]
    assert exam["test"].to_list() == EXAM
    mix = datasets.load_dataset(folder, "sft_mix", cache_dir=cache)
    assert list(mix) == ["train"]
    assert not {row["id"] for row in mix["train"]} & {row["id"] for row in EXAM}
    assert sorted(p.name for p in (tmp_path / "hf" / "data").rglob("*.parquet")) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet"]
    assert (tmp_path / "hf" / "data" / "exam_exam" / "test-00000-of-00001.parquet").is_file()
    card = (tmp_path / "hf" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    files = {c["config_name"]: c["data_files"] for c in header["configs"]}
    assert files == {"sft_mix": [{"split": "train", "path": "data/sft_mix/train-*.parquet"}],
                     "exam_exam": [{"split": "test", "path": "data/exam_exam/test-*.parquet"}]}
    assert "| exam_exam | `exam/exam.jsonl` | an exam | 3 |" in card
    assert "is its config's `test` split" in card
    # The default config is still the run's primary output, a train split.
    assert datasets.load_dataset(folder, split="train", cache_dir=cache).to_list() == read_jsonl(
        runs / "kettle-run" / "sft" / "mix.jsonl")


# -- lm-eval: the task, as lm-eval's source reads it ----------------------------------------------------


def read_task(path: Path) -> dict:
    """A task YAML as lm-eval reads it (``lm_eval/tasks/_yaml_loader.py``): ``!function
    module.name`` is the function ``name`` of ``module.py`` beside the YAML."""

    class Loader(yaml.SafeLoader):
        pass

    def function(loader, node):
        module, _, name = loader.construct_scalar(node).rpartition(".")
        source = path.parent / f"{module.replace('.', '/')}.py"
        spec = importlib.util.spec_from_file_location(str(source.with_suffix("")), source)
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return getattr(loaded, name)

    Loader.add_constructor("!function", function)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 (our loader)


_JINJA = jinja2.Environment(loader=jinja2.BaseLoader, undefined=jinja2.StrictUndefined,
                            keep_trailing_newline=True)  # lm_eval/utils.py's


def as_lm_eval_reads(field: str, doc: dict, columns: list, target: bool = False):
    """What lm-eval's ``ConfigurableTask.doc_to_text``/``doc_to_target`` make of a string: a
    column's name is that column; anything else is a Jinja template rendered with the doc,
    and a rendered target that looks like a list is read as one."""
    import ast

    if field in columns:
        return doc[field]
    text = _JINJA.from_string(field).render(**doc)
    if target and len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        try:
            return ast.literal_eval(text)
        except (SyntaxError, ValueError):
            pass
    return text


def test_the_lm_eval_task_holds_only_what_lm_eval_reads(runs, tmp_path):
    result = export(runs / "kettle-run", "lm-eval", tmp_path / "lm", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"--tasks {TASK}" in result.stdout
    assert sorted(p.name for p in (tmp_path / "lm").iterdir()) == [
        "README.md", f"{TASK}.jsonl", f"{TASK}.py", f"{TASK}.yaml"]
    task = read_task(tmp_path / "lm" / f"{TASK}.yaml")
    assert sorted(set(task) - set(LM_EVAL["task_config_fields"])) == []
    assert task["task"] == TASK and task["test_split"] == "test" and callable(task["custom_dataset"])
    assert task["output_type"] == "generate_until" and task["output_type"] in LM_EVAL["output_types"]
    generation = task["generation_kwargs"]
    assert set(LM_EVAL["generation_keys"]) <= set(generation) and generation["until"] == ["\n"]
    assert isinstance(generation["max_gen_toks"], int) and generation["max_gen_toks"] > 0
    names = [entry["metric"] for entry in task["metric_list"]]
    assert names == ["exact_match", "chrf"]
    for entry in task["metric_list"]:
        metric = LM_EVAL["metrics"][entry["metric"]]
        assert "generate_until" in metric["output_type"], entry
        assert entry["aggregation"] == metric["aggregation"] and entry["aggregation"] in LM_EVAL["aggregations"]
        options = set(LM_EVAL["exact_match_options"]) if entry["metric"] == "exact_match" else set()
        assert set(entry) <= set(LM_EVAL["metric_entry_keys"]) | options, entry
    assert task["metric_list"][0]["ignore_case"] and task["metric_list"][0]["ignore_punctuation"]
    keys = LM_EVAL["filter_entry_keys"]
    for entry in task["filter_list"]:
        assert set(entry) == set(keys["entry"])
        assert all(step[keys["step"]] in LM_EVAL["filters"] for step in entry["filter"]), entry
    # Says, where lm-eval keeps it and in the README, that atk eval scores otherwise.
    assert "atk eval" in task["metadata"]["scoring"] and "lm-eval does not have" in task["metadata"]["scoring"]
    readme = (tmp_path / "lm" / "README.md").read_text()
    assert "lm-eval does not have" in readme
    assert f"lm_eval --model hf --model_args pretrained=MODEL --include_path FOLDER --tasks {TASK}" in readme
    assert f"| {TASK} | `exam/exam.jsonl` | 3 | 1 |" in readme


def test_the_lm_eval_task_loads_the_exam_wherever_its_folder_is_moved(runs, tmp_path, monkeypatch):
    assert export(runs / "kettle-run", "lm-eval", tmp_path / "lm", cwd=tmp_path).returncode == 0
    moved = tmp_path / "elsewhere" / "tasks"
    moved.parent.mkdir()
    shutil.move(tmp_path / "lm", moved)
    monkeypatch.chdir(moved.parent)  # neither the folder it was written to nor the task's own
    task = read_task(moved / f"{TASK}.yaml")
    assert read_jsonl(moved / f"{TASK}.jsonl") == EXAM
    # As lm-eval's ConfigurableTask.download calls it, with the metadata and dataset_kwargs.
    loaded = task["custom_dataset"](**(task.get("metadata") or {}), **(task.get("dataset_kwargs") or {}))
    docs = loaded[task["test_split"]]
    assert docs.to_list() == EXAM
    columns = list(docs.features)
    for doc, item in zip(docs, EXAM):
        text = as_lm_eval_reads(task["doc_to_text"], doc, columns)
        assert text == f"Question: {item['question']}\nAnswer:"  # the question alone: closed book
        assert item["context"] not in text
        assert as_lm_eval_reads(task["doc_to_target"], doc, columns, target=True) == item["answer"]


# -- refusals ---------------------------------------------------------------------------------------------


def test_a_run_without_an_exam_is_refused_in_one_line_and_nothing_is_written(runs, tmp_path):
    result = export(runs / "no-exam", "lm-eval", tmp_path / "lm", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert line.startswith("atk: error:") and "the run wrote no exam" in line, line
    assert list(tmp_path.iterdir()) == []


def test_push_is_refused_with_lm_eval_before_anything_is_written(runs, tmp_path):
    result = export(runs / "kettle-run", "lm-eval", tmp_path / "lm", "--push", "me/exam", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert "--push uploads an hf export only" in line, line
    assert list(tmp_path.iterdir()) == []


def test_an_earlier_lm_eval_export_is_replaced_only_with_force(runs, tmp_path):
    target = tmp_path / "lm"
    assert export(runs / "kettle-run", "lm-eval", target, cwd=tmp_path).returncode == 0
    (target / "stale.txt").write_text("from before")
    result = export(runs / "kettle-run", "lm-eval", target, cwd=tmp_path)
    assert result.returncode == 2 and "already exists; use --force" in result.stderr
    assert (target / "stale.txt").exists()
    assert export(runs / "kettle-run", "lm-eval", target, "--force", cwd=tmp_path).returncode == 0
    assert not (target / "stale.txt").exists() and (target / f"{TASK}.yaml").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["lm"]  # no staging left
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    result = export(runs / "kettle-run", "lm-eval", mine, "--force", cwd=tmp_path)
    assert result.returncode == 2 and "is not an earlier atk export" in result.stderr
    assert (mine / "notes.txt").read_text() == "mine"
