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


def test_serve_ships_its_page_and_names_its_extra(installed_python, tmp_path):
    """The page's files are package data in the wheel; without the extra, one line says what to install."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ATK_LOAD_PLUGINS")}
    check = ("from importlib.resources import files\n"
             "static = files('atk_core.serve') / 'static'\n"
             "import json; print(json.dumps(sorted(p.name for p in static.iterdir())))\n"
             "import importlib.util; print(importlib.util.find_spec('fastapi') is not None)")
    result = subprocess.run([str(installed_python), "-c", check], capture_output=True, text=True,
                            env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listing, has_fastapi = result.stdout.splitlines()
    assert {"app.html", "app.css", "app.js"} <= set(json.loads(listing))
    if has_fastapi == "False":  # the wheel's own dependencies do not bring the web stack
        result = run_cli("serve", "--port", "0", "--runs-dir", tmp_path / "runs",
                         python=installed_python, env=env, cwd=tmp_path)
        assert result.returncode == 2
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "pip install 'atk-core[serve]'" in lines[0], lines
