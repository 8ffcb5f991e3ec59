"""Wrong answers made by code: a right answer with one detail changed.

A small model asked for "a subtly wrong answer" often writes a right one, or
one about something else. With ``flaws: altered`` the flaw is made without a
model, so it is wrong by construction and wrong in one detail only:

1. a number becomes another (a year moves by a few years, a count or measure
   is scaled, "three" becomes "five"), one the chunk does not hold;
2. else the first "is / are / was / were" of a main clause is negated;
3. else a name standing alone (not part of a longer name such as "Crocus
   sativus" or "Thames Barrier") becomes a name that stands alone in another
   chunk of the run and is not in this one.

Which number or name, and what it becomes, are picked by the seed: the same
answer gets the same flaw on every run.
"""

from __future__ import annotations

import random
import re
from decimal import ROUND_HALF_UP, Decimal

from atk_core import STOPWORDS, words

_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?!\w|,\d)|(?<![\w.,])\d+(?:\.\d+)?(?!\w)")
_NAME = re.compile(r"\b[A-Z][a-z]{2,}\b")
_COUNTS = ("one two three four five six seven eight nine ten eleven twelve").split()
_COUNT = re.compile(rf"\b({'|'.join(_COUNTS)})\b", re.IGNORECASE)
# Only forms of "to be": "can" and "will" are nouns too ("a tin can", "the will"), and a
# verb already denied ("was no rain", "is never") would become a double negative.
_VERB = re.compile(r"\b(is|are|was|were)\b(?! (?:not|no|never|nothing|none|neither|nor)\b)")
_LONGEST = 12  # digits: larger numbers are left alone (float arithmetic would garble them)
_SCALES = ("2", "3", "0.5", "1.5", "4", "10")
# A verb just after one of these is in a subordinate clause ("where it is"): negating it
# makes broken text, not a wrong answer.
_CLAUSE = re.compile(r"\b(?:where|when|which|that|who|whom|whose|if|because|while|as)\b", re.I)


def names_in(text: str) -> set[str]:
    """Capitalised words that do not start a sentence, a line or a heading, are not common
    words and are not part of a longer name: names that stand alone, roughly."""
    found = set()
    for match in _NAME.finditer(text):
        start = text[:match.start()].rstrip(" \t\"'(")
        if not start or start[-1] in ".!?:#\n" or match.group(0).lower() in STOPWORDS:
            continue
        found.add(match.group(0))
    return {name for name in found if not _in_longer_name(name, text)}


def _in_longer_name(name: str, text: str) -> bool:
    """The name is next to another word of a longer name somewhere in the text: "Thames
    Barrier", "Crocus sativus", "Queen Elizabeth"."""
    pattern = (rf"\b[A-Z]\w*\s+{re.escape(name)}\b|\b{re.escape(name)}\s+[A-Z]\w*"
               rf"|\b{re.escape(name)}\s+[a-z]+us\b")
    return re.search(pattern, text) is not None


def alter(answer: str, chunk: str, other_names, rng: random.Random, *,
          question: str = "") -> tuple[str, str] | None:
    """``(flawed answer, what was changed)``, or None when there is nothing to change. A
    number or name the ``question`` also says is left alone: changing it would contradict
    the question rather than answer it wrongly."""
    held = set(words(chunk))
    held_numbers = {m.group(0).replace(",", "") for m in _NUMBER.finditer(chunk)}
    asked = set(words(question))
    numbers = [m for m in _NUMBER.finditer(answer) if m.group(0) not in asked
               and len(m.group(0).replace(",", "").replace(".", "")) <= _LONGEST]
    rng.shuffle(numbers)
    for match in numbers:
        for candidate in _other_numbers(match.group(0), rng):
            if candidate.replace(",", "") not in held_numbers:
                return (answer[:match.start()] + candidate + answer[match.end():],
                        f"number {match.group(0)} -> {candidate}")
    counts = [m for m in _COUNT.finditer(answer) if m.group(0).lower() not in asked]
    if counts:
        match = rng.choice(counts)
        word = match.group(0)
        options = [w for w in _COUNTS if w != word.lower() and w not in held]
        if options:
            other = rng.choice(options)
            other = other.capitalize() if word[0].isupper() else other
            return answer[:match.start()] + other + answer[match.end():], f"number {word} -> {other}"
    verb = next((m for m in _VERB.finditer(answer)
                 if not _CLAUSE.search(" ".join(answer[:m.start()].split()[-3:]))), None)
    if verb:
        return answer[:verb.end()] + " not" + answer[verb.end():], f"negated {verb.group(0)!r}"
    names = sorted(n for n in names_in(answer) if n.lower() not in asked)
    pool = sorted(n for n in set(other_names) if n.lower() not in held and n not in names)
    if names and pool:
        name, other = rng.choice(names), rng.choice(pool)
        return re.sub(rf"\b{re.escape(name)}\b", other, answer), f"name {name} -> {other}"
    return None


def _other_numbers(text: str, rng: random.Random) -> list[str]:
    """Numbers to put in place of ``text``, in the seed's order, none equal to it."""
    grouped = "," in text
    value = Decimal(text.replace(",", ""))
    decimals = len(text.split(".")[1]) if "." in text else 0
    if decimals == 0 and 1000 <= value <= 2100 and not grouped:  # a year
        shifts = [s for s in range(-30, 31) if s]
        rng.shuffle(shifts)
        return [str(int(value) + s) for s in shifts[:8]]
    if decimals == 0 and value <= 12:
        options = [value + s for s in (1, 2, 3, -1, -2) if value + s > 0]
    else:
        options = [value * Decimal(s) for s in _SCALES]
    rng.shuffle(options)
    out = []
    for option in options:
        rounded = option.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
        shown = f"{rounded:,}" if grouped else f"{rounded}"
        if shown != text and shown not in out and rounded > 0:
            out.append(shown)
    return out
