"""Writing output files so that a killed run never leaves half of one behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    """The process's umask, read without changing it (changing it would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.
    The file gets ``mode`` (default: an ordinary file's, 0o666 less the umask) before its
    first byte is written."""
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
        os.chmod(temp, 0o666 & ~_umask() if mode is None else mode)  # mkstemp makes it 0o600
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


def atomic_write_text(path, text: str, mode: int | None = None) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), mode)


def jsonl_text(records) -> str:
    """Records as JSON lines with a stable key order, the same bytes every time."""
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in records)


def atomic_write_jsonl(path, records) -> Path:
    return atomic_write_text(path, jsonl_text(records))


def atomic_write_json(path, value) -> Path:
    return atomic_write_text(path, json.dumps(value, ensure_ascii=False, indent=2) + "\n")
