"""A role with ``batch: true`` goes through the provider's Batch API, and keeps every promise.

The provider is FakeOpenAIServer's Batch API (files, batches, their states and
output and error files, as OpenAI documents them), on 127.0.0.1; the driver is
the real ``atk run`` in a subprocess. The reference is the same run sending
each request directly.
"""

import json
import os
import re

from atk_core.testing import (
    TWO_DOCUMENTS, FakeOpenAIServer, kill_when, read_jsonl, run_cli, write_config, write_documents,
)
from passing_model import server_answer as answer

DATA_FILES = ("qa_pairs.jsonl", "conversations.sharegpt.jsonl", "conversations.messages.jsonl",
              "failures.jsonl")


def config(tmp_path, server, name, *, batch: bool):
    role = {"backend": "openai", "model": "fake-model", "base_url": server.url, "api_key": "test-key",
            "structured_output": "json_object", "retry_base_delay": 0.01,
            "price_in": 1.25, "price_out": 5.0}
    if batch:
        role.update(batch=True, batch_wait=0.05, batch_poll=0.02)
    documents = write_documents(tmp_path / "documents", TWO_DOCUMENTS)
    return write_config(tmp_path / f"{name}.yaml", "factual-qa", input_dir=str(documents),
                        output_dir=str(tmp_path / name), models={"small": role, "large": role},
                        rewrite_conversations=True)


def outputs(folder):
    return {name: (folder / name).read_bytes() for name in DATA_FILES}


def custom_ids(server):
    """custom_id of every line of every batch, per batch."""
    found = {}
    for batch_id, batch in server.batches.items():
        data = server.files[batch["input_file_id"]].decode()
        found[batch_id] = [json.loads(line)["custom_id"] for line in data.splitlines() if line]
    return found


def atk(config_path, tmp_path):
    result = run_cli("run", config_path, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_a_batch_run_writes_what_a_direct_run_writes(tmp_path):
    with FakeOpenAIServer(answer=answer) as server:
        atk(config(tmp_path, server, "direct", batch=False), tmp_path)
        direct = server.request_count
        assert direct > 0 and not server.batches
        atk(config(tmp_path, server, "batched", batch=True), tmp_path)
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")
        # Every request of the second run went in a batch; none was sent directly.
        later = server.requests[direct:]
        assert later and all(r.get("batch") for r in later)
        assert len(later) == direct
        assert all(b["status"] == "completed" for b in server.batches.values())
        manifest = json.loads((tmp_path / "batched" / "manifest.json").read_text())
        assert sum(m["requests_sent"] for m in manifest["models"].values()) == direct
        assert manifest["models"]["large"]["cost_sent"] > 0
        # The progress showed the batches' states.
        messages = [e["message"] or "" for e in read_jsonl(tmp_path / "batched" / "progress.jsonl")]
        assert any(re.search(r"batch batch_\d+ in_progress", m) for m in messages)
        assert any(re.search(r"batch batch_\d+ completed, (\d+)/\1 done", m) for m in messages)

        atk(config(tmp_path, server, "batched", batch=True), tmp_path)  # again: all stored
        assert server.request_count == 2 * direct


def test_an_expired_batch_keeps_what_it_did_and_the_rest_is_asked_again(tmp_path):
    with FakeOpenAIServer(answer=answer) as server:
        atk(config(tmp_path, server, "direct", batch=False), tmp_path)
        direct = server.request_count
        server.batch_lines_per_poll, server.batch_expire_after, server.batches_to_expire = 1, 1, 1
        atk(config(tmp_path, server, "batched", batch=True), tmp_path)
        statuses = [b["status"] for b in server.batches.values()]
        assert statuses[0] == "expired" and statuses.count("expired") == 1
        first = server.batches[next(iter(server.batches))]
        assert first["request_counts"]["total"] >= 2
        assert first["request_counts"]["completed"] == 1  # part of it was done...
        assert first["request_counts"]["failed"] == first["request_counts"]["total"] - 1
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")
        # ...and kept: no request was answered twice, and the expired lines went again.
        assert server.request_count - direct == direct
        ids = custom_ids(server)
        expired = set(ids[first["id"]])
        again = {i for batch_id, batch in ids.items() if batch_id != first["id"] for i in batch}
        assert len(expired & again) == first["request_counts"]["total"] - 1


def kill_with_a_batch_in_progress(path, server, tmp_path):
    server.batch_lines_per_poll = 1  # slow: the kill finds the batch in progress
    kill_when(path, lambda: any(b["status"] == "in_progress" and b["request_counts"]["completed"] >= 1
                                for b in list(server.batches.values())),
              cwd=tmp_path, env=os.environ, progress=lambda: "put no batch in progress")
    server.batch_lines_per_poll = None
    assert any(b["status"] == "in_progress" for b in server.batches.values())
    return custom_ids(server)


def test_a_run_killed_after_creating_its_batch_follows_it_on_resume(tmp_path):
    with FakeOpenAIServer(answer=answer) as server:
        atk(config(tmp_path, server, "direct", batch=False), tmp_path)
        direct = server.request_count
        path = config(tmp_path, server, "batched", batch=True)
        before = kill_with_a_batch_in_progress(path, server, tmp_path)
        atk(path, tmp_path)
        # The batches the killed run created were followed to their end, not made again.
        assert all(server.batches[batch_id]["status"] == "completed" for batch_id in before)
        after = custom_ids(server)
        old = {i for ids in before.values() for i in ids}
        new = {i for batch_id, ids in after.items() if batch_id not in before for i in ids}
        assert not old & new
        assert server.request_count - direct == direct  # nothing was paid for twice
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")


def test_a_batch_the_provider_has_forgotten_is_asked_again_on_resume(tmp_path):
    with FakeOpenAIServer(answer=answer) as server:
        atk(config(tmp_path, server, "direct", batch=False), tmp_path)
        path = config(tmp_path, server, "batched", batch=True)
        before = kill_with_a_batch_in_progress(path, server, tmp_path)
        for batch_id in before:  # gone from the provider (another project, deleted...)
            del server.batches[batch_id]
        atk(path, tmp_path)
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")
        again = {i for ids in custom_ids(server).values() for i in ids}
        assert {i for ids in before.values() for i in ids} <= again  # asked in new batches
        atk(path, tmp_path)  # the lost batch was closed: nothing is followed or asked again
        assert custom_ids(server).keys() == {b for b in server.batches}


def test_a_batch_made_but_not_heard_of_is_taken_up_not_made_twice(tmp_path):
    with FakeOpenAIServer(answer=answer) as server:
        atk(config(tmp_path, server, "direct", batch=False), tmp_path)
        server.drop_after_create = 1  # the first batch is made, and the connection drops
        atk(config(tmp_path, server, "batched", batch=True), tmp_path)
        assert server.drop_after_create == 0  # it was made, unheard of...
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")
        ids = [i for batch in custom_ids(server).values() for i in batch]
        assert len(ids) == len(set(ids))  # no request in two batches
        assert all(b["status"] == "completed" for b in server.batches.values())


def test_a_line_the_provider_refuses_skips_its_sample_as_a_direct_request_would(tmp_path):
    with FakeOpenAIServer(answer=answer) as server:
        server.rule("Floods in 2015", 400)  # every request about that sentence is refused
        atk(config(tmp_path, server, "direct", batch=False), tmp_path)
        refused_directly = sum(1 for r in server.requests if r["behaviour"] == "status")
        assert refused_directly > 0
        atk(config(tmp_path, server, "batched", batch=True), tmp_path)
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")
        refused = [r for r in server.requests if r.get("batch") and r["behaviour"] == "status"]
        assert len(refused) == refused_directly  # not retried, as a direct 400 is not
        failures = (tmp_path / "batched" / "failures.jsonl").read_text()
        assert "HTTP 400" in failures


def test_batch_on_a_backend_without_a_batch_api_is_refused(tmp_path):
    documents = write_documents(tmp_path / "documents", TWO_DOCUMENTS)
    role = {"backend": "scripted", "batch": True}
    path = write_config(tmp_path / "refused.yaml", "factual-qa", input_dir=str(documents),
                        output_dir=str(tmp_path / "refused"), models={"small": role, "large": role})
    result = run_cli("run", path, cwd=tmp_path)
    assert result.returncode == 2
    assert "batch: true needs a backend with a Batch API (openai); 'scripted' has none" in result.stderr
    assert not (tmp_path / "refused").exists()
