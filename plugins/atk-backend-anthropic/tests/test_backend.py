"""The anthropic backend against FakeAnthropicServer (a real HTTP server on 127.0.0.1), through
the core's ``Model`` as a pipeline gets it: what it sends, what it reads back, what the prompt
cache saves, and how the API's errors meet atk's one retry policy (beside the openai backend
meeting the same faults from FakeOpenAIServer)."""

import asyncio
import json

import pytest

from atk_core import ConfigError, FatalError, RequestError
from atk_core.testing import FakeAnthropicServer, FakeOpenAIServer, make_model
from atk_backend_anthropic import AnthropicBackend
from anthropic_fakes import anthropic_role, openai_role

SYSTEM = "You write quiz questions about facts. Reply with the question and its answer."
PASSAGE = ('Passage (from kilns.txt):\n"""\nThe lime kilns at Hartsop burned limestone from the quarry'
           ' above the village. Each kiln was loaded from the top with layers of stone and coal.\n"""\n')
SCHEMA = {"type": "object", "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
          "required": ["question", "answer"]}


def about(sentence):
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PASSAGE + f"Sentence: {sentence}"}]


@pytest.fixture
def server():
    with FakeAnthropicServer(cache_min_tokens=20) as running:
        yield running


def ask(model, *calls):
    """Each ``(messages, parameters)`` asked in turn, in one event loop; the responses."""
    async def run():
        try:
            return [await model.chat(messages, **parameters) for messages, parameters in calls]
        finally:
            await model.aclose()

    return asyncio.run(run())


def test_a_chat_request_as_the_messages_api_takes_it(server):
    model = make_model(anthropic_role(server, max_tokens=300))
    (first, second) = ask(model, (about("one"), {"temperature": 0.7, "seed": 3, "max_tokens": 50,
                                                "stop": ["\n\n"]}),
                          (about("two"), {}))
    sent = [r["payload"] for r in server.requests]
    assert sent[0]["model"] == "claude-test" and sent[0]["max_tokens"] == 50
    assert sent[1]["max_tokens"] == 300  # the role's max_tokens where a request sets none
    assert sent[0]["stop_sequences"] == ["\n\n"]
    # The API (version 2026-10-21) has no temperature, top_p or seed: none is sent.
    assert not {"temperature", "top_p", "top_k", "seed"} & set(sent[0])
    assert server.requests[0]["headers"]["x-api-key"] == "test-key"
    assert server.requests[0]["headers"]["anthropic-version"] == "2026-10-21"
    # The system prompt is the request's system; the passage is a block of its own, the end of
    # the prompt cached (a breakpoint on each); the sentence after it is not.
    assert sent[0]["system"] == [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    assert sent[0]["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": PASSAGE, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Sentence: one"}]}]
    assert first.text.startswith("answer ") and first.finish_reason == "stop"
    assert model.identity() == {"backend": "anthropic", "model": "claude-test", "endpoint": server.url}
    assert "test-key" not in json.dumps(model.identity())


def test_the_older_api_version_takes_temperature_within_its_range(server):
    model = make_model(anthropic_role(server, api_version="2023-06-01"))
    ask(model, (about("one"), {"temperature": 1.3, "top_p": 0.9}))
    payload = server.requests[0]["payload"]
    assert (payload["temperature"], payload["top_p"]) == (1.0, 0.9)
    assert server.requests[0]["headers"]["anthropic-version"] == "2023-06-01"


def test_the_fake_refuses_what_the_api_refuses(server):
    """The server checks requests as the API does, so a backend cannot pass by luck."""
    import urllib.error
    import urllib.request

    def post(body, **headers):
        request = urllib.request.Request(server.url + "/v1/messages", json.dumps(body).encode(), headers={
            "content-type": "application/json", **headers})
        try:
            with urllib.request.urlopen(request) as reply:
                return reply.status, json.load(reply)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    good = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    keyed = {"x-api-key": "k", "anthropic-version": "2026-10-21"}
    assert post(good, **keyed)[0] == 200
    status, body = post(dict(good, temperature=0.5), **keyed)
    assert (status, body["type"], body["error"]["type"]) == (400, "error", "invalid_request_error")
    assert body["error"]["message"] == "temperature: Extra inputs are not permitted"
    assert post(dict(good, temperature=0.5), **{**keyed, "anthropic-version": "2023-06-01"})[0] == 200
    assert post(good, **{"anthropic-version": "2026-10-21"})[1]["error"]["type"] == "authentication_error"
    assert post(good, **{"x-api-key": "k"})[1]["error"]["message"] == "anthropic-version: header is required"
    five = [{"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    status, body = post(dict(good, messages=[{"role": "user", "content": five}]), **keyed)
    assert status == 400 and "A maximum of 4 blocks with cache_control" in body["error"]["message"]
    assert post(dict(good, messages=[{"role": "system", "content": "x"}]), **keyed)[0] == 400


@pytest.mark.parametrize("style", ["tool", "json_schema", "none"])
def test_structured_answers_through_the_apis_own_means(server, style):
    model = make_model(anthropic_role(server, structured_output=style))
    (response,) = ask(model, (about("one"), {"json_schema": SCHEMA}))
    payload = server.requests[0]["payload"]
    if style == "tool":  # a forced tool whose input schema is the step's
        assert payload["tools"] == [{"name": "answer", "description": "Give your answer as this tool's input.",
                                     "input_schema": SCHEMA}]
        assert payload["tool_choice"] == {"type": "tool", "name": "answer"}
    elif style == "json_schema":
        assert payload["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    else:
        assert not {"tools", "tool_choice", "output_config"} & set(payload)
    if style != "none":
        assert response.parsed == {"question": "scripted", "answer": "scripted"} and response.parse_error is None


def test_a_schema_that_is_not_an_object_goes_through_a_tool_and_back(server):
    schema = {"type": "array", "items": {"type": "string"}, "minItems": 2}
    server.answer = lambda text, params: {"value": ["first fact", "second fact"]}
    model = make_model(anthropic_role(server))
    (response,) = ask(model, (about("one"), {"json_schema": schema}))
    tool = server.requests[0]["payload"]["tools"][0]
    assert tool["input_schema"] == {"type": "object", "properties": {"value": schema}, "required": ["value"]}
    assert response.parsed == ["first fact", "second fact"]


def test_cached_tokens_are_reported_on_a_second_request_with_the_same_passage(server):
    model = make_model(anthropic_role(server))
    first, second, other = ask(model, (about("one"), {"json_schema": SCHEMA}),
                               (about("two"), {"json_schema": SCHEMA}),
                               ([about("one")[0], {"role": "user", "content": "Passage:\n\"\"\"\nA weir holds back"
                                                   " the river Lune above the old mill at Caton, and salmon"
                                                   " climb it by a fish pass.\n\"\"\"\nSentence: x"}],
                                {"json_schema": SCHEMA}))
    usage = [r.usage for r in (first, second, other)]
    # The first writes the prefix up to the passage; the second reads it and writes nothing;
    # another passage reads the prefix every request of the step shares (the tool and the
    # system prompt) and writes its own.
    assert usage[0].cache_read_tokens == 0 and usage[0].cache_write_tokens > 20
    assert usage[1].cache_read_tokens == usage[0].cache_write_tokens and usage[1].cache_write_tokens == 0
    assert usage[1].prompt_tokens == usage[0].prompt_tokens  # the same prompt, counted whole
    assert 0 < usage[2].cache_read_tokens < usage[0].cache_write_tokens
    assert usage[2].cache_write_tokens > 0
    # Priced apart: reads at price_cache_read, writes at price_cache_write.
    total = model.usage
    uncached = total.prompt_tokens - total.cache_read_tokens - total.cache_write_tokens
    assert model.cost() == pytest.approx((uncached * 3.0 + total.cache_read_tokens * 0.3
                                          + total.cache_write_tokens * 3.75 + total.completion_tokens * 15)
                                         / 1_000_000)
    assert model.summary()["usage_sent"]["cache_read_tokens"] == sum(u.cache_read_tokens for u in usage)


def test_prompt_caching_can_be_turned_off(server):
    model = make_model(anthropic_role(server, prompt_caching=False))
    first, second = ask(model, (about("one"), {}), (about("two"), {}))
    payload = server.requests[0]["payload"]
    assert payload["system"] == SYSTEM and payload["messages"][0]["content"] == PASSAGE + "Sentence: one"
    assert second.usage.cache_read_tokens == 0 and model.summary()["usage_sent"].keys() == {
        "prompt_tokens", "completion_tokens"}


def test_a_one_hour_cache_is_asked_for_as_the_api_says(server):
    model = make_model(anthropic_role(server, cache_ttl="1h"))
    ask(model, (about("one"), {}))
    assert server.requests[0]["payload"]["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


def test_a_cut_off_answer_says_so(server):
    server.push("length")
    model = make_model(anthropic_role(server))
    (response,) = ask(model, (about("one"), {"json_schema": SCHEMA}))
    assert response.finish_reason == "length"
    assert "cut off: finish_reason=length" in response.parse_error


# -- errors: each as the openai backend meets its equivalent ------------------------------------


def _outcome(server, model_settings, fault):
    server.push(*fault)
    model = make_model(model_settings)
    try:
        (response,) = ask(model, (about("one"), {}))
        result = "answered"
    except Exception as error:  # the outcome is the point
        result = type(error).__name__
    return result, model.retries, [r["behaviour"] for r in server.requests]


@pytest.mark.parametrize("anthropic_fault, openai_fault, outcome", [
    ((529,), (503,), ("answered", 1, ["status", "ok"])),  # overloaded: retried
    ((529,) * 3, (503,) * 3, ("FatalError", 2, ["status"] * 3)),  # never works: the run stops
    ((400,), (400,), ("RequestError", 0, ["status"])),  # refused: the sample fails, not retried
    ((401,), (401,), ("FatalError", 0, ["status"])),  # a bad key: the run stops at once
    ((500,), (500,), ("answered", 1, ["status", "ok"])),
    (("malformed", "drop"), ("malformed", "drop"), ("answered", 2, ["malformed", "drop", "ok"])),
])
def test_errors_meet_the_retry_policy_as_the_openai_backends_do(anthropic_fault, openai_fault, outcome):
    with FakeAnthropicServer() as anthropic, FakeOpenAIServer() as openai:
        found = _outcome(anthropic, anthropic_role(anthropic, max_retries=2), anthropic_fault)
        expected = _outcome(openai, openai_role(openai, max_retries=2), openai_fault)
    assert found == expected == outcome


@pytest.mark.parametrize("header", [{"retry-after": "0.3"}, {"retry-after-ms": "300"}])
def test_a_rate_limit_waits_as_long_as_the_api_asks(server, header):
    server.push((429, header))
    model = make_model(anthropic_role(server, retry_base_delay=0))
    (response,) = ask(model, (about("one"), {}))
    first, second = server.requests
    assert response.text.startswith("answer ") and model.retries == 1
    assert second["time"] - first["time"] >= 0.3


def test_the_apis_words_reach_the_error(server):
    server.push(400)
    model = make_model(anthropic_role(server))
    with pytest.raises(RequestError, match=r"HTTP 400: invalid_request_error: injected HTTP 400"):
        ask(model, (about("one"), {}))
    unknown = FakeAnthropicServer(models=["claude-known"]).start()
    try:
        with pytest.raises(FatalError, match=r"HTTP 404: not_found_error: model: claude-test"):
            ask(make_model(anthropic_role(unknown)), (about("one"), {}))
    finally:
        unknown.stop()


def test_a_request_that_never_answers_times_out_and_is_retried(server):
    server.push("hang")
    model = make_model(anthropic_role(server, timeout=2.0))
    (response,) = ask(model, (about("one"), {}))
    assert response.text.startswith("answer ")
    assert [r["behaviour"] for r in server.requests] == ["hang", "ok"]


def test_options_are_vetted_before_anything_starts(monkeypatch):
    with pytest.raises(ConfigError, match=r"missing option\(s\) model"):
        AnthropicBackend.vet_options()
    with pytest.raises(ConfigError, match="structured_output must be one of"):
        AnthropicBackend.vet_options(model="m", structured_output="xml")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) temprature"):
        AnthropicBackend.vet_options(model="m", temprature=0.2)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ValueError, match="no API key"):
        AnthropicBackend(model="m")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    assert AnthropicBackend(model="m").http_headers["x-api-key"] == "from-env"


def test_completion_requests_are_refused_plainly():
    model = make_model({"backend": "anthropic", "model": "m", "api_key": "k"})
    assert AnthropicBackend.modes == ("chat",)
    with pytest.raises(RequestError, match="does not support completion"):
        asyncio.run(model.complete("Once upon a time"))
    with pytest.raises(FatalError, match="cannot reach http://127.0.0.1:9"):  # nothing listens there
        asyncio.run(make_model({"backend": "anthropic", "model": "m", "api_key": "k", "max_retries": 0,
                                "base_url": "http://127.0.0.1:9"}).chat(about("x")))
