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
import textwrap
import tomllib
from pathlib import Path

import pytest

from atk_core import hookspecs
from atk_core.engine.plugins import HOOK_NAMES
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


def test_the_api_page_lists_every_public_name():
    import atk_core
    import atk_core.testing

    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)", page))
    public = set(atk_core.__all__) | set(atk_core.testing.__all__)
    assert sorted(public - listed) == []


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


def yaml_examples():
    for page in PAGES:
        for marker, language, body in blocks(page):
            if language == "yaml":
                yield page, marker, textwrap.dedent(body)


@pytest.mark.parametrize("page, marker, text", list(yaml_examples()),
                         ids=[f"{p.relative_to(ROOT)}:{i}" for i, (p, _, _) in enumerate(yaml_examples())])
def test_every_yaml_example_is_what_atk_reads(page, marker, text, tmp_path, monkeypatch):
    """A YAML example is a prompt (a list) or a config: configs are loaded as `atk run` loads
    them, and checked against the pipeline they name when it is installed."""
    import yaml

    from atk_core.engine.config import config_from_text
    from atk_core.engine.plugins import get_registry
    from atk_core.engine.prompts import parse_prompt
    from atk_core.engine.runner import plan

    data = yaml.safe_load(text)
    if isinstance(data, list):
        parse_prompt(text, "example", f"{page.name}.yaml")
        return
    assert isinstance(data, dict) and "pipeline" in data, f"{page.name}: {text[:80]}"
    config = config_from_text(text, page.name, environ={"OPENAI_API_KEY": "sk-docs-example"})
    if config.pipeline not in get_registry().names("pipeline"):
        return  # a pipeline the page builds (glossary...): its own example runs it
    monkeypatch.chdir(tmp_path)
    if config.prompt_overrides:
        Path(config.prompt_overrides).mkdir(parents=True)
    plan(config, values=False)


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
