"""Writing output files so that a killed run never leaves half of one behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except (FileExistsError, NotADirectoryError) as exc:  # a file where a folder must be
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise OSError(exc.errno, f"cannot write {path}: {blocker} is not a folder") from None
    except OSError as exc:  # name the file the user knows, not our temporary one
        raise OSError(exc.errno, f"cannot write {path}: {exc.strerror}") from None
    try:
        os.chmod(temp, 0o644)  # mkstemp makes it private; outputs are ordinary files
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def jsonl_text(records) -> str:
    """Records as JSON lines with a stable key order, the same bytes every time."""
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in records)


def atomic_write_jsonl(path, records) -> Path:
    return atomic_write_text(path, jsonl_text(records))


def atomic_write_json(path, value) -> Path:
    return atomic_write_text(path, json.dumps(value, ensure_ascii=False, indent=2) + "\n")
