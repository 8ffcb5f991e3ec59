"""`atk new` makes plugins that install from a wheel, pass their own tests untouched,
and work in `atk run`: the generated pipeline, with the generated backend as its model,
the generated reporter watching it and the generated reader reading its documents."""

import json
import os
import subprocess
import sys

import pytest

from atk_core.testing import build_wheel, make_venv, read_jsonl, run_cli, stderr_lines

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Four generated plugins installed non-editable, with atk-core, in a fresh venv."""
    root = tmp_path_factory.mktemp("scaffold")
    made = {}
    for kind, name in (("pipeline", "shout-qa"), ("backend", "parrot"), ("reporter", "diary"),
                       ("reader", "memo")):
        result = run_cli("new", kind, name, "--dir", root / "src")
        assert result.returncode == 0, result.stderr
        made[kind] = root / "src" / f"atk-{kind}-{name}"
    wheels = [build_wheel(ROOT, root / "dist")]
    wheels += [build_wheel(path, root / "dist") for path in made.values()]
    python = make_venv(root / "venv", [*wheels, "pytest>=7.4"])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ATK_LOAD_PLUGINS")}
    return python, made, env, root


@pytest.mark.parametrize("kind", ["pipeline", "backend", "reporter", "reader"])
def test_generated_tests_pass_untouched(generated, kind):
    python, made, env, root = generated
    # Run from elsewhere, so the tests import the installed wheel, not the source folder.
    result = subprocess.run([str(python), "-m", "pytest", "-q", str(made[kind] / "tests")],
                            cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_generated_plugins_work_together_in_atk_run(generated):
    python, made, env, root = generated
    listing = run_cli("list", "--json", python=python, env=env, cwd=root)
    assert listing.returncode == 0, listing.stderr
    found = {kind: {e["name"]: e["distribution"] for e in entries}
             for kind, entries in json.loads(listing.stdout).items()}
    assert found["pipelines"]["shout-qa"] == "atk-pipeline-shout-qa"
    assert found["backends"]["parrot"] == "atk-backend-parrot"
    assert found["reporters"]["diary"] == "atk-reporter-diary"
    assert found["readers"]["memo"] == "atk-reader-memo"

    work = root / "work"
    work.mkdir()
    (work / "documents").mkdir()
    (work / "documents" / "radio.txt").write_text("Is this thing on? The radio hums at night.\n")
    (work / "documents" / "log.memo").write_text("= Log\n\nThe mast was painted in May.\n")
    assert run_cli("init", "shout-qa", python=python, env=env, cwd=work).returncode == 0
    result = run_cli("run", "shout-qa.yaml", "--model", "large=parrot", "--progress", "diary",
                     python=python, env=env, cwd=work)
    assert result.returncode == 0, result.stderr
    summaries = read_jsonl(work / "output" / "summaries.jsonl")
    assert [s["summary"] for s in summaries] == [
        "echo: Summarize this passage in one sentence.\n\n# Log\n\nThe mast was painted in May.",
        "echo: Summarize this passage in one sentence.\n\nIs this thing on? The radio hums at night."]
    assert [s["where"] for s in summaries] == ["lines 1-3", ""]  # the reader said where; .txt is as it is
    reading = json.loads((work / "output" / "manifest.json").read_text())["reading"]["readers"]
    assert reading["memo"]["distribution"] == "atk-reader-memo" and reading["memo"]["documents"] == 1
    diary = (work / "output" / "diary-progress.log").read_text().splitlines()
    assert diary[0].split()[1:3] == ["shout-qa", "start"]
    assert diary[-1].split()[1:4] == ["shout-qa", "finish", "100%"]
    # A misspelt reporter option is one line before anything runs, not a TypeError.
    misspelt = run_cli("run", "shout-qa.yaml", "--model", "large=parrot", "--set",
                       "output_dir=other", "--progress", "{diary: {pth: d.log}}",
                       python=python, env=env, cwd=work)
    assert misspelt.returncode == 2
    assert stderr_lines(misspelt) == ["atk: error: shout-qa.yaml: progress reporter 'diary':"
                                      " unknown option(s) pth; the diary reporter takes path"]
    assert not (work / "other").exists()


@pytest.mark.parametrize("args, message", [
    (["pipeline", "Bad_Name"], "invalid name 'Bad_Name'"),
    (["pipeline", "9lives"], "invalid name '9lives'"),
    (["backend", "my--name"], "invalid name 'my--name'"),
    (["widget", "x"], "Invalid value for '{pipeline|backend|reporter|reader}'"),
])
def test_invalid_names_and_kinds_are_refused(tmp_path, args, message):
    result = run_cli("new", *args, "--dir", tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path):
    (tmp_path / "atk-reporter-taken").mkdir()
    (tmp_path / "atk-reporter-taken" / "mine.txt").write_text("keep")
    result = run_cli("new", "reporter", "taken", "--dir", tmp_path)
    assert result.returncode == 2
    assert stderr_lines(result) == [f"atk: error: {tmp_path / 'atk-reporter-taken'} already exists;"
                                    " choose another name or --dir"]
    assert os.listdir(tmp_path / "atk-reporter-taken") == ["mine.txt"]
