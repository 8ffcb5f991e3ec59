"""What a pipeline that goes through its corpus a shard at a time keeps between shards.

``ShardedOutputs`` holds, in the output folder's ``.atk-partial/``, the output
files being appended to, the dropped samples (``RunRecord.spool``) and a
checkpoint after each finished shard: where each file ends, the record's
counts, and what the pipeline's run-wide state needs (the chunks seen, the
near-duplicate finder's mark...). A run killed mid-corpus and run again with
the same config, inputs and code (the run's fingerprint) takes the checkpoint
back and starts at the first unfinished shard: the finished ones are neither
read nor replayed. ``commit`` puts each output in place whole; until then the
folder's outputs are the previous run's.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .files import atomic_write_json, jsonl_text

PARTIAL = ".atk-partial"
CHECKPOINT = "checkpoint.json"


class ShardedOutputs:
    """The outputs ``files`` of a run over ``shards`` shards, appended shard after shard."""

    def __init__(self, output_dir, files, record, *, shards: int):
        from ..engine.context import current_run

        run = current_run()
        self.key = getattr(run, "fingerprint", None) if run is not None else None
        self.output_dir = Path(output_dir)
        self.folder = self.output_dir / PARTIAL
        self.record = record
        self.files = list(files)
        self.resumable = shards > 1 and self.key is not None
        checkpoint = self._checkpoint() if self.resumable else None
        if checkpoint is None:
            shutil.rmtree(self.folder, ignore_errors=True)  # another run's, or a killed one's
        (self.folder / "outputs").mkdir(parents=True, exist_ok=True)
        self.done = checkpoint["done"] if checkpoint else 0
        self.state = checkpoint["state"] if checkpoint else {}  # the pipeline's, from ``finished``
        self.counts = dict(checkpoint["counts"]) if checkpoint else {f: 0 for f in self.files}
        lengths = checkpoint["lengths"] if checkpoint else {}
        self._handles = {}
        for name in self.files:
            path = self._partial(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as handle:
                handle.truncate(lengths.get(name, 0))
            self._handles[name] = open(path, "ab")
        if checkpoint:
            record.restore(checkpoint["record"], self.folder / "failures")
            run.calls.update(checkpoint["calls"])  # the manifest's per-step calls, as if replayed
        elif shards > 1:
            record.spool(self.folder / "failures")

    def _partial(self, name: str) -> Path:
        return self.folder / "outputs" / name

    def _checkpoint(self) -> dict | None:
        try:
            checkpoint = json.loads((self.folder / CHECKPOINT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return checkpoint if checkpoint.get("key") == self.key else None

    def extend(self, name: str, rows) -> None:
        rows = list(rows)
        self._handles[name].write(jsonl_text(rows).encode("utf-8"))
        self.counts[name] += len(rows)

    def finished(self, done: int, state: dict) -> None:
        """Shards up to ``done`` are finished: flush what they wrote and write the
        checkpoint, with the pipeline's run-wide ``state`` (JSON)."""
        lengths = {}
        for name, handle in self._handles.items():
            handle.flush()
            os.fsync(handle.fileno())
            lengths[name] = handle.tell()
        self.done, self.state = done, state
        if self.resumable:
            from ..engine.context import current_run

            atomic_write_json(self.folder / CHECKPOINT, {
                "key": self.key, "done": done, "lengths": lengths, "counts": self.counts,
                "record": self.record.state(), "calls": current_run().calls, "state": state})

    def commit(self) -> None:
        """Put every output in place (each whole, by a rename) and count it in the record."""
        for name, handle in self._handles.items():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            target = self.output_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._partial(name), target)
            self.record.wrote(name, self.counts[name])

    def close(self, *, keep: bool) -> None:
        """Close the files; ``keep``: leave the folder for a resumed run (the run failed or
        was killed), else remove it."""
        for handle in self._handles.values():
            if not handle.closed:
                handle.close()
        if not keep:
            shutil.rmtree(self.folder, ignore_errors=True)
