"""What a run did, written beside its outputs: ``manifest.json`` and ``failures.jsonl``.

A pipeline keeps a ``RunRecord`` as it goes: how many samples went into each
step and came out, and, for every sample it dropped, why. At the end
``write()`` saves the failures (one JSON line per dropped sample, in a stable
order) and the manifest (versions, config hash, model identities, token use
and cost per role, counts per step, which reader read how many documents,
outputs, wall time). ``atk inspect`` reads both, for any pipeline.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from ..toolkit.files import atomic_write_json, atomic_write_jsonl

MANIFEST = "manifest.json"
FAILURES = "failures.jsonl"


@dataclass
class StepCount:
    name: str
    inputs: int = 0
    outputs: int = 0
    dropped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)  # things worth knowing that dropped nothing

    def to_dict(self) -> dict[str, Any]:
        entry = {"name": self.name, "in": self.inputs, "out": self.outputs,
                 "dropped": dict(sorted(self.dropped.items()))}
        if self.notes:
            entry["notes"] = dict(sorted(self.notes.items()))
        return entry


class RunRecord:
    """Counts per step and the dropped samples of one run."""

    def __init__(self):
        self.steps: dict[str, StepCount] = {}
        self.failures: list[dict[str, str]] = []
        self._spools: dict | None = None  # step -> its file of dropped samples (``spool``)
        self._spooled = 0
        self.written: dict[str, int] = {}  # output file -> records, as the writers report them
        self.reading: dict[str, Any] = {}  # what read the documents (count_reading)
        self.started = time.time()

    def _step(self, name: str) -> StepCount:
        if name not in self.steps:
            self.steps[name] = StepCount(name)
        return self.steps[name]

    def count(self, step: str, inputs: int, outputs: int) -> None:
        entry = self._step(step)
        entry.inputs += inputs
        entry.outputs += outputs

    def wrote(self, file: str, records: int) -> None:
        """Count an output file (relative to the output folder) that a writer wrote."""
        self.written[file] = records

    def note(self, step: str, what: str) -> None:
        """Count something a step did that is worth knowing but dropped nothing."""
        self._step(step).notes[what] += 1

    def drop(self, step: str, sample_id: str, reason: str, kind: str | None = None, **fields) -> None:
        """Record one dropped sample; ``kind`` is the short category counted in the manifest;
        ``fields`` go into its line of failures.jsonl too (``reader=`` for a file not read)."""
        kind = kind or _kind_of(reason)
        self._step(step).dropped[kind] += 1
        failure = {"sample_id": str(sample_id), "step": step, "kind": kind, "reason": reason, **fields}
        if self._spools is None:
            self.failures.append(failure)
        else:
            self._spool(failure)

    def spool(self, folder) -> None:
        """Keep the dropped samples from now on in files under ``folder`` (one per step), not
        in memory: a corpus read a shard at a time drops them shard after shard, and
        ``write`` puts each step's together, in the order the steps came, which is the order
        one pass over the whole corpus drops them in (then removes ``folder``)."""
        from pathlib import Path

        self._spool_dir = Path(folder)
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        self._spools = {}
        for failure in self.failures:
            self._spool(failure)
        self.failures = []

    def _spool(self, failure: dict) -> None:
        from ..toolkit.files import jsonl_text

        step = failure["step"]
        handle = self._spools.get(step)
        if handle is None:
            handle = self._spools[step] = open(self._spool_dir / f"{len(self._spools)}.jsonl", "ab")
        handle.write(jsonl_text([failure]).encode("utf-8"))
        self._spooled += 1

    def state(self) -> dict:
        """The counts so far and, when spooling, where each step's dropped samples end (its
        file flushed to disk): what ``restore`` takes back, for a run that goes on from a
        checkpoint in another process."""
        import os

        spools = []
        for step, handle in (self._spools or {}).items():
            handle.flush()
            os.fsync(handle.fileno())
            spools.append([step, os.path.basename(handle.name), handle.tell()])
        return {"steps": {name: step.to_dict() for name, step in self.steps.items()},
                "reading": self.reading, "spooled": self._spooled, "spools": spools}

    def restore(self, state: dict, folder) -> None:
        """Take back a ``state``, spooling into ``folder`` (its files cut back to where the
        state ends: what was written after it is dropped again when its shard runs again)."""
        from pathlib import Path

        self.steps = {}
        for name, entry in state["steps"].items():
            step = self._step(name)
            step.inputs, step.outputs = entry["in"], entry["out"]
            step.dropped.update(entry["dropped"])
            step.notes.update(entry.get("notes", {}))
        self.reading = state["reading"]
        self._spool_dir = Path(folder)
        self._spools, self._spooled, self.failures = {}, state["spooled"], []
        for step, name, length in state["spools"]:
            path = self._spool_dir / name
            with open(path, "r+b") as handle:
                handle.truncate(length)
            self._spools[step] = open(path, "ab")

    def count_reading(self, reading) -> None:
        """Count what read a folder (a ``FolderReading``): per reader, the files, documents
        and unreadable ones, and its notes; written as the manifest's ``reading``."""
        summary = reading.summary()
        readers = self.reading.setdefault("readers", {})
        for name, tally in summary["readers"].items():
            mine = readers.setdefault(name, {"distribution": tally.get("distribution"), "files": 0,
                                             "documents": 0, "unreadable": 0, "notes": {}})
            for key in ("files", "documents", "unreadable"):
                mine[key] += tally[key]
            notes = Counter(mine["notes"])
            notes.update(tally["notes"])
            mine["notes"] = dict(sorted(notes.items()))
        self.reading["readers"] = dict(sorted(readers.items()))
        self.reading["unclaimed"] = self.reading.get("unclaimed", 0) + summary["unclaimed"]

    def step(self, name: str, samples: list, results: list, *,
             keep: Callable[[Any], bool] | None = None,
             why_not: Callable[[Any], str] | str = "rejected") -> list[tuple[Any, Any]]:
        """Count a PipelineStep's results; return the ``(sample, result)`` pairs that go on.

        A failed result is dropped with its reason; an ok result that ``keep``
        refuses is dropped as ``why_not`` (a text, or a function of the result).
        """
        from .policy import gate_policy

        policy = gate_policy()
        kept = []
        for sample, result in zip(samples, results):
            if not result.ok:
                self.drop(name, result.sample_id, result.reason or "failed",
                          kind=getattr(result, "kind", None))
            elif keep is not None and not policy.verdict(keep, result.value):
                reason = why_not(result) if callable(why_not) else why_not
                kind = reason.split(":", 1)[0] if callable(why_not) else why_not
                self.drop(name, result.sample_id, f"{name}: {reason}", kind=kind)
            else:
                kept.append((sample, result))
        self.count(name, len(samples), len(kept))
        return kept

    def gate(self, name: str, samples: list, problem_of: Callable[[Any], Any]) -> list:
        """A step without a model: the samples for which ``problem_of(sample)`` is None go on;
        each other one is dropped with the ``Problem``'s kind and message."""
        from .policy import gate_policy

        policy = gate_policy()
        kept = []
        for sample in samples:
            problem = policy.gate(problem_of, sample)
            if problem is None:
                kept.append(sample)
            else:
                self.drop(name, sample["id"], f"{name}: {problem}", kind=getattr(problem, "kind", None))
        self.count(name, len(samples), len(kept))
        return kept

    def apply_verdicts(self, name: str, samples: list, results: list, *, policy: str = "enforce",
                    rejected: str = "rejected", field: str | None = None) -> list:
        """The samples that go on after a model's yes/no check (a ``VoteStep``, or a step whose
        answer's ``field`` says yes or no). ``policy``: ``enforce`` drops what the model
        rejected (or could not judge); ``note`` keeps every sample and counts each
        rejection in the manifest ("REJECTED by the model, kept"), for a model whose no is
        not to be trusted."""
        if policy == "enforce":
            keep = None if field is None else (lambda value: value[field])
            why = lambda result: f"{rejected}: {result.value.get('reason', 'no reason given')}"  # noqa: E731
            return [sample for sample, _ in self.step(name, samples, results, keep=keep, why_not=why)]
        for result in results:
            if result.ok and (field is None or result.value[field]):
                continue
            judged = result.ok or getattr(result, "kind", None) == "failed the vote"
            self.note(name, f"{rejected} by the model, kept" if judged
                      else f"no verdict from the model ({getattr(result, 'kind', None) or 'failed'}), kept")
        self.count(name, len(samples), len(samples))
        return list(samples)

    def model_check(self, *args, **kwargs) -> list:
        """The old name of ``apply_verdicts``."""
        import warnings

        warnings.warn("RunRecord.model_check is now RunRecord.apply_verdicts", DeprecationWarning, stacklevel=2)
        return self.apply_verdicts(*args, **kwargs)

    def write(self, output_dir, *, outputs: dict[str, int] | None = None, primary: str | None = None,
              extra: dict | None = None) -> dict:
        """Write failures.jsonl and manifest.json (atomically); return the manifest.

        ``outputs`` are files written by hand (file -> records), beside those the writers
        counted with ``wrote``. The manifest holds each file's declaration (the run's
        pipeline's ``outputs``; see ``atk_core.toolkit.outputs``) under ``declared_outputs``, and
        the primary output: ``primary``, or else the declared primary one, if written."""
        from pathlib import Path

        output_dir = Path(output_dir)
        if self._spools is None:
            atomic_write_jsonl(output_dir / FAILURES, self.failures)
            failed = len(self.failures)
        else:
            failed = _write_spooled_failures(self, output_dir / FAILURES)
        written = {**self.written, **(outputs or {})}
        declared = _declarations(written)
        if primary is None:
            primary = next((f for f, d in declared.items() if d.get("primary")), None)
        manifest = {
            **_run_facts(),
            "steps": [s.to_dict() for s in self.steps.values()],
            **({"reading": self.reading} if self.reading else {}),
            "outputs": dict(written, **{FAILURES: failed}),
            "declared_outputs": declared,
            "primary_output": primary,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "wall_seconds": round(time.time() - self.started, 3),
            **(extra or {}),
        }
        atomic_write_json(output_dir / MANIFEST, manifest)
        return manifest


def _write_spooled_failures(record, path) -> int:
    """failures.jsonl from ``record``'s spooled files, step by step in the order the steps
    came; how many lines it holds."""
    import shutil

    from ..toolkit.files import AtomicFile

    for handle in record._spools.values():
        handle.close()
    out = AtomicFile(path)
    try:
        for step in record.steps:
            handle = record._spools.get(step)
            if handle is not None:
                with open(handle.name, "rb") as spooled:
                    while block := spooled.read(1 << 20):
                        out.write(block)
    except BaseException:
        out.discard()
        raise
    out.commit()
    shutil.rmtree(record._spool_dir, ignore_errors=True)
    record._spools = {}
    return record._spooled


def _declarations(written: dict) -> dict:
    """file -> its declaration (kind, format, ...), for each written file the current run's
    pipeline declares; an undeclared one is named in the log, once."""
    import logging

    from .context import current_run
    from ..toolkit.outputs import declaration_of

    run = current_run()
    outputs = run.pipeline.outputs if run is not None else ()
    declared = {}
    for file in written:
        declaration = declaration_of(outputs, file)
        if declaration is not None:
            entry = declaration.to_dict()
            entry.pop("file")
            declared[file] = entry
        elif outputs:
            logging.getLogger("atk").warning(
                "pipeline %s wrote %s, which it does not declare in its outputs", run.pipeline.name, file)
    return declared


def _kind_of(reason: str) -> str:
    if "votes passed" in reason:
        return "failed the vote"
    if "attempt" in reason and "(after" in reason:
        return "no valid answer after retries"
    if "gave up after" in reason or "refused" in reason or "HTTP" in reason:
        return "model error"
    text = reason.split(":", 1)[-1].strip() if ":" in reason else reason
    return text[:60]


def _run_facts() -> dict[str, Any]:
    """Versions, config hash and model use of the current run, when there is one."""
    from .context import current_run
    from ..version import __version__

    facts: dict[str, Any] = {"atk_core_version": __version__}
    run = current_run()
    if run is None:
        return facts
    config_text = run.config.redacted_yaml()
    facts.update({
        "pipeline": run.pipeline.name,
        "distribution": run.pipeline.distribution,
        "pipeline_version": run.pipeline.version,
        "task_id": run.task_id,
        "config_hash": "sha256:" + hashlib.sha256(config_text.encode("utf-8")).hexdigest(),
        "models": {role: model.summary() for role, model in sorted(run.models.items())},
        # per step: what ``atk run --estimate`` learns survival and retries from
        "calls": {name: dict(entry) for name, entry in run.calls.items()},
    })
    if run.part_of:  # the models are the whole run's: their counts include the other parts'
        facts["part_of"] = run.part_of
    return facts
