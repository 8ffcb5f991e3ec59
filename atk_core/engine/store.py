"""The run's memory: every model answer, in SQLite.

An answer is stored under a key that hashes the exact request (step tag,
rendered messages or prompt, sampling parameters, schema) plus the backend's
identity, and committed as soon as it arrives. Running the same config again
— after a crash, Ctrl-C or ``kill -9`` — finds every answered request here
and sends only the rest; a changed prompt, model or parameter is a different
key and misses naturally. What a key hashes is the model layer's business
(``atk_core.models.model``): the store keeps text under keys.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

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
    created REAL NOT NULL,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_requests (
    key TEXT NOT NULL,
    batch TEXT NOT NULL,
    tag TEXT NOT NULL,
    request BLOB NOT NULL,
    PRIMARY KEY (key, batch)
);
"""


@dataclass(frozen=True)
class StoredAnswer:
    """One stored answer: what the model said, and what it cost (of its prompt tokens, those
    read from and written to a provider's prompt cache)."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    created: float = field(default=0.0, compare=False)  # when it was stored (time.time())


_COLUMNS = ("key, tag, text, finish_reason, prompt_tokens, completion_tokens, request, created,"
            " cache_read_tokens, cache_write_tokens")
# Columns added since a store could first be written: a store from before gets them (as 0).
_ADDED = ("cache_read_tokens", "cache_write_tokens")


def _row(key: str, request_text: str, answer: StoredAnswer, tag: str) -> tuple:
    blob = zlib.compress(request_text.encode("utf-8"), 1)
    return (key, tag, answer.text, answer.finish_reason, answer.prompt_tokens,
            answer.completion_tokens, blob, time.time(), answer.cache_read_tokens,
            answer.cache_write_tokens)


class Store:
    """One SQLite database (WAL mode) holding a run's answers."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection = None  # opened on first use: a run that calls no model makes no file
        self._batches: dict = {}  # event loop -> (rows waiting for their commit, its future)

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
            present = {row[1] for row in db.execute("PRAGMA table_info(responses)")}
            for column in _ADDED:
                if column not in present:
                    db.execute(f"ALTER TABLE responses ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            self._connection = db
        return self._connection

    @classmethod
    def for_output(cls, output_dir) -> "Store":
        return cls(Path(output_dir) / STORE_FILE)

    def get(self, key: str) -> StoredAnswer | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, finish_reason, prompt_tokens, completion_tokens, cache_read_tokens,"
                " cache_write_tokens, created FROM responses WHERE key=?", (key,),
            ).fetchone()
        return StoredAnswer(*row) if row is not None else None

    def put(self, key: str, request_text: str, answer: StoredAnswer, tag: str = "") -> None:
        """Store an answer, committed before this returns: an answer we paid for must
        survive a kill that comes a moment later. ``request_text`` is kept (compressed)
        so that an answer can be traced to the exact request behind it."""
        self._commit([_row(key, request_text, answer, tag)])

    def put_many(self, answers: list) -> None:
        """``put`` for many ``(key, request text, answer, tag)``, in one transaction."""
        if answers:
            self._commit([_row(key, text, answer, tag) for key, text, answer, tag in answers])

    async def put_soon(self, key: str, request_text: str, answer: StoredAnswer, tag: str = "") -> None:
        """``put``, with the answers that arrive in the same turn of the event loop committed
        together, in one transaction: returns once this one is committed (so, as with ``put``,
        nothing that awaited it can be lost), but costs one commit per batch, not per answer."""
        import asyncio

        loop = asyncio.get_running_loop()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = ([], loop.create_future())
            loop.call_soon(self._flush, loop)
        batch[0].append(_row(key, request_text, answer, tag))
        await asyncio.shield(batch[1])

    def _flush(self, loop) -> None:
        rows, done = self._batches.pop(loop)
        try:
            self._commit(rows)
        except BaseException as exc:  # every answer of the batch learns it was not stored
            done.set_exception(exc)
            done.exception()  # retrieved here too: a batch nobody awaits any more is no warning
        else:
            done.set_result(None)

    def _commit(self, rows: list) -> None:
        """``rows`` in one transaction, committed, or none of them and the error: the
        connection is never left inside a transaction (later answers would seem stored and
        not be)."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN")
                db.executemany(f"INSERT OR REPLACE INTO responses ({_COLUMNS})"
                               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the error that matters is the one being raised
                raise

    # -- provider batches: what was sent in one, so that a resumed run follows it ----------

    def add_batch(self, batch_id: str, role: str, requests: list) -> None:
        """Note a batch the provider has accepted, with its requests (``(key, request text,
        tag)``), committed before this returns."""
        rows = [(key, batch_id, tag, zlib.compress(text.encode("utf-8"), 1)) for key, text, tag in requests]
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN")
                db.execute("INSERT OR REPLACE INTO batches VALUES (?, ?, 'open', ?)",
                           (batch_id, role, time.time()))
                db.executemany("INSERT OR REPLACE INTO batch_requests VALUES (?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def open_batch_of(self, key: str) -> str | None:
        """The batch, not yet finished, that holds the request ``key``."""
        with self._lock:
            row = self._db.execute(
                "SELECT b.id FROM batch_requests r JOIN batches b ON b.id = r.batch"
                " WHERE r.key = ? AND b.status = 'open' ORDER BY b.created DESC", (key,)).fetchone()
        return row[0] if row else None

    def batch_requests(self, batch_id: str) -> list[tuple[str, str, str]]:
        """``(key, request text, tag)`` of each request in the batch."""
        with self._lock:
            rows = self._db.execute("SELECT key, request, tag FROM batch_requests WHERE batch = ?",
                                    (batch_id,)).fetchall()
        return [(key, zlib.decompress(blob).decode("utf-8"), tag) for key, blob, tag in rows]

    def close_batch(self, batch_id: str, status: str) -> None:
        """A batch is finished (``status``, the provider's): its answers are stored."""
        with self._lock:
            self._db.execute("UPDATE batches SET status = ? WHERE id = ?", (f"done: {status}", batch_id))

    def batches(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT id, role, status, created FROM batches ORDER BY created").fetchall()
        return [dict(zip(("id", "role", "status", "created"), row)) for row in rows]

    def request_text(self, key: str) -> str | None:
        """The stored request behind an answer (with its tag and backend identity)."""
        with self._lock:
            row = self._db.execute("SELECT request FROM responses WHERE key=?", (key,)).fetchone()
        return zlib.decompress(row[0]).decode("utf-8") if row else None

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
