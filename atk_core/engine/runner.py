"""Running one pipeline from a config.

Everything that can be checked is checked before anything is written: the
pipeline exists, the config sets its required fields, the reporters and model
backends exist. Then the runner creates the output folder, saves the config
(redacted) beside the outputs, calls the pipeline with its keyword arguments
and reports start, progress, finish or fail to the chosen reporters.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import context as run_context
from ..toolkit.constraints import enforce_constraints, run_vetter, vetter_of
from .config import RunConfig, executor_spec, reporter_specs
from .context import RunContext
from ..errors import AtkError, ConfigError, did_you_mean, one_line
from .executors import Executor
from .fingerprint import fingerprint, seal, up_to_date
from ..toolkit.files import atomic_write_text
from ..pipeline import RUNNER_SUPPLIED, Pipeline
from .progress import ProgressHub, activate, deactivate, make_reporter
from .redaction import scrub
from .store import Store

log = logging.getLogger("atk")

RESOLVED_CONFIG = "config.resolved.yaml"
DEFAULT_REPORTERS = ("console",)
DEFAULT_EXECUTOR = "local"

EXIT_DONE, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class RunResult:
    task_id: str
    pipeline: str
    output_dir: Path
    status: str  # done, failed, interrupted
    exit_code: int
    error: str | None = None
    traceback: str | None = None
    value: Any = None
    seconds: float = 0.0
    models: dict = field(default_factory=dict)  # role -> Model, with its usage totals
    # The output folder already held what this run would write: nothing ran (see
    # engine.fingerprint).
    up_to_date: bool = False


def new_task_id(pipeline: str) -> str:
    return f"{pipeline}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


@dataclass
class RunPlan:
    """What ``plan()`` found: everything ``run()`` needs, with nothing created yet."""

    pipeline: Pipeline
    config: RunConfig  # the config as it will run: --model and --progress applied
    arguments: dict  # the config's fields the pipeline takes (sections flattened)
    output_dir: Path
    prompt_overrides: Path | None
    reporters: list  # (name, reporter class, options)
    model_specs: dict  # role -> ModelSpec
    warnings: list = field(default_factory=list)  # worth saying, not worth refusing the run for
    executor: tuple = (DEFAULT_EXECUTOR, None, {})  # (name, executor class, options)


def plan(config: RunConfig, *, registry=None, progress=None, model_overrides=(),
          values: bool = True, executor=None) -> RunPlan:
    """The checks ``run()`` makes before anything starts, without starting anything.

    Raises ``ConfigError``/``PluginError`` with the same one-line messages
    ``atk run`` shows: the pipeline exists, the config sets its required
    fields and an output folder, the prompt overrides folder, progress
    reporters and model backends exist; then (unless ``values`` is false) each
    backend's ``vet_options`` and the pipeline's ``vet`` look at the values,
    which may name paths relative to the working folder. Writes nothing, starts
    no backend. The plan's ``config`` is the config as it will run, with
    ``model_overrides``, ``progress`` and ``executor`` (a name or ``{name:
    {options}}``, replacing the config's ``executor:``) written into it, so that what
    the run saves about itself (``config.resolved.yaml``, the manifest's
    ``config_hash``) is what ran.
    """
    from ..models import resolve_model_specs, with_model_overrides
    from .plugins import get_registry

    registry = registry or get_registry()
    warnings = _new_roles(model_overrides, config)
    if model_overrides:
        config = config.with_changes(models=with_model_overrides(config.models, model_overrides))
    if progress:
        config = config.with_changes(progress=list(progress))
    if executor:
        config = config.with_changes(executor=executor)
    pipeline = registry.pipeline(config.pipeline)
    fields = config.arguments_for(pipeline)
    if not config.output_dir:
        raise ConfigError(f"{config.source}: no 'output_dir:'; say where the run writes its outputs")
    arguments, unused = _call_arguments(pipeline, fields)
    arguments = _placed(lambda: enforce_constraints(pipeline.function, arguments), config.source)
    warnings += unused + _misspelt_fields(pipeline, fields, config.source)
    output_dir = Path(config.output_dir).expanduser()
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"{config.source}: output_dir {str(output_dir)!r} exists and is not a folder")
    overrides_dir = _prompt_overrides(config)
    specs = reporter_specs(config.progress or DEFAULT_REPORTERS)
    reporter_classes = []
    for name, options in specs:
        cls = registry.reporter(name)
        options = _placed(lambda: enforce_constraints(cls, options, refuse_unknown=True,
                                                   owner=f"the {name} reporter",
                                                   supplied=("output_dir",)),
                           f"{config.source}: progress reporter {name!r}")
        reporter_classes.append((name, cls, options))
    executor_name, executor_options = config.executor or (DEFAULT_EXECUTOR, {})
    executor_class = _placed(lambda: registry.executor(executor_name), f"{config.source}: executor")
    executor_options = _placed(lambda: enforce_constraints(
        executor_class, executor_options, refuse_unknown=True, owner=f"the {executor_name} executor",
        up_to=Executor), f"{config.source}: executor {executor_name!r}")
    if values and vetter_of(executor_class) is not None:
        run_vetter(vetter_of(executor_class), executor_options,
                  refused=f"{config.source}: executor {executor_name!r}",
                  broken=f"executor {executor_name!r}: its vet_options failed",
                  secrets=config.secret_values())
    model_specs = resolve_model_specs(config, registry, vet_options=values)
    if values:
        _pipeline_vet(pipeline, arguments, config, model_specs)  # last: the core's checks first
    return RunPlan(pipeline, config, arguments, output_dir, overrides_dir, reporter_classes, model_specs,
                   warnings, (executor_name, executor_class, executor_options))


def run(config: RunConfig, *, registry=None, progress=None, model_overrides=(),
        task_id: str | None = None, executor=None, policy=None, again: bool = False) -> RunResult:
    """Run the config's pipeline. Raises ``ConfigError``/``PluginError`` before
    anything starts (see ``plan()``); once it has started, returns a
    ``RunResult`` instead.

    ``progress`` (reporter names or ``{name: options}``) replaces the config's
    ``progress:`` list; ``model_overrides`` are ``ROLE=BACKEND[:MODEL]`` texts;
    ``executor`` (a name or ``{name: {options}}``) replaces the config's ``executor:``;
    ``policy``: how gates and verdicts apply (a ``GatePolicy``; default: as written; the
    estimate's dry run passes everything).

    When the output folder already holds what this run would write (its manifest's
    fingerprint: same config, inputs and code, and every output still the bytes it was),
    nothing runs and no model is loaded: the result says ``up_to_date``. ``again`` runs it
    anyway (the store still answers what it holds).
    """
    from ..models import build_models
    from .plugins import get_registry

    registry = registry or get_registry()
    ready = plan(config, registry=registry, progress=progress, model_overrides=model_overrides,
                 executor=executor)
    config = ready.config
    pipeline, output_dir, overrides_dir = ready.pipeline, ready.output_dir, ready.prompt_overrides
    reporter_classes, model_specs = ready.reporters, ready.model_specs
    for warning in ready.warnings:
        log.warning("%s", warning)
    kwargs = dict(ready.arguments)

    task_id = task_id or new_task_id(pipeline.name)
    secret_values = config.secret_values()
    created = not output_dir.exists()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output_dir {str(output_dir)!r}: {exc.strerror}") from None

    def refuse(reporters):
        """Undo what starting did, so that a refused run leaves nothing behind."""
        for _, started in reporters:
            _close_quietly(started)
        if created:
            shutil.rmtree(output_dir, ignore_errors=True)

    reporters = []
    for name, cls, options in reporter_classes:
        try:
            reporters.append((name, make_reporter(name, cls, options, output_dir=output_dir)))
        except Exception as exc:
            refuse(reporters)
            raise ConfigError(
                f"progress reporter {name!r} could not start: {scrub(str(exc), secret_values)}"
            ) from None
    sealing = policy is None  # a dry run (the estimate's policy) writes no real outputs
    print_ = fingerprint(ready) if sealing else None
    sealed = up_to_date(output_dir, print_) if sealing and not again and not created else None
    if sealed is not None:
        return _already_done(task_id, pipeline, output_dir, reporters, sealed)
    models = {}
    try:
        models = build_models(model_specs, registry)
        executor = _start_executor(ready.executor, secret_values)
    except BaseException:
        _close_models_quietly(models)
        refuse(reporters)
        raise
    atomic_write_text(output_dir / RESOLVED_CONFIG, config.redacted_yaml())
    store = Store.for_output(output_dir)
    for model in models.values():
        model.store = store

    context = RunContext(task_id, pipeline, output_dir, config, models, overrides_dir, store,
                         executor=executor, policy=policy,
                         fingerprint=_hash(print_) if print_ is not None else None)
    supplied = {
        "task_id": task_id,
        "models": models,
        "output_dir": str(output_dir),
        "prompt_overrides": str(overrides_dir) if overrides_dir else None,
        "pipeline": pipeline.name,
    }
    kwargs.update({k: v for k, v in supplied.items() if _accepts(pipeline, k)})

    hub = ProgressHub(task_id, pipeline.name, reporters, models=models)
    activate(hub)
    token = run_context.enter(context)
    started = time.monotonic()
    hub.emit("start", 0.0, f"output in {output_dir}")
    try:
        value = _call(pipeline, kwargs, models)
    except KeyboardInterrupt:
        hub.emit("fail", hub.last_progress, "interrupted")
        return RunResult(task_id, pipeline.name, output_dir, "interrupted", EXIT_INTERRUPTED,
                         "interrupted", seconds=time.monotonic() - started, models=models)
    except Exception as exc:
        message = scrub(one_line(exc), secret_values)
        hub.emit("fail", hub.last_progress, message)
        code = exc.exit_code if isinstance(exc, AtkError) else EXIT_FAILED
        return RunResult(task_id, pipeline.name, output_dir, "failed", code, message,
                         traceback=scrub(traceback.format_exc(), secret_values),
                         seconds=time.monotonic() - started, models=models)
    else:
        seconds = time.monotonic() - started
        if sealing and fingerprint(ready) == print_:  # inputs changed mid-run: not sealed
            seal(output_dir, print_, value)
        hub.emit("finish", 1.0, f"done in {seconds:.1f}s")
        return RunResult(task_id, pipeline.name, output_dir, "done", EXIT_DONE,
                         value=value, seconds=seconds, models=models)
    finally:
        run_context.leave(token)
        _close_executor(executor, ready.executor[0])
        deactivate(hub)
        hub.close()
        store.close()


def _hash(value) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()


def _already_done(task_id, pipeline, output_dir, reporters, sealed) -> RunResult:
    """The result of a run whose outputs are already written: its reporters hear it start and
    finish at once."""
    hub = ProgressHub(task_id, pipeline.name, reporters, models={})
    activate(hub)
    try:
        hub.emit("start", 0.0, f"output in {output_dir}")
        hub.emit("finish", 1.0, "up to date: the outputs already match the config, inputs and code")
    finally:
        deactivate(hub)
        hub.close()
    return RunResult(task_id, pipeline.name, output_dir, "done", EXIT_DONE, value=sealed.get("value"),
                     up_to_date=True)


def _close_models_quietly(models):
    if models:
        from ..models import close_models

        asyncio.run(close_models(models))


def _start_executor(spec, secret_values):
    name, cls, options = spec
    try:
        return cls(**options)
    except Exception as exc:
        raise ConfigError(f"executor {name!r} could not start: {scrub(str(exc), secret_values)}") from None


def _close_executor(executor, name):
    try:
        executor.close()
    except Exception as exc:  # the run's outcome is decided; closing must not hide it
        log.warning("executor %r did not close cleanly: %s", name, one_line(exc))


def _placed(work, where: str):
    """What ``work()`` returns; its ``ConfigError`` said after ``where``, the place in the config."""
    try:
        return work()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _call(pipeline: Pipeline, kwargs: dict, models: dict):
    from ..models import close_models

    if pipeline.is_async:
        async def main():
            try:
                return await pipeline.function(**kwargs)
            finally:
                await close_models(models)

        return asyncio.run(main())
    try:
        return pipeline.function(**kwargs)
    finally:
        if models:
            asyncio.run(close_models(models))


def _call_arguments(pipeline: Pipeline, fields: dict) -> tuple[dict, list[str]]:
    """The config's fields the pipeline accepts, and a warning naming the rest."""
    if pipeline.accepts_any_keyword():
        return dict(fields), []
    parameters = pipeline.parameters()
    unused = sorted(k for k in fields if k not in parameters)
    warnings = [f"pipeline {pipeline.name!r} takes no **kwargs, so these config fields are"
                f" ignored: {', '.join(unused)}"] if unused else []
    return {k: v for k, v in fields.items() if k in parameters and k not in RUNNER_SUPPLIED}, warnings


def _pipeline_vet(pipeline: Pipeline, arguments: dict, config: RunConfig,
                    model_specs: dict) -> None:
    """Run the pipeline's own ``vet`` on the config's values (see ``Pipeline``)."""
    if pipeline.vet is None:
        return
    values = dict(arguments)
    if _accepts(pipeline, "output_dir"):
        values["output_dir"] = config.output_dir
    values = pipeline.vet_arguments(values, models=model_specs,
                                   prompt_overrides=config.prompt_overrides)
    run_vetter(pipeline.vet, values, refused=str(config.source),
              broken=f"pipeline {pipeline.name!r}: its vetter failed",
              secrets=config.secret_values())


def _new_roles(overrides, config: RunConfig) -> list[str]:
    """``--model ROLE=...`` for a role the config does not define: likely a typo, so say so."""
    roles = [str(role) for role in config.models]
    warnings = []
    for override in overrides:
        role = str(override).partition("=")[0].strip()
        if not role or role in roles:
            continue
        hint = did_you_mean(role, roles)
        hint = f"; {hint}" if hint else ""
        warnings.append(f"--model {override}: {config.source} defines no model role {role!r}"
                        f"{hint} (it defines: {', '.join(roles) or 'none'}); it is added as a"
                        " new role")
    return warnings


def _misspelt_fields(pipeline: Pipeline, fields: dict, source) -> list[str]:
    """Name each field the pipeline does not take that looks like one it does.

    Extra fields are allowed (configs outlive code; ``**kwargs`` takes them), so
    only a near miss, the likely typo, is worth a warning. (A pipeline without
    ``**kwargs`` has every field it does not take named by ``_call_arguments``.)
    """
    if not pipeline.accepts_any_keyword():
        return []
    known = [name for name in pipeline.parameters() if name not in RUNNER_SUPPLIED]
    warnings = []
    for name in fields:
        hint = "" if name in known else did_you_mean(name, known, cutoff=0.8)
        if hint:
            warnings.append(f"{source}: pipeline {pipeline.name!r} has no field {name!r};"
                            f" {hint} (it is passed on unused)")
    return warnings


def _accepts(pipeline: Pipeline, name: str) -> bool:
    return pipeline.accepts_any_keyword() or name in pipeline.parameters()


def _prompt_overrides(config: RunConfig) -> Path | None:
    if not config.prompt_overrides:
        return None
    folder = Path(config.prompt_overrides).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            f"{config.source}: prompt_overrides {config.prompt_overrides!r} is not a folder"
        )
    return folder


def _close_quietly(reporter):
    try:
        reporter.close()
    except Exception:
        pass
