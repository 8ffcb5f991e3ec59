"""Question-answer pairs about a chunk's sentences: the generation step pipelines share.

A pipeline that asks questions about its documents (factual-qa, rag-data)
picks up to N sentences of each chunk (``focus_samples``) and asks the
model, one request per sentence, for a question that sentence answers
(``question_step``). The model writes the question and its answer
(``answers="written"``, prompt ``generate_question``), or only the question,
the sentence itself being the answer (``answers="sentence"``, prompt
``ask_question``: grounded by construction, for a small model). Every pair is
held to the ``PairGates`` as the step's validator, so a pair that fails one
is asked again with the problem shown. The prompts are the pipeline's own
files; ``{chunk}``, ``{source}`` and ``{focus}`` (the sentence) are filled in.
"""

from __future__ import annotations

import re
from typing import Literal

from .chunks import sentences
from .gates import PairGates, content_words
from .meaning import opening
from .prose import prose_problem
from .seeds import derive_seed
from ..engine.steps import PipelineStep

# A pair is two sentences: more tokens than this is a model that lost its way (a small
# model can loop for as long as it is let), so its answer is cut and asked again.
PAIR_MAX_TOKENS = 256

# Schemas stay simple: llama.cpp turns them into grammars, and length limits (maxLength)
# blow those up. Lengths are the gates' business.
PAIR_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string", "minLength": 1},
                   "answer": {"type": "string", "minLength": 1}},
    "required": ["question", "answer"],
}
# answers: sentence is the small model's way: its one line is held to a question's shape as it
# is decoded (a question word first, one line, a question mark last), which a 135M model
# cannot keep to on its own. A regular expression without counted repeats, which llama.cpp
# turns into a small grammar.
QUESTION_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string", "minLength": 1,
                                "pattern": '^(What|Who|When|Where|Which|Why|How) [^?"\\\\\n]+\\?$'}},
    "required": ["question"],
}
# A question is a line; more than this is a model running on.
QUESTION_MAX_TOKENS = 96

Answers = Literal["written", "sentence"]


# Not prose to ask about: a link or a link definition, a heading's underline, a table row, a
# list item or a run of them ("* **apt-get** for ... * **apt-cache** for ..."), bold markup, a
# "Field: value" line.
_MARKUP = re.compile(r"https?://|www\.|^\s*\[[^\]]+\]:|\]\(|[=\-*#~^]{4,}|\|\s*[-:]*\s*\|"
                     r"|^\s*(?:[*+#>|-]|\d+[.)])\s|\s[*+]\s|\*\*|__|^\s*[A-Z][\w -]{0,24}:\s")
# A sentence of prose ends like one; a command, a heading or a setting does not.
_PROSE_END = re.compile(r"[.!?][\"'”’)\]]*$")
# Code in a sentence: a shell prompt, a <placeholder>, a Namespace::option, a statement's ";".
_CODE = re.compile(r"^\s*\$\s|<[\w ]+>|\w::\w|;\s*\S.*;")
# Longer than this, a "sentence" is a list or a table run together.
_MAX_FOCUS_WORDS = 60


def focus_sentences(text: str, count: int, seed: int, key: str, *,
                    min_words: int = 4) -> list[tuple[int, str]]:
    """Up to ``count`` of a text's sentences to write about, as ``(index, sentence)``: those
    with at least ``min_words`` content words and no markup (a link, a heading's underline,
    a table row), spread evenly over the text from a place
    that ``seed`` and ``key`` (say, the chunk's id) pick. The same arguments give the same
    sentences on every run."""
    candidates = [s for s in sentences(text)
                  if len(content_words(s)) >= min_words and not _MARKUP.search(s)
                  and len(s.split()) <= _MAX_FOCUS_WORDS and _PROSE_END.search(s) and not _CODE.search(s)
                  and s.count("(") == s.count(")")]  # not a piece cut at "e.g." or "2.5"
    if not candidates or count < 1:
        return []
    count = min(count, len(candidates))
    offset = derive_seed(seed, key, "focus") % len(candidates)
    step = len(candidates) / count
    picked = sorted({(offset + int(i * step)) % len(candidates) for i in range(count)})
    return [(index, candidates[index]) for index in picked]


def focus_samples(samples, count: int, seed: int, record=None, step: str = "generate") -> list[dict]:
    """For each chunk sample (``id``, ``chunk``...), up to ``count`` samples about one of its
    sentences each: ``focus`` is the sentence, ``chunk_id`` the chunk's id, ``opening`` the
    question word(s) its question should start with (what the sentence can answer: "When"
    for a date, "How many" for a count...; see ``atk_core.toolkit.meaning.opening``), and the id
    ``CHUNK_ID/sINDEX``. A chunk with no sentence to ask about is noted in ``record`` (a
    ``RunRecord``), under ``step``."""
    focused = []
    for sample in samples:
        found = focus_sentences(sample["chunk"], count, seed, sample["id"])
        if not found and record is not None:
            record.note(step, "chunk without a sentence to ask about")
        focused += [{**sample, "id": f"{sample['id']}/s{index}", "chunk_id": sample["id"],
                     "focus": sentence, "opening": opening(sentence)} for index, sentence in found]
    return focused


def question_step(*, gates: PairGates, answers: Answers = "written", name: str = "generate",
                  model: str = "large", max_tokens: int = PAIR_MAX_TOKENS, prompts=("ask_question",
                  "generate_question"), also=None, **options) -> PipelineStep:
    """The step that writes one gated question-answer pair per focus sample (see above).
    ``prompts``: the pipeline's prompts for ``answers: sentence`` and ``written``; ``also``:
    one more gate, ``also(pair, sample)`` returning a Problem or None. ``options`` are
    PipelineStep's (temperature, max_attempts, seed, gate_copies...)."""
    from_sentence = answers == "sentence"

    def validator(value, sample):
        pair = pair_of(value, sample, answers)
        problem = gates.problem(pair["question"], pair["answer"], sample["chunk"], sample["focus"],
                                answer_is_source=from_sentence)
        if problem is None and not from_sentence:  # a written answer is prose: no loop, no invention
            problem = prose_problem(pair["answer"], sample["chunk"], known=pair["question"])
        if problem is None and also is not None:
            problem = also(pair, sample)
        return problem

    limit = QUESTION_MAX_TOKENS if from_sentence else PAIR_MAX_TOKENS
    return PipelineStep(name=name, model=model,
                        prompt=prompts[0] if from_sentence else prompts[1],
                        json_schema=QUESTION_SCHEMA if from_sentence else PAIR_SCHEMA,
                        validator=validator, max_tokens=min(max_tokens, limit), **options)


def duplicate_questions(gates: PairGates, key: str = "id", text: str = "question", *, near=None):
    """A gate (for ``RunRecord.gate``) over samples in order: one whose ``key`` was seen
    before, or (with ``gates.near_duplicates``) whose ``text`` nearly copies one kept before
    anywhere in the run, is a duplicate; the first of each family stays. ``near``: the
    run's ``NearDuplicates`` to use (a gate made for each shard of a corpus shares one);
    by default a new one."""
    from .gates import Problem

    seen = set()
    near = near if near is not None or not gates.near_duplicates else gates.near_copies()

    def problem(sample):
        if sample[key] in seen:
            return Problem("duplicate question", "the same question twice for one chunk")
        found = near.problem(sample[key], sample[text]) if near is not None else None
        if found is None:
            seen.add(sample[key])
        return found

    return problem


def question_id(prefix: str, key: str, question: str) -> str:
    """A stable id of a question asked of one thing (a chunk, a focus sample): ``prefix-``
    and 16 hex digits of the hash of ``key`` and the question."""
    import hashlib

    digest = hashlib.sha256(f"{key}\n{question.strip()}".encode("utf-8")).hexdigest()[:16]
    return f"{prefix}-{digest}"


def pair_of(value: dict, sample: dict, answers: Answers = "written") -> dict:
    """The ``{"question", "answer"}`` a step's value stands for (the sentence is the answer
    when ``answers`` is ``"sentence"``), stripped."""
    answer = sample["focus"] if answers == "sentence" else value["answer"]
    return {"question": value["question"].strip(), "answer": answer.strip()}
