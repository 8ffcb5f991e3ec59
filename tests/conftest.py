"""Fixtures of the core's tests: throw-away plugin distributions and the real CLI."""

import pytest

from atk_core.testing import PluginSite, run_cli
from support import ANSWERS_PIPELINE, DEMO_PIPELINE


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
