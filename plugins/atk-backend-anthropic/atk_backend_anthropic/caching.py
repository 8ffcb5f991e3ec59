"""Where a request's cache breakpoints go, and how long a prefix must be to be cached.

Anthropic caches a prompt's prefix up to a block marked with ``cache_control``
(tools, then the system prompt, then the messages). In atk's prompts the
system prompt comes first and the passage next, quoted between two ``\"\"\"``
lines at the top of the first user message; what follows it (the sentence to
ask about, the question to check, a retry's note) changes from request to
request. So two breakpoints: the end of the system prompt (shared by every
request of a step) and the end of the passage (shared by every request about
one chunk: each question, each check, each vote, each retry). A prompt without
a quoted block keeps the first only.
"""

from __future__ import annotations

import re

# The first block quoted between two lines of three double quotes: the passage.
QUOTED = re.compile(r'^"""[ \t]*$.*?^"""[ \t]*$\n?', re.M | re.S)
# The shortest prefix each model caches (Anthropic's prompt caching page); a name not
# here is taken as 1024, the most common (set cache_min_tokens to say otherwise).
MIN_TOKENS = (("claude-opus-5", 512), ("claude-fable-5", 512), ("claude-mythos-5", 512),
              ("claude-opus-4-7", 2048), ("claude-opus-4-6", 4096), ("claude-opus-4-5", 4096),
              ("claude-haiku-4-5", 4096), ("claude-3-5-haiku", 2048), ("claude-3-haiku", 2048),
              ("claude-haiku-3", 2048))
DEFAULT_MIN_TOKENS = 1024


def passage_end(text: str) -> int | None:
    """Where the passage quoted at the top of a message ends (after its closing line), or
    None when the message quotes none."""
    found = QUOTED.search(text)
    return found.end() if found else None


def min_tokens(model: str) -> int:
    for prefix, tokens in MIN_TOKENS:
        if model.startswith(prefix):
            return tokens
    return DEFAULT_MIN_TOKENS


def split(messages: list[dict]) -> tuple[str, list[dict]]:
    """The system prompt (the system messages' texts) and the conversation's turns."""
    system = "\n\n".join(str(m["content"]) for m in messages if m.get("role") == "system")
    turns = [{"role": m["role"], "content": str(m["content"])} for m in messages if m.get("role") != "system"]
    return system, turns


def mark(system: str, turns: list[dict], control: dict | None):
    """The ``system`` and ``messages`` of a request, with the breakpoints (``control``, the
    ``cache_control`` value; None: no caching) on the system prompt and after the passage."""
    if control is None:
        return system or None, turns
    marked_system = [{"type": "text", "text": system, "cache_control": control}] if system else None
    marked = []
    for index, turn in enumerate(turns):
        end = passage_end(turn["content"]) if index == _first_user(turns) else None
        if end is None:
            marked.append(turn)
            continue
        text = turn["content"]
        blocks = [{"type": "text", "text": text[:end], "cache_control": control}]
        if text[end:]:
            blocks.append({"type": "text", "text": text[end:]})
        marked.append({"role": turn["role"], "content": blocks})
    return marked_system, marked


def prefixes(messages: list[dict]) -> list[list[dict]]:
    """The prefixes ``mark`` makes cacheable, shortest first, as messages (the last cut at
    its breakpoint): what ``--estimate`` counts."""
    system, turns = split(messages)
    found = []
    if system:
        found.append([{"role": "system", "content": system}])
    first = _first_user(turns)
    if first is not None:
        end = passage_end(turns[first]["content"])
        if end is not None:
            head = [{"role": "system", "content": system}] if system else []
            found.append(head + turns[:first] + [{"role": "user", "content": turns[first]["content"][:end]}])
    return found


def _first_user(turns) -> int | None:
    return next((i for i, turn in enumerate(turns) if turn["role"] == "user"), None)
