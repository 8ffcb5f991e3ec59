"""The shape of the code, checked: plugins use the public API only, and imports only go down.

- Every module of every package in ``plugins/``, every scaffold ``atk new``
  writes, and every Python example in ``docs/`` and the README imports from
  atk-core only what ``atk_core`` and ``atk_core.testing`` export. A plugin
  written that way keeps working while atk-core's insides change.
- Inside ``atk_core``, a module imports only modules below it in ``LAYERS``
  (a module-level import or one inside a function alike): no circles, and
  no lower layer reaching up for something of a higher one. A new module
  must be given its place here.
"""

import ast
import re
import textwrap
from pathlib import Path

import pytest

import atk_core
import atk_core.testing
from atk_core.commands.scaffold import fields_for

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = {"atk_core": set(atk_core.__all__), "atk_core.testing": set(atk_core.testing.__all__)}

# Lowest first. Within atk_core, a module may import only modules listed before it.
LAYERS = [
    # the folders by audience (their __init__ says what lives there; it imports nothing)
    "engine", "toolkit", "commands",
    # foundations: they import nothing of atk's
    "version", "errors", "engine.redaction", "engine.resources", "hookspecs", "toolkit.files", "engine.confinement", "engine.progress", "engine.store",
    "engine.context", "engine.policy", "toolkit.schemas", "toolkit.seeds", "toolkit.tokens",
    # values, package data, inputs
    "toolkit.constraints", "toolkit.fields", "toolkit.outputs", "pipeline", "engine.plugins", "engine.prompts",
    # documents: the readers (plugins, found through engine.plugins), the built-in ones, chunks
    "toolkit.html", "toolkit.documents", "toolkit.chunks", "toolkit.meaning", "toolkit.gates", "toolkit.prose",
    "toolkit.pdf", "toolkit.readers", "toolkit.scoring", "toolkit.formats",
    # models: the backend API, a role's policy, the built-in backends
    "models.base", "models.specs", "models.batches", "models.model", "models", "models.http", "models.openai", "models.scripted",
    # executors, steps and what a run records
    "engine.executors", "engine.steps", "toolkit.qa", "toolkit.selection", "toolkit.shards", "toolkit.exam", "engine.manifest", "engine.fingerprint", "engine.reporters",
    # configs, the runner, and what reads a finished run
    "evaluation.pipeline", "evaluation",
    "engine.config", "engine.compose", "engine.runner", "commands.estimate", "commands.inspection", "commands.export", "commands.scaffold",
    # the test kit
    "testing.subprocesses", "testing.questions", "testing.distributions", "testing.inputs", "testing.fake_http",
    "testing.openai_server", "testing.anthropic_server",
    "testing.running", "testing.pipelines", "testing",
    # the web interface
    "serve.folder", "serve.store", "serve.processes", "serve.guard", "serve.reporter", "serve.api_types",
    "serve.layout", "serve.vetting", "serve.outputs", "serve.runs", "serve.app", "serve",
    # the command line, and the public facade over everything
    "commands.cli", "__main__", "",
]


# -- the public API ------------------------------------------------------------------------------


def plugin_sources():
    """(label, Python text) for every plugin module, scaffold and docs example."""
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        if ".venv" in path.parts or "build" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        yield str(path.relative_to(ROOT)), text
        # Plugins that tests write into a PluginSite are plugins too.
        for number, snippet in enumerate(_embedded_plugins(text)):
            yield f"{path.relative_to(ROOT)} (embedded plugin {number + 1})", snippet
    for path in sorted((ROOT / "atk_core" / "scaffolds").rglob("*.py.tmpl")):
        kind = path.relative_to(ROOT / "atk_core" / "scaffolds").parts[0]
        text = path.read_text(encoding="utf-8")
        for key, value in fields_for(kind, "my-thing").items():
            text = text.replace("{{" + key + "}}", value)
        yield str(path.relative_to(ROOT)), text
    for page in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
        for number, block in enumerate(blocks):
            yield f"{page.relative_to(ROOT)} (example {number + 1})", block


def _embedded_plugins(text):
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "atk_core" in node.value:
            snippet = textwrap.dedent(node.value)
            try:
                ast.parse(snippet)
            except SyntaxError:
                continue
            if "import" in snippet:
                yield snippet


def non_public_imports(text):
    problems = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("atk_core.") and alias.name not in PUBLIC:
                    problems.append(f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "atk_core" or node.module.startswith("atk_core.")):
            if node.module not in PUBLIC:
                problems.append(f"from {node.module} import ...")
                continue
            missing = [a.name for a in node.names if a.name not in PUBLIC[node.module]]
            if missing:
                problems.append(f"from {node.module} import {', '.join(missing)} (not exported)")
    return problems


def test_plugins_scaffolds_and_docs_import_only_the_public_api():
    found = {label: non_public_imports(text) for label, text in plugin_sources()}
    assert len(found) > 30  # the plugins, the scaffolds and the docs were all read
    assert {label: problems for label, problems in found.items() if problems} == {}


def test_the_check_catches_a_private_import():
    assert non_public_imports("from atk_core.toolkit.files import atomic_write_jsonl") == [
        "from atk_core.toolkit.files import ..."]
    assert non_public_imports("import atk_core.engine.steps") == ["import atk_core.engine.steps"]
    assert non_public_imports("from atk_core import Pipeline, _LAZY") == [
        "from atk_core import _LAZY (not exported)"]
    assert non_public_imports("from atk_core import Pipeline\nfrom atk_core.testing import run_cli") == []


def test_everything_exported_exists():
    for module, names in PUBLIC.items():
        imported = __import__(module, fromlist=["x"])
        for name in sorted(names):
            assert getattr(imported, name) is not None, (module, name)


# -- layers ------------------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT / "atk_core").with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The atk_core modules ``path`` imports (relative to atk_core; "" is the package)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "atk_core" or node.module.startswith("atk_core.")):
                target = node.module.removeprefix("atk_core").lstrip(".")
            else:
                continue
            for alias in node.names:  # `from . import x` may name a module
                candidate = f"{target}.{alias.name}".lstrip(".")
                found.add(candidate if _is_module(candidate) else target)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("atk_core").lstrip(".") for a in node.names
                         if a.name == "atk_core" or a.name.startswith("atk_core."))
    # Importing a.b runs a's __init__ too, unless the importer is inside a.
    for target in list(found):
        parts = target.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            if not (name == parent or name.startswith(parent + ".")):
                found.add(parent)
    found.discard(name)
    return found


def _is_module(name: str) -> bool:
    path = ROOT / "atk_core" / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_every_module_has_a_place_in_the_layers():
    modules = {module_name(p) for p in (ROOT / "atk_core").rglob("*.py")}
    assert sorted(modules - set(LAYERS)) == []
    assert sorted(set(LAYERS) - modules) == []


def test_imports_only_go_down():
    rank = {name: index for index, name in enumerate(LAYERS)}
    upward = []
    for path in sorted((ROOT / "atk_core").rglob("*.py")):
        name = module_name(path)
        for target in sorted(imports_of(path)):
            if rank[target] >= rank[name]:
                upward.append(f"{name or 'atk_core'} imports {target or 'atk_core'}")
    assert upward == []


@pytest.mark.parametrize("source, expected", [
    ("from ..errors import ConfigError", {"errors"}),
    ("from . import context", {"engine.context"}),
    ("from .store import Store", {"engine.store"}),
    ("from ..models.base import Request", {"models.base", "models"}),
    ("def f():\n    import atk_core.models.base", {"models.base", "models"}),
    ("from atk_core import hookimpl", {""}),
])
def test_the_import_reader_sees_every_kind_of_import(source, expected, monkeypatch):
    # Read as if it were atk_core/engine/steps.py (relative imports resolve from there).
    path = ROOT / "atk_core" / "engine" / "steps.py"
    original = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source if self == path
                        else original(self, encoding=encoding))
    assert imports_of(path) == expected


def test_no_code_outside_a_pipeline_names_its_files():
    """Composition, export, inspect and serve read what a pipeline declares; so neither atk_core
    nor domain-expert (nor any other package) names a file another pipeline declares."""
    from atk_core.engine.plugins import get_registry

    sources = {}
    for path in sorted((ROOT / "atk_core").rglob("*")) + sorted((ROOT / "plugins").glob("*/atk_*/**/*")):
        if path.is_file() and path.suffix in (".py", ".js", ".html", ".tmpl", ".yaml", ".md") \
                and "__pycache__" not in path.parts:
            sources[path] = path.read_text(encoding="utf-8")
    found = []
    registry = get_registry()
    for pipeline in (registry.pipeline(name) for name in registry.names("pipeline")):
        package = pipeline.package.split(".")[0]
        for output in pipeline.outputs:
            if "*" in output.file:
                continue
            for path, text in sources.items():
                if package in path.parts:
                    continue  # a pipeline names its own files
                if re.search(rf"(?<![\w./-]){re.escape(output.file)}\b", text):
                    found.append(f"{path.relative_to(ROOT)} names {pipeline.name}'s {output.file}")
    assert found == []


def test_the_engine_does_not_ask_whether_it_is_estimating():
    """The estimate's dry run injects its policy (atk_core.engine.policy); the steps, the votes and
    the record apply whatever policy the run has, with no branch of their own for it."""
    engine = ("engine/steps.py", "engine/manifest.py", "engine/executors.py", "toolkit/qa.py",
              "toolkit/selection.py", "engine/context.py")
    asking = [name for name in engine
              if re.search(r"estimating|_estimat", (ROOT / "atk_core" / name).read_text(encoding="utf-8"))]
    assert asking == []


def test_executors_use_a_models_public_methods_only():
    """What a remote executor needs of a Model (count an answer got elsewhere, its retries, its
    identity, whether the role has succeeded) is public; no executor reaches into its state."""
    sources = [ROOT / "atk_core" / "engine" / "executors.py"] + sorted((ROOT / "plugins").glob("atk-executor-*/atk_*/*.py"))
    reaching = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path in sources
                for match in re.finditer(r"\bmodel\._\w+|getattr\(\w*model, \"_\w+", path.read_text())]
    assert reaching == []
