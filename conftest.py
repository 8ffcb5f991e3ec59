"""Fixtures shared by the core's tests and every plugin's tests."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


# A test that needs one of these is slow: it starts a real peer (llama.cpp's server, a
# Chromium, a Ray cluster) or builds wheels into fresh venvs. Such tests are marked ``slow``:
# ``pytest`` alone runs the fast lane; scripts/test.sh (and CI) run every test.
SLOW_FIXTURES = {"installed_python", "atk_wheels", "llama_server", "browser", "ray_cluster",
                 "generated"}
# Slow too: the tests of `atk serve` as a server process (its timeouts are real seconds),
# and runs killed midway and resumed (they wait for the kill).
SLOW_MODULES = {"test_serve_api.py", "test_serve_security.py", "test_serve_second_probe.py"}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """The fast lane runs on two processes (pyproject's -n 2); a run that selects slow tests
    runs them one at a time: two llama.cpp servers or Ray clusters on two cores slow each
    other tenfold."""
    marks = config.getoption("markexpr", "") or ""
    if "slow" in marks.replace("not slow", "") and getattr(config.option, "numprocesses", None):
        config.option.numprocesses = 0
        config.option.dist = "no"


def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        if (SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                or item.path.name in SLOW_MODULES or "kill" in item.name):
            item.add_marker(slow)


@pytest.fixture(scope="session", autouse=True)
def llamacpp_seats(tmp_path_factory):
    """The folder where processes running the embedded model say so (see the llamacpp
    backend's seats.py): one of this session's own, not the system's temporary folder.
    Subprocesses the tests start inherit it."""
    folder = tmp_path_factory.mktemp("llamacpp-seats")
    before = os.environ.get("ATK_LLAMACPP_SEATS")
    os.environ["ATK_LLAMACPP_SEATS"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("ATK_LLAMACPP_SEATS", None)
    else:
        os.environ["ATK_LLAMACPP_SEATS"] = before


def plugin_projects() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))


@pytest.fixture(scope="session")
def atk_wheels(tmp_path_factory) -> dict[str, Path]:
    """The wheels of atk-core and of every plugin, by distribution name (atk-core,
    atk-pipeline-factual, ...): built once per test session."""
    from atk_core.testing import build_wheel

    root = tmp_path_factory.mktemp("dist")
    wheels = {"atk-core": build_wheel(ROOT, root)}
    wheels.update({project.name: build_wheel(project, root) for project in plugin_projects()})
    return wheels


@pytest.fixture(scope="session")
def installed_python(tmp_path_factory, atk_wheels) -> Path:
    """The python of a fresh venv holding atk-core and every plugin, installed from wheels.

    Editable installs hide missing package data; a wheel does not. Built once
    per test session and shared by the tests that need it.
    """
    from atk_core.testing import make_venv

    root = tmp_path_factory.mktemp("wheels")
    wheels = list(atk_wheels.values())
    # llama-cpp-python (atk-backend-llamacpp) compiles unless pip's cache holds
    # the wheel; a native build crashes on some CPUs, so build it portable.
    env = dict(os.environ)
    env.setdefault("CMAKE_ARGS", "-DGGML_NATIVE=OFF")
    return make_venv(root / "venv", wheels, env=env)
