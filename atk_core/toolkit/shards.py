"""A pipeline's pass over its corpus a shard at a time, resumable shard by shard.

``ShardedRun`` reads the input folder as a ``Corpus`` (runs of files of about
``shard_bytes``), and for each shard gives the pipeline its chunks and the
samples the content gate and the judge keep. What the pipeline writes is
appended shard after shard to files in the output folder's ``.atk-partial/``,
with the dropped samples (``RunRecord.spool``); after each shard it writes a
checkpoint: where each file ends, the record's counts, the manifest's per-step
calls, the corpus's state, the run-wide near-duplicate finder's mark, and
the pipeline's own run-wide state. A run killed mid-corpus and run again with
the same config, inputs and code (the run's fingerprint) takes the checkpoint
back and starts at the first unfinished shard: the finished ones are neither
read nor replayed. At the end each output goes in place whole.

So a pipeline that treats each chunk on its own holds a shard's worth at
once, and writes the bytes one pass over the whole corpus writes::

    async with ShardedRun(input_dir, output_dir, record, documents, ["rows.jsonl"], seed=seed) as run:
        near = run.near_copies(gates)
        async for shard in run.shards(judge=judge, policy="enforce", task_id=task_id):
            ...  # steps over shard.samples, with progress=shard.progress(0.2, 0.5)
            run.extend("rows.jsonl", rows)
            run.finished(shard, {"kept": kept})  # the pipeline's run-wide state, as JSON
    run.write_record()  # failures.jsonl and the manifest
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .files import atomic_write_json, jsonl_text

PARTIAL = ".atk-partial"
CHECKPOINT = "checkpoint.json"


@dataclass
class Shard:
    """One shard of a corpus: its chunks (by id too), and the samples that go on."""

    index: int
    total: int
    chunks: list
    samples: list

    @property
    def by_id(self) -> dict:
        return {chunk.id: chunk for chunk in self.chunks}

    def at(self, point: float) -> float:
        """Where ``point`` (0 to 1 of the whole run's bar) falls in this shard's part of it."""
        return (self.index + point) / self.total

    def progress(self, start: float, end: float) -> tuple[float, float]:
        """A step's share of the bar (as it would be in one pass) within this shard's part."""
        return self.at(start), self.at(end)


class ShardedRun:
    """See the module. ``outputs``: the files (relative to the output folder) the pipeline
    appends to; ``whole``: read the corpus in one piece (a choice that needs every chunk at
    once, as an exam's facts do)."""

    def __init__(self, input_dir, output_dir, record, documents, outputs, *, seed: int = 0,
                 whole: bool = False):
        from ..engine.context import current_run
        from .chunks import Corpus

        self.run = current_run()
        self.output_dir = Path(output_dir)
        self.folder = self.output_dir / PARTIAL
        self.record = record
        self.corpus = Corpus(input_dir, record, chunk_size=documents.chunk_size,
                             subset_size=documents.subset, seed=seed,
                             shard_bytes=None if whole else documents.shard_bytes)
        self.documents = documents
        self.sharded = len(self.corpus.shards) > 1
        key = getattr(self.run, "fingerprint", None)
        self.resumable = self.sharded and key is not None
        self._key = key
        checkpoint = self._checkpoint() if self.resumable else None
        if checkpoint is None:
            shutil.rmtree(self.folder, ignore_errors=True)  # another run's, or a killed one's
        (self.folder / "outputs").mkdir(parents=True, exist_ok=True)
        self.done = checkpoint["done"] if checkpoint else 0
        self.state = checkpoint["state"] if checkpoint else {}  # the pipeline's own, as it left it
        self.counts = dict(checkpoint["counts"]) if checkpoint else {name: 0 for name in outputs}
        self._checkpointed = checkpoint
        lengths = checkpoint["lengths"] if checkpoint else {}
        self._handles = {}
        for name in outputs:
            path = self._partial(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as handle:
                handle.truncate(lengths.get(name, 0))
            self._handles[name] = open(path, "ab")
        if checkpoint:
            record.restore(checkpoint["record"], self.folder / "failures")
            self.run.calls.update(checkpoint["calls"])  # the manifest's per-step calls
            self.corpus.restore(checkpoint["corpus"])
        elif self.sharded:
            record.spool(self.folder / "failures")
        self._near = None
        self._surveyed = None  # after survey(): the file of the shards it read

    async def __aenter__(self) -> "ShardedRun":
        return self

    async def __aexit__(self, kind, error, trace) -> None:
        if self._near is not None:
            self._near.close()
        if kind is not None:  # what the finished shards wrote stays, for the run that resumes
            self._close_files()
            return
        try:
            self.corpus.finish()
        except BaseException:
            self._close_files()
            raise
        for name, handle in self._handles.items():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            target = self.output_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._partial(name), target)
            self.record.wrote(name, self.counts[name])

    def near_copies(self, gates):
        """The run-wide near-duplicate finder for ``gates`` (None when that gate is off): one
        for every shard, in ``.atk-partial/`` when there are several, taken back to the
        checkpoint on a resumed run."""
        path = self.folder / "near.sqlite" if self.sharded else None
        self._near = gates.near_copies(path=path)
        if self._near is not None and self._checkpointed:
            self._near.rollback(self._checkpointed["near"])  # what the unfinished shard added
        return self._near

    async def survey(self, take, *, judge=None, policy: str = "enforce", rejected: str = "judged unsuitable",
                     judged: tuple[float, float] = (0.02, 0.2), task_id=None, state=dict) -> None:
        """For a pipeline that needs something of every chunk before it writes from any (a
        retrieval index over the corpus, every name in it): read and judge every shard first,
        calling ``take(shard)`` with each, then ``shards()`` gives them again from
        ``.atk-partial/`` (not read or judged twice); ``state()``, called once the survey is
        done, is the run's ``state`` from then on. On a resumed run past the survey, nothing
        happens: what ``take`` built must be kept where it outlives the process (a file in
        ``folder``, or in ``state()``, which the checkpoint keeps)."""
        import dataclasses
        import sqlite3

        if self._checkpointed and self._checkpointed.get("surveyed"):
            self._surveyed = self.folder / "survey.sqlite"
            return
        path = self.folder / "survey.sqlite"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE shards (shard INTEGER PRIMARY KEY, chunks TEXT, samples TEXT)")
            total = len(self.corpus.shards)
            start, end = judged
            for index, files in enumerate(self.corpus.shards):
                shard = Shard(index, total, [], [])
                shard.chunks, shard.samples = await self._read(
                    files, judge, policy, rejected,
                    (start + (end - start) * index / total, start + (end - start) * (index + 1) / total), task_id)
                take(shard)
                db.execute("INSERT INTO shards VALUES (?, ?, ?)", (
                    index, json.dumps([dataclasses.asdict(c) for c in shard.chunks]), json.dumps(shard.samples)))
                db.commit()
        self._surveyed = path
        self.state = state()
        if self.resumable:  # the survey is done: a resumed run starts after it
            self.finished(Shard(-1, total, [], []), self.state, surveyed=True)

    def surveyed_chunks(self) -> "_Surveyed":
        """After ``survey``: the chunks that went through its gates and judge, every shard's
        in order, read again from the survey's file each time they are gone through (what
        ``choose_facts`` takes, holding none of them)."""
        return _Surveyed(self._surveyed)

    async def shards(self, *, judge=None, policy: str = "enforce", rejected: str = "judged unsuitable",
                     judged: tuple[float, float] = (0.02, 0.2), task_id=None):
        """Each unfinished shard in order, read, chunked, through the content gate and the
        ``judge`` (see ``judge_chunks``), the judge's progress ``judged`` (after ``survey``:
        as the survey found it)."""
        for index, files in enumerate(self.corpus.shards):
            if index < self.done:
                continue
            shard = Shard(index, len(self.corpus.shards), [], [])
            if self._surveyed is not None:
                shard.chunks, shard.samples = _Surveyed(self._surveyed).shard(index)
            else:
                shard.chunks, shard.samples = await self._read(files, judge, policy, rejected,
                                                               shard.progress(*judged), task_id)
            yield shard

    async def _read(self, files, judge, policy, rejected, progress, task_id):
        from ..engine.progress import set_progress
        from .selection import judge_chunks

        set_progress(task_id, progress[0], "reading documents")
        chunks = self.corpus.chunks(files)
        samples = await judge_chunks(chunks, self.record, self.documents, judge=judge, policy=policy,
                                     rejected=rejected, progress=progress)
        return chunks, samples

    def extend(self, name: str, rows) -> None:
        """Append ``rows`` to the output ``name``."""
        rows = list(rows)
        self._handles[name].write(jsonl_text(rows).encode("utf-8"))
        self.counts[name] += len(rows)

    def finished(self, shard: Shard, state: dict | None = None, *, surveyed: bool = False) -> None:
        """``shard`` is done: what it wrote is flushed, and the checkpoint says so, with the
        pipeline's run-wide ``state`` (JSON), which a resumed run finds in ``state``."""
        self.done, self.state = shard.index + 1, state or {}
        if not self.resumable:
            return
        lengths = {}
        for name, handle in self._handles.items():
            handle.flush()
            os.fsync(handle.fileno())
            lengths[name] = handle.tell()
        atomic_write_json(self.folder / CHECKPOINT, {
            "key": self._key, "done": self.done, "lengths": lengths, "counts": self.counts,
            "record": self.record.state(), "calls": self.run.calls, "corpus": self.corpus.state(),
            "near": self._near.mark() if self._near is not None else 0, "state": self.state,
            "surveyed": surveyed or self._surveyed is not None})

    def write_record(self, extra: dict | None = None) -> dict:
        """``failures.jsonl`` and the manifest (``RunRecord.write``); then the partial
        folder goes."""
        manifest = self.record.write(self.output_dir, extra=extra)
        shutil.rmtree(self.folder, ignore_errors=True)
        return manifest

    def _partial(self, name: str) -> Path:
        return self.folder / "outputs" / name

    def _checkpoint(self) -> dict | None:
        try:
            checkpoint = json.loads((self.folder / CHECKPOINT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return checkpoint if checkpoint.get("key") == self._key else None

    def _close_files(self) -> None:
        for handle in self._handles.values():
            if not handle.closed:
                handle.close()


class _Surveyed:
    """``ShardedRun.surveyed_chunks``: iterable again and again."""

    def __init__(self, path):
        self.path = path

    def shard(self, index: int) -> tuple[list, list]:
        """The chunks and samples the survey kept of shard ``index``."""
        import sqlite3

        from .chunks import Chunk

        with sqlite3.connect(self.path) as db:
            chunks, samples = db.execute("SELECT chunks, samples FROM shards WHERE shard = ?", (index,)).fetchone()
        return [Chunk(**chunk) for chunk in json.loads(chunks)], json.loads(samples)

    def __iter__(self):
        import sqlite3

        with sqlite3.connect(self.path) as db:
            shards = [row[0] for row in db.execute("SELECT shard FROM shards ORDER BY shard")]
        for index in shards:
            chunks, samples = self.shard(index)
            kept = {sample["id"] for sample in samples}
            yield from (chunk for chunk in chunks if chunk.id in kept)
