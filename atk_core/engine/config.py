"""Run configs: YAML in, the keyword arguments of one pipeline call out.

A config names its pipeline (``pipeline:``), may group fields in sections
(flattened into keyword arguments, Augmentoolkit style), takes ``${ENV}``
values, and can be overridden with ``--set a.b=c``. Every problem is a
``ConfigError`` naming the file and the field. Values that came from the
environment, and keys named like secrets, are redacted whenever the config is
shown or saved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..pipeline import RUNNER_SUPPLIED, Pipeline
from .redaction import redact, secret_strings

RESERVED_KEYS = ("pipeline", "models", "progress", "output_dir", "prompt_overrides", "executor")

_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# -- YAML with line numbers and duplicate-key detection ----------------------------------


class _Mapping(dict):
    """A dict that remembers the line of each key (1-based)."""

    lines: dict


# YAML aliases can nest into an exponentially large tree ("billion laughs"); a config
# needs a handful at most (shared model settings).
MAX_ALIASES = 25


class _TooManyAliases(yaml.YAMLError):
    pass


class _Loader(yaml.SafeLoader):
    aliases = 0
    nodes = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _TooManyAliases(f"more than {MAX_ALIASES} YAML aliases (*name); a config"
                                      " needs far fewer, so this one is refused")
        # Counted while parsing, so that a huge flat list is refused after its first
        # MAX_NODES values rather than after all of them are parsed.
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooManyAliases(_too_many_values(MAX_NODES))
        return super().compose_node(parent, index)


def _too_many_values(limit: int) -> str:
    return (f"the YAML holds more than {limit} values once its aliases (*name) are expanded;"
            " a config needs far fewer, so this one is refused")


def _construct_mapping(loader: _Loader, node):
    data = _Mapping()
    data.lines = {}
    yield data
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise _DuplicateKey(key, seen[key], line)
        seen[key] = line
    data.update(loader.construct_mapping(node))
    data.lines = seen


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


class _DuplicateKey(Exception):
    def __init__(self, key, first, second):
        super().__init__(f"key {key!r} appears twice in one mapping (lines {first} and {second})")


# Aliases under the cap can still nest: 20 aliases each listing the one before ten times make
# 10**20 values once expanded, and everything that walks the tree would walk them all. A config
# is a few hundred values; the cap is counted on the tree as aliases expand it.
MAX_NODES = 20_000


def _expanded_size(tree, limit: int) -> int:
    """How many values ``tree`` holds with every alias expanded (each shared list or mapping
    counted as often as it is reached), computed once per distinct object; ``_TooManyAliases``
    as soon as that passes ``limit``."""
    sizes: dict[int, int] = {}

    def size(node) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = limit + 1  # a cycle (a list that holds itself) counts as too big
        children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                raise _TooManyAliases(_too_many_values(limit))
        sizes[id(node)] = total
        return total

    return size(tree)


def parse_yaml(text: str, source: str):
    """Parse config YAML safely; errors become one-line ``ConfigError``\\ s."""
    try:
        tree = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
        _expanded_size(tree, MAX_NODES)
        return tree
    except (_DuplicateKey, _TooManyAliases) as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None


# -- the config ----------------------------------------------------------------------------


@dataclass
class RunConfig:
    """A loaded config: the tree after ``--set`` and ``${ENV}``, and where values came from."""

    source: str
    tree: dict
    env_templates: dict = field(default_factory=dict)  # path -> the "${VAR}" text it came from
    origins: dict = field(default_factory=dict)  # path -> "line N" or "--set"
    env_values: set = field(default_factory=set)  # what the environment supplied

    @property
    def pipeline(self) -> str:
        return self.tree["pipeline"]

    @property
    def models(self) -> dict:
        return self.tree.get("models") or {}

    @property
    def progress(self) -> list:
        value = self.tree.get("progress")
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    @property
    def executor(self) -> tuple[str, dict] | None:
        """``executor:`` as ``(name, options)``, or None when the config names none."""
        value = self.tree.get("executor")
        return executor_spec(value) if value else None

    @property
    def output_dir(self) -> str | None:
        return self.tree.get("output_dir")

    @property
    def prompt_overrides(self) -> str | None:
        return self.tree.get("prompt_overrides")

    def arguments_for(self, pipeline: Pipeline) -> dict[str, Any]:
        """The pipeline's keyword arguments: sections flattened, required fields checked."""
        parameters = pipeline.parameters()
        fields: dict[str, Any] = {}
        places: dict[str, str] = {}
        for key, value in self.tree.items():
            if key in RESERVED_KEYS:
                continue
            if isinstance(value, dict) and key not in parameters:
                for inner, inner_value in value.items():
                    self._put(fields, places, inner, inner_value,
                              f"in section {key!r}{self._at((key, inner))}")
            else:
                self._put(fields, places, key, value, f"at top level{self._at((key,))}")
        renamed = pipeline.renamed_field(fields)
        if renamed:
            raise ConfigError(f"{self.source}: {renamed}")
        missing = [
            name for name in pipeline.required_fields()
            if name not in fields and name not in RUNNER_SUPPLIED
        ]
        if "output_dir" in pipeline.required_fields() and self.output_dir is None:
            missing.insert(0, "output_dir")
        if missing:
            names = ", ".join(repr(m) for m in missing)
            plural = "s" if len(missing) > 1 else ""
            raise ConfigError(
                f"{self.source}: pipeline {pipeline.name!r} needs field{plural} {names},"
                f" which the config does not set"
            )
        return fields

    def _put(self, fields, places, key, value, place):
        if not isinstance(key, str):
            raise ConfigError(f"{self.source}: field name {key!r} {place} is not a string")
        if key in fields:
            raise ConfigError(
                f"{self.source}: field {key!r} is set twice: {places[key]} and {place}"
            )
        fields[key] = value
        places[key] = place

    def with_changes(self, **sections) -> "RunConfig":
        """This config with top-level keys replaced (``models=...``, ``progress=...``): what a
        run saves about itself when the command line changed them."""
        tree = dict(self.tree)
        for key, value in sections.items():
            tree[key] = value
            self.origins.setdefault((key,), "the command line")
        return RunConfig(self.source, tree, dict(self.env_templates), dict(self.origins),
                         set(self.env_values))

    def _at(self, path) -> str:
        origin = self.origins.get(path)
        return f" ({origin})" if origin else ""

    # -- secrets ---------------------------------------------------------------------

    def redacted(self) -> dict:
        """The tree with every secret hidden: env values show their ``${VAR}``."""
        return redact(self.tree, self.env_templates)

    def redacted_yaml(self) -> str:
        return yaml.safe_dump(self.redacted(), sort_keys=False, allow_unicode=True)

    def secret_values(self) -> list[str]:
        """Secret strings to scrub from anything shown or written (longest first)."""
        return secret_strings(self.tree, self.env_values)


def load_config(path, overrides=(), environ=None) -> RunConfig:
    """Read a config file, apply ``--set`` overrides and ``${ENV}`` values, check its shape."""
    import os

    source = str(path)
    file = Path(path)
    if not file.exists():
        raise ConfigError(f"config file not found: {source}")
    if not file.is_file():
        raise ConfigError(f"config path is not a file: {source}")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {source}: {exc.strerror}") from None
    return config_from_text(text, source, overrides, os.environ if environ is None else environ)


def overrides_from_file(path) -> list[str]:
    """``--set-file``: the ``KEY=VALUE`` lines of a file (blank lines and ``#`` comments left
    out), to apply as ``--set``\\ s."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"--set-file {str(path)!r}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read --set-file {str(path)!r}: {exc.strerror}") from None
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def config_from_text(text: str, source: str = "<config>", overrides=(), environ=None) -> RunConfig:
    import os

    tree = parse_yaml(text, source)
    if tree is None:
        raise ConfigError(f"{source}: the config is empty; it needs at least 'pipeline:'")
    if not isinstance(tree, dict):
        raise ConfigError(
            f"{source}: the config must be a mapping of keys to values, not a {_kind(tree)}"
        )
    origins = {}
    _record_lines(tree, (), origins)
    for override in overrides:
        _apply_override(tree, override, origins)
    env_templates: dict = {}
    env_values: set = set()
    environ = os.environ if environ is None else environ
    tree = _substitute(tree, (), environ, (env_templates, env_values), source)
    config = RunConfig(source, tree, env_templates, origins, env_values)
    _check_shape(config)
    return config


def _check_shape(config: RunConfig) -> None:
    tree, source = config.tree, config.source
    if "pipeline" not in tree or tree["pipeline"] in (None, ""):
        raise ConfigError(f"{source}: no 'pipeline:' key; say which pipeline runs (see `atk list`)")
    if not isinstance(tree["pipeline"], str):
        raise ConfigError(f"{source}: 'pipeline:' must be a pipeline name, not a {_kind(tree['pipeline'])}")
    models = tree.get("models")
    if models is not None and not isinstance(models, dict):
        raise ConfigError(f"{source}: 'models:' must map model roles to settings, not a {_kind(models)}")
    for role, settings in (models or {}).items():
        if not isinstance(settings, (dict, str)):
            raise ConfigError(
                f"{source}: models.{role} must be a mapping like {{backend: openai, model: ...}}"
            )
    for key in ("output_dir", "prompt_overrides"):
        value = tree.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}:' must be a folder path, not a {_kind(value)}")
    progress = tree.get("progress")
    for entry in progress if isinstance(progress, list) else ([progress] if progress else []):
        if not _is_progress_entry(entry):
            raise ConfigError(
                f"{source}: each 'progress:' entry is a reporter name or {{name: {{options}}}}"
            )
    executor = tree.get("executor")
    if executor is not None and not _is_progress_entry(executor):
        raise ConfigError(f"{source}: 'executor:' is an executor's name or {{name: {{options}}}}"
                          " with one name, e.g. executor: {ray: {workers: 4}}")


def _is_progress_entry(entry) -> bool:
    if isinstance(entry, str):
        return bool(entry)
    return (isinstance(entry, dict) and len(entry) == 1
            and isinstance(next(iter(entry.values())) or {}, dict))


def progress_option(text: str):
    """One ``--progress`` value: a reporter's name, or ``{name: {options}}`` (YAML, as an
    entry of a config's ``progress:`` list)."""
    return _named_option(text, "--progress", "a reporter name (see `atk list reporters`)",
                         "--progress '{jsonl: {path: events.jsonl}}'")


def executor_option(text: str):
    """``--executor`` as a config would say it: a name, or ``{name: {options}}`` in YAML."""
    return _named_option(text, "--executor", "an executor's name (see `atk list executors`)",
                         "--executor '{ray: {workers: 4}}'")


def _named_option(text: str, flag: str, needs: str, example: str):
    """A plugin named on the command line: its name, or ``{name: {options}}`` in YAML."""
    text = str(text).strip()
    if not text.startswith("{"):
        if not text:
            raise ConfigError(f"{flag} needs {needs}")
        return text
    entry = parse_yaml(text, f"{flag} {text!r}")
    if not _is_progress_entry(entry):
        name = needs.split(" (")[0]
        raise ConfigError(f"{flag} {text!r}: give {name}, or {{name: {{option: value}}}} with one"
                          f" name, e.g. {example}")
    return plain(entry)


def executor_spec(entry) -> tuple[str, dict]:
    """``ray`` or ``{ray: {workers: 4}}`` as ``(name, options)``."""
    if isinstance(entry, str):
        return entry, {}
    (name, options), = entry.items()
    return str(name), dict(options or {})


def plain(node):
    """Parsed YAML as plain dicts and lists (the loader's mappings carry line numbers)."""
    if isinstance(node, dict):
        return {k: plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def reporter_specs(entries) -> list[tuple[str, dict]]:
    """``[console, {webhook: {url: ...}}]`` as ``[(name, options), ...]``."""
    specs = []
    for entry in entries:
        if isinstance(entry, str):
            specs.append((entry, {}))
        else:
            (name, options), = entry.items()
            specs.append((name, dict(options or {})))
    return specs


# -- helpers -----------------------------------------------------------------------------------


def _kind(value) -> str:
    return {
        dict: "mapping", list: "list", str: "string", bool: "true/false",
        int: "number", float: "number", type(None): "empty value",
    }.get(type(value), type(value).__name__)


def _record_lines(node, path, origins):
    if isinstance(node, dict):
        lines = getattr(node, "lines", {})
        for key, value in node.items():
            if key in lines:
                origins[path + (key,)] = f"line {lines[key]}"
            _record_lines(value, path + (key,), origins)


def _apply_override(tree: dict, override: str, origins: dict) -> None:
    text = str(override)
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set chunk_size=2000")
    dotted, raw = text.split("=", 1)
    path = dotted.strip().split(".")
    if not dotted.strip() or any(not part for part in path):
        raise ConfigError(f"--set {dotted!r}: not a valid key path (use names joined by dots)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # A bare field that the config keeps inside one section is set there.
    if len(path) == 1 and path[0] not in tree:
        holders = [k for k, v in tree.items() if isinstance(v, dict) and path[0] in v
                   and k not in RESERVED_KEYS]
        if len(holders) > 1:
            raise ConfigError(
                f"--set {dotted}: sections {', '.join(holders)} all have {path[0]!r};"
                f" say which, e.g. --set {holders[0]}.{path[0]}=..."
            )
        if holders:
            path = [holders[0], path[0]]
    node = tree
    for depth, part in enumerate(path[:-1]):
        where = ".".join(path[: depth + 1])
        if isinstance(node, dict):
            if part not in node or node[part] is None:
                node[part] = {}
            node = node[part]
        elif isinstance(node, list):
            node = _list_item(node, part, dotted, where)
        if not isinstance(node, (dict, list)):
            raise ConfigError(
                f"--set {dotted}: {where!r} is a {_kind(node)}, not a section, so it has no fields"
            )
    last = path[-1]
    if isinstance(node, list):
        index = _index(node, last, dotted)
        node[index] = value
    else:
        node[last] = value
    origins[tuple(path)] = "--set"


def _list_item(node: list, part: str, dotted: str, where: str):
    return node[_index(node, part, dotted, where)]


def _index(node: list, part: str, dotted: str, where: str | None = None) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(
            f"--set {dotted}: {where or part!r} is not an item of a list of {len(node)}"
        )
    return int(part)


def env_references(node) -> list[str]:
    """The names of the environment variables a parsed config's values refer to (``${NAME}``
    and ``${NAME:-default}``; ``$$`` is no reference), in the order they appear."""
    names: list[str] = []
    if isinstance(node, dict):
        for value in node.values():
            names += env_references(value)
    elif isinstance(node, list):
        for value in node:
            names += env_references(value)
    elif isinstance(node, str) and "$" in node:
        names += [m.group(1) for m in _ENV_REFERENCE.finditer(node) if m.group(1)]
    return names


def _substitute(node, path, environ, found, source):
    if isinstance(node, dict):
        for key in list(node):
            node[key] = _substitute(node[key], path + (key,), environ, found, source)
        return node
    if isinstance(node, list):
        return [_substitute(v, path + (i,), environ, found, source) for i, v in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node

    used_env = False

    def replace(match):
        nonlocal used_env
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in environ:
            used_env = True
            if environ[name]:
                found[1].add(environ[name])
            return environ[name]
        if default is not None:
            return default
        where = ".".join(str(p) for p in path)
        raise ConfigError(
            f"{source}: environment variable {name} is not set (used by {where});"
            f" set it, or write ${{{name}:-default}}"
        )

    result = _ENV_REFERENCE.sub(replace, node)
    if used_env:
        found[0][path] = node
    return result
