"""Quality gates: deterministic checks of generated text that do not trust the model's judgment.

A small model approves almost anything it is asked to check; these checks
approve nothing it did not earn. Each returns ``None`` when the text passes,
or a ``Problem``: a short ``kind`` (counted in ``manifest.json``, kept in
``failures.jsonl``) and a ``message`` written to be shown to the model on a
retry. A pipeline uses them as a ``PipelineStep`` validator — return the
``Problem`` and the step retries with the message, and records the kind if
the sample still fails.

- ``question_problem``: a question is a question (ends with ``?``, a sensible
  length), is not its own answer, does not point at "the passage / the text
  / the author", and is about the chunk's content.
- ``grounding_problem``: an answer's content words occur in its chunk (at
  least ``threshold`` of them), and every number and name in it does.
- ``placeholder_problem`` and ``copied_problem``: no template filler
  (``the_story_with_fact_1``, ``<answer>``, ``...``), nothing lifted from the
  prompt's own instructions or examples.
- ``conversation_problem``: a conversation alternates user and assistant,
  never repeats the turn before, and carries each answer it was written from.
- ``NearDuplicates``: near-copies of a text seen before (MinHash with LSH,
  from datasketch, kept in a temporary SQLite database), for a run-wide
  de-duplication.

Words are compared lower-cased, without common function words, and a word of
six letters or more matches another with the same first five (so "invented"
finds "invention" and "inventing"): crude, language-light, predictable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from .constraints import AtLeast, Between
from .meaning import bm25, kind_problem, stem, terms, without_kind_phrase, words
from .meaning import search_problem as meaning_search_problem

# -- words ---------------------------------------------------------------------------------------

STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just
me more most my myself no nor not now of off on once only or other our ours ourselves out over own
same she should so some such than that the their theirs them themselves then there these they this
those through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself yourselves one two many much may might must shall used using
use make made like well yes also etc get got into onto upon per via whose
""".split())

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_STEM = 5  # letters of a stem a word is matched by


def content_words(text: str) -> list[str]:
    """The words that carry content: not function words, not one or two letters."""
    return [w for w in words(text) if w not in STOPWORDS and (len(w) > 2 or w.isdigit())]


def _key(word: str) -> str:
    return word if word[0].isdigit() else stem(word)[:_STEM]


def _keys(text: str) -> set[str]:
    return {_key(w) for w in content_words(text)}


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _names(text: str) -> list[str]:
    """Capitalised words not at the start of a sentence: the names a text mentions."""
    found = []
    text = text.strip()
    for match in re.finditer(r"\b([A-Z][^\W\d_]+)", text):
        before = text[: match.start()].rstrip()
        if before and before[-1] not in ".!?:;\"“([\n":
            found.append(match.group(1))
    return found


def _normal(text: str) -> str:
    return " ".join(words(text))


# -- problems ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Why a text failed a gate: ``kind`` is short and counted; ``message`` is for the model."""

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


def first_problem(*checks) -> Problem | None:
    """The first of ``checks`` (Problems or Nones, or functions returning one) that is a Problem."""
    for check in checks:
        problem = check() if callable(check) else check
        if problem is not None:
            return problem
    return None


def content_problem(text: str, *, min_words: int = 12) -> Problem | None:
    """A chunk worth writing about: at least ``min_words`` content words, in at least one
    sentence (navigation text, tables of numbers and headings alone are not)."""
    count = len(content_words(text))
    if count < min_words:
        return Problem("too little content",
                       f"{count} content word(s), fewer than {min_words}")
    from .chunks import sentences

    if not any(len(words(s)) >= 3 and s.rstrip("\"'”’)]").endswith((".", "!", "?", "…"))
               for s in sentences(text)):
        return Problem("no sentences", "no sentence in it: a list, a table or headings only")
    return None


_SOURCE_REFERENCE = re.compile(
    r"\b(?:the|this|that|these|above|given|provided|following)\s+"
    r"(?:passages?|texts?|documents?|articles?|excerpts?|paragraphs?|chunks?|authors?|writers?|"
    r"readings?|sections?|sources?|extracts?|snippets?|context|sentences?)\b(?!\s+of\b)"
    r"|\baccording to (?:the )?(?:passage|text|document|article|author|excerpt)\b"
    r"|\b(?:mentioned|described|stated) above\b",
    re.IGNORECASE,
)


# A question about a question or an answer, not about the subject.
_ABOUT_ITSELF = re.compile(r"\bthis question\b|\bthe question (?:about|of|above|below|here)\b"
                           r"|\bthe answer to (?:the|this) question\b", re.IGNORECASE)


def refers_to_source(text: str) -> Problem | None:
    """Text that points at where it came from ("the passage says") instead of saying it."""
    match = _SOURCE_REFERENCE.search(text)
    if match:
        return Problem("refers to the passage",
                       f"it refers to {match.group(0)!r}; ask and answer about the subject itself,"
                       " as if there were no passage")
    return None


def question_problem(question: str, *, chunk: str | None = None, answer: str | None = None,
                     min_words: int = 3, max_words: int = 40,
                     source_reference: bool = True) -> Problem | None:
    """A question asks one thing about the chunk's content, in a sensible number of words
    (and, with ``source_reference``, does not point at "the passage")."""
    text = question.strip()
    count = len(words(text))
    if not text.endswith("?"):
        return Problem("not a question", "the question must be a question ending with '?'")
    if count < min_words:
        return Problem("question too short",
                       f"the question has {count} word(s); ask a full question of at least {min_words}")
    if count > max_words:
        return Problem("question too long",
                       f"the question has {count} words; ask it in at most {max_words}")
    if answer is not None and _normal(answer) and _normal(answer) == _normal(text.rstrip("?")):
        return Problem("question is the answer", "the question repeats the answer; ask about it instead")
    problem = refers_to_source(text) if source_reference else None
    if problem:
        return problem
    itself = _ABOUT_ITSELF.search(text)
    if itself:  # "What is the answer to the question about salt marsh protection?" (seen, 135M)
        return Problem("question about itself",
                       f"it asks about {itself.group(0)!r}, not about the subject; ask what the"
                       " sentence says")
    own = words(text)
    runs = [tuple(own[i:i + 3]) for i in range(len(own) - 2)]
    repeated = next((run for i, run in enumerate(runs) if run in runs[i + 3:]), None)
    if repeated is None:  # "Who made the mould the mould released?"
        content = [(i, w) for i, w in enumerate(own) if w not in STOPWORDS and len(w) > 2]
        repeated = next(((w,) for (i, w), (j, v) in zip(content, content[1:]) if w == v and j - i <= 3), None)
    if repeated is None:  # "Which bacteria makes ..., and what kind of bacteria makes it?"
        pairs = [(a, b) for a, b in zip(own, own[1:]) if a not in STOPWORDS and b not in STOPWORDS
                 and len(a) > 2 and len(b) > 2]
        repeated = next((pair for i, pair in enumerate(pairs) if pair in pairs[i + 1:]), None)
    if repeated:
        return Problem("question repeats itself",
                       f"the question says {' '.join(repeated)!r} twice; ask one thing, once")
    vague = _COUNTS_NOTHING.search(text)
    if vague:
        return Problem("question not clear",
                       f"{vague.group(0)!r} does not say what is counted or measured; name it"
                       " ('How many ships ...?')")
    choices = _ABSENT_CHOICES.search(text)
    if choices:
        return Problem("asks about absent choices",
                       f"the question refers to choices that are not there ({choices.group(0)!r});"
                       " ask an open question")
    if chunk is not None:
        invented = sorted(_numbers(text) - _numbers(chunk)) or _unheld_quantities(text, chunk)
        if invented:  # "How long does it take to pickle 5 kilograms of cabbage?" (5 percent, it said)
            return Problem("question not about the content",
                           f"the question says {', '.join(invented)}, which the passage does not; ask"
                           " about what it says")
        chunk_words = set(words(chunk))
        strangers = [n for n in _names(text) if n.lower() not in chunk_words
                     and not re.search(rf"(?<!\w){re.escape(n)}(?!\w)", chunk)]
        yes_no = re.match(r"\W*(?:is|are|was|were|do|does|did|can|could|has|have|had|will|would)\b", text, re.I)
        if strangers and not yes_no:  # "Who made the Varn violin?" about a chunk on tea ("Is it
            # native to Africa?" may name the wrong place on purpose)
            return Problem("question not about the content",
                           f"the question names {', '.join(dict.fromkeys(strangers))}, which the"
                           " passage does not; ask about what it says")
        asked, present = _keys(without_kind_phrase(text)), _keys(chunk)  # not "long" of "how long"
        if not asked & present:
            return Problem("question not about the content",
                           "the question shares no word with the passage; ask about what it says")
        foreign = sorted(asked - present)
        if len(foreign) > len(asked) / 2:
            return Problem("question not about the content",
                           f"most of the question's words are not in the passage"
                           f" ({', '.join(foreign[:4])}); ask about what it says, in its words")
    return None


def _unheld_quantities(question: str, chunk: str) -> list[str]:
    """The question's "number unit"s ("5 kilograms") whose number the chunk holds only with
    another unit ("5 percent"), or not at all."""
    said = words(chunk)
    held = {(said[i].replace(",", ""), _key(said[j])) for i in range(len(said)) if said[i][0].isdigit()
            for j in (i + 1, i + 2) if j < len(said)}
    own = words(question)
    found = []
    for i, word in enumerate(own[:-1]):
        unit = own[i + 1]
        if word[0].isdigit() and unit.isalpha() and unit not in STOPWORDS and len(unit) > 2:
            if (word.replace(",", ""), _key(unit)) not in held:
                found.append(f"{word} {unit}")
    return found


# "How many can you pickle?": a count of nothing named.
_COUNTS_NOTHING = re.compile(r"\bhow (?:many|much) (?:can|could|do|does|did|is|are|was|were|will|would"
                             r"|should|has|have|had|of (?:it|them|this|these|those))\b", re.IGNORECASE)


# A multiple-choice question with no choices: "Which of the following...", "all of the above".
_ABSENT_CHOICES = re.compile(r"\b(?:which|what|who) of the following\b|\b(?:all|none) of the above\b"
                             r"|\b(?:options?|choices?) (?:below|above|given|listed)\b", re.IGNORECASE)


def answer_fits_problem(question: str, answer: str, *, source: str | None = None,
                        share: float = 0.5) -> Problem | None:
    """An answer answers its question: the question does not already say most of it, it
    says something the question does not, it is of the kind the question asks for (who →
    someone, when → a time, how many → a count...: ``atk_core.toolkit.meaning.KINDS``), and (given
    ``source``, the sentence the pair was written about) the question is about that sentence
    and most of what the answer adds comes from it."""
    asked = _keys(question)
    told = _keys(answer)
    if len(told) >= 4 and len(told & asked) / len(told) > 0.8:
        return Problem("question gives the answer away",
                       "the question already says most of the answer; ask for the fact instead"
                       " of stating it")
    if source is not None and not (asked & _keys(source)):
        return Problem("question not about its sentence",
                       f"the question shares no word with the sentence it is about ({source!r});"
                       " ask about what that sentence says")
    new = [w for w in content_words(answer) if _key(w) not in asked]
    if not new:
        return Problem("answer repeats the question",
                       "the answer only repeats words of the question; say the fact that answers it")
    kind = kind_problem(question, answer)
    if kind is not None:
        return Problem(*kind)
    if source is not None:
        from_source = _keys(source)
        if sum(_key(w) in from_source for w in new) / len(new) < share:
            return Problem("answer not from its sentence",
                           f"the answer does not come from the sentence it is about ({source!r});"
                           " answer with what that sentence says")
    return None


def search_problem(question: str, sentence: str, passage: str, *, margin: float = 1.05) -> Problem | None:
    """The question finds its answer: searched (BM25 over stemmed words) among the sentences of
    ``passage`` (the chunk, and its neighbours where a pipeline has them), it ranks
    ``sentence`` (the answer's) first among the sentences of the kind it asks for, ``margin``
    times above the next. Else "answer does not answer" (another sentence is what it asks
    for) or "ambiguous question" (another answers it as well), naming the other's words."""
    from .chunks import sentences

    found = meaning_search_problem(question, sentence, sentences(passage), margin=margin)
    return Problem(*found) if found else None


def answer_sentence(answer: str, passage: str) -> str:
    """The sentence of ``passage`` an answer was taken or written from: the one sharing most
    of its words."""
    from .chunks import sentences

    pool = sentences(passage)
    if not pool:
        return answer
    normal = " ".join(answer.split())
    if normal in pool:
        return normal
    scores = bm25(terms(answer), [terms(s) for s in pool])
    return pool[max(range(len(pool)), key=lambda i: (scores[i], -i))]


def grounding_problem(answer: str, chunk: str, *, threshold: float = 0.75) -> Problem | None:
    """An answer says what its chunk says: at least ``threshold`` of its content words occur in
    the chunk, and every number and name in it does."""
    own = content_words(answer)
    if not own:
        return Problem("answer empty", "the answer says nothing; answer with a fact from the passage")
    numbers = _numbers(answer) - _numbers(chunk)
    if numbers:
        return Problem("answer not grounded",
                       f"the answer has {', '.join(sorted(numbers))}, which the passage does not;"
                       " use only what the passage says")
    chunk_words = set(words(chunk))
    names = [name for name in _names(answer) if name.lower() not in chunk_words
             and not re.search(rf"(?<!\w){re.escape(name)}(?!\w)", chunk)]  # "d'Ivoire" holds "Ivoire"
    if names:
        return Problem("answer not grounded",
                       f"the answer names {', '.join(dict.fromkeys(names))}, which the passage does"
                       " not; use only what the passage says")
    present = _keys(chunk)
    missing = [w for w in own if _key(w) not in present]
    share = 1 - len(missing) / len(own)
    if share < threshold:
        shown = ", ".join(dict.fromkeys(missing[:5]))
        return Problem("answer not grounded",
                       f"the answer uses words the passage does not ({shown}); answer with what the"
                       " passage says")
    return None


_CHATTER = re.compile(
    r"\bhere(?:'s| is| are) (?:the|a|an|your|my) (?:\w+ ){0,2}(?:version|rewrite|answer|response|"
    r"list|essay|summary|text|restatement|output)\b"
    r"|\b(?:rewritten|rephrased|revised) (?:version|text|passage)\b"
    r"|\bI (?:have |'ve )?(?:changed|rewrote|rephrased|revised|hope|apologi[sz]e)\b"
    r"|\b(?:to fix (?:the|this) error|let me know|as an ai\b|feel free to)"
    r"|^\s*(?:sure|certainly|of course)[,!.]"
    # talk about the task itself: "the facts can be rephrased for clarity and detail"
    r"|\b(?:the|these|those|this) (?:facts?|information|passage|text|content|details?) (?:can|could|may"
    r"|might|will|should|has|have|had) (?:also )?be(?:en)? (?:re\w+|summari[sz]ed|paraphrased|restated"
    r"|expressed|presented|written|stated|listed|organi[sz]ed|shown|put)\b"
    r"|\bfor (?:clarity|brevity|readability)(?: and (?:detail|conciseness|accuracy))?\b"
    r"|\b(?:as (?:requested|instructed|asked)|in the (?:requested|required|given) (?:form|format|style))\b"
    r"|\b(?:this|the following|my) (?:restatement|rewrite|rephrasing|paraphrase|version)\b",
    re.IGNORECASE | re.MULTILINE,
)


def chatter_problem(text: str) -> Problem | None:
    """Talk about the answer instead of the answer: "Here's the rewritten version:", "I changed
    the last sentence", "Let me know if...". Training text must not teach it."""
    match = _CHATTER.search(text)
    if match:
        return Problem("talks about the task",
                       f"it talks about the task ({match.group(0).strip()!r}); write only the text"
                       " asked for")
    return None


_PLACEHOLDERS = [
    (re.compile(r"\b[a-z]+(?:_[a-z0-9]+){2,}\b"), "a template name"),
    (re.compile(r"<\s*/?\s*[A-Za-z_][\w ]{0,30}>"), "a tag"),
    (re.compile(r"\[(?:insert|your|answer|question|name|text|placeholder)[^\]]*\]", re.I), "a blank"),
    (re.compile(r"\{[A-Za-z_]\w*\}"), "an unfilled field"),
    (re.compile(r"\blorem ipsum\b", re.I), "filler text"),
    (re.compile(r"(?:\.\.\.|…)\s*[?!]?\s*$|^\s*(?:\.\.\.|…)"), "an ellipsis"),
]
_EMPTY_WORDS = {"question", "answer", "string", "text", "none", "null", "n/a", "example", "todo"}


def placeholder_problem(text: str) -> Problem | None:
    """Template filler where content should be: ``the_story_with_fact_1``, ``<answer>``, ``...``."""
    stripped = text.strip()
    if _normal(stripped) in _EMPTY_WORDS or not _normal(stripped):
        return Problem("placeholder text", f"{stripped!r} is a placeholder; write the real text")
    for pattern, what in _PLACEHOLDERS:
        match = pattern.search(stripped)
        if match:
            return Problem("placeholder text",
                           f"it contains {what} ({match.group(0).strip()!r}) instead of real text")
    return None


def copied_problem(text: str, prompt: str, chunk: str = "", *, span: int = 5) -> Problem | None:
    """Text that copies ``span`` words in a row from the prompt's own instructions or examples
    (``prompt``) that are not in ``chunk``: the model repeated the prompt instead of answering."""
    own = words(text)
    if len(own) < span:
        return None
    prompt_spans = _spans(words(prompt), span) - _spans(words(chunk), span)
    for start in range(len(own) - span + 1):
        piece = tuple(own[start:start + span])
        if piece in prompt_spans:
            return Problem("copied from the prompt",
                           f"it copies the instructions ({' '.join(piece)!r}); write your own words"
                           " about the passage")
    return None


def _spans(sequence, span: int) -> set:
    return {tuple(sequence[i:i + span]) for i in range(len(sequence) - span + 1)}


def conversation_problem(messages, answers=(), *, coverage: float = 0.6) -> Problem | None:
    """A conversation alternates user and assistant (user first, assistant last), never repeats
    the turn before, and carries each of ``answers``: at least ``coverage`` of each answer's
    content words occur in the assistant's turns."""
    roles = [m.get("role") for m in messages]
    if not roles or roles != ["user", "assistant"] * (len(roles) // 2) or len(roles) % 2:
        return Problem("roles do not alternate",
                       "messages must alternate user, assistant, ..., starting with user and ending"
                       " with assistant")
    previous = None
    for message in messages:
        text = _normal(message.get("content") or "")
        if not text:
            return Problem("empty turn", "every message must have text")
        if text == previous:
            return Problem("repeated turn", "a message repeats the one before it; write a new one")
        previous = text
    said = set()
    for message in messages:
        if message["role"] == "assistant":
            said |= _keys(message["content"])
    for answer in answers:
        own = _keys(answer)
        if own and len(own & said) / len(own) < coverage:
            return Problem("conversation misses a pair",
                           f"the conversation does not give the answer {answer!r}; include every"
                           " answer you were given")
    return None


# -- near duplicates -----------------------------------------------------------------------------


class NearDuplicates:
    """Texts seen so far, and whether a new one is a near copy of one of them.

    Texts are compared by the Jaccard similarity of their character 4-gram
    shingles (after lower-casing and dropping punctuation), estimated with
    MinHash (datasketch) and found through LSH bands (datasketch's, for the
    threshold), so a run of a million questions costs a million lookups, not a
    million squared comparisons. The texts' signatures and bands are kept in a
    private temporary SQLite database, which moves to disk once it outgrows its
    cache: the finder of a run over a large corpus does not grow in memory.
    Deterministic: the same texts in the same order give the same answers.
    """

    def __init__(self, threshold: float = 0.7, *, num_perm: int = 128, seed: int = 1, path=None):
        import sqlite3

        from datasketch import MinHashLSH

        self.threshold = threshold
        self.num_perm = num_perm
        self.seed = seed
        self._ranges = MinHashLSH(threshold=threshold, num_perm=num_perm).hashranges
        # "": a temporary, private database; ``path``: a file that outlives the process (a
        # run resumed from a checkpoint goes on with what it held: ``mark``, ``rollback``).
        self._db = sqlite3.connect(str(path) if path is not None else "", check_same_thread=False)
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS texts (id INTEGER PRIMARY KEY, key TEXT NOT NULL,"
            " signature BLOB NOT NULL);"
            "CREATE TABLE IF NOT EXISTS bands (band INTEGER NOT NULL, id INTEGER NOT NULL);"
            "CREATE INDEX IF NOT EXISTS bands_by_band ON bands (band);")

    def mark(self) -> int:
        """Where the texts seen so far end, for ``rollback``."""
        return self._db.execute("SELECT COALESCE(MAX(id), 0) FROM texts").fetchone()[0]

    def rollback(self, mark: int) -> None:
        """Forget the texts seen after ``mark``."""
        with self._db:
            self._db.execute("DELETE FROM bands WHERE id > ?", (mark,))
            self._db.execute("DELETE FROM texts WHERE id > ?", (mark,))

    def close(self) -> None:
        self._db.close()

    def _minhash(self, text: str):
        from datasketch import MinHash

        normal = _normal(text)
        shingles = {normal[i:i + 4] for i in range(max(1, len(normal) - 3))}
        minhash = MinHash(num_perm=self.num_perm, seed=self.seed)
        minhash.update_batch([shingle.encode("utf-8") for shingle in sorted(shingles)])
        return minhash

    def problem(self, key: str, text: str, what: str = "question") -> Problem | None:
        """``add``, as a gate: a Problem naming the earlier text that ``text`` nearly copies."""
        first = self.add(key, text)
        if first is None:
            return None
        return Problem(f"near-duplicate {what}", f"nearly the same {what} as {first}")

    def copy_of(self, text: str) -> str | None:
        """The key of the earliest text seen that ``text`` nearly copies, or None; remembers
        nothing."""
        return self._closest(self._minhash(text))

    def _bands(self, minhash) -> list[int]:
        """One 64-bit number per LSH band of the signature (two texts that share a band's
        values share its number)."""
        import hashlib

        values = minhash.hashvalues
        return [int.from_bytes(hashlib.blake2b(band.to_bytes(2, "big") + values[start:end].tobytes(),
                                               digest_size=8).digest(), "big", signed=True)
                for band, (start, end) in enumerate(self._ranges)]

    def _closest(self, minhash) -> str | None:
        import numpy

        bands = self._bands(minhash)
        rows = self._db.execute(
            "SELECT texts.key, texts.signature FROM texts WHERE texts.id IN"
            f" (SELECT id FROM bands WHERE band IN ({','.join('?' * len(bands))})) ORDER BY texts.id",
            bands)
        mine = minhash.hashvalues
        for key, signature in rows:  # the earliest first
            other = numpy.frombuffer(signature, dtype=mine.dtype)
            if numpy.float64(numpy.count_nonzero(other == mine)) / numpy.float64(len(mine)) >= self.threshold:
                return key
        return None

    def add(self, key: str, text: str) -> str | None:
        """Remember ``text`` under ``key``, unless it nearly copies a text seen before: then
        the key of the earliest such text (and ``text`` is not remembered)."""
        minhash = self._minhash(text)
        first = self._closest(minhash)
        if first is not None:
            return first
        with self._db:
            row = self._db.execute("INSERT INTO texts (key, signature) VALUES (?, ?)",
                                   (key, minhash.hashvalues.tobytes())).lastrowid
            self._db.executemany("INSERT INTO bands (band, id) VALUES (?, ?)",
                                 [(band, row) for band in self._bands(minhash)])
        return None


# -- a question-answer pair, all gates at once ------------------------------------------------------


@dataclass(frozen=True)
class PairGates:
    """The gates a generated question-answer pair must pass, and their settings.

    A pipeline takes it as one config field (``gates: {grounding_threshold:
    0.8, ...}``: the fields a config leaves out keep these defaults) and calls
    ``problem(question, answer, chunk, focus)`` from a step's validator.
    ``focus`` is the sentence the pair was written about, if there is one;
    ``answer_is_source`` says the answer is the chunk's own text (no grounding
    check needed).
    """

    question_form: bool = True  # ends with "?", a sensible length, about the content
    question_min_words: Annotated[int, AtLeast(1)] = 4
    question_max_words: Annotated[int, AtLeast(1)] = 30
    source_reference: bool = True  # no "the passage", "the text"...
    grounding: bool = True  # the answer's words, numbers and names are in the chunk
    grounding_threshold: Annotated[float, Between(0, 1)] = 0.8
    answer_fit: bool = True  # the answer answers the question: of the kind asked, from its sentence
    search: bool = True  # the question, searched among the passage's sentences, finds the answer's
    search_margin: Annotated[float, AtLeast(1)] = 1.05  # ...ahead of the next sentence by this factor
    placeholders: bool = True  # no template filler
    near_duplicates: bool = True  # across a run: questions that nearly copy one kept before
    near_duplicate_threshold: Annotated[float, Between(0, 1, minimum_open=True)] = 0.7

    def __post_init__(self):
        if self.question_min_words > self.question_max_words:
            raise ValueError(f"question_min_words ({self.question_min_words}) is more than"
                             f" question_max_words ({self.question_max_words})")

    def problem(self, question: str, answer: str, chunk: str, focus: str | None = None, *,
                answer_is_source: bool = False, context: str | None = None) -> Problem | None:
        """The first gate the pair fails, or None. ``focus`` is the sentence the answer was
        taken or written from (found in ``chunk`` when not given); ``context`` is more of
        the document around the chunk (its neighbours), searched with it."""
        question, answer = question.strip(), answer.strip()
        checks = []
        if self.placeholders:
            checks += [lambda: placeholder_problem(question), lambda: placeholder_problem(answer)]
        if self.question_form:
            checks.append(lambda: question_problem(
                question, chunk=chunk, answer=answer, min_words=self.question_min_words,
                max_words=self.question_max_words, source_reference=self.source_reference))
        if self.source_reference:
            if not self.question_form:  # else question_problem has looked
                checks.append(lambda: refers_to_source(question))
            checks.append(lambda: refers_to_source(answer))
        if self.grounding and not answer_is_source:
            checks.append(lambda: grounding_problem(answer, chunk, threshold=self.grounding_threshold))
        if self.answer_fit:
            checks.append(lambda: answer_fits_problem(question, answer, source=focus))
        if self.search:
            passage = chunk if not context else f"{context}\n\n{chunk}"
            checks.append(lambda: search_problem(question, focus or answer_sentence(answer, chunk),
                                                 passage, margin=self.search_margin))
        return first_problem(*checks)

    def near_copies(self, path=None) -> "NearDuplicates | None":
        """A run-wide near-duplicate finder for questions, if that gate is on (kept in the
        file ``path``, if given: see ``NearDuplicates``)."""
        return NearDuplicates(self.near_duplicate_threshold, path=path) if self.near_duplicates else None
