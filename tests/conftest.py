"""Fixtures of the core's tests: throw-away plugin distributions and the real CLI."""

import pytest

from atk_core.testing import PluginSite, run_cli
from llama_server import server_available, start_llama_server, stop_llama_server
from support import ANSWERS_PIPELINE, DEMO_PIPELINE


@pytest.fixture(scope="session")
def llama_server():
    """The base_url (…/v1) of llama.cpp's own server with the bundled model, one per session."""
    reason = server_available()
    if reason:  # the README's test command installs it: its absence is a failure, not a skip
        pytest.fail(f"llama.cpp server not available: {reason}")
    process, base_url = start_llama_server()
    try:
        yield base_url
    finally:
        stop_llama_server(process)


@pytest.fixture
def site(tmp_path) -> PluginSite:
    return PluginSite(tmp_path / "site")


@pytest.fixture
def atk():
    return run_cli


@pytest.fixture
def demo_site(site) -> PluginSite:
    site.add("atk-pipeline-demo", DEMO_PIPELINE, {"demo": "demo_pipeline"}, version="2.3")
    return site


@pytest.fixture
def answers_site(site) -> PluginSite:
    site.add("atk-pipeline-answers", ANSWERS_PIPELINE, {"answers": "answers_pipeline"})
    return site
