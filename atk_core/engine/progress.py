"""Progress events: the one call a pipeline makes, and their fan-out to reporters.

``set_progress(task_id, progress, message)`` finds the run that owns
``task_id`` and hands an event to each of its reporters, in order, under one
lock, so it is safe from worker threads. Outside a run (a pipeline function
called directly, ``task_id=None``) it does nothing.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger("atk")


@dataclass(frozen=True)
class ProgressEvent:
    """One moment of a run, as reporters see it.

    ``progress`` is a fraction 0..1, or None when unknown; ``time`` is Unix
    seconds. ``usage`` is, per model role, what the run has used so far:
    ``requests_sent``, ``answers_from_store``, ``prompt_tokens`` and
    ``completion_tokens`` (of the requests sent; of the prompt tokens,
    ``cache_read_tokens`` and ``cache_write_tokens`` when a provider's prompt
    cache was used), ``cost`` (of those, in
    dollars; None without the role's prices) and ``projected_cost`` (the whole
    run's, from the cost of every answer so far, stored ones included, over
    the progress; None until there is enough progress to project from).
    """

    task_id: str
    pipeline: str
    kind: str
    progress: float | None
    message: str | None
    time: float
    usage: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ProgressHub:
    """The reporters of one run, and the events sent to them."""

    def __init__(self, task_id: str, pipeline: str, reporters: list[tuple[str, Any]], *,
                 models: dict | None = None):
        self.task_id = task_id
        self.pipeline = pipeline
        self.models = models or {}  # role -> Model, whose totals each event carries
        self._reporters = list(reporters)
        self._lock = threading.RLock()
        self._warned_clamp = False
        self._warned_type = False
        self._warned_usage = False
        self.last_progress: float | None = None

    def emit(self, kind: str, progress: float | None = None, message: str | None = None):
        with self._lock:
            if kind == "progress":
                progress = self._fraction(progress)
            if progress is not None:
                self.last_progress = progress
            event = ProgressEvent(
                task_id=self.task_id,
                pipeline=self.pipeline,
                kind=kind,
                progress=progress,
                message=None if message is None else str(message),
                time=time.time(),
                usage=self._usage(),
            )
            for entry in list(self._reporters):
                name, reporter = entry
                try:
                    reporter.handle(event)
                except Exception as exc:  # a reporter must never stop a run
                    self._reporters.remove(entry)
                    log.warning(
                        "progress reporter %r failed and is disabled for this run: %s: %s",
                        name, type(exc).__name__, exc,
                    )

    def say(self, message: str) -> None:
        """A message, the bar where it is."""
        self.emit("progress", self.last_progress, message)

    def _usage(self):
        if not self.models:
            return None
        try:
            return usage_so_far(self.models, self.last_progress)
        except Exception as exc:  # figures are a nicety: they must never stop a run
            if not self._warned_usage:
                self._warned_usage = True
                log.warning("progress: the models' usage could not be read: %s: %s",
                            type(exc).__name__, exc)
            return None

    def _fraction(self, progress):
        if progress is None:
            return None
        if isinstance(progress, bool) or not isinstance(progress, (int, float)):
            if not self._warned_type:
                self._warned_type = True
                log.warning("set_progress got %r, not a number from 0 to 1; ignored", progress)
            return None
        progress = float(progress)
        if math.isnan(progress):
            return None
        if progress < 0.0 or progress > 1.0:
            if not self._warned_clamp:
                self._warned_clamp = True
                log.warning(
                    "set_progress got %s, outside 0..1; clamped (progress is a fraction)", progress
                )
            progress = min(1.0, max(0.0, progress))
        return progress

    def close(self):
        with self._lock:
            for name, reporter in self._reporters:
                try:
                    reporter.close()
                except Exception as exc:
                    log.warning("progress reporter %r failed to close: %s: %s",
                                name, type(exc).__name__, exc)
            self._reporters.clear()


PROJECT_FROM = 0.02  # progress below which no total is projected


def usage_so_far(models: dict, progress: float | None) -> dict:
    """Per role: requests, tokens and cost so far, and the projected cost of the whole run."""
    usage = {}
    for role, model in sorted(models.items()):
        summary = model.summary()
        sent, total = summary["cost_sent"], summary["cost_total"]
        projected = None
        if total is not None and progress is not None and progress >= PROJECT_FROM:
            projected = total / progress
        use = summary["usage_sent"]
        usage[role] = {"requests_sent": summary["requests_sent"],
                       "answers_from_store": summary["answers_from_store"],
                       "prompt_tokens": use["prompt_tokens"],
                       "completion_tokens": use["completion_tokens"],
                       "cost": sent, "projected_cost": projected}
        if "cache_read_tokens" in use:  # of the prompt tokens, those a provider's cache held
            usage[role].update(cache_read_tokens=use["cache_read_tokens"],
                               cache_write_tokens=use["cache_write_tokens"])
    return usage


def usage_text(usage: dict | None) -> str:
    """``usage`` (an event's) in a few words per role: 'small 12 sent, 3.4k tokens (2.1k
    cached), $0.0012 (~$0.0050 in all)'."""
    parts = []
    for role, use in (usage or {}).items():
        tokens = use["prompt_tokens"] + use["completion_tokens"]
        text = f"{role} {use['requests_sent']} sent, {_short(tokens)} tokens"
        if use.get("cache_read_tokens"):
            text += f" ({_short(use['cache_read_tokens'])} cached)"
        if use.get("cost") is not None:
            text += f", ${use['cost']:.4f}"
            if use.get("projected_cost") is not None:
                text += f" (~${use['projected_cost']:.4f} in all)"
        parts.append(text)
    return "; ".join(parts)


def _short(number: int) -> str:
    if number >= 1_000_000:
        return f"{number / 1_000_000:.1f}M"
    if number >= 10_000:
        return f"{number / 1000:.0f}k"
    if number >= 1000:
        return f"{number / 1000:.1f}k"
    return str(number)


_active: dict[str, ProgressHub] = {}
_active_lock = threading.Lock()


def activate(hub: ProgressHub) -> None:
    with _active_lock:
        _active[hub.task_id] = hub


def deactivate(hub: ProgressHub) -> None:
    with _active_lock:
        _active.pop(hub.task_id, None)


def set_progress(task_id: str | None, progress: float | None, message: str | None = None) -> None:
    """Report how far the run ``task_id`` has come: ``progress`` is a fraction 0..1."""
    hub = _hub(task_id)
    if hub is not None:
        hub.emit("progress", progress, message)


def say(task_id: str | None, message: str) -> None:
    """Show ``message`` on the run ``task_id``'s progress, its bar where it is."""
    hub = _hub(task_id)
    if hub is not None:
        hub.say(message)


def _hub(task_id):
    if task_id is None:
        return None
    with _active_lock:
        return _active.get(task_id)


def make_reporter(name: str, cls, options: dict | None, *, output_dir=None):
    """Build a reporter from its class and the user's options.

    ``output_dir`` is offered to reporters whose ``__init__`` names it (or
    takes ``**kwargs``), so file-writing reporters know where the run writes.
    """
    options = dict(options or {})
    if output_dir is not None and "output_dir" not in options and _accepts(cls, "output_dir"):
        options["output_dir"] = output_dir
    return cls(**options)


def _accepts(cls, argument: str) -> bool:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == argument or p.kind is p.VAR_KEYWORD for p in params)
