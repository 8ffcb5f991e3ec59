"""Finding, loading and isolating plugins.

Every plugin — built in or installed — is a module whose hook implementations
register pipelines, model backends, progress reporters, executors and document
readers. Each entry point in the ``atk`` group is loaded on its own: if its
import fails, a hook it implements raises, or it implements a hook that does
not exist, that plugin alone is disabled and reported (one line on stderr, and
in ``atk plugins``). Nothing is loaded until something asks for the registry,
and then only once.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from .. import hookspecs
from ..errors import ConfigError, PluginError, did_you_mean, one_line
from ..pipeline import Pipeline

log = logging.getLogger("atk")

ENTRY_POINT_GROUP = "atk"
LOAD_PLUGINS_ENV = "ATK_LOAD_PLUGINS"

# Built-in implementations go through the same hooks as third-party ones.
BUILTIN_PLUGINS = (
    "atk_core.engine.reporters",
    "atk_core.models.openai",
    "atk_core.models.scripted",
    "atk_core.serve.reporter",
    "atk_core.engine.executors",
    "atk_core.toolkit.readers",
    "atk_core.evaluation",
)

HOOK_NAMES = tuple(name for name in dir(hookspecs) if name.startswith("atk_"))
REGISTRATION_HOOKS = {
    "atk_register_pipelines": "pipeline",
    "atk_register_model_backends": "backend",
    "atk_register_progress_reporters": "reporter",
    "atk_register_executors": "executor",
    "atk_register_readers": "reader",
}
KINDS = ("pipeline", "backend", "reporter", "executor", "reader")


@dataclass
class PluginInfo:
    """What ``atk plugins`` shows about one plugin."""

    name: str
    module: str | None
    distribution: str | None
    version: str | None
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        if self.distribution:
            return f"{self.distribution} {self.version}" if self.version else self.distribution
        return f"plugin {self.name!r}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": list(self.hooks),
            "error": self.error,
        }


@dataclass
class Registration:
    kind: str
    name: str
    obj: Any
    plugin: PluginInfo

    @property
    def description(self) -> str:
        if self.kind == "pipeline":
            return self.obj.description
        doc = (getattr(self.obj, "__doc__", None) or "").strip()
        return doc.splitlines()[0] if doc else ""


class Registry:
    """The loaded plugins and everything they registered."""

    def __init__(self, *, builtins=BUILTIN_PLUGINS, entry_points=None, load_only=None):
        self.pm = pluggy.PluginManager("atk")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._entries: dict[str, dict[str, list[Registration]]] = {k: {} for k in KINDS}
        self._commands_added = False
        self._load(builtins, entry_points, load_only)

    # -- loading ------------------------------------------------------------------

    def _load(self, builtins, entry_points, load_only):
        for module_name in builtins:
            info = PluginInfo(module_name, module_name, "atk-core", _core_version(), builtin=True)
            self._add(info, lambda m=module_name: importlib.import_module(m))
        if entry_points is None:
            entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        if load_only is None:
            load_only = _load_only_from_env()
        wanted = set(load_only) if load_only is not None else None
        seen = set()
        for ep in entry_points:
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            if wanted is not None and ep.name not in wanted and dist_name not in wanted:
                continue
            seen.update({ep.name, dist_name})
            info = PluginInfo(ep.name, ep.value, dist_name, dist.version if dist else None)
            if ep.name in self.plugins:
                other = self.plugins[ep.name]
                info.error = (
                    f"plugin name {ep.name!r} is used by both {other.label} and {info.label}"
                )
                self.plugins[f"{ep.name} ({info.label})"] = info
                log.error("%s; the second is not loaded", info.error)
                continue
            self._add(info, ep.load)
        for name in sorted((wanted or set()) - seen):
            log.warning("%s names %r, but no installed plugin is called that", LOAD_PLUGINS_ENV, name)
        self._check_conflicts()

    def _add(self, info: PluginInfo, load):
        self.plugins[info.name] = info
        try:
            module = load()
            _check_hook_names(module)
            self.pm.register(module, name=info.name)
        except Exception as exc:
            self._disable(info, f"failed to load: {one_line(exc)}")
            return
        impls = _impls_of(self.pm, module)
        info.hooks = sorted(impls)
        pending = []
        for hook_name, kind in REGISTRATION_HOOKS.items():
            if hook_name not in impls:
                continue
            register = _registrar(kind, info, pending)
            try:
                _call(impls[hook_name], register=register)
            except Exception as exc:
                self._disable(info, f"hook {hook_name} raised {one_line(exc)}")
                return
        for registration in pending:
            self._entries[registration.kind].setdefault(registration.name, []).append(registration)

    def _disable(self, info: PluginInfo, error: str):
        info.error = error
        plugin = self.pm.get_plugin(info.name)
        if plugin is not None:
            self.pm.unregister(plugin)
        where = f" ({info.label})" if info.distribution and not info.builtin else ""
        log.warning("plugin %r%s is disabled: %s", info.name, where, error)

    def _check_conflicts(self):
        for kind in KINDS:
            for name, registrations in sorted(self._entries[kind].items()):
                if len(registrations) > 1:
                    log.error("%s", _conflict_message(kind, name, registrations))

    # -- looking things up -------------------------------------------------------------

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def registrations(self, kind: str) -> list[Registration]:
        return [r for name in self.names(kind) for r in self._entries[kind][name]]

    def get(self, kind: str, name: str):
        registrations = self._entries[kind].get(name)
        if not registrations:
            installed = self.names(kind)
            hint = did_you_mean(name, installed, n=3, cutoff=0.5)
            hint = f"; {hint}" if hint else ""
            listing = ", ".join(installed) if installed else "none"
            raise ConfigError(f"unknown {kind} {name!r}{hint} (installed: {listing})")
        if len(registrations) > 1:
            raise PluginError(_conflict_message(kind, name, registrations))
        return registrations[0].obj

    def pipeline(self, name: str) -> Pipeline:
        return self.get("pipeline", name)

    def backend(self, name: str):
        return self.get("backend", name)

    def reporter(self, name: str):
        return self.get("reporter", name)

    def executor(self, name: str):
        return self.get("executor", name)

    def reader(self, name: str):
        return self.get("reader", name)

    def add_commands(self, cli) -> None:
        """Let plugins add click commands to ``cli``; done at most once."""
        if self._commands_added:
            return
        self._commands_added = True
        for info in list(self.plugins.values()):
            if info.error or "atk_register_commands" not in info.hooks:
                continue
            impl = _impls_of(self.pm, self.pm.get_plugin(info.name))["atk_register_commands"]
            try:
                _call(impl, cli=cli)
            except Exception as exc:
                self._disable(info, f"hook atk_register_commands raised {one_line(exc)}")


def _impls_of(pm, module) -> dict:
    """The hook implementations one registered plugin provides, by hook name."""
    return {
        name: impl
        for name in HOOK_NAMES
        for impl in getattr(pm.hook, name).get_hookimpls()
        if impl.plugin is module
    }


def _call(impl, **arguments):
    # Like pluggy: an implementation receives only the arguments it names.
    return impl.function(**{k: v for k, v in arguments.items() if k in impl.argnames})


def _registrar(kind: str, info: PluginInfo, pending: list):
    """The ``register`` callback handed to one plugin's hook for one kind."""

    def register_pipeline(pipeline, **_future):
        if not isinstance(pipeline, Pipeline):
            raise PluginError(f"register() takes a Pipeline, not {type(pipeline).__name__}")
        import dataclasses

        pipeline = dataclasses.replace(
            pipeline, distribution=info.distribution, version=info.version
        )
        pending.append(Registration("pipeline", pipeline.name, pipeline, info))

    def register_class(name, cls, **_future):
        if not isinstance(name, str) or not name:
            raise PluginError(f"register() takes a name string first, not {name!r}")
        if not callable(cls):
            raise PluginError(f"register({name!r}, ...) takes a class, not {type(cls).__name__}")
        if kind == "reader":
            _check_reader(name, cls)
        pending.append(Registration(kind, name, cls, info))

    return register_pipeline if kind == "pipeline" else register_class


def _check_reader(name: str, cls) -> None:
    """A reader says what it claims (suffixes such as ``.docx``, or a ``sniff`` of its own) and
    has ``read``; anything else disables its plugin here, not a run later."""
    suffixes = getattr(cls, "suffixes", None)
    if isinstance(suffixes, str) or not isinstance(suffixes, (tuple, list)) or not all(
            isinstance(s, str) and s.startswith(".") and len(s) > 1 and s == s.lower() for s in suffixes):
        raise PluginError(f"reader {name!r}: suffixes must be a tuple of lower-case suffixes"
                          f" starting with '.', like ('.docx',), not {suffixes!r}")
    if not suffixes and not callable(getattr(cls, "sniff", None)):
        raise PluginError(f"reader {name!r} claims no suffix and does not sniff")
    if not callable(getattr(cls, "read", None)):
        raise PluginError(f"reader {name!r} has no read(data, source) method")


def _check_hook_names(module) -> None:
    """Catch misspelled or unmarked hook implementations (pluggy's check_pending, per plugin)."""
    for attr in dir(module):
        if not attr.startswith("atk_"):
            continue
        value = getattr(module, attr)
        marked = hasattr(value, "atk_impl")
        if attr in HOOK_NAMES:
            if callable(value) and not marked:
                raise PluginError(f"{attr} is not marked with @atk_core.hookimpl")
        elif marked:
            hint = did_you_mean(attr, HOOK_NAMES)
            hint = f" ({hint})" if hint else ""
            raise PluginError(f"unknown hook {attr!r}{hint}")


def _conflict_message(kind, name, registrations) -> str:
    owners = " and ".join(r.plugin.label for r in registrations)
    return f"{kind} name {name!r} is registered twice, by {owners}; uninstall one of them"


def _load_only_from_env():
    value = os.environ.get(LOAD_PLUGINS_ENV)
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


def _core_version() -> str:
    from ..version import __version__

    return __version__


def make_backend(spec):
    """A backend for a model role (a ``ModelSpec``), from the installed plugins: what a
    worker on another machine builds its role's model on (``StepTask.worker_model``)."""
    cls = get_registry().backend(spec.backend)
    return cls(**spec.options)


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process's registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = Registry()
        try:
            _registry.pm.check_pending()
        except pluggy.PluginValidationError as exc:  # per-plugin checks should have caught it
            log.warning("%s", exc)
    return _registry
