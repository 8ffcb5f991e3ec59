"""The SFT mix: conversations from several sources, balanced by tokens to set shares.

Each source (a part that writes conversations, or ``generic``) brings records
with a token count. With shares ``p`` and ``T`` tokens available per source, the
mix can hold at most ``M = min(T / p)`` tokens without repeating a record; the
source that sets ``M`` gives all it has, and each other source gives records,
in an order the seed shuffles, while a record brings its total nearer its
target ``p * M``. So a source's tokens end within half of its longest record
``L`` of the target, the mix's total within ``E``, the sum of those halves, of
``M``, and its share within ``(L / 2 + p * E) / (M - E)`` of ``p``
(``manifest.json`` reports configured and actual shares, and that bound).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from atk_core import ConfigError, derive_seed

@dataclass
class Item:
    """One record offered to the mix: what is written, its tokens, where it came from."""

    source: str
    row: dict
    tokens: int
    origin: dict = field(default_factory=dict)


def balance(items: dict[str, list[Item]], shares: dict[str, float], seed: int) -> tuple[list[Item], dict]:
    """The records of the mix (sources in the order of ``shares``, each in its seeded order)
    and a report per source: available and chosen records and tokens, target and actual
    share, and the bound on the difference."""
    active = {s: p for s, p in shares.items() if p > 0}
    available = {s: sum(i.tokens for i in items.get(s, [])) for s in active}
    empty = [s for s in active if not available[s]]
    if empty:
        raise ValueError(f"mix: the source(s) {', '.join(empty)} have a share but no records")
    total = min(available[s] / p for s, p in active.items()) if active else 0
    chosen: list[Item] = []
    report = {}
    for source in active:
        order = list(items[source])
        random.Random(derive_seed(seed, "mix", source)).shuffle(order)
        target, taken, running = active[source] * total, [], 0
        for item in order:
            if running + item.tokens / 2 <= target:
                taken.append(item)
                running += item.tokens
        chosen += taken
        report[source] = {"records_available": len(order), "tokens_available": available[source],
                          "records": len(taken), "tokens": running, "target_share": active[source],
                          "longest_record": max(i.tokens for i in order)}
    mixed = sum(r["tokens"] for r in report.values())
    # Each source ends within half its longest record of its target (p * M); the mix's total
    # moves by at most E = the sum of those halves, so a share is off by at most
    # (L / 2 + p * E) / (M - E).
    slack = sum(r["longest_record"] for r in report.values()) / 2
    for entry in report.values():
        entry["share"] = round(entry["tokens"] / mixed, 6) if mixed else 0.0
        error = entry["longest_record"] / 2 + entry["target_share"] * slack
        entry["bound"] = round(error / (total - slack), 6) if total > slack else 1.0
    return chosen, report


# -- a generic instruction dataset --------------------------------------------------------------

_SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                   "assistant": "assistant", "model": "assistant"}


def load_generic(name: str, split: str) -> list[list[dict]]:
    """The conversations of a generic instruction dataset: a local JSONL/JSON file, or (when
    ``name`` is no file here) anything ``datasets.load_dataset`` takes (a Hub name, a local
    dataset folder). Rows may be OpenAI messages, ShareGPT conversations or Alpaca
    instruction/input/output."""
    path = Path(name).expanduser()
    if path.is_file():
        rows = _local_rows(path)
        where = str(path)
    else:
        try:
            import datasets
        except ImportError:
            raise ConfigError(f"generic_dataset {name!r} is not a file, and loading a Hugging Face"
                              " dataset needs `datasets` (pip install 'atk-pipeline-expert[hf]')") from None
        try:
            rows = list(datasets.load_dataset(name, split=split))
        except Exception as exc:  # not cached and no network, no such dataset, ...
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"generic_dataset {name!r}: could not load it with datasets: {first}") from None
        where = f"{name} ({split})"
    if not rows:
        raise ConfigError(f"generic_dataset {where} holds no rows")
    return [conversation_of(row, f"{where} row {n}") for n, row in enumerate(rows, 1)]


def _local_rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"generic_dataset {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(rows, list):
            raise ConfigError(f"generic_dataset {path}: a .json file must hold a list of rows")
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"generic_dataset {path} line {number}: not valid JSON ({exc.msg})") from None
    return rows


def conversation_of(row, where: str) -> list[dict]:
    """A row of a generic dataset as OpenAI messages; ``ConfigError`` naming ``where`` if it
    is in no format this reads."""
    if isinstance(row, dict) and isinstance(row.get("messages"), list):
        turns = [(m.get("role"), m.get("content")) for m in row["messages"] if isinstance(m, dict)]
    elif isinstance(row, dict) and isinstance(row.get("conversations"), list):
        turns = [(_SHAREGPT_ROLES.get(m.get("from")), m.get("value"))
                 for m in row["conversations"] if isinstance(m, dict)]
    elif isinstance(row, dict) and isinstance(row.get("instruction"), str) and isinstance(row.get("output"), str):
        prompt = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
        turns = [("user", prompt), ("assistant", row["output"])]
    else:
        raise ConfigError(f"generic_dataset {where}: not a conversation (expected \"messages\","
                          " \"conversations\" or \"instruction\" and \"output\")")
    messages = [{"role": role, "content": content} for role, content in turns]
    bad = [m for m in messages if m["role"] not in ("system", "user", "assistant")
           or not isinstance(m["content"], str)]
    if bad or not any(m["role"] == "assistant" for m in messages):
        raise ConfigError(f"generic_dataset {where}: every turn needs a known role and text content,"
                          " and one turn must be the assistant's")
    return messages
