"""run_part: pipelines run as parts of another, on its models, store and progress bar, through
the real CLI."""

import asyncio
import json

import pytest

from atk_core import PipelineError, run_part
from atk_core.testing import kill_midway, read_jsonl, run_cli, stderr_lines
from support import ANSWERS_PIPELINE, COMBO_PIPELINE


@pytest.fixture
def combo_site(site):
    site.add("atk-pipeline-answers", ANSWERS_PIPELINE, {"answers": "answers_pipeline"})
    site.add("atk-pipeline-combo", COMBO_PIPELINE, {"combo": "combo_pipeline",
                                                    "checked": "checked_pipeline"})
    return site


def config(tmp_path, name="out", log="calls.jsonl", **fields):
    model = {"backend": "scripted", "log": str(tmp_path / log), "delay": 0.02, "concurrency": 2}
    lines = ["pipeline: combo", f"output_dir: {tmp_path / name}", "progress: [jsonl]",
             f"models: {json.dumps({'large': model})}"] + [f"{k}: {json.dumps(v)}" for k, v in fields.items()]
    path = tmp_path / f"{name}-{log}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def calls(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_parts_write_their_own_outputs_and_share_the_runs_bar(combo_site, tmp_path):
    result = run_cli("run", config(tmp_path), env=combo_site.env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert len(read_jsonl(out / "all.jsonl")) == 30
    for part in ("a", "b", "c"):
        answers = read_jsonl(out / part / "answers.jsonl")
        assert len(answers) == 10
        manifest = json.loads((out / part / "manifest.json").read_text())
        assert manifest["pipeline"] == "answers" and manifest["part_of"] == "combo"
        assert [(s["name"], s["in"], s["out"]) for s in manifest["steps"]] == [("answer", 10, 10)]
    assert calls(tmp_path / "calls.jsonl") == 30  # each part asked its own questions
    # One bar: the parent's events only, rising through each part's share, named by part.
    events = read_jsonl(out / "progress.jsonl")
    assert {e["pipeline"] for e in events} == {"combo"}
    progress = [e["progress"] for e in events if e["kind"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    shares = [(e["message"], round(e["progress"], 3)) for e in events
              if e["kind"] == "progress" and "answer: 10/10" in (e["message"] or "")]
    assert shares == [("answers (a): answer: 10/10", 0.333), ("answers (b): answer: 10/10", 0.667),
                      ("answers (c): answer: 10/10", 1.0)]


def test_a_finished_composition_run_again_sends_nothing_and_changes_no_byte(combo_site, tmp_path):
    assert run_cli("run", config(tmp_path), env=combo_site.env(), cwd=tmp_path).returncode == 0
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*.jsonl") if p.name != "progress.jsonl"}
    assert run_cli("run", config(tmp_path), env=combo_site.env(), cwd=tmp_path).returncode == 0
    assert calls(tmp_path / "calls.jsonl") == 30
    assert {p: p.read_bytes() for p in before} == before


def test_killed_in_the_third_part_a_rerun_repeats_only_what_was_in_flight(combo_site, tmp_path):
    env = combo_site.env()
    assert run_cli("run", config(tmp_path, "clean", "clean.jsonl"), env=env, cwd=tmp_path).returncode == 0
    logged = kill_midway(config(tmp_path, "resumed", "first.jsonl"), log=tmp_path / "first.jsonl",
                         calls=25, env=env, cwd=tmp_path)
    assert (tmp_path / "resumed" / "b" / "answers.jsonl").exists()
    assert not (tmp_path / "resumed" / "c" / "answers.jsonl").exists()
    again = run_cli("run", config(tmp_path, "resumed", "second.jsonl"), env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    repeated = logged + calls(tmp_path / "second.jsonl") - 30
    assert 0 <= repeated <= 2
    for name in ("all.jsonl", "a/answers.jsonl", "b/answers.jsonl", "c/answers.jsonl"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()


def test_a_part_that_fails_fails_the_run_in_one_line_naming_the_part(combo_site, tmp_path):
    result = run_cli("run", config(tmp_path, count=0), env=combo_site.env(), cwd=tmp_path)
    assert result.returncode == 1
    (line,) = [l for l in stderr_lines(result) if l.startswith("atk: error:")]
    assert "part 'answers' in a/: needs field(s) 'count'" in line
    faulty = config(tmp_path, "faulty", "faulty.jsonl")
    text = faulty.read_text().replace(
        '"concurrency": 2', '"concurrency": 2, "faults": [{"kind": "fatal", "match": "b item 3"}]')
    faulty.write_text(text)
    result = run_cli("run", faulty, env=combo_site.env(), cwd=tmp_path)
    assert result.returncode == 1
    (line,) = [l for l in stderr_lines(result) if l.startswith("atk: error:")]
    assert "part 'answers' in b/ failed: scripted: fatal failure" in line, line


def test_a_part_is_checked_as_atk_run_checks_it(combo_site, tmp_path):
    """Its own check gets what it takes (here: no prompt_overrides) and the roles' settings."""
    assert run_cli("run", config(tmp_path, checked=3), env=combo_site.env(), cwd=tmp_path).returncode == 0
    result = run_cli("run", config(tmp_path, "big", checked=9), env=combo_site.env(), cwd=tmp_path)
    assert result.returncode == 1
    (line,) = [l for l in stderr_lines(result) if l.startswith("atk: error:")]
    assert line.endswith("part 'checked': n must be at most 5 (roles: large) (--debug shows the traceback)"), line


def test_outside_a_run_there_is_nothing_to_be_a_part_of():
    with pytest.raises(PipelineError, match="runs a pipeline inside a run"):
        asyncio.run(run_part("answers", output_dir="x", count=1))


def test_atk_prompts_copies_a_composing_pipelines_own_prompts_and_each_parts(combo_site, tmp_path):
    """A composing pipeline that ships prompts of its own (the scaffold always makes a prompts/
    folder) still gets its parts' prompts copied, each where prompt_overrides looks for it."""
    result = run_cli("prompts", "combo", tmp_path / "mine", env=combo_site.env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    copied = sorted(str(p.relative_to(tmp_path / "mine")) for p in (tmp_path / "mine").rglob("*") if p.is_file())
    assert "unused.txt" in copied  # its own
    assert any(name.startswith("answers/") for name in copied), copied  # and its part's
