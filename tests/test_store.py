"""The store's grouped commits, on real SQLite: answers that arrive together are committed in
one transaction, and none is reported stored before its commit."""

import asyncio
import sqlite3

from atk_core.engine.store import Store, StoredAnswer


def answer(n):
    return StoredAnswer(f"answer {n}", "stop", 3, 2)


def committed(path) -> int:
    """Rows another connection sees: only what is committed."""
    with sqlite3.connect(path) as other:
        return other.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def test_answers_of_one_turn_share_a_commit_and_each_is_committed_before_it_returns(tmp_path):
    store = Store(tmp_path / "store.sqlite")
    seen_after_own_put = []

    async def one(n):
        await asyncio.sleep(0)  # all fifty arrive in the same turn of the loop
        await store.put_soon(f"k{n}", f"request {n}", answer(n))
        seen_after_own_put.append(committed(store.path))

    async def main():
        await asyncio.gather(*(one(n) for n in range(50)))

    asyncio.run(main())
    assert committed(store.path) == 50
    assert min(seen_after_own_put) == 50  # one transaction: all or none, and never before its return
    assert store.get("k7") == answer(7)
    assert store.request_text("k7") == "request 7"


def test_a_batch_that_cannot_be_committed_fails_every_put_of_it(tmp_path):
    store = Store(tmp_path / "store.sqlite")
    store.put("warm", "w", answer(0))  # the file and table exist
    store._db.execute("CREATE TRIGGER refuse BEFORE INSERT ON responses WHEN NEW.key = 'k3'"
                      " BEGIN SELECT RAISE(ABORT, 'refused'); END")

    async def main():
        return await asyncio.gather(*(store.put_soon(f"k{n}", "r", answer(n)) for n in range(5)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert committed(store.path) == 1  # the batch rolled back whole; the earlier answer stays
    store.put("k9", "r", answer(9))  # and the store works on
    assert committed(store.path) == 2


def test_a_commit_that_fails_leaves_no_transaction_open_behind_it(tmp_path):
    """COMMIT itself fails (here a deferred foreign key): the batch is refused, and the next
    answers are really committed, not left in a transaction nobody ends."""
    store = Store(tmp_path / "store.sqlite")
    store._db.executescript(
        "PRAGMA foreign_keys=ON;"
        "CREATE TABLE parent(id INTEGER PRIMARY KEY);"
        "CREATE TABLE child(x INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);"
        "CREATE TRIGGER late AFTER INSERT ON responses WHEN NEW.tag = 'boom'"
        " BEGIN INSERT INTO child VALUES (999); END;")

    async def batch(tag):
        return await asyncio.gather(*(store.put_soon(f"{tag}{n}", "r", answer(n), tag) for n in range(3)),
                                    return_exceptions=True)

    assert all(isinstance(r, sqlite3.IntegrityError) for r in asyncio.run(batch("boom")))
    assert not store._db.in_transaction
    store.put("single", "r", answer(1), "ok")
    assert asyncio.run(batch("ok")) == [None, None, None]
    assert committed(store.path) == 4


def test_a_store_from_before_cached_tokens_were_kept_opens_and_keeps_them_from_now_on(tmp_path):
    path = tmp_path / "store.sqlite"
    with sqlite3.connect(path) as old:  # the responses table as it was first written
        old.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, tag TEXT NOT NULL, text TEXT NOT NULL,"
                    " finish_reason TEXT, prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER"
                    " NOT NULL DEFAULT 0, request BLOB NOT NULL, created REAL NOT NULL)")
        old.execute("INSERT INTO responses VALUES ('old', '', 'said before', 'stop', 5, 1, x'00', 0)")
    store = Store(path)
    assert store.get("old") == StoredAnswer("said before", "stop", 5, 1, 0, 0)
    store.put("new", "request", StoredAnswer("said now", "stop", 50, 3, cache_read_tokens=40, cache_write_tokens=6))
    assert store.get("new") == StoredAnswer("said now", "stop", 50, 3, 40, 6)
    store.close()
