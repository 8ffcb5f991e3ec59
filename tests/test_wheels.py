"""Every package installs from its wheel into a fresh venv and works there."""

import json
import os
from pathlib import Path

from atk_core.testing import run_cli


def test_every_plugin_loads_from_its_wheel(installed_python, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ATK_LOAD_PLUGINS")}
    result = run_cli("plugins", "--json", python=installed_python, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plugins = json.loads(result.stdout)
    assert [p for p in plugins if p["error"]] == []
    distributions = {p["distribution"] for p in plugins}
    root = Path(__file__).resolve().parents[1]
    expected = {p.parent.name for p in (root / "plugins").glob("*/pyproject.toml")} | {"atk-core"}
    assert distributions == expected
    # The core's console script is installed too.
    script = installed_python.parent / "atk"
    assert script.exists()
