"""Reading what a run of ``atk serve`` wrote: its log's tail, its output files (confined
to its output folder: no link or ``..`` leads out), pages of their records, its manifest,
and the ``atk eval``s of its exam.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .layout import LOG_FILE, OUTPUT_DIR, RunError, run_folder

_HIDDEN_SUFFIXES = (".tmp", "-wal", "-shm", "-journal")
DEFAULT_EVAL = "eval"  # the folder of a run's output folder `atk eval` writes to without --output
MAX_EVAL_BYTES = 2_000_000  # an eval.json is a few kilobytes per model and source document
MAX_EVALS = 20


class RunOutputs:
    """What the runs of one runs folder wrote."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = runs_dir

    def output_dir(self, run: dict) -> Path:
        return run_folder(self.runs_dir, run["id"]) / OUTPUT_DIR

    def log_tail(self, run: dict, max_bytes: int = 64_000) -> dict:
        path = run_folder(self.runs_dir, run["id"]) / LOG_FILE
        try:
            size = path.stat().st_size
            with open(path, "rb") as handle:
                handle.seek(max(0, size - max_bytes))
                data = handle.read(max_bytes)
        except OSError:
            return {"text": "", "size": 0, "truncated": False}
        truncated = size > max_bytes
        if truncated and b"\n" in data:
            data = data.split(b"\n", 1)[1]  # start at a whole line
        return {"text": data.decode("utf-8", errors="replace"), "size": size, "truncated": truncated}

    def records(self, run: dict, relative: str, offset: int = 0, limit: int = 20) -> dict:
        """A page of an output file's JSON-lines records (confined like ``file``)."""
        path = self.file(run, relative)
        if path.suffix != ".jsonl":
            raise RunError(f"{relative!r} is not a JSON-lines file (.jsonl) to page through", 400)
        total, page = 0, []
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    continue
                if offset <= total < offset + limit:
                    try:
                        page.append(json.loads(line))
                    except ValueError:
                        page.append(line.rstrip("\n"))
                total += 1
        return {"file": relative, "total": total, "offset": offset, "records": page}

    def files(self, run: dict) -> list[dict]:
        """The run's output files (inside its output folder only), by path."""
        root = self.output_dir(run)
        try:
            real_root = root.resolve(strict=True)
        except OSError:
            return []
        found = []
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for name in names:
                if _hidden(name):
                    continue
                path = Path(folder) / name
                try:
                    real = path.resolve(strict=True)
                    stat = real.stat()
                except OSError:
                    continue
                if not real.is_file() or not _inside(real, real_root):
                    continue
                found.append({"path": path.relative_to(root).as_posix(), "size": stat.st_size,
                              "modified": stat.st_mtime})
        return sorted(found, key=lambda f: f["path"])

    def file(self, run: dict, relative: str) -> Path:
        """The output file ``relative`` names; ``RunError`` unless it is inside the output folder."""
        if not relative or "\x00" in relative or "\\" in relative:
            raise RunError("not a valid file path", 400)
        if relative.startswith("/") or Path(relative).is_absolute():
            raise RunError("file paths are relative to the run's output folder", 400)
        parts = relative.split("/")
        if any(part in ("..", ".") for part in parts):
            raise RunError("file paths may not contain '.' or '..'", 400)
        if _hidden(parts[-1]):  # what the listing leaves out: half-written or internal files
            raise RunError(f"no output file {relative!r}", 404)
        root = self.output_dir(run)
        try:
            real_root = root.resolve(strict=True)
            real = (root / relative).resolve(strict=True)
        except (OSError, RuntimeError):
            raise RunError(f"no output file {relative!r}", 404) from None
        if not _inside(real, real_root) or not real.is_file():
            raise RunError(f"no output file {relative!r}", 404)
        return real

    def evals(self, run: dict) -> list[tuple[str, dict]]:
        """The ``eval.json`` of the run itself (a run of ``atk eval``'s pipeline, named "")
        and of each folder of its output folder (``eval`` first), parsed, with the folder's
        name; one that is not inside the output folder, not a JSON object, or too large is
        left out."""
        from ..evaluation.pipeline import REPORT

        root = self.output_dir(run)
        try:
            with os.scandir(root) as entries:
                names = sorted(e.name for e in entries if not _hidden(e.name) and e.is_dir())
        except OSError:
            return []
        if DEFAULT_EVAL in names:
            names.remove(DEFAULT_EVAL)
            names.insert(0, DEFAULT_EVAL)
        found = []
        for name in ["", *names]:
            try:
                data = _read_json(self.file(run, f"{name}/{REPORT}" if name else REPORT), MAX_EVAL_BYTES)
            except (RunError, OSError, ValueError, RecursionError):
                continue
            if isinstance(data, dict):
                found.append((name, data))
                if len(found) == MAX_EVALS:
                    break
        return found

    def manifest(self, run: dict) -> dict | None:
        from ..commands.inspection import load_manifest
        from ..errors import ConfigError

        try:
            data = load_manifest(self.output_dir(run))  # the same reading as `atk inspect`
        except (ConfigError, OSError, ValueError):
            return None  # not written yet, or a run that failed before its end
        return data if isinstance(data, dict) else None



def _read_json(path: Path, max_bytes: int):
    """The JSON value in ``path`` (a file ``file`` confined), read without following a link;
    ``ValueError`` if it is larger than ``max_bytes`` or not strict JSON (no NaN)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path.name} is not a file")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{path.name} is larger than {max_bytes} bytes")
    return json.loads(data.decode("utf-8"), parse_constant=_not_a_number)


def _not_a_number(text: str):
    raise ValueError(f"{text} is not a number JSON allows")


def _hidden(name: str) -> bool:
    """Files a run's listing leaves out: dotfiles, and atomic writes or SQLite journals in progress."""
    return name.startswith(".") or name.endswith(_HIDDEN_SUFFIXES)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return path != root
