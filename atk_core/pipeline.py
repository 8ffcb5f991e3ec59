"""The pipeline record: a function plus the package data that travels with it."""

from __future__ import annotations

import inspect
import re
import sys
import warnings
from dataclasses import InitVar, dataclass, field
from typing import Any, Callable, Mapping

from .errors import PluginError
from .toolkit.outputs import Output, checked_outputs

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

CONFIG_TEMPLATE = "config.yaml"
PROMPTS_FOLDER = "prompts"
SAMPLES_FOLDER = "sample_documents"

# Filled in by the runner rather than by the config file.
RUNNER_SUPPLIED = frozenset({"task_id", "models", "output_dir", "prompt_overrides", "pipeline"})


@dataclass(frozen=True)
class Pipeline:
    """A registered pipeline.

    ``package`` is the import package holding ``config.yaml`` and ``prompts/``;
    by default it is the package of the module that defines ``function`` (the
    conventions put them beside the pipeline's file).
    ``distribution`` and ``version`` are filled in when the plugin registers it.

    ``vet``, if given, vets the config's values before anything is written or
    started: it is called with the keyword arguments the pipeline would get from
    the config (its defaults filled in; not ``task_id``), plus ``models``, the
    roles the config defines (role -> settings, nothing started), and
    ``prompt_overrides`` (the folder, or None), if it takes them; it raises ``ConfigError`` (or ``ValueError``) naming what is wrong. ``atk
    run`` then refuses the config like any other mistake, and ``atk serve``
    shows the message next to the editor.

    ``parts`` names the pipelines a composing pipeline runs with ``run_part``
    (see ``atk_core.engine.compose``); ``atk prompts`` copies their prompts, each
    into a subfolder named after it, which is where ``prompt_overrides`` looks
    for a part's.

    ``outputs`` declares what the pipeline writes (``atk_core.Output``: file, kind,
    format, which is primary): composition, export, ``atk inspect`` and ``atk serve``
    read it (see ``atk_core.toolkit.outputs``).

    ``renamed`` maps a config field's old name to its new one: a config that still uses
    the old name is refused in one line saying the new one (an unknown field would
    otherwise only be passed on, and the setting lost without a word).
    """

    name: str
    function: Callable[..., Any]
    description: str = ""
    package: str | None = None
    distribution: str | None = field(default=None, compare=False)
    version: str | None = field(default=None, compare=False)
    vet: Callable[..., Any] | None = field(default=None, compare=False)
    parts: tuple[str, ...] = field(default=(), compare=False)
    outputs: tuple[Output, ...] = field(default=(), compare=False)
    renamed: Mapping[str, str] = field(default_factory=dict, compare=False)
    check: InitVar[Callable[..., Any] | None] = None  # the old name of ``vet``

    def __post_init__(self, check=None):
        if check is not None:
            warnings.warn("Pipeline(check=...) is now Pipeline(vet=...)", DeprecationWarning, stacklevel=3)
            if self.vet is None:
                object.__setattr__(self, "vet", check)
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise PluginError(
                f"invalid pipeline name {self.name!r}: use lowercase letters, digits, '-' and '_'"
            )
        if not callable(self.function):
            raise PluginError(f"pipeline {self.name!r}: function is not callable")
        if self.vet is not None and not callable(self.vet):
            raise PluginError(f"pipeline {self.name!r}: vet is not callable")
        if not isinstance(self.renamed, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.renamed.items()):
            raise PluginError(f"pipeline {self.name!r}: renamed maps old field names to new ones (str -> str)")
        object.__setattr__(self, "renamed", dict(self.renamed))
        if self.package is None:
            object.__setattr__(self, "package", _package_of(self.function))
        object.__setattr__(self, "outputs", checked_outputs(f"pipeline {self.name!r}", self.outputs))

    # -- what it writes -----------------------------------------------------------

    def primary_output(self) -> Output | None:
        return next((o for o in self.outputs if o.primary), None)

    def describe_outputs(self) -> list[str]:
        """One line per declared output: ``file  kind (format)  [primary]  description``."""
        files = max((len(o.file) for o in self.outputs), default=0)
        kinds = max((len(o.described) for o in self.outputs), default=0)
        return [(f"{o.file:{files}}  {o.described:{kinds}}  " + ("[primary]  " if o.primary else "")
                 + o.description).rstrip() for o in self.outputs]

    # -- package data ---------------------------------------------------------

    def files(self):
        """The Traversable root of the pipeline's package data."""
        from .engine.resources import files

        return files(self.package)

    def config_template(self) -> str:
        """The text of the pipeline's ``config.yaml`` template."""
        template = self.files() / CONFIG_TEMPLATE
        if not template.is_file():
            raise PluginError(
                f"pipeline {self.name!r} ships no {CONFIG_TEMPLATE} in package {self.package!r}"
                " (is it declared as package data?)"
            )
        return template.read_text(encoding="utf-8")

    def prompts(self):
        """The Traversable ``prompts/`` folder of the pipeline's package."""
        folder = self.files() / PROMPTS_FOLDER
        if not folder.is_dir():
            raise PluginError(
                f"pipeline {self.name!r} ships no {PROMPTS_FOLDER}/ folder in package"
                f" {self.package!r} (is it declared as package data?)"
            )
        return folder

    def samples(self):
        """The Traversable ``sample_documents/`` folder, or None if the package ships none."""
        folder = self.files() / SAMPLES_FOLDER
        return folder if folder.is_dir() else None

    # -- the function's signature ----------------------------------------------

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.function)

    def parameters(self) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(self.function).parameters)

    def accepts_any_keyword(self) -> bool:
        return any(p.kind is p.VAR_KEYWORD for p in self.parameters().values())

    def with_defaults(self, fields: dict) -> dict:
        """The config's fields plus the function's defaults for those it leaves out."""
        values = {
            p.name: p.default
            for p in self.parameters().values()
            if p.default is not p.empty and p.name not in RUNNER_SUPPLIED
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        values.update(fields)
        return values

    def vet_arguments(self, values: dict, *, models: dict, prompt_overrides=None) -> dict:
        """What this pipeline's ``vet`` is called with: ``values`` (with defaults), and the
        model roles' settings and the prompt override folder if it takes them."""
        import inspect

        try:
            takes = inspect.signature(self.vet).parameters
        except (TypeError, ValueError):
            takes = {}
        open_ended = any(p.kind is p.VAR_KEYWORD for p in takes.values())
        values = self.with_defaults(values)
        if "models" in takes or open_ended:
            values["models"] = dict(models)  # role -> settings, nothing started
        if "prompt_overrides" in takes or open_ended:
            values["prompt_overrides"] = prompt_overrides
        return values

    def renamed_field(self, fields) -> str | None:
        """For the first of ``fields`` that ``renamed`` says has a new name: a line saying so."""
        for name in fields:
            if name in self.renamed:
                return (f"{self.name} has no field {name!r} any more: it is called"
                        f" {self.renamed[name]!r} now (same values); rename it")
        return None

    def required_fields(self) -> list[str]:
        """Parameters without a default, which a config must set."""
        return [
            p.name
            for p in self.parameters().values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]


def _package_of(function) -> str:
    module_name = getattr(function, "__module__", None) or ""
    module = sys.modules.get(module_name)
    package = getattr(module, "__package__", None)
    if package:
        return package
    # A top-level module is its own data root only if it is a package.
    return module_name.rpartition(".")[0] or module_name
