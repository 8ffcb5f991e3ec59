"""Where a run's files are in the runs folder, and the error a request about a run raises.

Shared by the three jobs of ``atk serve`` (vetting a config, queueing its process,
reading what it wrote): a run's folder is the runs folder and its id, never a path the
task store holds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CONFIG_FILE = "config.yaml"
SETTINGS_FILE = "settings.txt"
LOG_FILE = "log.txt"
OUTPUT_DIR = "output"

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


class RunError(Exception):
    """A request about a run that cannot be done; ``status`` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def run_folder(runs_dir: Path, run_id: str) -> Path:
    """A run's folder: the runs folder and its id (never a path the task store holds)."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise RunError(f"not a run id: {str(run_id)[:80]!r}", 404)
    return runs_dir / run_id


def last_error_line(path) -> str | None:
    """The last ``atk: error:`` line of a log (else its last line), without the prefix."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 32_000))
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    lines = [line.strip() for line in lines if line.strip() and not line.startswith("# ")]
    for line in reversed(lines):
        if line.startswith("atk: error: "):
            return line[len("atk: error: "):][:1000]
    return lines[-1][:1000] if lines else None
