"""`atk run` (a real subprocess) with the anthropic backend against FakeAnthropicServer: the
outputs the openai backend writes with the same scripted answers; the cached tokens on the
live cost line, in the manifest and in `--estimate`."""

import json
import os

import pytest

from atk_core.testing import FakeAnthropicServer, FakeOpenAIServer, config_error, read_jsonl, run_cli
from anthropic_fakes import (
    CACHE_MIN_TOKENS, DATA_FILES, anthropic_answer, anthropic_role, config, openai_answer, openai_role,
)

def atk(*args, cwd):
    result = run_cli(*args, cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_a_run_writes_what_the_openai_backend_writes_and_shows_what_the_cache_saved(tmp_path):
    with FakeOpenAIServer(answer=openai_answer) as openai, \
            FakeAnthropicServer(answer=anthropic_answer, cache_min_tokens=CACHE_MIN_TOKENS) as anthropic:
        atk("run", config(tmp_path, "openai", openai_role(openai)), cwd=tmp_path)
        run = atk("run", config(tmp_path, "anthropic", anthropic_role(anthropic)), "--progress", "console",
                  "--progress", "jsonl", cwd=tmp_path)
        assert len(anthropic.requests) == len(openai.requests) > 0
    for name in DATA_FILES:
        assert (tmp_path / "anthropic" / name).read_bytes() == (tmp_path / "openai" / name).read_bytes(), name
    assert read_jsonl(tmp_path / "anthropic" / "qa_pairs.jsonl")

    manifest = json.loads((tmp_path / "anthropic" / "manifest.json").read_text())
    large = manifest["models"]["large"]
    use = large["usage_sent"]
    assert use["cache_read_tokens"] > 0 and use["cache_write_tokens"] > 0
    assert use["cache_read_tokens"] + use["cache_write_tokens"] < use["prompt_tokens"]
    uncached = use["prompt_tokens"] - use["cache_read_tokens"] - use["cache_write_tokens"]
    expected = (uncached * 3.0 + use["cache_read_tokens"] * 0.3 + use["cache_write_tokens"] * 3.75
                + use["completion_tokens"] * 15.0) / 1_000_000
    assert abs(large["cost_sent"] - expected) < 1e-9
    # The live cost line and the machines' events carry the cached tokens too.
    events = read_jsonl(tmp_path / "anthropic" / "progress.jsonl")
    assert events[-1]["usage"]["large"]["cache_read_tokens"] == use["cache_read_tokens"]
    assert " cached), $" in run.stdout + run.stderr
    assert f"{use['cache_read_tokens']} read from the provider's cache" in run.stderr


def test_the_estimate_counts_cached_prompt_tokens_at_the_cache_price(tmp_path):
    with FakeAnthropicServer(answer=anthropic_answer, cache_min_tokens=CACHE_MIN_TOKENS) as anthropic:
        cached = anthropic_role(anthropic, cache_min_tokens=CACHE_MIN_TOKENS)
        full = dict(cached, price_cache_read=3.0, price_cache_write=3.0)
        estimates = {}
        for name, role in (("cached", cached), ("full", full)):
            result = atk("run", config(tmp_path, name, role), "--estimate", "--json", cwd=tmp_path)
            estimates[name] = json.loads(result.stdout)
        assert anthropic.requests == []  # an estimate sends nothing
        atk("run", config(tmp_path, "cached", cached), cwd=tmp_path)
    rows = [r for r in estimates["cached"]["steps"] if r.get("cache_read_tokens_if_all_survive")]
    assert rows, estimates["cached"]["steps"]
    for row in rows:
        assert row["cache_read_tokens_if_all_survive"] + row["cache_write_tokens_if_all_survive"] \
            < row["prompt_tokens_if_all_survive"]
    low, high = estimates["cached"]["total"]["cost"]
    assert high < estimates["full"]["total"]["cost"][1]  # cache reads are cheaper than price_in
    assert any("Prompt caching" in line for line in estimates["cached"]["how"])
    # The run itself: its cost within the estimate's range.
    manifest = json.loads((tmp_path / "cached" / "manifest.json").read_text())
    cost = sum(m["cost_sent"] for m in manifest["models"].values())
    assert low <= cost <= high, (low, cost, high)


@pytest.mark.parametrize("options, problem", [
    ({"model": None}, "backend 'anthropic': missing option(s) model (the anthropic backend needs model)"),
    ({"structured_output": "xml"}, "structured_output must be one of 'tool', 'json_schema', 'none', not 'xml'"),
    ({"cache_ttl": "1d"}, "cache_ttl must be one of '5m', '1h', not '1d'"),
    ({"api_key": None}, "backend 'anthropic' could not start: no API key: set api_key"),
])
def test_a_config_mistake_is_one_line_and_nothing_is_written(tmp_path, options, problem):
    role = {k: v for k, v in {**anthropic_role(FakeAnthropicServer()), **options}.items() if v is not None}
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    line = config_error(config(tmp_path, "refused", role), env=env, cwd=tmp_path)
    assert problem in line and "test-key" not in line
    assert not (tmp_path / "refused").exists()
