"""The run's memory: every model answer and every step result, in SQLite.

An answer is stored under a hash of the exact request (step tag, rendered
messages or prompt, sampling parameters, schema) plus the backend's identity,
and committed as soon as it arrives. Running the same config again — after a
crash, Ctrl-C or ``kill -9`` — finds every answered request here and sends
only the rest; a changed prompt, model or parameter is a different key and
misses naturally. Keys are content hashes, so shards written by different
workers merge by key (``merge_from``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import zlib
from pathlib import Path

from .models.base import Request, Response, Usage

STORE_FILE = "store.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    tag TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    request BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    step TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    ok INTEGER NOT NULL,
    value TEXT,
    reason TEXT,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (step, sample_id)
);
"""


def canonical_request(request: Request, identity: dict, tag: str = "") -> str:
    """The exact request as one canonical JSON text: what the store key hashes."""
    material = {"tag": tag, "identity": identity, "request": request.to_dict()}
    return json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def request_key(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Store:
    """One SQLite database (WAL mode) holding a run's answers and results."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection = None  # opened on first use: a run that calls no model makes no file
        self._pending_results = 0

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=60,
                                 isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed; only
            # a power cut can lose the last ones, which are then simply re-sent.
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            if db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            self._connection = db
        return self._connection

    @classmethod
    def for_output(cls, output_dir) -> "Store":
        return cls(Path(output_dir) / STORE_FILE)

    canonical_request = staticmethod(canonical_request)
    request_key = staticmethod(request_key)

    # -- answers ------------------------------------------------------------------------

    def get_response(self, key: str) -> Response | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, finish_reason, prompt_tokens, completion_tokens"
                " FROM responses WHERE key=?", (key,),
            ).fetchone()
        if row is None:
            return None
        return Response(text=row[0], finish_reason=row[1], usage=Usage(row[2], row[3]), cached=True)

    def put_response(self, key: str, canonical: str, response: Response, tag: str = "") -> None:
        blob = zlib.compress(canonical.encode("utf-8"), 1)
        with self._lock:
            # Committed at once (with any pending results): an answer we paid
            # for must survive a kill that comes a moment later.
            if not self._db.in_transaction:
                self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, tag, response.text, response.finish_reason, response.usage.prompt_tokens,
                 response.usage.completion_tokens, blob, time.time()),
            )
            self._db.execute("COMMIT")
            self._pending_results = 0

    def request_of(self, key: str) -> dict | None:
        """The stored request behind an answer (with its tag and backend identity)."""
        with self._lock:
            row = self._db.execute("SELECT request FROM responses WHERE key=?", (key,)).fetchone()
        return json.loads(zlib.decompress(row[0])) if row else None

    def response_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    # -- step results ---------------------------------------------------------------------

    def put_result(self, step: str, sample_id: str, ok: bool, value=None, reason=None,
                   attempts: int = 1) -> None:
        encoded = json.dumps(value, ensure_ascii=False, default=str) if value is not None else None
        with self._lock:
            if not self._db.in_transaction:
                self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)",
                (step, str(sample_id), int(bool(ok)), encoded, reason, attempts),
            )
            self._pending_results += 1
            if self._pending_results >= 500:
                self._db.execute("COMMIT")
                self._pending_results = 0

    def flush(self) -> None:
        with self._lock:
            if self._connection is not None and self._connection.in_transaction:
                self._db.execute("COMMIT")
            self._pending_results = 0

    def results(self, step: str | None = None) -> list[dict]:
        self.flush()
        query = "SELECT step, sample_id, ok, value, reason, attempts FROM results"
        args: tuple = ()
        if step is not None:
            query += " WHERE step=?"
            args = (step,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY step, sample_id", args).fetchall()
        return [
            {"step": r[0], "sample_id": r[1], "ok": bool(r[2]),
             "value": json.loads(r[3]) if r[3] is not None else None,
             "reason": r[4], "attempts": r[5]}
            for r in rows
        ]

    # -- shards ---------------------------------------------------------------------------

    def merge_from(self, other_path) -> int:
        """Copy answers and results from another shard's database; return answers added."""
        self.flush()
        with self._lock:
            before = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            self._db.execute("ATTACH DATABASE ? AS shard", (str(other_path),))
            try:
                self._db.execute("BEGIN")
                self._db.execute("INSERT OR IGNORE INTO responses SELECT * FROM shard.responses")
                self._db.execute("INSERT OR IGNORE INTO results SELECT * FROM shard.results")
                self._db.execute("COMMIT")
            finally:
                self._db.execute("DETACH DATABASE shard")
            after = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        return after - before

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
