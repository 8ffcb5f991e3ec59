"""`batch: true` on an anthropic role: Message Batches, through the core's batch bookkeeping, keep
every promise the openai batch path keeps.

The provider is FakeAnthropicServer's Message Batches API (batch states, request counts that
say nothing until the end, results as JSONL), on 127.0.0.1; the driver is the real `atk run`
in a subprocess. The reference is the same run sending each request directly.
"""

import asyncio
import json
import os
import re

from atk_core import Store
from atk_core.testing import FakeAnthropicServer, kill_when, make_model, read_jsonl, run_cli
from atk_backend_anthropic import AnthropicBackend
from anthropic_fakes import CACHE_MIN_TOKENS, DATA_FILES, anthropic_answer, anthropic_role, config


def role(server, *, batch: bool):
    settings = anthropic_role(server)
    if batch:
        settings.update(batch=True, batch_wait=0.05, batch_poll=0.02)
    return settings


def outputs(folder):
    return {name: (folder / name).read_bytes() for name in DATA_FILES}


def custom_ids(server):
    """The custom_id of every request of every batch, per batch."""
    return {batch_id: [r["custom_id"] for r in batch["_requests"]] for batch_id, batch in server.batches.items()}


def atk(path, tmp_path):
    result = run_cli("run", path, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def direct_run(tmp_path, server):
    atk(config(tmp_path, "direct", role(server, batch=False)), tmp_path)
    return len(server.requests)


def server():
    return FakeAnthropicServer(answer=anthropic_answer, cache_min_tokens=CACHE_MIN_TOKENS)


def test_a_batch_run_writes_what_a_direct_run_writes(tmp_path):
    with server() as fake:
        direct = direct_run(tmp_path, fake)
        fake.batch_lines_per_poll = 4  # a few looks per batch
        path = config(tmp_path, "batched", role(fake, batch=True))
        atk(path, tmp_path)
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")
        later = fake.requests[direct:]
        assert len(later) == direct and all(r.get("batch") for r in later)  # none sent directly
        assert all(b["processing_status"] == "ended" for b in fake.batches.values())
        manifest = json.loads((tmp_path / "batched" / "manifest.json").read_text())
        assert sum(m["requests_sent"] for m in manifest["models"].values()) == direct
        assert manifest["models"]["large"]["usage_sent"]["cache_read_tokens"] > 0  # cached in batches too
        messages = [e["message"] or "" for e in read_jsonl(tmp_path / "batched" / "progress.jsonl")]
        # As the API counts: nothing done while in progress, all of them at the end.
        assert any(re.search(r"batch msgbatch_\d+ in_progress, 0/\d+ done", m) for m in messages)
        assert any(re.search(r"batch msgbatch_\d+ ended, (\d+)/\1 done", m) for m in messages)
        atk(path, tmp_path)  # again: all from the store
        assert len(fake.requests) == 2 * direct


def test_an_expired_batch_keeps_what_it_did_and_the_rest_is_asked_again(tmp_path):
    with server() as fake:
        direct = direct_run(tmp_path, fake)
        fake.batch_lines_per_poll, fake.batch_expire_after, fake.batches_to_expire = 1, 1, 1
        atk(config(tmp_path, "batched", role(fake, batch=True)), tmp_path)
        first = next(iter(fake.batches.values()))
        counts = first["request_counts"]
        assert counts["succeeded"] == 1 and counts["expired"] == sum(counts.values()) - 1 >= 1
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")
        assert len(fake.requests) - direct == direct  # nothing answered twice
        ids = custom_ids(fake)
        again = {i for batch_id, batch in ids.items() if batch_id != first["id"] for i in batch}
        assert len(set(ids[first["id"]]) & again) == counts["expired"]


def kill_with_a_batch_in_progress(path, fake, tmp_path):
    fake.batch_lines_per_poll = 1  # slow: the kill finds the batch in progress
    kill_when(path, lambda: any(b["processing_status"] == "in_progress" and fake.batch_progress(batch_id) >= 1
                                for batch_id, b in list(fake.batches.items())),
              cwd=tmp_path, env=os.environ, progress=lambda: "put no batch in progress")
    fake.batch_lines_per_poll = None
    assert any(b["processing_status"] == "in_progress" for b in fake.batches.values())
    return custom_ids(fake)


def test_a_run_killed_mid_batch_follows_it_on_resume_and_sends_nothing_twice(tmp_path):
    with server() as fake:
        direct = direct_run(tmp_path, fake)
        path = config(tmp_path, "batched", role(fake, batch=True))
        before = kill_with_a_batch_in_progress(path, fake, tmp_path)
        atk(path, tmp_path)
        assert all(fake.batches[batch_id]["processing_status"] == "ended" for batch_id in before)
        after = custom_ids(fake)
        sent = [i for ids in after.values() for i in ids]
        assert len(sent) == len(set(sent))  # no request in two batches
        answered = [r["custom_id"] for r in fake.requests[direct:]]
        assert len(answered) == len(set(answered)) == direct  # each answered once, as a direct run asks
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")


def test_a_batch_made_but_not_heard_of_is_taken_up_not_made_twice(tmp_path):
    with server() as fake:
        direct = direct_run(tmp_path, fake)
        fake.drop_after_create = 1  # the first batch is made, and the connection drops
        atk(config(tmp_path, "batched", role(fake, batch=True)), tmp_path)
        assert fake.drop_after_create == 0
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")
        ids = [i for batch in custom_ids(fake).values() for i in batch]
        assert len(ids) == len(set(ids))  # no request in two batches
        assert len(fake.requests) - direct == direct
        assert all(b["processing_status"] == "ended" for b in fake.batches.values())


def test_a_batch_the_api_has_forgotten_is_asked_again_on_resume(tmp_path):
    with server() as fake:
        direct_run(tmp_path, fake)
        path = config(tmp_path, "batched", role(fake, batch=True))
        before = kill_with_a_batch_in_progress(path, fake, tmp_path)
        for batch_id in before:  # gone (deleted, another workspace...)
            del fake.batches[batch_id]
        atk(path, tmp_path)
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")
        again = {i for ids in custom_ids(fake).values() for i in ids}
        assert {i for ids in before.values() for i in ids} <= again


def test_a_request_the_api_refuses_skips_its_sample_as_a_direct_one_does(tmp_path):
    with server() as fake:
        fake.rule("Floods in 2015", 400)
        direct = direct_run(tmp_path, fake)
        refused_directly = sum(1 for r in fake.requests if r["behaviour"] == "status")
        assert refused_directly > 0
        atk(config(tmp_path, "batched", role(fake, batch=True)), tmp_path)
        assert outputs(tmp_path / "batched") == outputs(tmp_path / "direct")
        refused = [r for r in fake.requests[direct:] if r["behaviour"] == "status"]
        assert len(refused) == refused_directly  # not retried, as a direct 400 is not
        assert "HTTP 400: invalid_request_error" in (tmp_path / "batched" / "failures.jsonl").read_text()


def test_a_batch_offered_by_mistake_is_found_out_when_it_ends(tmp_path):
    """The API cannot show a batch's requests before it ends: a batch offered as maybe the
    lost one, that was not, has no answer for these requests, which then go in a batch of
    their own; the wrong one is not asked about again."""
    class Misled(AnthropicBackend):  # offers a stranger's batch first, every time
        async def find_batches(self, digest, size, since):
            return [stranger] + await super().find_batches(digest, size, since)

    with FakeAnthropicServer() as fake:
        backend = AnthropicBackend(**{k: v for k, v in anthropic_role(fake).items()
                                      if k in ("model", "base_url", "api_key")})
        stranger = asyncio.run(_create(backend, fake))
        misled = Misled(**{k: v for k, v in anthropic_role(fake).items() if k in ("model", "base_url", "api_key")})
        store = Store(tmp_path / "store.sqlite")
        model = make_model({"batch": True, "batch_wait": 0.05, "batch_poll": 0.02, "retry_base_delay": 0.01},
                           backend=misled, store=store)
        questions = [f"What is {n} squared?" for n in range(3)]

        async def ask_all():
            try:
                return await asyncio.gather(*(model.chat([{"role": "user", "content": q}]) for q in questions))
            finally:
                await model.aclose()

        answers = asyncio.run(ask_all())
        assert all(a.text.startswith("answer ") for a in answers)
        ids = custom_ids(fake)
        assert ids[stranger] == ["someone-else-1", "someone-else-2", "someone-else-3"]
        ours = [i for batch_id, batch in ids.items() if batch_id != stranger for i in batch]
        assert len(ours) == len(set(ours)) == 3  # each asked once
        assert [b["id"] for b in store.batches()] == [stranger, *(i for i in ids if i != stranger)]
        store.close()


async def _create(backend, fake):
    try:
        return await backend.create_batch([{"custom_id": f"someone-else-{n}", "params": {
            "model": "claude-test", "max_tokens": 10, "messages": [{"role": "user", "content": "hello"}]}}
            for n in (1, 2, 3)], "not-ours")
    finally:
        await backend.aclose()
