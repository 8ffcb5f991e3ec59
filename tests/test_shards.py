"""factual-qa a shard at a time, killed with SIGKILL after some shards and run again: it goes on
from its first unfinished shard, without reading or replaying the finished ones, and writes
the bytes of a run never killed.

The real ``atk run`` in a subprocess, on the scripted backend (``passing_model``, beside this
file), which logs every call it answers; every document its own shard (``shard_bytes: 1``)."""

import json
import os
from pathlib import Path

import pytest

from atk_core.testing import kill_midway, read_jsonl, run_cli, write_config, write_documents

HERE = Path(__file__).resolve().parent
DATA = ("qa_pairs.jsonl", "conversations.sharegpt.jsonl", "conversations.messages.jsonl", "failures.jsonl")
PLACES = ["Hartsop", "Caton", "Dent", "Hawes", "Orton", "Tebay"]


def documents(folder):
    texts = {}
    for number, place in enumerate(PLACES):
        texts[f"{number}-{place.lower()}.txt"] = (
            f"The lime kiln at {place} burned limestone from the quarry above the village. It was"
            f" built in {1790 + 7 * number} by the {place} estate. The burning took {number + 2} days"
            f" and nights, and the lime was drawn out at the bottom. Farmers spread it on"
            f" {40 + number} acres of acid soil. The last keeper of the {place} kiln retired in"
            f" {1900 + 3 * number}.")
    texts["copy.txt"] = texts[f"0-{PLACES[0].lower()}.txt"]  # a duplicate of an earlier shard
    return write_documents(folder, texts)


def config(tmp_path, name, log, **fields):
    role = {"backend": "scripted", "respond": "passing_model:respond", "log": str(log), "concurrency": 1}
    return write_config(tmp_path / f"{name}.yaml", "factual-qa", input_dir=str(documents(tmp_path / "docs")),
                        output_dir=str(tmp_path / name), models={"small": role, "large": role},
                        shard_bytes=1, **fields)


def env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}


def lines(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.parametrize("fields", [{}, {"use_subset": True, "subset_size": 4}], ids=["all", "subset"])
def test_a_killed_run_goes_on_from_its_first_unfinished_shard(tmp_path, fields):
    # (A subset's chunks, chosen in a first pass over every shard, are in the checkpoint.)
    clean = run_cli("run", config(tmp_path, "clean", tmp_path / "clean.calls", **fields), env=env(), cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    total = lines(tmp_path / "clean.calls")

    path = config(tmp_path, "killed", tmp_path / "killed.calls", **fields)
    before = kill_midway(path, log=tmp_path / "killed.calls", calls=total * 2 // 3, env=env(), cwd=tmp_path)
    checkpoint = json.loads((tmp_path / "killed" / ".atk-partial" / "checkpoint.json").read_text())
    finished = checkpoint["done"]
    assert 2 <= finished < len(PLACES) + 1  # killed with shards behind it and ahead of it
    assert not (tmp_path / "killed" / "qa_pairs.jsonl").exists()  # nothing half-written in place

    resumed = run_cli("run", path, env=env(), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    for name in DATA:
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name
    assert lines(tmp_path / "killed.calls") - before < total - before + 2  # at most the calls in flight again
    manifest = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    clean_manifest = json.loads((tmp_path / "clean" / "manifest.json").read_text())
    for fact in ("steps", "outputs", "reading", "calls"):
        assert manifest[fact] == clean_manifest[fact], fact
    # The finished shards were not replayed: the store answered only the unfinished shard's
    # requests (those the killed run had stored), not the finished shards'.
    from_store = sum(m["answers_from_store"] for m in manifest["models"].values())
    finished_requests = sum(entry["requests"] for entry in checkpoint["calls"].values())
    assert finished_requests > 0 and from_store <= before - finished_requests
    events = read_jsonl(tmp_path / "killed" / "progress.jsonl")
    assert not (tmp_path / "killed" / ".atk-partial").exists()
    assert events[-1]["kind"] == "finish"


def test_a_checkpoint_of_another_config_is_not_taken_back(tmp_path):
    path = config(tmp_path, "out", tmp_path / "calls")
    kill_midway(path, log=tmp_path / "calls", calls=45, env=env(), cwd=tmp_path)
    assert (tmp_path / "out" / ".atk-partial" / "checkpoint.json").exists()
    changed = run_cli("run", path, "--set", "pairs_per_conversation=2", env=env(), cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    reference = run_cli("run", config(tmp_path, "reference", tmp_path / "reference.calls"),
                        "--set", "pairs_per_conversation=2", env=env(), cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    for name in DATA:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name


def test_a_subset_over_shards_is_the_subset_of_one_pass(tmp_path):
    # The subset is chosen among every chunk of the corpus; a shard at a time, a first pass
    # finds the same chunks, and the outputs are the bytes of the run that read all at once.
    runs = {}
    for name, shard_bytes in (("sharded", 1), ("whole", 10_000_000)):
        path = config(tmp_path, name, tmp_path / f"{name}.calls")
        done = run_cli("run", path, "--set", "use_subset=true", "--set", "subset_size=3",
                       "--set", f"shard_bytes={shard_bytes}", env=env(), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        runs[name] = json.loads((tmp_path / name / "manifest.json").read_text())
    for name in DATA:
        assert (tmp_path / "sharded" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert runs["sharded"]["steps"] == runs["whole"]["steps"]
    assert [step["out"] for step in runs["whole"]["steps"] if step["name"] == "chunk"] == [3]

