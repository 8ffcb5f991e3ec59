"""One scripted model for both fake servers, the settings of a role on each, and a factual-qa
run's config.

The answers are domain-expert's test double (``expert_fakes``, beside that package's
tests), which answers the prompts of every pipeline of the family plausibly from the
text it is given: the same answers through FakeOpenAIServer and FakeAnthropicServer.
"""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

from atk_core.testing import TWO_DOCUMENTS, FakeAnthropicServer, write_config, write_documents


def _expert_fakes():
    """domain-expert's test double, loaded from its file (its folder stays off sys.path)."""
    path = Path(__file__).resolve().parents[2] / "atk-pipeline-expert" / "tests" / "expert_fakes.py"
    spec = importlib.util.spec_from_file_location("anthropic_tests_expert_fakes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


respond = _expert_fakes().respond

# Short enough for the test documents' passages to be cached (a token is a word here).
CACHE_MIN_TOKENS = 40


def openai_answer(text, payload):
    return respond(SimpleNamespace(messages=payload["messages"]))


def anthropic_answer(text, params):
    return respond(SimpleNamespace(messages=FakeAnthropicServer.messages_of(params)))


def anthropic_role(server, **options) -> dict:
    return {"backend": "anthropic", "model": "claude-test", "base_url": server.url, "api_key": "test-key",
            "retry_base_delay": 0.01, "price_in": 3.0, "price_out": 15.0, "price_cache_read": 0.3,
            "price_cache_write": 3.75, **options}


def openai_role(server, **options) -> dict:
    return {"backend": "openai", "model": "gpt-test", "base_url": server.url, "api_key": "test-key",
            "retry_base_delay": 0.01, **options}


DATA_FILES = ("qa_pairs.jsonl", "conversations.sharegpt.jsonl", "conversations.messages.jsonl",
              "failures.jsonl")


def config(tmp_path, name, role):
    documents = write_documents(tmp_path / "documents", TWO_DOCUMENTS)
    return write_config(tmp_path / f"{name}.yaml", "factual-qa", input_dir=str(documents),
                        output_dir=str(tmp_path / name), models={"small": role, "large": role},
                        rewrite_conversations=True)
