"""Prose gates: the floor under free text a model writes (restatements, conversations, corrections).

Grounding counts words: a restatement whose words are mostly the chunk's
passes it, even when one of its sentences repeats 32 times, a garbled word
("bacber") recurs, a sentence says what the chunk never does ("It was powered
by a clock with a clock tower"), or the text talks about itself ("the facts
can be rephrased for clarity"). Each of these is a gate here, deterministic
and cheap, and a validator like every gate: the model is asked again with
the problem named.

- ``repetition_problem``: a sentence said twice, or a run of words looping.
- ``unknown_word_problem``: a lower-case word that is neither in the chunk
  nor an ordinary English word (the word lists of the ``english-words``
  package, Webster's and GCIDE, compared by stem so that inflections pass).
- ``invented_problem``: a name or a number the chunk does not hold, or a
  sentence most of whose content words are not the chunk's.
- ``chatter_problem`` (in ``gates``): talk about the task.

``prose_problem`` runs them all. The word list is English, as are the other
meaning rules (``atk_core.toolkit.meaning.LANGUAGE``).
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from .gates import Problem, chatter_problem, content_words, first_problem, grounding_problem, words
from .meaning import stem

# A loop: this many words in a row, said this many times; or a run of ECHO_WORDS said again
# ("A salt marsh is a stretch of coastal grassland... This means that the salt marsh is a
# stretch of coastal grassland...").
LOOP_WORDS = 8
LOOP_TIMES = 3
ECHO_WORDS = 6


def repetition_problem(text: str) -> Problem | None:
    """A sentence of five words or more said twice, or ``LOOP_WORDS`` words in a row said
    ``LOOP_TIMES`` times: a model that lost its way, and text that teaches looping."""
    from .chunks import sentences

    said = Counter(" ".join(words(s)) for s in sentences(_plain(text)) if len(words(s)) >= 5)
    repeated = [s for s, n in said.items() if n > 1]
    if repeated:
        return Problem("repetition loop", f"a sentence is said {said[repeated[0]]} times"
                       f" ({_short(repeated[0])!r}); say each thing once")
    own = words(text)
    for size, times in ((LOOP_WORDS, LOOP_TIMES), (ECHO_WORDS, 2)):
        runs = Counter(tuple(own[i:i + size]) for i in range(len(own) - size + 1))
        looping = [run for run, n in runs.items() if n >= times]
        if looping:
            return Problem("repetition loop", f"the words {' '.join(looping[0])!r} come"
                           f" {runs[looping[0]]} times; say each thing once")
    return None


def unknown_word_problem(text: str, chunk: str, known: str = "") -> Problem | None:
    """A lower-case word (of three letters or more) that is neither in ``chunk`` (or
    ``known``: a prompt's own words, the facts given) nor an English word: a garbled word,
    which a model trained on the text would learn to write. Capitalised words are names,
    which ``invented_problem`` holds to the chunk."""
    allowed = {stem(w) for w in words(f"{chunk}\n{known}")}
    for match in re.finditer(r"(?<![\w'’-])([a-z]{3,})(?![\w'’-])", _plain(text)):
        word = match.group(1)
        if stem(word) in allowed or is_english_word(word):
            continue
        return Problem("garbled word", f"{word!r} is not a word, nor one of the passage's; write"
                       " real words")
    return None


def invented_problem(text: str, chunk: str, known: str = "", *, share: float = 0.5,
                     min_words: int = 4) -> Problem | None:
    """Something the chunk does not say: a name or a number it does not hold, a number said of
    something the chunk does not say it of, or a sentence (of ``min_words`` content words or
    more) less than ``share`` of whose content words are the chunk's (or ``known``'s), or a
    clause of one (three content words or more) no more than ``share`` of whose are."""
    from .chunks import sentences

    source = f"{chunk}\n{known}"
    plain = _plain(text)
    problem = grounding_problem(plain, source, threshold=0.0)  # its names and numbers only
    if problem is not None and problem.kind == "answer not grounded":
        return Problem("invented fact", problem.message.replace("the answer", "the text"))
    present = {stem(w) for w in content_words(source)}
    held = _number_contexts(source)
    for sentence in sentences(plain):
        own = content_words(sentence)
        around = {stem(w) for w in own if not w[0].isdigit()}
        for number in _NUMBER.findall(sentence):
            contexts = held.get(number.replace(",", ""))
            if contexts and not any(around & context for context in contexts):
                # "The light was automated in 1874": the passage's 1874 is about something else
                return Problem("invented fact", f"{_short(sentence)!r} says {number} of something the"
                               f" passage does not say it of; say only what it says")
        for piece in [sentence, *_CLAUSES.split(sentence)]:  # the sentence, then each clause
            whole = piece is sentence
            own = content_words(piece)
            if len(own) < (min_words if whole else 3):
                continue
            found = sum(stem(w) in present for w in own) / len(own)
            if found < share or (not whole and found <= share):
                missing = [w for w in own if stem(w) not in present]
                return Problem("invented fact", f"{_short(piece.strip())!r} says what the passage does"
                               f" not ({', '.join(dict.fromkeys(missing[:4]))}); say only what it says")
    return None


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CLAUSES = re.compile(r"[,;:]\s+|\s+(?:and|but|while|which|whereas)\s+", re.IGNORECASE)


def _number_contexts(source: str) -> dict:
    """For each number of ``source``, the stemmed content words of each sentence holding it."""
    from .chunks import sentences

    found: dict[str, list] = {}
    for sentence in sentences(source):
        context = {stem(w) for w in content_words(sentence) if not w[0].isdigit()}
        for number in _NUMBER.findall(sentence):
            found.setdefault(number.replace(",", ""), []).append(context)
    return found


def prose_problem(text: str, chunk: str, known: str = "") -> Problem | None:
    """The first prose gate ``text`` fails: a loop, talk about the task, a garbled word,
    or an invented fact (``known``: other text it may draw on, like the facts it was given
    or the prompt's own words)."""
    return first_problem(lambda: repetition_problem(text), lambda: chatter_problem(text),
                         lambda: unknown_word_problem(text, chunk, known),
                         lambda: invented_problem(text, chunk, known))


def is_english_word(word: str) -> bool:
    """Whether a lower-case word is an English word: in the word lists as it is, or once an
    ending is taken off ("colonies", "travelling"), or in its American spelling ("colour",
    "organisation")."""
    vocabulary = _vocabulary()
    for form in _forms(word):
        if form in vocabulary:
            return True
    return False


# Inflections and common suffixes the word lists leave out, and what each may come from.
_ENDINGS = (("ies", ("y",)), ("ied", ("y",)), ("ier", ("y",)), ("iest", ("y",)), ("ily", ("y",)),
            ("es", ("", "e")), ("s", ("",)), ("ed", ("", "e")), ("ing", ("", "e")), ("er", ("", "e")),
            ("est", ("", "e")), ("ly", ("",)), ("ness", ("",)), ("ment", ("",)), ("ments", ("",)),
            ("ers", ("", "e")), ("able", ("", "e")))


def _forms(word: str):
    """``word``, the words it may be an inflection of, and their American spellings."""
    bases = [word]
    for ending, replacements in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 2:
            root = word[: -len(ending)]
            bases += [root + r for r in replacements]
            if len(root) > 2 and root[-1] == root[-2]:  # travelling, planned
                bases.append(root[:-1])
    for base in list(bases):
        american = re.sub(r"our$", "or", re.sub(r"is(e|ation|ations)$", r"iz\1", base))
        american = re.sub(r"yse$", "yze", re.sub(r"tre$", "ter", american))
        if american != base:
            bases.append(american)
    return dict.fromkeys(bases)


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset:
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2", "gcide"], lower=True, alpha=True))


def _plain(text: str) -> str:
    """Text without markup a form may use (XML tags, list bullets, JSON punctuation)."""
    text = re.sub(r"<[^>]*>", " ", text)
    return re.sub(r"[{}\[\]\"]", " ", text)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
