"""A finished run, run again unchanged, says it is up to date and returns without loading a
model or replaying an answer; anything that would change what it writes runs it again.

The real ``atk run`` in a subprocess, factual-qa on the scripted backend (``passing_model``,
beside this file), which logs every call it answers."""

import json
import os
from pathlib import Path

from atk_core.testing import TWO_DOCUMENTS, run_cli, write_config, write_documents

HERE = Path(__file__).resolve().parent
UP_TO_DATE = "is up to date"


def setup(tmp_path, **fields):
    documents = write_documents(tmp_path / "documents", TWO_DOCUMENTS)
    role = {"backend": "scripted", "respond": "passing_model:respond", "log": str(tmp_path / "calls.jsonl")}
    config = write_config(tmp_path / "run.yaml", "factual-qa", input_dir=str(documents),
                          output_dir=str(tmp_path / "out"), models={"small": role, "large": role},
                          **fields)
    return config, documents


def atk(*args, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    result = run_cli(*args, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result


def calls(tmp_path) -> int:
    log = tmp_path / "calls.jsonl"
    return len(log.read_text().splitlines()) if log.exists() else 0


def written(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith("store.sqlite") and p.name != "progress.jsonl"}


def test_an_unchanged_run_is_up_to_date_and_sends_nothing(tmp_path):
    config, _ = setup(tmp_path)
    first = atk("run", config, tmp_path=tmp_path)
    assert UP_TO_DATE not in first.stderr
    sent = calls(tmp_path)
    assert sent > 0
    before = written(tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    sealed = manifest["fingerprint"]
    assert set(sealed["outputs"]) >= {"qa_pairs.jsonl", "conversations.sharegpt.jsonl", "failures.jsonl"}
    assert sealed["input_files"] == len(TWO_DOCUMENTS)

    again = atk("run", config, tmp_path=tmp_path)
    assert UP_TO_DATE in again.stderr
    assert "requests sent" not in again.stderr  # no model was even loaded
    assert calls(tmp_path) == sent
    assert written(tmp_path / "out") == before  # not a byte touched, the manifest included


def test_what_would_change_the_outputs_runs_it_again(tmp_path):
    config, documents = setup(tmp_path)
    atk("run", config, tmp_path=tmp_path)
    first = written(tmp_path / "out")

    # --again replays from the store: nothing sent, the same data written
    sent = calls(tmp_path)
    replay = atk("run", config, "--again", tmp_path=tmp_path)
    assert UP_TO_DATE not in replay.stderr and "0 requests sent" in replay.stderr
    assert calls(tmp_path) == sent

    # an output deleted or edited is written again, the same bytes, from the store
    (tmp_path / "out" / "qa_pairs.jsonl").unlink()
    (tmp_path / "out" / "conversations.messages.jsonl").write_text("edited\n")
    rerun = atk("run", config, tmp_path=tmp_path)
    assert UP_TO_DATE not in rerun.stderr and calls(tmp_path) == sent
    data = {k: v for k, v in written(tmp_path / "out").items() if k != "manifest.json"}
    assert data == {k: v for k, v in first.items() if k != "manifest.json"}
    assert UP_TO_DATE in atk("run", config, tmp_path=tmp_path).stderr

    # a changed setting
    changed = atk("run", config, "--set", "pairs_per_conversation=2", tmp_path=tmp_path)
    assert UP_TO_DATE not in changed.stderr

    # a changed document: run again, and only its chunks are asked about
    atk("run", config, tmp_path=tmp_path)  # back to the first settings (and outputs)
    sent = calls(tmp_path)
    name = sorted(TWO_DOCUMENTS)[0]
    (documents / name).write_text(TWO_DOCUMENTS[name].replace("three days", "four days"))
    edited = atk("run", config, tmp_path=tmp_path)
    assert UP_TO_DATE not in edited.stderr and calls(tmp_path) > sent
    # a new file in the input folder
    (documents / "more.txt").write_text("The ferry to the island leaves at nine every morning in summer.")
    assert UP_TO_DATE not in atk("run", config, tmp_path=tmp_path).stderr
    assert UP_TO_DATE in atk("run", config, tmp_path=tmp_path).stderr


def test_prompt_overrides_and_an_eval_inside_the_run_folder(tmp_path):
    config, _ = setup(tmp_path)
    overrides = tmp_path / "prompts"
    atk("prompts", "factual-qa", overrides, tmp_path=tmp_path)
    text = config.read_text() + f"prompt_overrides: {overrides}\n"
    config.write_text(text)
    atk("run", config, tmp_path=tmp_path)
    assert UP_TO_DATE in atk("run", config, tmp_path=tmp_path).stderr
    # another run's folder inside this one (atk eval's eval/) is not this run's output
    other = tmp_path / "out" / "eval"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"pipeline": "exam-eval"}))
    (other / "eval.json").write_text("{}")
    assert UP_TO_DATE in atk("run", config, tmp_path=tmp_path).stderr
    # an edited prompt is new code for the run
    prompt = next(overrides.rglob("*.yaml"))
    prompt.write_text(prompt.read_text() + "\n# edited\n")
    assert UP_TO_DATE not in atk("run", config, tmp_path=tmp_path).stderr
