"""Fixtures shared by the core's tests and every plugin's tests."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


def plugin_projects() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))


@pytest.fixture(scope="session")
def installed_python(tmp_path_factory) -> Path:
    """The python of a fresh venv holding atk-core and every plugin, installed from wheels.

    Editable installs hide missing package data; a wheel does not. Built once
    per test session and shared by the tests that need it.
    """
    from atk_core.testing import build_wheel, make_venv

    root = tmp_path_factory.mktemp("wheels")
    wheels = [build_wheel(ROOT, root / "dist")]
    wheels += [build_wheel(project, root / "dist") for project in plugin_projects()]
    # llama-cpp-python (atk-backend-llamacpp) compiles unless pip's cache holds
    # the wheel; a native build crashes on some CPUs, so build it portable.
    env = dict(os.environ)
    env.setdefault("CMAKE_ARGS", "-DGGML_NATIVE=OFF")
    return make_venv(root / "venv", wheels, env=env)
