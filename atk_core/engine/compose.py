"""Pipelines made of pipelines: ``run_part`` runs an installed pipeline inside the current run.

A pipeline that composes others (say, one that makes a whole training mix
from factual-qa, repvar and rag-data) calls, from inside its own run::

    from atk_core import run_part

    await run_part("factual-qa", output_dir=Path(output_dir) / "qa", progress=(0.0, 0.4),
                   input_dir=input_dir, questions_per_chunk=2)

The part runs as it would on its own — its fields checked against its
annotations and its own ``vet``, its prompts from its own package (and
from ``prompt_overrides``' subfolder named after it, if the run has one),
its outputs, ``failures.jsonl`` and ``manifest.json`` (with ``part_of``) in
its ``output_dir`` — but on the parent's models and store, so every answer
it gets is the run's: a finished composition run again sends nothing, and
one killed in its third part re-sends at most what was in flight. Its
progress is the share ``progress`` of the parent's bar. A part that fails
(or is given a wrong field) fails the parent with one line naming the part.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from . import context as run_context
from ..toolkit.constraints import enforce_constraints, run_vetter
from .context import RunContext, current_run
from ..errors import AtkError, ConfigError, PipelineError, did_you_mean, one_line
from ..pipeline import RUNNER_SUPPLIED
from .progress import activate, deactivate, say, set_progress


class _PartProgress:
    """What ``set_progress`` finds under a part's task id: the part's 0..1 as its share of
    the parent's bar, its messages prefixed with the part's name."""

    def __init__(self, task_id: str, parent_task_id: str, span: tuple[float, float], label: str):
        self.task_id, self.parent, self.span, self.label = task_id, parent_task_id, span, label

    def emit(self, kind: str, progress: float | None = None, message: str | None = None):
        start, end = self.span
        if isinstance(progress, (int, float)) and not isinstance(progress, bool):
            progress = start + (end - start) * min(1.0, max(0.0, float(progress)))
        else:
            progress = None
        set_progress(self.parent, progress, f"{self.label}: {message}" if message else self.label)

    def say(self, message: str) -> None:
        say(self.parent, f"{self.label}: {message}")


def part_fields(name: str) -> set[str]:
    """The config fields the installed pipeline ``name`` takes (its keyword parameters, less
    those atk supplies): what a composing pipeline may pass it. ``ConfigError`` if it is
    not installed."""
    from .plugins import get_registry

    pipeline = get_registry().pipeline(name)
    return {p.name for p in pipeline.parameters().values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in RUNNER_SUPPLIED}


def part_outputs(name: str) -> tuple:
    """What the installed pipeline ``name`` declares it writes (``atk_core.Output``s): what a
    composing pipeline reads from a part, by kind. ``ConfigError`` if it is not installed."""
    from .plugins import get_registry

    return get_registry().pipeline(name).outputs


def vet_part(name: str, *, models: dict, output_dir=None, prompt_overrides=None,
               **fields) -> None:
    """For a composing pipeline's own ``vet``: refuse, before anything runs, what
    ``run_part(name, **fields)`` would refuse at the part's start — the part not installed,
    a required field not set, a value its annotations or its own vetter refuse — and any
    field it does not take (a misspelt one would otherwise be ignored). ``models`` and
    ``prompt_overrides`` are what the composing check was given. Raises ``ConfigError``
    with one line naming the part; nothing runs and nothing is written."""
    from .plugins import get_registry

    label = _label(name, output_dir)
    try:
        taken = part_fields(name)
    except AtkError as exc:
        raise ConfigError(f"{label}: {one_line(exc)}") from None
    renamed = get_registry().pipeline(name).renamed_field(fields)
    if renamed:
        raise ConfigError(f"{label}: {renamed}")
    unknown = sorted(k for k in fields if k not in taken)
    if unknown:
        hint = did_you_mean(unknown[0], sorted(taken))
        raise ConfigError(f"{label}: {name} has no field {unknown[0]!r}" + (f" ({hint})" if hint else ""))
    _prepare(name, fields, output_dir=output_dir, models=models,
             overrides=_part_overrides(prompt_overrides, name), label=label, error=ConfigError)


def _label(name: str, output_dir) -> str:
    folder = Path(output_dir).name if output_dir is not None else ""
    return f"part {name!r}" + (f" in {folder}/" if folder and folder != name else "")


def _prepare(name, fields, *, output_dir, models, overrides, label, error):
    """The part's pipeline and its checked arguments, or ``error`` (one line after
    ``label``): what ``run_part`` and ``vet_part`` share."""
    from .plugins import get_registry

    try:
        pipeline = get_registry().pipeline(name)
        renamed = pipeline.renamed_field(fields)
        if renamed:
            raise PipelineError(renamed)
        accepts = pipeline.accepts_any_keyword()
        arguments = {k: v for k, v in fields.items() if k not in RUNNER_SUPPLIED}
        if not accepts:
            arguments = {k: v for k, v in arguments.items() if k in pipeline.parameters()}
        missing = [f for f in pipeline.required_fields() if f not in arguments
                   and f not in RUNNER_SUPPLIED]
        if missing:
            raise PipelineError(f"needs field(s) {', '.join(map(repr, missing))}")
        arguments = enforce_constraints(pipeline.function, arguments)
    except AtkError as exc:
        raise error(f"{label}: {one_line(exc)}") from None
    if pipeline.vet is not None:
        values = dict(arguments)
        if (accepts or "output_dir" in pipeline.parameters()) and output_dir is not None:
            values["output_dir"] = str(output_dir)
        values = pipeline.vet_arguments(values, models=models, prompt_overrides=overrides)
        try:
            run_vetter(pipeline.vet, values, refused=label, broken=f"{label}: its vetter failed")
        except AtkError as exc:
            raise error(one_line(exc)) from None
    return pipeline, arguments


async def run_part(name: str, *, output_dir, progress: tuple[float, float] = (0.0, 1.0),
                   **fields) -> Any:
    """Run the installed pipeline ``name`` as a part of the current run (see above) with
    ``fields`` as its config's fields; return what it returns. ``PipelineError`` if there
    is no current run, the part is not installed, a field is wrong, or the part fails."""
    parent = current_run()
    if parent is None:
        raise PipelineError(f"run_part({name!r}) runs a pipeline inside a run; call it from a"
                            " pipeline that atk runs")
    output_dir = Path(output_dir)
    folder = output_dir.name
    label = _label(name, output_dir)
    overrides = _part_overrides(parent.prompt_overrides, name)
    pipeline, arguments = _prepare(name, fields, output_dir=output_dir, models=parent.config.models,
                                   overrides=overrides, label=label, error=PipelineError)
    accepts = pipeline.accepts_any_keyword()
    output_dir.mkdir(parents=True, exist_ok=True)

    task_id = f"{parent.task_id}/{folder or name}"
    context = RunContext(task_id, pipeline, output_dir, parent.config, parent.models, overrides,
                         parent.store, part_of=parent.pipeline.name, executor=parent.executor,
                         calls=parent.calls, policy=parent.policy)
    supplied = {"task_id": task_id, "models": parent.models, "output_dir": str(output_dir),
                "prompt_overrides": str(overrides) if overrides else None, "pipeline": name}
    arguments.update({k: v for k, v in supplied.items() if accepts or k in pipeline.parameters()})

    start, end = progress
    shown = name if not folder or folder == name else f"{name} ({folder})"
    hub = _PartProgress(task_id, parent.task_id, (start, end), shown)
    set_progress(parent.task_id, start, f"{shown}: starting")
    activate(hub)
    token = run_context.enter(context)
    try:
        if pipeline.is_async:
            value = await pipeline.function(**arguments)
        else:  # a thread, so the parent's event loop (and the models on it) keep going
            value = await asyncio.to_thread(pipeline.function, **arguments)
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise
    except Exception as exc:
        raise PipelineError(f"{label} failed: {one_line(exc)}") from exc
    finally:
        run_context.leave(token)
        deactivate(hub)
    set_progress(parent.task_id, end, f"{shown}: done")
    return value


def _part_overrides(overrides: Path | None, name: str) -> Path | None:
    """A part's prompt overrides: the run's override folder's subfolder named after the part,
    if there is one."""
    if overrides is None:
        return None
    folder = Path(overrides) / name
    return folder if folder.is_dir() else None
