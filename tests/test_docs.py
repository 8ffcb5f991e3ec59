"""The docs cannot drift: every hook is documented with its exact signature, and every
code example runs.

Examples are run the way a reader would use them: a block after
``<!-- file: PATH -->`` is written to PATH in a fresh folder; if a
``pyproject.toml`` was written, its ``atk`` entry points are installed there
(as a dist-info folder on PYTHONPATH); then the page's Python blocks run, in
order, as one script, and its shell blocks marked ``<!-- run -->`` run with
``atk`` on the PATH.
"""

import inspect
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from atk_core import hookspecs
from atk_core.plugins import HOOK_NAMES
from atk_core.testing import PluginSite

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
BLOCK = re.compile(r"(?:<!-- (file: [^>]+|run) -->\n)?```(\w*)\n(.*?)```", re.S)


def blocks(page: Path):
    for match in BLOCK.finditer(page.read_text(encoding="utf-8")):
        marker, language, body = match.groups()
        yield (marker or "").strip(), language, body


def signature(name: str) -> str:
    return f"{name}{inspect.signature(getattr(hookspecs, name))}"


def test_every_hook_is_in_the_reference_with_its_exact_signature():
    reference = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (atk_\w+\(.*\))$", reference, re.M)
    assert sorted(headings) == sorted(signature(name) for name in HOOK_NAMES)


def test_docs_name_no_hook_that_does_not_exist():
    for page in PAGES:
        named = set(re.findall(r"\b(atk_register_\w+)\(", page.read_text(encoding="utf-8")))
        assert named <= set(HOOK_NAMES), (page.name, named - set(HOOK_NAMES))


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_example_runs(page, tmp_path):
    scripts, commands = [], []
    for marker, language, body in blocks(page):
        if marker.startswith("file:"):
            target = tmp_path / marker[len("file:"):].strip()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
        elif language == "python":
            scripts.append(body)
        elif marker == "run":
            commands.append(body)
    env = _install_entry_points(tmp_path)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    if scripts:
        result = subprocess.run([sys.executable, "-c", "\n".join(scripts)], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{page.name}:\n{result.stderr}"
    for command in commands:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{page.name}: {command}\n{result.stderr}"
    if page == ROOT / "README.md":  # its 20-line plugin, used as the README says
        for command in ("atk init shout", "atk run shout.yaml"):
            result = subprocess.run(command.split(), cwd=tmp_path, env=env, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
        assert (tmp_path / "output" / "shout.txt").read_text() == "HELLO"


def _install_entry_points(folder: Path) -> dict:
    site = PluginSite(folder)
    pyproject = folder / "pyproject.toml"
    if pyproject.exists():
        project = tomllib.loads(pyproject.read_text())["project"]
        site.add(project["name"], {}, project.get("entry-points", {}).get("atk", {}),
                 version=project["version"])
    env = site.env()
    env.pop("ATK_LOAD_PLUGINS", None)
    return env
