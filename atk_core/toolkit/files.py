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
    writer = AtomicFile(path, mode)
    try:
        writer.write(data)
    except BaseException:
        writer.discard()
        raise
    return writer.commit()


class AtomicFile:
    """A file written a piece at a time into a temporary file beside ``path``, and put in
    place whole by ``commit`` (a rename): until then ``path`` holds what it held, and a
    killed run leaves at most a hidden temporary file. ``discard`` drops what was written."""

    def __init__(self, path, mode: int | None = None):
        self.path = path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, self._temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except (FileExistsError, NotADirectoryError) as exc:  # a file where a folder must be
            blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
            raise OSError(exc.errno, f"cannot write {path}: {blocker} is not a folder") from None
        except OSError as exc:  # name the file the user knows, not our temporary one
            raise OSError(exc.errno, f"cannot write {path}: {exc.strerror}") from None
        try:
            os.chmod(self._temp, 0o666 & ~_umask() if mode is None else mode)  # mkstemp: 0o600
            self._handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            self._unlink()
            raise

    def write(self, data: bytes) -> None:
        self._handle.write(data)

    def commit(self) -> Path:
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self._temp, self.path)
        except BaseException:
            self.discard()
            raise
        return self.path

    def discard(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        self._unlink()

    def _unlink(self):
        try:
            os.unlink(self._temp)
        except FileNotFoundError:
            pass


def atomic_write_text(path, text: str, mode: int | None = None) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), mode)


def jsonl_text(records) -> str:
    """Records as JSON lines with a stable key order, the same bytes every time."""
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in records)


def atomic_write_jsonl(path, records) -> Path:
    return atomic_write_text(path, jsonl_text(records))


class JsonLines:
    """The records of a JSON-lines file, read from it each time they are gone through: a file
    of any size, as a list that is never held (``make_exam``'s training files)."""

    def __init__(self, path):
        self.path = Path(path)

    def __iter__(self):
        with open(self.path, encoding="utf-8") as file:
            for line in file:
                if line.strip():
                    yield json.loads(line)


def atomic_write_json(path, value) -> Path:
    return atomic_write_text(path, json.dumps(value, ensure_ascii=False, indent=2) + "\n")
