"""Retrieval over a run's chunks: SQLite FTS5 and BM25, no service to run.

The distractors of a RAG sample are what a real retriever would return for
its question: chunks that share its words, ranked by BM25, not chunks drawn
at random (which a model learns to ignore by topic alone). Ties are broken
by chunk id, so the same question always retrieves the same chunks.
"""

from __future__ import annotations

import sqlite3

from atk_core import content_words


class ChunkIndex:
    """A full-text index of chunks (``id``, ``chunk`` text) to search with a question: in
    memory, or in the file ``path`` (a corpus read a shard at a time adds each shard's
    chunks, and a resumed run opens it again). It keeps each chunk's source and offsets, to
    give a hit from another shard."""

    def __init__(self, samples=(), path=None):
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:")
        self._db.executescript(
            "CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(id UNINDEXED, body);"
            "CREATE TABLE IF NOT EXISTS places (id TEXT PRIMARY KEY, body TEXT, source TEXT,"
            " start INTEGER, end INTEGER);")
        self.add(samples)

    def add(self, samples, chunks=None) -> None:
        """Index ``samples`` (in order), with their chunks' places (``chunks``: by id)."""
        def place(sample):
            chunk = (chunks or {}).get(sample["id"])
            return (sample["id"], sample["chunk"], sample.get("source"),
                    chunk.start if chunk else None, chunk.end if chunk else None)

        with self._db:
            self._db.executemany("INSERT INTO chunks VALUES (?, ?)",
                                 [(sample["id"], sample["chunk"]) for sample in samples])
            self._db.executemany("INSERT OR REPLACE INTO places VALUES (?, ?, ?, ?, ?)",
                                 [place(sample) for sample in samples])

    def text(self, chunk_id: str) -> str:
        return self._db.execute("SELECT body FROM places WHERE id = ?", (chunk_id,)).fetchone()[0]

    def place(self, chunk_id: str) -> tuple[str, int, int]:
        """The chunk's source, start and end."""
        return self._db.execute("SELECT source, start, end FROM places WHERE id = ?", (chunk_id,)).fetchone()

    def search(self, query: str, limit: int, exclude=()) -> list[tuple[str, float]]:
        """Up to ``limit`` chunk ids (and BM25 scores, higher is closer), best first, for the
        content words of ``query``; ``exclude`` ids are left out."""
        terms = sorted(set(content_words(query)))
        if not terms or limit < 1:
            return []
        match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        skip = list(exclude)
        rows = self._db.execute(
            "SELECT id, bm25(chunks) FROM chunks WHERE chunks MATCH ?"
            f" {'AND id NOT IN (' + ','.join('?' * len(skip)) + ')' if skip else ''}"
            " ORDER BY bm25(chunks), id LIMIT ?", (match, *skip, limit)).fetchall()
        return [(chunk_id, round(-score, 6)) for chunk_id, score in rows]

    def close(self) -> None:
        self._db.close()
