"""The built-in progress reporters, registered through the same hook as any plugin's."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

from ..toolkit.constraints import AtLeast
from ..hookspecs import hookimpl
from .progress import usage_text


@hookimpl
def atk_register_progress_reporters(register):
    register("console", ConsoleReporter)
    register("jsonl", JsonlReporter)


def _percent(progress):
    return "   ?%" if progress is None else f"{progress * 100:4.0f}%"


class ConsoleReporter:
    """A live bar with message, elapsed time and ETA on a terminal; plain timestamped lines
    otherwise. Both say, per model role, the requests, tokens and cost so far and the
    projected cost of the whole run (when the role has prices)."""

    def __init__(self, stream=None, live: bool | None = None,
                 min_interval: Annotated[float, AtLeast(0, unit="seconds")] = 10.0):
        # A file object, or "stdout"/"stderr" by name (what a config can say).
        named = {"stdout": sys.stdout, "stderr": sys.stderr}
        if isinstance(stream, str) and stream not in named:
            raise ValueError(f"stream must be stdout or stderr, not {stream!r}")
        self.stream = named.get(stream, stream) if isinstance(stream, str) else (stream or sys.stdout)
        if live is None:
            live = _isatty(self.stream) and os.environ.get("TERM") != "dumb"
        self.live = live
        self.min_interval = float(min_interval)
        self._bar = None
        self._last_line = (None, -1.0, 0.0)  # message, progress, time

    def handle(self, event):
        if self.live:
            self._handle_live(event)
        else:
            self._handle_plain(event)

    # -- plain lines: a log that stays readable when piped to a file ------------

    def _handle_plain(self, event):
        message, progress, printed_at = self._last_line
        now = time.monotonic()
        changed = (
            event.kind != "progress"
            or event.message != message
            or (event.progress is not None and event.progress - progress >= 0.05)
            or now - printed_at >= self.min_interval
        )
        if not changed:
            return
        self._last_line = (event.message, event.progress if event.progress is not None else progress, now)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.time))
        label = {"start": "started", "finish": "finished", "fail": "FAILED"}.get(event.kind, "")
        parts = [stamp, event.pipeline, _percent(event.progress)]
        if label:
            parts.append(label)
        if event.message:
            parts.append(event.message)
        if event.usage:
            parts.append(f"| {usage_text(event.usage)}")
        print("  ".join(parts), file=self.stream, flush=True)

    # -- live bar ---------------------------------------------------------------

    def _handle_live(self, event):
        if self._bar is None:
            self._start_bar(event)
        bar, task = self._bar
        completed = None if event.progress is None else event.progress * 100
        kwargs = {"message": event.message or "", "usage": usage_text(event.usage)}
        if completed is not None:
            kwargs["completed"] = completed
        bar.update(task, **kwargs)
        if event.kind in ("finish", "fail"):
            bar.stop()
            self._bar = None
            verdict = "finished" if event.kind == "finish" else "FAILED"
            detail = f": {event.message}" if event.message else ""
            print(f"{event.pipeline} {verdict}{detail}", file=self.stream, flush=True)

    def _start_bar(self, event):
        from rich.console import Console
        from rich.progress import (
            BarColumn, Progress, TaskProgressColumn, TextColumn,
            TimeElapsedColumn, TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[message]}"),
            TextColumn("[dim]{task.fields[usage]}"),
            console=Console(file=self.stream),
            transient=False,
        )
        bar.start()
        task = bar.add_task(event.pipeline, total=100, message="", usage="")
        self._bar = (bar, task)

    def close(self):
        if self._bar is not None:
            self._bar[0].stop()
            self._bar = None


class JsonlReporter:
    """One JSON object per event, appended to progress.jsonl in the output folder."""

    def __init__(self, path: Path | None = None, output_dir=None):
        if path is None:
            if output_dir is None:
                raise ValueError("the jsonl reporter needs a path or an output_dir")
            path = Path(output_dir) / "progress.jsonl"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")

    def handle(self, event):
        self._file.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self):
        self._file.close()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
