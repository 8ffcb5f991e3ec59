"""What atk serve reads of a run's outputs, on real folders: an eval's report at the run's own
root (a run of atk eval's pipeline) and in its folders (atk eval of the run's exam)."""

import json

from atk_core.serve.outputs import RunOutputs


def test_a_runs_own_eval_and_its_folders_evals_are_found(tmp_path):
    output = tmp_path / "runs" / "run-1" / "output"
    (output / "eval").mkdir(parents=True)
    (output / "eval.json").write_text(json.dumps({"models": {}, "books": ["closed"], "questions": 1}))
    (output / "eval" / "eval.json").write_text(json.dumps({"models": {}, "books": ["open"], "questions": 2}))
    (output / "notes").mkdir()
    (output / "notes" / "eval.json").write_text("[1, 2]")  # not a report: left out
    found = RunOutputs(tmp_path / "runs").evals({"id": "run-1"})
    assert [(name, data["questions"]) for name, data in found] == [("", 1), ("eval", 2)]
