"""A question that finds its sentence: what a test double of a question-writing model asks.

The pair gates hold a question to its sentence: searched among the chunk's
sentences, it must find that one first. A scripted model that asks "What is
known about <the first three words>?" fails them wherever two sentences start
alike; ``question_about`` asks about the few words in a row of the sentence
that the chunk's other sentences have least, as a careful writer would.
"""

from __future__ import annotations

import re

_SKIP = frozenset("""a an the and or but of in on at to for from by with as is are was were be been
it its this that these those they their there here who which what when where why how not no
""".split())


def question_about(focus: str, chunk: str) -> str:
    """A question about ``focus``, a sentence of ``chunk``: "What about <words>?" on two or three
    of its content words in a row that the chunk's other sentences have least, so that it
    asks about this sentence and no other; never all of its content words (the answer must
    say something more)."""
    tokens = re.findall(r"[\w'-]+", focus)
    content = [t.lower() not in _SKIP for t in tokens]
    others = [s.lower() for s in re.split(r"(?<=[.!?])\s+", " ".join(chunk.split())) if s.strip() != focus]

    def shared(word):  # in how many other sentences (by its first five letters: "tide", "tides")
        return sum(bool(re.search(rf"(?<![\w-]){re.escape(word[:5].lower())}", s)) for s in others)

    spread = [shared(t) for t in tokens]
    most = max(1, min(3, sum(content) - 1))
    windows = [(i, j) for i in range(len(tokens)) for j in range(i, min(i + 4, len(tokens)))
               if content[i] and content[j] and min(2, most) <= sum(content[i:j + 1]) <= most]
    windows = windows or [(i, i) for i in range(len(tokens)) if content[i]][:1]

    def rank(window):  # the fewest words no other sentence has, else the most such; the first
        said = [spread[k] for k in range(window[0], window[1] + 1) if content[k]]
        if not any(said):
            return (0, len(said), 0, window[0])
        return (1, -said.count(0), sum(said), window[0])

    i, j = min(windows, key=rank)
    phrase = " ".join(tokens[i:j + 1])
    return f"What about {phrase}?" if j > i else f"What about the {phrase}?"
