"""Retrieval over a run's chunks: SQLite FTS5 and BM25, in memory, no service to run.

The distractors of a RAG sample are what a real retriever would return for
its question: chunks that share its words, ranked by BM25, not chunks drawn
at random (which a model learns to ignore by topic alone). Ties are broken
by chunk id, so the same question always retrieves the same chunks.
"""

from __future__ import annotations

import sqlite3

from atk_core import content_words


class ChunkIndex:
    """A full-text index of chunks (``id``, ``chunk`` text) to search with a question."""

    def __init__(self, samples):
        self._db = sqlite3.connect(":memory:")
        self._db.execute("CREATE VIRTUAL TABLE chunks USING fts5(id UNINDEXED, body)")
        self._db.executemany("INSERT INTO chunks VALUES (?, ?)",
                             [(sample["id"], sample["chunk"]) for sample in samples])
        self.size = len(samples)

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
