"""``atk run CONFIG --estimate``: the requests, tokens and cost of a run, before it sends any.

The reference is the real run: factual-qa on documents it has not seen, on the
scripted backend, with a model whose every answer passes (so the estimate's
"if all pass" figures must be exact), then one whose answers sometimes fail
(so the run lands inside the stated range, not on its top).
"""

import json
import os
from pathlib import Path

from atk_core.testing import config_error, run_cli, stderr_lines, write_config, write_documents

HERE = Path(__file__).resolve().parent

DOCUMENTS = {
    "bells.txt": (
        "The bell foundry at Wedmore cast its first church bell in 1702. Bronze for the bells "
        "was melted in a furnace fed with charcoal from the nearby woods. Each bell was tuned "
        "by shaving metal from the inside on a great vertical lathe. The heaviest bell it ever "
        "made weighed four tonnes and hangs in the cathedral at Exford. Casting stopped in 1958 "
        "when the last bellfounder retired without an apprentice."),
    "reedbed.txt": (
        "Reed cutters harvest the Seddon reedbed every winter once the leaves have dropped. "
        "Bundles of reed are stacked upright to dry before they go to the thatchers. A roof "
        "thatched with water reed can last sixty years when it is well kept. Bitterns boom "
        "from the uncut patches that are left each year for nesting birds. Pumps installed in "
        "1976 keep the water level steady through dry summers."),
}

def setup(tmp_path, name, respond="respond", **fields):
    documents = write_documents(tmp_path / "documents", DOCUMENTS)
    role = {"backend": "scripted", "respond": f"passing_model:{respond}",
            "log": str(tmp_path / f"{name}.calls"), "price_in": 2.5, "price_out": 10}
    return write_config(tmp_path / f"{name}.yaml", "factual-qa", input_dir=str(documents),
                        output_dir=str(tmp_path / name), models={"small": role, "large": role},
                        **{"rewrite_conversations": True, "questions_per_chunk": 3, **fields})


def env(tmp_path):  # the scripted model (tests/passing_model.py) is imported in the subprocess
    paths = [str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def estimate(config, tmp_path, *args):
    result = run_cli("run", config, "--estimate", "--json", *args, env=env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def calls(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_when_every_sample_passes_the_estimate_is_the_run(tmp_path):
    config = setup(tmp_path, "passing")
    found = estimate(config, tmp_path)
    assert not (tmp_path / "passing").exists()  # nothing written to the output folder
    assert calls(tmp_path / "passing.calls") == 0  # and nothing asked

    result = run_cli("run", config, env=env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "passing" / "manifest.json").read_text())
    ran = manifest["calls"]
    assert all(not step["dropped"] for step in manifest["steps"]), manifest["steps"]  # all passed
    assert {"judge", "generate", "check_question", "check_answer", "conversation"} <= set(ran)

    rows = {row["step"]: row for row in found["steps"]}
    assert set(rows) == set(ran)
    for name, step in ran.items():
        assert rows[name]["samples"] == step["samples"], name
        assert rows[name]["requests_if_all_survive"] == step["requests"], name
        assert rows[name]["role"] == step["role"]
    assert found["total"]["requests_if_all_survive"] == calls(tmp_path / "passing.calls")
    for row in found["steps"]:  # each range in order, under the ceiling
        assert row["requests"][0] <= row["requests_if_all_survive"] <= row["requests"][1], row
        assert row["requests"][1] <= row["requests_at_most"], row
        assert row["completion_tokens"][0] <= row["completion_tokens"][1], row
        assert 0 < row["cost"][0] <= row["cost"][1] <= row["cost_at_most"], row  # prices applied
    assert any("no previous run" in line for line in found["how"])


def test_a_run_that_drops_samples_lands_in_the_range_and_teaches_the_next_estimate(tmp_path):
    config = setup(tmp_path, "dropping", respond="respond_sometimes_no")
    before = estimate(config, tmp_path)
    result = run_cli("run", config, env=env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sent = calls(tmp_path / "dropping.calls")
    manifest = json.loads((tmp_path / "dropping" / "manifest.json").read_text())
    (checked,) = [step for step in manifest["steps"] if step["name"] == "check_question"]
    assert checked["out"] < checked["in"]  # some were dropped
    assert sent < before["total"]["requests_if_all_survive"]
    low, high = before["total"]["requests"]
    assert low <= sent <= high

    # Again, now that a run of this pipeline is in the output folder: its rates are used,
    # and the range is narrower and still holds what the run sent.
    after = estimate(config, tmp_path)
    assert any("previous run" in line for line in after["how"])
    low2, high2 = after["total"]["requests"]
    assert low2 <= sent <= high2
    assert high2 - low2 < high - low


def test_the_estimate_prints_a_table_and_says_how(tmp_path):
    config = setup(tmp_path, "table")
    result = run_cli("run", config, "--estimate", env=env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Estimate for factual-qa (nothing was sent):"
    assert any(line.startswith("generate ") and "large" in line for line in lines)
    assert any(line.startswith("total ") and "$" in line for line in lines)
    assert any("UTF-8 bytes / 4" in line for line in lines)  # how tokens were counted


def test_a_bad_config_is_refused_as_a_run_would_refuse_it(tmp_path):
    config = setup(tmp_path, "refused", questions_per_chunk=0)
    line = config_error(config, cwd=tmp_path)
    result = run_cli("run", config, "--estimate", env=env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert stderr_lines(result) == [line]
    assert not (tmp_path / "refused").exists()
    result = run_cli("run", config, "--json", cwd=tmp_path)
    assert result.returncode == 2 and "--json goes with --estimate" in result.stderr


def test_while_a_run_goes_its_events_and_console_carry_tokens_cost_and_the_projection(tmp_path):
    config = setup(tmp_path, "live")
    result = run_cli("run", config, "--progress", "console", "--progress", "jsonl",
                     env=env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "live" / "manifest.json").read_text())
    events = [json.loads(line) for line in (tmp_path / "live" / "progress.jsonl").read_text().splitlines()]
    assert all(set(event["usage"]) == {"small", "large"} for event in events)
    sent = [sum(u["requests_sent"] for u in event["usage"].values()) for event in events]
    assert sent[0] == 0 and sent == sorted(sent)  # counts grow as the run goes
    final = events[-1]
    assert final["kind"] == "finish"
    for role, summary in manifest["models"].items():
        use = final["usage"][role]
        assert use["requests_sent"] == summary["requests_sent"]
        assert use["prompt_tokens"] == summary["usage_sent"]["prompt_tokens"]
        assert use["cost"] == summary["cost_sent"] > 0
        assert use["projected_cost"] == summary["cost_total"]  # at 100%, the projection is the bill
    midway = [e for e in events if e["progress"] and 0.3 <= e["progress"] < 1 and e["usage"]["large"]["cost"]]
    assert midway
    for event in midway:  # the whole run's cost so far, over the share of it done
        use = event["usage"]["large"]
        assert use["projected_cost"] > use["cost"]
    lines = [line for line in result.stdout.splitlines() if "large" in line]
    assert lines and "$" in lines[-1] and "in all)" in lines[-1]  # the console says it too
