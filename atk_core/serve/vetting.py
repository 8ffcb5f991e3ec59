"""Vetting a config sent to ``atk serve``: checked as ``atk run`` would check it, then
confined to what the server allows (its ``${VAR}``\\ s, its input folders, the run's own
folder for writes, no scripted backend unless allowed), with the server's overrides that
put the run's output and progress in its folder. Starts nothing and writes nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.redaction import REDACTED, move_to_environment, scrub, secret_strings
from ..errors import AtkError, ConfigError
from .layout import CONFIG_FILE, OUTPUT_DIR, run_folder

SECRET_ENV = "ATK_SERVE_SECRET_"


@dataclass
class Prepared:
    """A submitted config, checked, with what its process needs."""

    config: object  # RunConfig, with the server's overrides applied
    pipeline: str
    run_id: str
    overrides: list  # --set texts
    env: dict  # extra environment: literal reporter secrets moved off the command line
    warnings: list = field(default_factory=list)  # what `atk run` would warn about

    @property
    def redacted_yaml(self) -> str:
        text = self.config.redacted_yaml()
        for name in self.env:
            text = text.replace("${" + name + "}", REDACTED)
        return text


class ConfigVetter:
    """The rules a config sent to one server is held to."""

    def __init__(self, runs_dir: Path, db_path: Path, *, registry=None, allow_env=(),
                 allow_input=(), allow_scripted: bool = False):
        self.runs_dir, self.db_path, self.registry = runs_dir, db_path, registry
        self.allow_env = frozenset(allow_env)
        self.allow_input = list(allow_input)
        self.allow_scripted = allow_scripted

    def prepare(self, text: str, run_id: str | None = None, values: bool = True,
                cwd: str | None = None) -> Prepared:
        """Check config text as ``atk run`` would, with the server's overrides for ``run_id``
        (a new run's id, named after its pipeline, when None), and confine it: only allowed
        ``${VAR}``\\ s, inputs inside the allowed folders (relative to ``cwd``, the folder the
        run runs in; default: the server's), writes inside the run's folder.

        Raises ``ConfigError``/``PluginError`` with the CLI's one-line messages, with every
        value of an allowed variable and every literal secret of the config hidden.
        ``values=False`` leaves out the backends' and the pipeline's own checks,
        which read paths relative to the folder the run will run in.
        """
        hidden = self.secrets()
        try:
            prepared = self._prepare(text, run_id, values, cwd, hidden)
        except AtkError as exc:
            message = scrub(str(exc), hidden)
            if message == str(exc):
                raise
            raise type(exc)(message) from None
        prepared.warnings = [scrub(w, hidden) for w in prepared.warnings]
        return prepared

    def secrets(self) -> list[str]:
        """What no answer of the server may show: the values of the allowed variables."""
        return secret_strings({}, [os.environ[name] for name in self.allow_env if os.environ.get(name)])

    def _prepare(self, text, run_id, values, cwd, hidden: list) -> Prepared:
        from ..engine.config import config_from_text, parse_yaml, plain
        from ..engine.plugins import get_registry
        from ..engine.runner import new_task_id, plan

        registry = self.registry or get_registry()
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{CONFIG_FILE}: the config is empty; it needs at least 'pipeline:'")
        raw = parse_yaml(text, CONFIG_FILE)  # before ${VAR} substitution: references stay references
        literal = [v for v in secret_strings(raw if isinstance(raw, dict) else {}) if "${" not in v]
        hidden[:] = secret_strings({}, [*hidden, *literal])
        self._check_references(raw)
        environ = {k: v for k, v in os.environ.items() if k in self.allow_env}
        written = config_from_text(text, CONFIG_FILE, environ=environ)  # as written: its mistakes first
        self._check_backends(written.tree)  # after substitution: ${X:-scripted} is scripted
        run_id = run_id or new_task_id(written.pipeline)
        run_dir = run_folder(self.runs_dir, run_id)
        entries = raw.get("progress") if isinstance(raw, dict) else None
        entries = [] if entries is None else (entries if isinstance(entries, list) else [entries])
        env: dict[str, str] = {}
        progress = [_confined(plain(e), run_dir) for e in entries if _reporter_name(e) != "taskstore"]
        progress = [move_to_environment(e, env, SECRET_ENV) for e in progress]
        if "console" not in [_reporter_name(e) for e in progress]:
            progress.insert(0, "console")
        progress.append({"taskstore": {"db": str(self.db_path), "run_id": run_id}})
        output_dir = run_dir / OUTPUT_DIR
        overrides = [f"output_dir={json.dumps(str(output_dir))}", f"progress={_flow_yaml(progress)}"]
        config = config_from_text(text, CONFIG_FILE, overrides, {**environ, **env})
        self._check_backends(config.tree)  # what the run will start with
        self._check_inputs(config.tree, run_dir, cwd or os.getcwd(), registry)
        ready = plan(config, registry=registry, values=values)
        return Prepared(config, config.pipeline, run_id, overrides, env, ready.warnings)

    def _check_references(self, raw) -> None:
        """A config sent to the server may use only the ``${VAR}``\\ s it was started to allow
        (``--allow-env``): anything else could send the server's environment anywhere."""
        from ..engine.config import env_references

        refused = sorted({name for name in env_references(raw) if name not in self.allow_env})
        if refused:
            allowed = ", ".join(sorted(self.allow_env)) or "none"
            raise ConfigError(f"{CONFIG_FILE}: ${{{refused[0]}}} is not an environment variable this"
                              f" server lets a config use (allowed: {allowed}); start atk serve with"
                              f" --allow-env {refused[0]} to allow it")

    def _check_backends(self, tree) -> None:
        """The scripted backend runs a Python function the config names: a test tool, refused
        in configs sent to the server unless it was started with ``--allow-scripted``. Checked
        on the tree after ``${VAR}`` substitution, where a default can name a backend."""
        models = tree.get("models") if isinstance(tree, dict) else None
        for role, spec in (models.items() if isinstance(models, dict) else ()):
            backend = spec.get("backend") if isinstance(spec, dict) else spec
            if str(backend).partition(":")[0].strip() == "scripted" and not self.allow_scripted:
                raise ConfigError(f"{CONFIG_FILE}: models.{role}: the scripted backend runs code a config"
                                  " names, so a config sent to this server may not use it (start atk"
                                  " serve with --allow-scripted for tests and demos)")

    def _check_inputs(self, tree, run_dir: Path, cwd: str, registry) -> None:
        """Every text value of the config, taken as a path, lies inside the folders the
        server may read (``--allow-input``) or the run's own folder, and not in another
        run's. A value that leads out of ``cwd`` (the folder the run runs in: absolute, ``~``
        or ``..``) is checked whether or not it exists yet, so that nothing can be put there
        later; one inside ``cwd`` only if it names something there (most values are no path:
        a model name, a prompt). A role's ``model`` is a file to load for some backends
        (llama.cpp's): it is held to the same rule, except that a backend which only sends
        the name on (``Backend.model_is_a_name``) may name a file that is not there."""
        from ..models.specs import as_mapping

        runs = self.runs_dir
        own = run_dir.resolve()
        models = tree.get("models")
        if isinstance(models, dict):  # "llamacpp:/x.gguf" read as {backend: llamacpp, model: /x.gguf}
            models = {role: as_mapping(v) if isinstance(v, (str, dict)) else v for role, v in models.items()}
            tree = {**tree, "models": models}
        names_only = self._roles_naming_models(
            {r: v for r, v in (models or {}).items() if isinstance(v, dict)} if isinstance(models, dict) else {},
            registry)
        for where, value in _strings(tree):
            if where and where[0] in ("output_dir", "progress"):
                continue  # set by the server, or confined above
            if len(where) == 3 and where[0] == "models" and where[2] == "base_url":
                continue  # an address
            name_only = len(where) == 3 and where[0] == "models" and where[2] == "model" \
                and where[1] in names_only
            try:
                expanded = os.path.expanduser(value)
                # Links first, then "..": "link/../x" is the folder above the link's target,
                # wherever that is, not the working folder.
                real = Path(os.path.realpath(os.path.join(cwd, expanded)))
                home = os.path.realpath(cwd)
                escapes = os.path.isabs(expanded) or not (str(real) == home
                                                          or str(real).startswith(os.path.join(home, "")))
                named = os.path.lexists(os.path.join(cwd, expanded))
                if not named and (name_only or not escapes or any(c.isspace() for c in value)):
                    continue  # names nothing, here or as a path (a model name, a prompt)
            except (OSError, ValueError):  # a NUL byte...: no file can be opened by that name
                continue
            if real == own or own in real.parents:
                continue
            allowed = any(real == f or f in real.parents for f in self.allow_input)
            other_run = real == runs or runs in real.parents or real in runs.parents
            if not allowed or other_run:
                shown = ".".join(str(part) for part in where)
                folders = ", ".join(str(f) for f in self.allow_input)
                where_it_is = (f"outside the folders this server may read ({folders})" if not allowed
                               else "in the runs folder, or holding it (other runs' files)")
                raise ConfigError(f"{CONFIG_FILE}: {shown} names a path {where_it_is}; start atk"
                                  " serve with --allow-input FOLDER to let configs read a folder")
            if real.is_dir():
                self._check_links(real, where)

    def _check_links(self, folder: Path, where, limit: int = 100_000) -> None:
        """No link inside an allowed folder a config names leads out of the allowed folders
        (the run would read through it). The first ``limit`` entries are looked at here; the
        run itself skips any such file it finds later (``ATK_READ_ONLY_UNDER``)."""
        from ..engine.confinement import outside_readable

        seen = 0
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                seen += 1
                if seen > limit:
                    return
                path = os.path.join(root, name)
                if os.path.islink(path) and outside_readable(path, self.allow_input):
                    shown = ".".join(str(part) for part in where)
                    inside = Path(path).relative_to(folder).as_posix()
                    raise ConfigError(f"{CONFIG_FILE}: {shown} holds {inside}, a link to a path"
                                      " outside the folders this server may read; start atk serve"
                                      " with --allow-input FOLDER to let configs read it")

    @staticmethod
    def _roles_naming_models(models: dict, registry) -> set:
        """The roles whose backend only sends ``model`` on as a name, never opens it."""
        roles = set()
        for role, settings in models.items():
            try:
                backend = registry.backend(settings.get("backend"))
            except Exception:  # the config's own check names what is wrong with it
                continue
            if getattr(backend, "model_is_a_name", False):
                roles.add(role)
        return roles


# -- helpers ---------------------------------------------------------------------------------------

# Options of a reporter that name a file or folder it writes (the jsonl reporter's ``path``).
_WRITES = ("path", "file", "dir", "folder")


def _confined(entry, run_dir: Path):
    """A reporter entry of a config sent to the server, its write paths kept inside the run's
    folder: a relative one is taken from the run's output folder, and one that leads out of
    the run's folder is refused."""
    if not isinstance(entry, dict) or len(entry) != 1:
        return entry
    name, options = next(iter(entry.items()))
    if not isinstance(options, dict):
        return entry
    confined = dict(options)
    root = (run_dir / OUTPUT_DIR).resolve()  # not the run's config, settings or log beside it
    for key, value in options.items():
        if not isinstance(value, str) or not (key in _WRITES or key.endswith(tuple("_" + w for w in _WRITES))):
            continue
        if "$" in value:  # checked as written: ${VAR} would change it after the check
            raise ConfigError(f"{CONFIG_FILE}: progress: {name}.{key} may not use ${{...}} in a config"
                              " sent to the server")
        path = Path(os.path.expanduser(value))
        path = path if path.is_absolute() else root / path
        real = Path(os.path.realpath(path))
        if root not in real.parents:
            raise ConfigError(f"{CONFIG_FILE}: progress: {name}.{key} {value!r} is outside the run's"
                              f" output folder; a config sent to the server writes only there (give a"
                              f" path relative to it)")
        confined[key] = str(real)
    return {name: confined}


def _strings(node, where=()):
    """Every text value of a config tree, with the keys and indices that lead to it."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, (*where, index))
    elif isinstance(node, str):
        yield where, node


def _reporter_name(entry):
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and len(entry) == 1:
        return next(iter(entry))
    return None


def _flow_yaml(value) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=1 << 30, allow_unicode=True).strip()
