"""factual-qa on a real two-node Ray cluster, against the same run with the local executor.

Every run is the real ``atk run`` in a subprocess (the driver); the model is the
scripted backend (answers from ``ray_fakes``) or an OpenAI-compatible HTTP
server on 127.0.0.1. What a local run writes is the reference: a Ray run must
write the same bytes, whatever happens to its workers.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atk_core.testing import (
    FakeOpenAIServer, kill_midway, read_jsonl, run_cli, stderr_lines, write_config, write_documents,
)
from ray_fakes import DOCUMENTS, server_answer

DATA_FILES = ("qa_pairs.jsonl", "conversations.sharegpt.jsonl", "conversations.messages.jsonl",
              "failures.jsonl")


def scripted(log=None, delay=0.0, **policy):
    settings = {"backend": "scripted", "respond": "ray_fakes:respond", **policy}
    if log is not None:
        settings["log"] = str(log)
    if delay:
        settings["delay"] = delay
    return settings


def make_config(folder: Path, name: str, *, models, executor=None, **fields) -> Path:
    documents = write_documents(folder / "documents", DOCUMENTS)
    extra = {"executor": executor} if executor is not None else {}
    return write_config(folder / f"{name}.yaml", "factual-qa", input_dir=str(documents),
                        output_dir=str(folder / name), models=models, **extra, **fields)


def ray(cluster, **options):
    return {"ray": {"address": cluster.address, "workers": 2, **options}}


def atk(config, cluster, *args):
    result = run_cli("run", config, *args, env=cluster.env, cwd=config.parent, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def outputs(folder: Path) -> dict:
    return {name: (folder / name).read_bytes() for name in DATA_FILES}


def calls(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_ray_run_writes_the_local_bytes_and_a_rerun_sends_nothing(ray_cluster, tmp_path):
    local_log, ray_log = tmp_path / "local.calls", tmp_path / "ray.calls"
    local = make_config(tmp_path, "local", models={"small": scripted(local_log),
                                                   "large": scripted(local_log)},
                        questions_per_chunk=5)
    atk(local, ray_cluster)
    before = len(ray_cluster.answers())
    on_ray = make_config(tmp_path, "on_ray", models={"small": scripted(ray_log),
                                                     "large": scripted(ray_log)},
                         questions_per_chunk=5, executor=ray(ray_cluster))
    atk(on_ray, ray_cluster)

    assert outputs(tmp_path / "on_ray") == outputs(tmp_path / "local")
    assert len(read_jsonl(tmp_path / "on_ray" / "qa_pairs.jsonl")) >= 10
    assert calls(ray_log) == calls(local_log)  # no request twice, none missed
    # The answers came from workers on both nodes (a worker's parent is its node's raylet).
    answers = ray_cluster.answers()[before:]
    assert len({parent for _, parent, _ in answers}) == 2
    raylet, _ = ray_cluster.node(ray_cluster.worker_ports[0])
    assert any(parent == raylet for _, parent, _ in answers)
    manifest = json.loads((tmp_path / "on_ray" / "manifest.json").read_text())
    sent = {role: m["requests_sent"] for role, m in manifest["models"].items()}
    assert sum(sent.values()) == calls(ray_log)

    # Progress reached the driver's reporters: one bar, every step to its end.
    events = read_jsonl(tmp_path / "on_ray" / "progress.jsonl")
    fractions = [e["progress"] for e in events if e["progress"] is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(e["message"] and e["message"].startswith("generate: ") for e in events)

    assert "is up to date" in atk(on_ray, ray_cluster).stderr  # again: nothing to do
    atk(on_ray, ray_cluster, "--again")  # replayed: everything is in the store
    assert calls(ray_log) == calls(local_log)
    assert outputs(tmp_path / "on_ray") == outputs(tmp_path / "local")

    # A shard at a time (every file its own): the driver holds a shard's samples, not the
    # corpus's, and the bytes are the same.
    sharded = make_config(tmp_path, "sharded", models={"small": scripted(), "large": scripted()},
                          questions_per_chunk=5, executor=ray(ray_cluster), shard_bytes=1)
    atk(sharded, ray_cluster)
    assert outputs(tmp_path / "sharded") == outputs(tmp_path / "local")


def test_against_an_openai_compatible_server_the_bytes_are_the_same(ray_cluster, tmp_path):
    server = FakeOpenAIServer(answer=server_answer, delay=0.02)
    server.start()
    try:
        role = {"backend": "openai", "model": "test-model", "base_url": server.url,
                "api_key": "not-a-secret-in-tests", "structured_output": "json_object"}
        local = make_config(tmp_path, "local", models={"small": role, "large": role})
        atk(local, ray_cluster)
        sent_locally = server.request_count
        on_ray = make_config(tmp_path, "on_ray", models={"small": role, "large": role},
                             executor=ray(ray_cluster))
        atk(on_ray, ray_cluster)
        assert server.request_count == 2 * sent_locally
        assert outputs(tmp_path / "on_ray") == outputs(tmp_path / "local")
        atk(on_ray, ray_cluster)
        assert server.request_count == 2 * sent_locally
    finally:
        server.stop()


def test_through_ray_client_the_bytes_are_the_same(ray_cluster, tmp_path):
    local_log, client_log = tmp_path / "local.calls", tmp_path / "client.calls"
    local = make_config(tmp_path, "local", models={"small": scripted(local_log),
                                                   "large": scripted(local_log)})
    atk(local, ray_cluster)
    through_client = make_config(
        tmp_path, "client", models={"small": scripted(client_log), "large": scripted(client_log)},
        executor={"ray": {"address": f"ray://127.0.0.1:{ray_cluster.client_port}", "workers": 2}})
    atk(through_client, ray_cluster)
    assert outputs(tmp_path / "client") == outputs(tmp_path / "local")
    assert calls(client_log) == calls(local_log)


def test_a_worker_node_killed_mid_run_loses_nothing(ray_cluster, tmp_path):
    local_log, ray_log = tmp_path / "local.calls", tmp_path / "ray.calls"
    fields = dict(questions_per_chunk=6)
    local = make_config(tmp_path, "local", models={"small": scripted(local_log),
                                                   "large": scripted(local_log)}, **fields)
    atk(local, ray_cluster)

    concurrency = 4  # per role, split over the two workers
    # With an rpm: the cluster-wide pacer lives on the head node, so it outlives the worker node.
    policy = dict(delay=0.3, concurrency=concurrency, rpm=900)
    models = {"small": scripted(ray_log, **policy), "large": scripted(ray_log, **policy)}
    on_ray = make_config(tmp_path, "on_ray", models=models, executor=ray(ray_cluster, batch_size=4),
                         **fields)
    port = ray_cluster.worker_ports[0]
    before = len(ray_cluster.answers())
    driver = subprocess.Popen([sys.executable, "-m", "atk_core", "run", str(on_ray)],
                              env=ray_cluster.env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        raylet, _ = ray_cluster.node(port)
        while True:  # until the worker node has answered a few requests
            answered = [pid for pid, parent, _ in ray_cluster.answers()[before:] if parent == raylet]
            if len(answered) >= 3:
                break
            assert driver.poll() is None, f"the run ended before the kill: {driver.stderr.read()}"
            assert time.monotonic() < deadline, "the worker node answered nothing in 300s"
            time.sleep(0.05)
        killed = ray_cluster.kill_worker_node(port)
        assert killed
        _, stderr = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        ray_cluster.add_worker_node()  # for the tests after this one
    assert driver.returncode == 0, stderr
    assert "a worker was lost" in stderr
    assert outputs(tmp_path / "on_ray") == outputs(tmp_path / "local")
    # Re-sent: at most what the lost worker had in flight (its share of the concurrency).
    assert calls(local_log) <= calls(ray_log) <= calls(local_log) + concurrency
    # Every answer the run needed was counted once: sent and stored, or found in the store.
    manifest = json.loads((tmp_path / "on_ray" / "manifest.json").read_text())
    counted = sum(m["requests_sent"] + m["answers_from_store"] for m in manifest["models"].values())
    assert counted == calls(local_log)


def test_a_killed_driver_resends_at_most_what_was_in_flight(ray_cluster, tmp_path):
    local_log, ray_log = tmp_path / "local.calls", tmp_path / "ray.calls"
    local = make_config(tmp_path, "local", models={"small": scripted(local_log),
                                                   "large": scripted(local_log)})
    atk(local, ray_cluster)
    concurrency = 4
    models = {"small": scripted(ray_log, delay=0.2, concurrency=concurrency),
              "large": scripted(ray_log, delay=0.2, concurrency=concurrency)}
    on_ray = make_config(tmp_path, "on_ray", models=models, executor=ray(ray_cluster))
    kill_midway(on_ray, log=ray_log, calls=calls(local_log) // 2, env=ray_cluster.env,
                cwd=tmp_path, timeout=300)
    atk(on_ray, ray_cluster)
    assert outputs(tmp_path / "on_ray") == outputs(tmp_path / "local")
    assert calls(ray_log) <= calls(local_log) + concurrency


def test_a_roles_rpm_holds_across_the_cluster(ray_cluster, tmp_path):
    rpm = 240  # one request every 0.25 s, for the whole cluster
    config = make_config(tmp_path, "paced", models={"small": scripted(rpm=rpm),
                                                    "large": scripted(rpm=rpm)},
                         executor=ray(ray_cluster), rewrite_conversations=False)
    before = len(ray_cluster.answers())
    atk(config, ray_cluster)
    answers = ray_cluster.answers()[before:]
    assert len({pid for pid, _, _ in answers}) >= 2  # both workers asked
    # The steps run one after another, so all the run's requests share one pace.
    times = sorted(at for _, _, at in answers)
    # Each request waited for its slot: n requests span at least n - 1 intervals (a worker
    # running late only spreads them further).
    assert times[-1] - times[0] >= (len(times) - 1) * 60 / rpm * 0.95


def test_a_failure_on_a_worker_fails_the_run_with_its_one_line(ray_cluster, tmp_path):
    fatal = {**scripted(), "faults": [{"kind": "fatal", "calls": [3]}]}
    config = make_config(tmp_path, "failing", models={"small": fatal, "large": scripted()},
                         executor=ray(ray_cluster, workers=1))
    result = run_cli("run", config, env=ray_cluster.env, cwd=tmp_path, timeout=600)
    assert result.returncode == 1
    lines = stderr_lines(result)
    assert lines[-1].startswith("atk: error: pipeline 'factual-qa' failed:"), result.stderr
    assert "scripted: fatal failure" in lines[-1]
    assert "Traceback" not in result.stderr


def test_a_cluster_without_room_for_a_worker_fails_the_run_with_one_line(ray_cluster, tmp_path):
    config = make_config(tmp_path, "no_room", models={"small": scripted(), "large": scripted()},
                         executor=ray(ray_cluster, num_cpus=64, start_timeout=3))
    result = run_cli("run", config, env=ray_cluster.env, cwd=tmp_path, timeout=600)
    assert result.returncode == 1
    lines = stderr_lines(result)
    assert "no worker started within 3s" in lines[-1] and "num_cpus=64" in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("options, message", [
    ({"workers": 0}, "workers"),
    ({"wrokers": 2}, "wrokers"),
    ({"num_gpus": -1}, "num_gpus"),
    ({"address": "head-node"}, "'head-node' is not a Ray address"),
    ({"address": "http://head-node:8265"}, "is not a Ray address"),
])
def test_bad_options_are_refused_before_anything_starts(tmp_path, options, message):
    config = make_config(tmp_path, "refused", models={"small": scripted(), "large": scripted()},
                         executor={"ray": options})
    result = run_cli("run", config, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert line.startswith("atk: error: ") and "executor 'ray'" in line and message in line, line
    assert not (tmp_path / "refused").exists()
