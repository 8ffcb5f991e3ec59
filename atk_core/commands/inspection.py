"""``atk inspect``: read any run's manifest and outputs, and show them to a person.

"Always read your data before you train", made one command: where samples
were dropped and why, then a few samples (chosen by a seed, so two people
looking at the same run see the same ones) printed readably.
"""

from __future__ import annotations

import json
import random
import textwrap
from collections import Counter
from pathlib import Path

from ..errors import ConfigError
from ..engine.manifest import FAILURES, MANIFEST

WIDTH = 100


def load_manifest(output_dir: Path) -> dict:
    path = output_dir / MANIFEST
    if not output_dir.is_dir():
        raise ConfigError(f"{output_dir} is not a folder")
    if not path.is_file():
        raise ConfigError(f"{output_dir} has no {MANIFEST}; is it the output_dir of a finished run?")
    try:
        data = json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not an atk manifest (a JSON object)")
    return data


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def read_records(path: Path) -> list:
    records = []
    for number, line in enumerate(_text(path).splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise ConfigError(f"{path}: line {number} is not JSON") from None
    return records


def report(output_dir, samples: int = 3, seed: int = 0, file: str | None = None) -> str:
    output_dir = Path(output_dir)
    manifest = load_manifest(output_dir)
    try:
        lines = [_headline(manifest)]
        lines += _models(manifest.get("models") or {})
        lines += _steps(manifest.get("steps") or [])
        lines += _reading(manifest.get("reading") or {})
        lines += _outputs(manifest.get("outputs") or {}, manifest.get("declared_outputs") or {},
                          manifest.get("primary_output"))
    except (AttributeError, TypeError, KeyError, ValueError):
        raise ConfigError(f"{output_dir / MANIFEST} is not an atk manifest: its fields have the"
                          " wrong shape") from None
    lines += _drops(output_dir / FAILURES)
    if file is not None and not (output_dir / file).is_file():
        raise ConfigError(f"{output_dir} has no file {file!r} to sample from")
    chosen = file or manifest.get("primary_output")
    if samples and isinstance(chosen, str):
        lines += _samples(output_dir / chosen, samples, seed)
    return "\n".join(lines).rstrip() + "\n"


def _headline(manifest) -> str:
    parts = [manifest.get("pipeline", "unknown pipeline")]
    if manifest.get("pipeline_version"):
        parts.append(manifest["pipeline_version"])
    if manifest.get("distribution"):
        parts.append(f"({manifest['distribution']})")
    if manifest.get("task_id"):
        parts.append(f"run {manifest['task_id']}")
    if manifest.get("wall_seconds") is not None:
        parts.append(f"{manifest['wall_seconds']:.1f}s")
    return " ".join(parts)


def _models(models) -> list[str]:
    if not models:
        return []
    lines = ["", "models:"]
    for role, summary in models.items():
        identity = summary.get("identity") or {}
        usage = summary.get("usage_total") or {}
        line = (f"  {role:8} {identity.get('backend')}/{identity.get('model')}  "
                f"{summary.get('requests_sent', 0)} sent, {summary.get('answers_from_store', 0)} from store, "
                f"{usage.get('prompt_tokens', 0)} + {usage.get('completion_tokens', 0)} tokens")
        if summary.get("cost_total") is not None:
            line += f", ${summary['cost_total']:.4f}"
        lines.append(line)
    return lines


def _steps(steps) -> list[str]:
    if not steps:
        return []
    width = max(len(s["name"]) for s in steps)
    lines = ["", "steps (in -> out, and what was dropped):"]
    for step in steps:
        dropped = ", ".join(f"{count} {kind}" for kind, count in step.get("dropped", {}).items())
        notes = ", ".join(f"{count} {what}" for what, count in step.get("notes", {}).items())
        if notes:
            dropped = f"{dropped}; {notes}" if dropped else notes
        lines.append(f"  {step['name']:{width}}  {step.get('in', 0):6} -> {step.get('out', 0):<6}  {dropped}".rstrip())
    return lines


def _reading(reading) -> list[str]:
    """Which reader read how many files, and what each noted (the page extractor, the PDF
    furniture removed); the files no reader took."""
    readers = reading.get("readers") or {}
    if not readers and not reading.get("unclaimed"):
        return []
    lines = ["", "read by (files -> documents, and what each reader noted):"]
    width = max([len(name) for name in readers] + [len("(none)")])
    for name, tally in readers.items():
        said = [f"{tally.get('unreadable', 0)} not read"] if tally.get("unreadable") else []
        said += [f"{count} {what}" for what, count in (tally.get("notes") or {}).items()]
        lines.append(f"  {name:{width}}  {tally.get('files', 0):6} -> {tally.get('documents', 0):<6}"
                     f"  {', '.join(said)}".rstrip())
    if reading.get("unclaimed"):
        lines.append(f"  {'(none)':{width}}  {reading['unclaimed']:6} -> 0       no reader takes them")
    return lines


def _outputs(outputs, declared, primary) -> list[str]:
    """Each output with its records and, as its pipeline declares it, its kind."""
    if not outputs:
        return []
    from ..toolkit.outputs import described

    width = max(len(name) for name in outputs)
    lines = ["", "outputs:"]
    for name, count in outputs.items():
        kind = described(declared.get(name) if isinstance(declared, dict) else None)
        kind += ", primary" if name == primary else ""
        lines.append(f"  {name:{width}}  {count:6} records  {kind}".rstrip())
    return lines


def _drops(path: Path) -> list[str]:
    if not path.is_file():
        return []
    failures = [f for f in read_records(path) if isinstance(f, dict)]
    if not failures:
        return []
    lines = ["", f"dropped samples ({len(failures)}, all in {FAILURES}); first of each step:"]
    by_step = Counter(f.get("step") for f in failures)
    seen = set()
    for failure in failures:
        step = failure.get("step")
        if step in seen:
            continue
        seen.add(step)
        reason = _shorten(str(failure.get("reason", "")), WIDTH - 20)
        lines.append(f"  {step} ({by_step[step]}): {failure.get('sample_id')}: {reason}")
    return lines


def _samples(path: Path, count: int, seed: int) -> list[str]:
    if not path.is_file():
        return ["", f"(no {path.name} to sample from)"]
    records = read_records(path)
    if not records:
        return ["", f"{path.name} is empty: nothing to read."]
    picks = sorted(random.Random(seed).sample(range(len(records)), min(count, len(records))))
    lines = ["", f"{len(picks)} of {len(records)} records from {path.name} (seed {seed}):"]
    for index in picks:
        lines.append("")
        lines.append(f"── record {index + 1} " + "─" * 40)
        lines += _render(records[index])
    return lines


def _render(record) -> list[str]:
    turns = None
    if isinstance(record, dict) and isinstance(record.get("conversations"), list):
        turns = [(t.get("from"), t.get("value")) for t in record["conversations"]]
    elif isinstance(record, dict) and isinstance(record.get("messages"), list):
        turns = [(t.get("role"), t.get("content")) for t in record["messages"]]
    if turns is not None:
        return [line for who, text in turns for line in _wrapped(f"{who}:", text)]
    if isinstance(record, dict) and all(isinstance(record.get(k), list) for k in ("prompt", "chosen", "rejected")):
        turns = [(t.get("role"), t.get("content")) for t in record["prompt"] if isinstance(t, dict)]
        turns += [(f"{label} {t.get('role')}", t.get("content"))
                  for label in ("chosen", "rejected") for t in record[label] if isinstance(t, dict)]
        return [line for who, text in turns for line in _wrapped(f"{who}:", text)]
    if isinstance(record, dict) and isinstance(record.get("segments"), list):
        return [line for piece in record["segments"] if isinstance(piece, dict)
                for line in _wrapped("trained:" if piece.get("label") else "context:", piece.get("text"))]
    if isinstance(record, dict):
        return [line for key, value in record.items() for line in _wrapped(f"{key}:", value)]
    return _wrapped("", record)


def _wrapped(label: str, value) -> list[str]:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    lines = []
    for number, paragraph in enumerate(text.split("\n")):
        first = (f"{label} " if label else "") if number == 0 else "    "
        lines += textwrap.wrap(paragraph, WIDTH, initial_indent=first,
                               subsequent_indent="    ") or [first.rstrip()]
    return lines


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
