"""The task store of ``atk serve``: its runs and their progress events, in SQLite.

One database in the runs folder (``tasks.sqlite``, WAL) is shared by the
server, which creates, launches and finishes runs, and by every run's
process, whose ``taskstore`` progress reporter writes the run's progress,
message and events into it. The store outlives the server: a restarted
server reads the runs back and finds out what became of them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

TASKS_FILE = "tasks.sqlite"

STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")
RESUMABLE = ("interrupted", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL,
    message TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    updated REAL,
    pid INTEGER,
    exit_code INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    run_dir TEXT NOT NULL,
    cwd TEXT NOT NULL,
    command TEXT NOT NULL,
    config_redacted TEXT NOT NULL DEFAULT '',
    queued REAL,
    usage TEXT
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    progress REAL,
    message TEXT,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, seq);
"""

_RUN_COLUMNS = (
    "id", "pipeline", "status", "progress", "message", "created", "started", "finished",
    "updated", "pid", "exit_code", "error", "attempts", "cancel_requested", "run_dir", "cwd",
    "command", "config_redacted", "queued", "usage",
)


def connect(path) -> sqlite3.Connection:
    """A connection to the task store at ``path``, its tables made if missing."""
    from .folder import open_private

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Private from its first byte (SQLite makes its -wal and -shm alike), never through a
    # link, and only a file of this user's: the runs start from what it says.
    os.close(open_private(path, os.O_CREAT | os.O_WRONLY))
    db = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(_SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    if "queued" not in columns:  # a task store from before the queue
        db.execute("ALTER TABLE runs ADD COLUMN queued REAL")
    if "usage" not in columns:  # a task store from before live costs
        db.execute("ALTER TABLE runs ADD COLUMN usage TEXT")
    return db


class TaskStore:
    """The server's handle on the task store (thread-safe: one connection, one lock)."""

    def __init__(self, path):
        self.path = Path(path)
        self._db = connect(self.path)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- runs ---------------------------------------------------------------------

    def add_run(self, *, id: str, pipeline: str, run_dir: str, cwd: str, command: list,
                config_redacted: str) -> dict:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO runs (id, pipeline, status, progress, message, created, updated, queued,"
                " run_dir, cwd, command, config_redacted) VALUES (?, ?, 'queued', 0.0, ?, ?, ?, ?, ?, ?, ?, ?)",
                (id, pipeline, "waiting to start", now, now, now, run_dir, cwd, json.dumps(command),
                 config_redacted),
            )
        return self.run(id)

    def update_run(self, run_id: str, **values) -> None:
        unknown = set(values) - set(_RUN_COLUMNS)
        if unknown:
            raise ValueError(f"unknown run column(s): {', '.join(sorted(unknown))}")
        values["updated"] = time.time()
        if "command" in values and not isinstance(values["command"], str):
            values["command"] = json.dumps(values["command"])
        assignments = ", ".join(f"{key} = ?" for key in values)
        with self._lock:
            self._db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*values.values(), run_id))

    def run(self, run_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
        return _run_dict(row) if row else None

    def runs(self, statuses=None) -> list[dict]:
        query = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs"
        arguments: tuple = ()
        if statuses:
            query += f" WHERE status IN ({', '.join('?' for _ in statuses)})"
            arguments = tuple(statuses)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created DESC, id DESC", arguments).fetchall()
        return [_run_dict(row) for row in rows]

    # -- events ---------------------------------------------------------------------

    def report(self, run_id: str, kind: str, progress, message, at: float, *, keep: bool,
               usage: dict | None = None) -> None:
        """What a run's progress reporter says: the run's progress and message (unless
        ``progress`` is None), its models' use so far (``usage``, an event's), and, if
        ``keep``, an event; in one transaction."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN")
            try:
                if usage is not None:
                    self._db.execute("UPDATE runs SET usage = ? WHERE id = ?",
                                     (json.dumps(usage), run_id))
                if progress is None:
                    self._db.execute("UPDATE runs SET message = ?, updated = ? WHERE id = ?",
                                     (message, now, run_id))
                else:
                    self._db.execute("UPDATE runs SET progress = ?, message = ?, updated = ?"
                                     " WHERE id = ?", (progress, message, now, run_id))
                if keep:
                    self._db.execute("INSERT INTO events (run_id, kind, progress, message, time)"
                                     " VALUES (?, ?, ?, ?, ?)", (run_id, kind, progress, message, at))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add_event(self, run_id: str, kind: str, progress=None, message=None, at=None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO events (run_id, kind, progress, message, time) VALUES (?, ?, ?, ?, ?)",
                (run_id, kind, progress, message, time.time() if at is None else at),
            )

    def events(self, run_id: str, after: int = 0, limit: int = 500) -> list[dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, progress, message, time FROM events"
                " WHERE run_id = ? AND seq > ? ORDER BY seq DESC LIMIT ?",
                (run_id, after, limit),
            ).fetchall()
        return [dict(zip(("seq", "kind", "progress", "message", "time"), row)) for row in reversed(rows)]

    def last_event(self, run_id: str, kinds=("start", "finish", "fail")) -> dict | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT seq, kind, progress, message, time FROM events WHERE run_id = ?"
                f" AND kind IN ({', '.join('?' for _ in kinds)}) ORDER BY seq DESC LIMIT 1",
                (run_id, *kinds),
            ).fetchone()
        return dict(zip(("seq", "kind", "progress", "message", "time"), row)) if row else None


def _run_dict(row) -> dict:
    run = dict(zip(_RUN_COLUMNS, row))
    run["command"] = json.loads(run["command"])
    run["cancel_requested"] = bool(run["cancel_requested"])
    try:
        run["usage"] = json.loads(run["usage"]) if run["usage"] else None
    except ValueError:
        run["usage"] = None
    return run
