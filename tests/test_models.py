"""The openai backend and the core's retry, timeout and concurrency policy, against a real server.

The server is ``atk_core.testing.FakeOpenAIServer``: a real HTTP server on
127.0.0.1 that can answer normally or inject faults.
"""

import asyncio
import time

import pytest

from atk_core.errors import ConfigError
from atk_core.models import FatalError, Model, RequestError, TransientError, parse_spec
from atk_core.models.openai import OpenAIBackend
from atk_core.engine.store import Store
from atk_core.testing import FakeOpenAIServer

USER = [{"role": "user", "content": "What is the capital of France?"}]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.fixture
def server():
    with FakeOpenAIServer() as running:
        yield running


def model(server, **settings):
    spec = parse_spec("large", {"backend": "openai", "model": "fake-model", "base_url": server.url,
                                "retry_base_delay": 0.01, **settings})
    options = spec.options
    return Model(spec, OpenAIBackend(**options))


def run(coroutine):
    return asyncio.run(coroutine)


async def using(m, coroutine):
    try:
        return await coroutine
    finally:
        await m.aclose()


def test_a_roles_own_headers_reach_the_server(server):
    m = model(server, headers={"X-Team": "docs", "OpenAI-Organization": "org-1"})
    run(using(m, m.chat(USER)))
    (request,) = server.requests
    assert request["headers"]["x-team"] == "docs" and request["headers"]["openai-organization"] == "org-1"


def test_chat_and_completion_and_usage(server):
    m = model(server, price_in=1.0, price_out=2.0)
    chat = run(using(m, m.chat(USER, temperature=0.3, max_tokens=20, seed=7, stop=["\n"])))
    m2 = model(server)
    completion = run(using(m2, m2.complete("Once upon a time", top_p=0.9)))
    assert chat.text.startswith("answer ") and chat.finish_reason == "stop"
    assert completion.text.startswith("answer ")
    chat_request, completion_request = server.requests
    assert chat_request["path"] == "/v1/chat/completions"
    assert chat_request["payload"]["messages"] == USER
    assert {k: chat_request["payload"][k] for k in ("model", "temperature", "max_tokens", "seed", "stop")} == {
        "model": "fake-model", "temperature": 0.3, "max_tokens": 20, "seed": 7, "stop": ["\n"]}
    assert completion_request["path"] == "/v1/completions"
    assert completion_request["payload"]["prompt"] == "Once upon a time"
    assert m.usage.prompt_tokens == 6 and m.usage.completion_tokens == 2
    assert m.cost() == pytest.approx((6 * 1.0 + 2 * 2.0) / 1_000_000)


def test_no_key_works_against_a_local_server(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    m = model(server)
    run(using(m, m.chat(USER)))
    assert server.requests[0]["authorization"] == "Bearer no-key-needed"


def test_key_from_config_is_sent_and_never_in_identity(server):
    m = model(server, api_key="sk-secret-123")
    run(using(m, m.chat(USER)))
    assert server.requests[0]["authorization"] == "Bearer sk-secret-123"
    assert "sk-secret-123" not in repr(m.identity())
    assert m.identity() == {"backend": "openai", "model": "fake-model", "endpoint": server.url}


@pytest.mark.parametrize("style, expected", [
    ("json_schema", {"type": "json_schema",
                     "json_schema": {"name": "answer", "schema": SCHEMA, "strict": False}}),
    ("json_object", {"type": "json_object", "schema": SCHEMA}),
    ("none", None),
])
def test_structured_output_styles(server, style, expected):
    m = model(server, structured_output=style)
    response = run(using(m, m.chat(USER, json_schema=SCHEMA)))
    assert server.requests[0]["payload"].get("response_format") == expected
    if expected is not None:
        assert response.parsed == {"answer": "scripted"} and response.parse_error is None


def test_answers_that_break_the_schema_are_reported_not_raised(server):
    server.answer = lambda text, payload: {"wrong": 1}
    m = model(server)
    response = run(using(m, m.chat(USER, json_schema=SCHEMA)))
    assert response.parsed is None
    assert response.parse_error == "the answer does not match the schema: at the top level: 'answer' is a required property"


def test_rate_limit_honours_retry_after_then_succeeds(server):
    server.push((429, {"retry-after": "0.2"}))
    m = model(server)
    response = run(using(m, m.chat(USER)))
    assert response.text.startswith("answer ")
    first, second = server.requests
    assert first["behaviour"] == "status" and second["behaviour"] == "ok"
    assert second["time"] - first["time"] >= 0.2  # waited as the server asked
    assert m.retries == 1


def test_retry_after_in_milliseconds_and_x_should_retry_are_honoured(server):
    # What OpenAI and Anthropic both send: retry-after-ms, and x-should-retry on a status
    # that would otherwise fail its sample.
    server.push((429, {"retry-after-ms": "300"}), (400, {"x-should-retry": "true"}))
    m = model(server)
    response = run(using(m, m.chat(USER)))
    assert response.text.startswith("answer ")
    first, second, third = server.requests
    assert [r["behaviour"] for r in (first, second, third)] == ["status", "status", "ok"]
    assert second["time"] - first["time"] >= 0.3
    assert m.retries == 2


def test_cached_prompt_tokens_are_counted(server):
    # OpenAI says how many of the prompt tokens it read from its own prompt cache.
    from atk_core.models.openai import _usage

    usage = _usage({"usage": {"prompt_tokens": 2000, "completion_tokens": 10,
                              "prompt_tokens_details": {"cached_tokens": 1536}}})
    assert (usage.prompt_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (2000, 1536, 0)
    m = model(server, price_in=2.0, price_out=8.0, price_cache_read=0.5)
    assert m.cost(usage) == pytest.approx((464 * 2.0 + 1536 * 0.5 + 10 * 8.0) / 1e6)


def test_server_errors_are_retried_a_bounded_number_of_times(server):
    m = model(server, max_retries=3)
    run(using(m, m.chat(USER)))  # one success first, so a later give-up is sample-level
    server.rule("flaky", 500)
    with pytest.raises(TransientError, match=r"gave up after 4 attempts: HTTP 500: injected HTTP 500"):
        run(using(m, m.chat([{"role": "user", "content": "flaky"}])))
    assert len(server.requests) == 1 + 4


def test_a_server_that_never_answers_stops_the_run_instead_of_retrying_forever(server):
    server.rule("", 500)
    m = model(server, max_retries=2)
    with pytest.raises(FatalError, match="gave up after 3 attempts"):
        run(using(m, m.chat(USER)))
    assert len(server.requests) == 3


def test_fatal_errors_fail_fast_with_a_clear_message(server):
    server.push(401)
    m = model(server)
    with pytest.raises(FatalError, match=r"HTTP 401: injected HTTP 401"):
        run(using(m, m.chat(USER)))
    assert len(server.requests) == 1


def test_bad_request_is_a_sample_level_error(server):
    server.push(400)
    m = model(server)
    with pytest.raises(RequestError, match="HTTP 400"):
        run(using(m, m.chat(USER)))
    assert len(server.requests) == 1


def test_a_hang_times_out_and_is_retried(server):
    server.push("hang")
    m = model(server, timeout=2.0)  # generous: the retried request must not time out too
    response = run(using(m, m.chat(USER)))
    assert response.text.startswith("answer ")
    assert [r["behaviour"] for r in server.requests] == ["hang", "ok"]


def test_malformed_bodies_are_retried(server):
    server.push("malformed", "drop")
    m = model(server)
    response = run(using(m, m.chat(USER)))
    assert response.text.startswith("answer ")
    assert [r["behaviour"] for r in server.requests] == ["malformed", "drop", "ok"]


def test_cut_off_structured_answer_says_so(server):
    server.push("length")
    m = model(server)
    response = run(using(m, m.chat(USER, json_schema=SCHEMA)))
    assert response.finish_reason == "length"
    assert "cut off: finish_reason=length" in response.parse_error


def test_concurrency_limit_holds_and_requests_stream(server):
    server.delay = 0.05
    m = model(server, concurrency=4)

    async def many():
        return await asyncio.gather(*(m.chat([{"role": "user", "content": f"q{i}"}]) for i in range(24)))

    responses = run(using(m, many()))
    assert len(responses) == 24
    assert server.max_in_flight == 4


def test_requests_per_minute_spaces_requests(server):
    m = model(server, rpm=600)  # one every 0.1 s

    async def few():
        return await asyncio.gather(*(m.chat([{"role": "user", "content": f"r{i}"}]) for i in range(4)))

    started = time.monotonic()
    run(using(m, few()))
    # Slots are 0.1 s apart, so the fourth request cannot leave before 0.3 s.
    last = max(r["time"] for r in server.requests)
    assert last - started >= 0.3


def test_stored_answers_are_never_sent_again(server, tmp_path):
    store = Store(tmp_path / "store.sqlite")
    m = model(server)
    m.store = store
    first = run(using(m, m.chat(USER, seed=1)))
    again = run(using(m, m.chat(USER, seed=1)))
    other = run(using(m, m.chat(USER, seed=2)))  # a changed parameter misses the store
    assert len(server.requests) == 2 and server.answered_twice() == []
    assert again.text == first.text and again.cached and not first.cached
    assert not other.cached
    store.close()

    reopened = Store(tmp_path / "store.sqlite")  # a new process would see the same
    m2 = model(server)
    m2.store = reopened
    resumed = run(using(m2, m2.chat(USER, seed=1)))
    assert resumed.cached and len(server.requests) == 2
    tagged = run(using(m2, m2.chat(USER, seed=1, tag="another-step")))  # another step asks anew
    assert not tagged.cached and len(server.requests) == 3
    assert (m.sent, m.from_store, m2.sent, m2.from_store) == (2, 1, 1, 1)
    # m's answer from the store was one it had sent itself in this run; m2's came from before
    assert (m.reused, m2.reused) == (1, 0)
    assert m.summary()["answers_reused"] == 1 and m2.summary()["answers_reused"] == 0


@pytest.mark.parametrize("settings, problem", [
    ({"concurrency": 0}, "models.large.concurrency must be a whole number of at least 1"),
    ({"timeout": -1}, "models.large.timeout must be a number of seconds, above 0, not -1"),
    ({"max_retries": 1.5}, "models.large.max_retries must be a whole number of at least 0"),
    ({"price_in": "cheap"}, "models.large.price_in must be a number of dollars per million tokens, at least 0, not 'cheap'"),
])
def test_policy_settings_are_checked(settings, problem):
    with pytest.raises(ConfigError, match=problem):
        parse_spec("large", {"backend": "openai", **settings})


def test_unknown_backend_option_is_named():
    with pytest.raises(ConfigError, match="unknown option.s. temprature; the openai backend takes"
                                          " model, base_url, api_key, structured_output, headers"):
        OpenAIBackend.vet_options(model="m", temprature=0.2)
    with pytest.raises(ConfigError, match="structured_output must be one of 'json_schema',"
                                          " 'json_object', 'none', not 'grammar'"):
        OpenAIBackend(model="m", structured_output="grammar")


def test_one_backend_serves_one_event_loop_after_another(server):
    """A sync pipeline runs a loop per step: the backend's connections must not outlive theirs."""
    m = model(server)
    first = asyncio.run(m.chat(USER, max_tokens=5))
    second = asyncio.run(m.chat(USER + [{"role": "user", "content": "Again?"}], max_tokens=5))
    run(using(m, asyncio.sleep(0)))
    assert first.text and second.text and len(server.requests) == 2


def test_a_redirect_is_followed_as_the_sdk_followed_it(server):
    server.push((307, {"location": "/v1/chat/completions"}))
    m = model(server)
    response = run(using(m, m.chat(USER, max_tokens=5)))
    assert response.text.startswith("answer ")
    assert [r["behaviour"] for r in server.requests] == ["status", "ok"]


def test_the_fake_server_stops_quietly_with_a_connection_still_open(tmp_path):
    """A client that keeps its connection alive (as the openai SDK does) does not leave
    "Task was destroyed but it is pending!" on the test's stderr when the server stops."""
    import subprocess
    import sys

    script = ("import http.client\n"
              "from atk_core.testing import FakeOpenAIServer\n"
              "with FakeOpenAIServer() as server:\n"
              "    c = http.client.HTTPConnection('127.0.0.1', server.port)\n"
              "    c.request('POST', '/v1/chat/completions', headers={'Content-Type': 'application/json'},\n"
              "              body=b'{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}')\n"
              "    assert c.getresponse().status == 200\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_an_answer_that_is_not_json_says_where_whole(tmp_path):
    """json's own message stops at "at" ("Invalid control character at"); the reason kept in
    failures.jsonl and shown to the model on a retry says where."""
    with FakeOpenAIServer(answer=lambda text, payload: '{"answer": "two\nlines"}') as server:
        m = model(server)
        response = run(using(m, m.chat(USER, json_schema={"type": "object"})))
    assert response.parse_error == "the answer is not valid JSON: Invalid control character at line 1 column 16"
