"""The run that code is running in: what a step or the manifest can learn about it.

The runner sets it for the length of a pipeline call; steps read it to find
the run's models, prompts and store, and the manifest to record the run's
facts. It lives below all of them, so that none of them imports the runner.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunContext:
    """What code running inside a pipeline can learn about its run."""

    task_id: str
    pipeline: Any  # Pipeline
    output_dir: Path
    config: Any  # RunConfig: the config as it runs, overrides applied
    models: dict = field(default_factory=dict)
    prompt_overrides: Path | None = None
    store: Any = None  # the run's Store
    prompt_library: Any = None  # made on first use by steps
    part_of: str | None = None  # the composing pipeline, when this run is a part (run_part)
    executor: Any = None  # where steps run their samples (an Executor); None: in-process
    # Per step (by name; the parts of a composed run add up): its role, the samples it was
    # given, those that came out ok, and the requests they took (retries and votes included).
    calls: dict = field(default_factory=dict)
    policy: Any = None  # how gates and verdicts apply (a GatePolicy); None: as written
    # The hash of the run's config, inputs and code (engine.fingerprint); None for a dry run.
    # What a checkpoint left by a killed run must match to be taken back.
    fingerprint: str | None = None


_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "atk_current_run", default=None
)


def current_run() -> RunContext | None:
    """The run the calling code belongs to, or None outside ``atk run``."""
    return _current.get()


def enter(context: RunContext):
    """Make ``context`` the current run; returns the token ``leave`` needs."""
    return _current.set(context)


def leave(token) -> None:
    _current.reset(token)
