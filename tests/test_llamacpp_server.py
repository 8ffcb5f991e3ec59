"""atk's built-in ``openai`` backend against llama.cpp's real OpenAI-compatible server.

The server (``python -m llama_cpp.server``, from llama-cpp-python[server])
serves the bundled SmolLM2-135M-Instruct on 127.0.0.1 and takes no API key.
It is started once per test session (the ``llama_server`` fixture in conftest.py).
"""

import asyncio
import json
import os

import pytest

from atk_core.models import FatalError, Model, parse_spec, schema_problem
from atk_core.models.openai import OpenAIBackend
from llama_server import MODEL_ALIAS

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 24}, "country": {"type": "string", "maxLength": 24}},
    "required": ["city", "country"],
}
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(autouse=True)
def no_openai_key(monkeypatch):
    # The point is that no key is needed: make sure none leaks in from the environment.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def model_for(base_url, **options) -> Model:
    policy = {k: options.pop(k) for k in ("max_retries", "retry_base_delay", "timeout") if k in options}
    spec = parse_spec("large", {"backend": "openai", "base_url": base_url, "model": MODEL_ALIAS,
                                **options, **policy})
    return Model(spec, OpenAIBackend(**spec.options))


def ask(model, method, *args, **kwargs):
    async def call():
        try:
            return await getattr(model, method)(*args, **kwargs)
        finally:
            await model.aclose()

    return asyncio.run(call())


def test_the_server_answers_without_a_key(llama_server):
    import urllib.request

    assert "OPENAI_API_KEY" not in os.environ
    with urllib.request.urlopen(f"{llama_server}/models", timeout=10) as response:
        listed = json.loads(response.read())
    assert MODEL_ALIAS in [entry["id"] for entry in listed["data"]]


def test_chat_mode(llama_server):
    model = model_for(llama_server)
    response = ask(model, "chat", QUESTION, temperature=0.0, max_tokens=12, seed=1)
    assert response.text.strip()
    assert response.finish_reason in ("stop", "length")
    assert response.usage.prompt_tokens > 0 and 0 < response.usage.completion_tokens <= 12
    assert model.sent == 1 and model.retries == 0


def test_completion_mode(llama_server):
    model = model_for(llama_server)
    response = ask(model, "complete", "The capital of France is", temperature=0.0, max_tokens=8, seed=1)
    assert response.text.strip()
    assert response.usage.completion_tokens <= 8


def test_structured_output_with_the_json_object_style(llama_server):
    model = model_for(llama_server, structured_output="json_object")
    messages = [{"role": "user", "content": "Name a capital city and its country, as JSON."}]
    response = ask(model, "chat", messages, json_schema=SCHEMA, temperature=0.7, seed=3, max_tokens=96)
    assert response.parse_error is None, response.text
    assert schema_problem(response.parsed, SCHEMA) is None
    assert response.parsed == json.loads(response.text)


def test_structured_completion_through_a_grammar_in_extra(llama_server):
    # The server's /v1/completions ignores response_format; its own `grammar`
    # field (GBNF, passed through `extra`) constrains a completion instead.
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    model = model_for(llama_server, structured_output="json_object")
    response = ask(model, "complete", "A capital city and its country as JSON: ", json_schema=SCHEMA,
                   extra={"grammar": json_schema_to_gbnf(json.dumps(SCHEMA))},
                   temperature=0.7, seed=3, max_tokens=96)
    assert response.parse_error is None, response.text
    assert schema_problem(response.parsed, SCHEMA) is None


def test_the_default_json_schema_style_fails_clearly_after_bounded_retries(llama_server):
    # llama.cpp's server refuses OpenAI's {"type": "json_schema"} with an HTTP 500.
    # A 500 looks transient, so the core retries — a bounded number of times —
    # and, since nothing has ever worked, stops the run with the server's reason.
    model = model_for(llama_server, max_retries=2, retry_base_delay=0.05, timeout=60)
    with pytest.raises(FatalError) as caught:
        ask(model, "chat", QUESTION, json_schema=SCHEMA, temperature=0.0, max_tokens=16)
    message = str(caught.value)
    assert "gave up after 3 attempts" in message
    assert "HTTP 500" in message and "json_object" in message  # the server's own reason
    assert model.retries == 2


def test_factual_qa_runs_on_the_server_through_the_openai_backend(llama_server, tmp_path):
    """The whole pipeline, both roles on llama.cpp's server, through `atk run`, no key."""
    from atk_core.testing import read_jsonl, run_cli

    assert run_cli("init", "factual-qa", "--samples", cwd=tmp_path).returncode == 0
    role = (f"{{backend: openai, base_url: '{llama_server}', model: {MODEL_ALIAS},"
            " structured_output: json_object, concurrency: 1, timeout: 600}")
    result = run_cli(
        "run", "factual-qa.yaml", "--set", f"models.small={role}", "--set", f"models.large={role}",
        "--set", "use_subset=true", "--set", "subset_size=2", "--set", "question_votes=1",
        "--set", "max_tokens=400", "--progress", "jsonl", cwd=tmp_path, timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    output = tmp_path / "output"
    pairs = read_jsonl(output / "qa_pairs.jsonl")
    sharegpt = read_jsonl(output / "conversations.sharegpt.jsonl")
    messages = read_jsonl(output / "conversations.messages.jsonl")
    assert pairs and all(p["question"].strip() and p["answer"].strip() for p in pairs)
    assert len(sharegpt) == len(messages) >= 1
    for conversation in messages:
        roles = [m["role"] for m in conversation["messages"]]
        assert roles[0] == "system" and roles[1:] == ["user", "assistant"] * ((len(roles) - 1) // 2)
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["models"]["large"]["identity"] == {
        "backend": "openai", "model": MODEL_ALIAS, "endpoint": llama_server}
    assert manifest["models"]["large"]["requests_sent"] > 0


def test_an_estimate_holds_what_the_run_then_costs_on_the_server(llama_server, tmp_path):
    """`atk run --estimate` on documents nothing has seen, then the run itself, on llama.cpp's
    server: the requests, tokens and cost the run reports are inside the estimate's ranges."""
    from pathlib import Path

    from atk_core.testing import run_cli, write_config

    documents = Path(__file__).resolve().parent / "unseen_costs"
    role = {"backend": "openai", "base_url": llama_server, "model": MODEL_ALIAS,
            "structured_output": "json_object", "concurrency": 1, "timeout": 600,
            "price_in": 0.15, "price_out": 0.6}
    config = write_config(tmp_path / "costs.yaml", "factual-qa", input_dir=str(documents),
                          output_dir=str(tmp_path / "output"), models={"small": role, "large": role},
                          question_votes=1, max_tokens=400)
    estimated = run_cli("run", config, "--estimate", "--json", cwd=tmp_path)
    assert estimated.returncode == 0, estimated.stderr
    estimate = json.loads(estimated.stdout)
    assert not (tmp_path / "output").exists()

    result = run_cli("run", config, "--progress", "jsonl", cwd=tmp_path, timeout=1800)
    # A small model may leave no conversation standing (exit 1, said in one line); the bill
    # is in the manifest either way.
    assert result.returncode == 0 or "no conversation survived" in result.stderr, result.stderr
    models = json.loads((tmp_path / "output" / "manifest.json").read_text())["models"]
    sent = sum(m["requests_sent"] for m in models.values())
    prompt = sum(m["usage_sent"]["prompt_tokens"] for m in models.values())
    completion = sum(m["usage_sent"]["completion_tokens"] for m in models.values())
    cost = sum(m["cost_sent"] for m in models.values())
    rows = estimate["steps"]

    def span(field):
        return sum(r[field][0] for r in rows), sum(r[field][1] for r in rows)

    low, high = estimate["total"]["requests"]
    assert low <= sent <= high, (sent, estimate)
    assert span("prompt_tokens")[0] <= prompt <= span("prompt_tokens")[1], (prompt, estimate)
    assert span("completion_tokens")[0] <= completion <= span("completion_tokens")[1], (completion, estimate)
    low, high = estimate["total"]["cost"]
    assert low <= cost <= high, (cost, estimate)


def test_atk_eval_tells_a_model_with_the_passage_from_one_without(llama_server, tmp_path):
    """The exam tells a model that has the facts from one that does not: the embedded model
    knows nothing of these made-up documents, and reads them off the passage in open book."""
    from atk_core.testing import run_cli
    from eval_exam import ITEMS, write_exam

    exam = write_exam(tmp_path / "run")
    result = run_cli("eval", exam, "--open-book", "--model", "small=openai:" + MODEL_ALIAS,
                     "--set", f"models.small.base_url={llama_server}", "--set", "models.small.api_key=none",
                     "--set", "max_tokens=60", cwd=tmp_path, timeout=1800)
    assert result.returncode == 0, result.stderr
    report = json.loads((exam.parent / "eval" / "eval.json").read_text())
    closed, opened = report["models"]["small"]["closed"], report["models"]["small"]["open"]
    assert closed["total"] == opened["total"] == len(ITEMS)
    # Clearly above: the open-book interval lies wholly above the closed-book accuracy.
    assert opened["accuracy"] - closed["accuracy"] >= 0.25, (closed, opened)
    assert opened["interval"][0] > closed["accuracy"], (closed, opened)
    answers = [json.loads(line) for line in (exam.parent / "eval" / "answers.jsonl").read_text().splitlines()]
    assert all(a["answer"] for a in answers if a["book"] == "open")  # it did answer
