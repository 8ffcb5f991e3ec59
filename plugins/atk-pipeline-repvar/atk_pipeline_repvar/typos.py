"""Keyboard typos: a code-only variation of a text, seeded, for robustness to noisy input.

Each word is touched with probability ``rate``: a letter swapped with its
neighbour, replaced by a key next to it on a QWERTY keyboard, dropped, or
doubled. Numbers, and words of one or two letters, are left alone. The same
text, rate and seed always give the same typos.
"""

from __future__ import annotations

import random
import re

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for row_index, row in enumerate(_ROWS):
    for column, key in enumerate(row):
        near = {row[column - 1] if column else "", row[column + 1] if column + 1 < len(row) else ""}
        for other in (row_index - 1, row_index + 1):
            if 0 <= other < len(_ROWS):
                near |= set(_ROWS[other][max(0, column - 1):column + 2])
        _NEIGHBOURS[key] = "".join(sorted(near - {"", key}))

_WORD = re.compile(r"[A-Za-z]{3,}")


def with_typos(text: str, rate: float, seed: int) -> str:
    """``text`` with keyboard typos in about ``rate`` of its words (see above)."""
    chooser = random.Random(seed)

    def touch(match):
        word = match.group(0)
        if chooser.random() >= rate:
            return word
        position = chooser.randrange(len(word))
        kind = chooser.randrange(4)
        if kind == 0 and position + 1 < len(word):  # swap with the next letter
            return word[:position] + word[position + 1] + word[position] + word[position + 2:]
        if kind == 1:  # a key next to it
            letter = word[position]
            near = _NEIGHBOURS.get(letter.lower(), "")
            if near:
                typo = chooser.choice(near)
                return word[:position] + (typo.upper() if letter.isupper() else typo) + word[position + 1:]
        if kind == 2:  # dropped
            return word[:position] + word[position + 1:]
        return word[:position] + word[position] + word[position:]  # doubled

    return _WORD.sub(touch, text)
