"""An exam kept out of training: questions about facts of the documents, with reference answers.

A pipeline that makes training data from documents sets an exam aside so that a
trained model can be scored on what the data taught (``atk eval``). The exam is
made in four moves, each a function here:

1. ``choose_facts``: the facts, one sentence each, spread over the documents
   (the sentences ``focus_sentences`` would write about); the first
   ``unseen_share`` of them (in a seeded order) are *held out*.
2. ``redact``: for held-out facts, the documents without their sentences, in a
   folder of their own: what every part of the run reads instead of the
   originals, so that no training record can hold them.
3. ``exam_step``: one question and reference answer per fact, from its passage,
   held to the same gates as a training pair (``PairGates``), and refused
   (then retried) when it nearly copies a training question
   (``TrainingQuestions``, the run's near-duplicate finder).
4. ``teaching``: for each fact the training records that teach it (hold its
   sentence, or state its reference answer by ``score_answer``'s rule). An
   exam item about a seen fact that no record teaches is dropped; an item
   about a held-out fact that a record holds is dropped too.

The exam is a JSON-lines file the pipeline declares with kind ``exam``. Each item
(``exam_row``): ``id``, ``question``,
``answer`` (the reference), ``source``, ``start``/``end`` (the sentence's span
in the document's text), ``sentence``, ``chunk_id``, ``context`` (the passage,
for open-book questions), ``seen`` and ``taught_by`` (``{"file", "line"}`` of
the training records that teach it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Iterable

from .constraints import AtLeast, Between
from .seeds import derive_seed



@dataclass(frozen=True)
class ExamSettings:
    """How big an exam to set aside (``exam: {size: 40, unseen_share: 0.25}`` in a config)."""

    size: Annotated[int, AtLeast(0)] = 20  # facts to ask about (0: no exam)
    unseen_share: Annotated[float, Between(0, 1)] = 0.0  # of them held out of all training data

    def held_out(self, found: int) -> int:
        """How many of the ``found`` facts to hold out."""
        return round(found * self.unseen_share)


@dataclass(frozen=True)
class Fact:
    """One sentence of a document to ask about, where it is, and whether training sees it."""

    source: str
    start: int  # in the document's text
    end: int
    sentence: str  # whitespace collapsed
    chunk_id: str
    chunk: str
    seen: bool = True
    folder: str = ""  # which input folder, when a run reads several (``source`` is relative to it)

    @property
    def id(self) -> str:
        digest = hashlib.sha256(f"{self.source}\n{self.start}\n{self.sentence}".encode()).hexdigest()[:16]
        return f"exam-{digest}"

    def as_sample(self) -> dict:
        from .meaning import opening

        return {"id": self.id, "chunk": self.chunk, "chunk_id": self.chunk_id, "source": self.source,
                "focus": self.sentence, "opening": opening(self.sentence)}


# -- 1. the facts ---------------------------------------------------------------------------------


def choose_facts(chunks: Iterable, settings: ExamSettings, seed: int) -> list[Fact]:
    """``settings.size`` facts from ``chunks`` (``Chunk``s of the documents, in order): from
    each chunk the sentences ``focus_sentences`` would pick, taken round-robin over the
    documents (in the order of their names) so that each document gives its share; the first
    ``held_out`` in a seeded order are not seen by training. A sentence found twice in the
    documents is not asked about (holding one copy out would not keep it from training).

    ``chunks`` may be a list, or anything that gives them again each time it is gone
    through (a corpus read a shard at a time): the round-robin takes from the first
    ``size`` documents that have a fact at most, so only the facts of those are held, and
    a second pass counts their sentences wherever they are. (When sentences found twice
    leave fewer documents than that, the passes are made again over more of them.)"""
    from .chunks import sentences

    if settings.size < 1:
        return []
    reach = settings.size
    while True:
        candidates, more = _candidates(chunks, reach, seed)
        counts = dict.fromkeys((_normal(f.sentence) for facts in candidates.values() for f in facts), 0)
        for chunk in chunks:
            for sentence in sentences(chunk.text):
                key = _normal(sentence)
                if key in counts:
                    counts[key] += 1
        by_document = {}
        for source, facts in candidates.items():
            facts = [fact for fact in facts if counts[_normal(fact.sentence)] == 1]
            if facts:
                by_document[source] = facts
        if len(by_document) >= settings.size or not more:
            break
        reach *= 2
    return spread(by_document, settings, seed)


def spread(by_document: dict[str, list[Fact]], settings: ExamSettings, seed: int) -> list[Fact]:
    """``settings.size`` of the facts ``by_document``: each document's in a seeded order,
    taken round-robin over the documents in the order of their names; the first
    ``held_out`` in a seeded order marked not seen."""
    for facts in by_document.values():
        facts.sort(key=lambda f: derive_seed(seed, "exam", f.id))
    chosen, queues = [], [by_document[s] for s in sorted(by_document)]
    while len(chosen) < settings.size and any(queues):
        for queue in queues:
            if queue and len(chosen) < settings.size:
                chosen.append(queue.pop(0))
    order = sorted(range(len(chosen)), key=lambda i: derive_seed(seed, "held out", chosen[i].id))
    held = set(order[:settings.held_out(len(chosen))])
    return [dataclasses.replace(f, seen=i not in held) for i, f in enumerate(chosen)]


def _candidates(chunks: Iterable, reach: int, seed: int) -> tuple[dict[str, list[Fact]], bool]:
    """The facts ``choose_facts`` could take from the first ``reach`` documents (by name) that
    have any, and whether other documents have some too."""
    from .qa import focus_sentences

    found: dict[str, list[Fact]] = {}
    cutoff = None  # once documents were let go: every one after this name is beyond reach
    for chunk in chunks:
        if cutoff is not None and chunk.source > cutoff:
            continue
        for _, sentence in focus_sentences(chunk.text, 1_000, seed, chunk.id):
            span = find_sentence(chunk.text, sentence)
            if span is not None:
                found.setdefault(chunk.source, []).append(
                    Fact(chunk.source, chunk.start + span[0], chunk.start + span[1], sentence, chunk.id,
                         chunk.text))
        if len(found) > 2 * reach:  # let go of the documents past the first ``reach``
            cutoff = _keep_first(found, reach)
    if len(found) > reach:
        cutoff = _keep_first(found, reach)
    return found, cutoff is not None


def _keep_first(found: dict, reach: int) -> str:
    """Drop all but the first ``reach`` names of ``found``; the last name kept."""
    names = sorted(found)
    for name in names[reach:]:
        del found[name]
    return names[reach - 1]


def facts_of_folders(folders: list, chunk_size: int, settings: ExamSettings, seed: int, *,
                     shard_bytes: int = 4_000_000) -> list[tuple[str, Fact]]:
    """``choose_facts`` over the documents of several input folders (chunked as the run's
    parts chunk them): ``(folder, fact)`` pairs, each fact's ``source`` relative to its folder.
    The folders are read ``shard_bytes`` of files at a time, on each of ``choose_facts``'s
    passes: what is held is a run of files and the facts within reach, not the corpus."""
    if settings.size < 1:
        return []
    found = []
    for fact in choose_facts(_ChunksOfFolders(folders, chunk_size, shard_bytes), settings, seed):
        number, source = fact.source.split("/", 1)
        folder = folders[int(number)]
        name = Path(str(folder)).expanduser().resolve().name if len(folders) > 1 else ""
        found.append((folder, dataclasses.replace(fact, source=source, folder=name)))
    return found


class _ChunksOfFolders:
    """The chunks of several folders, each folder's exact duplicates dropped, every source
    prefixed with its folder's number: read again on each pass."""

    def __init__(self, folders, chunk_size: int, shard_bytes: int):
        self.folders, self.chunk_size, self.shard_bytes = folders, chunk_size, shard_bytes

    def __iter__(self):
        from .chunks import chunks_of_runs
        from .documents import folder_files, input_folder, runs_of_files

        for number, folder in enumerate(self.folders):
            folder = input_folder(folder)
            runs = runs_of_files(folder, folder_files(folder), self.shard_bytes)
            for chunk in chunks_of_runs(folder, runs, self.chunk_size):
                yield dataclasses.replace(chunk, source=f"{number}/{chunk.source}")


def find_sentence(text: str, sentence: str) -> tuple[int, int] | None:
    """Where ``sentence`` (whitespace collapsed, as ``sentences`` gives it) is in ``text``."""
    words = sentence.split()
    if not words:
        return None
    matches = list(re.finditer(r"\s+".join(map(re.escape, words)), text))
    # The sentence itself, not the same words at the end of a longer one.
    starting = [m for m in matches if not text[:m.start()].strip() or text[:m.start()].rstrip()[-1] in ".!?:\n#*-"
                or text[:m.start()].endswith("\n")]
    found = (starting or matches or [None])[0]
    return (found.start(), found.end()) if found else None


# -- 2. held-out facts out of the documents --------------------------------------------------------


def redact(input_dir, facts: Iterable[Fact], into, *, shard_bytes: int = 4_000_000) -> Path:
    """Write the documents of ``input_dir`` to the folder ``into``, without the sentences of
    the held-out ``facts`` (those with ``seen`` false), and return it: the folder the run's
    parts read instead of ``input_dir``. Text is written as it was read (a PDF or Word file
    becomes ``NAME.txt``: its text, as every pipeline reads it); an unreadable file is
    left out, as a pipeline would leave it out. Writes nothing and returns ``input_dir``
    when no fact is held out. Read ``shard_bytes`` of files at a time."""
    from .documents import input_folder, readings
    from .files import atomic_write_text

    held: dict[str, list[str]] = {}
    for fact in facts:
        if not fact.seen:
            held.setdefault(fact.source, []).append(fact.sentence)
    if not held:
        return Path(input_dir)
    import shutil

    into = Path(into)
    staging = into.with_name(f".{into.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    for reading in readings(input_folder(input_dir), shard_bytes):  # a run of files at a time
        for document in reading.documents:
            atomic_write_text(staging / _text_name(document.source),
                              without(document.text, held.get(document.source, ())))
    staging.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(into, ignore_errors=True)  # an earlier run's copies: a renamed document must not stay
    staging.rename(into)
    return into


def without(text: str, sentences: Iterable[str]) -> str:
    """``text`` with each of ``sentences`` (as ``sentences()`` gives them) cut out."""
    for sentence in sentences:
        span = find_sentence(text, sentence)
        if span is not None:
            text = text[:span[0]] + text[span[1]:]
    return text


def _text_name(source: str) -> str:
    name = source.replace("#", "_")
    return name if name.lower().endswith((".txt", ".md", ".markdown", ".rst")) else name + ".txt"


# -- 3. the questions ---------------------------------------------------------------------------------


class TrainingQuestions:
    """The questions of the training data, and whether an exam question nearly copies one
    (the run's near-duplicate finder, at the gates' threshold). Kept in private temporary
    SQLite databases, which move to disk as they grow: the training data of a large corpus
    is gone through once, not held."""

    def __init__(self, questions: Iterable[str], threshold: float = 0.7):
        import sqlite3

        from .gates import NearDuplicates

        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.execute("CREATE TABLE questions (text TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.executemany("INSERT OR IGNORE INTO questions VALUES (?)",
                             ((_normal(q),) for q in questions if q.strip()))
        self._count = self._db.execute("SELECT COUNT(*) FROM questions").fetchone()[0]
        self._near = NearDuplicates(threshold)
        # In the order of their text (SQLite's, on UTF-8, is Python's), as the finder keeps
        # the first of two near copies: the same questions give the same finder.
        for number, (question,) in enumerate(self._db.execute("SELECT text FROM questions ORDER BY text")):
            self._near.add(f"training question {number}", question)

    def __len__(self) -> int:
        return self._count

    def problem(self, question: str):
        """A ``Problem`` if ``question`` is, or nearly is, a training question; else None."""
        from .gates import Problem

        exact = self._db.execute("SELECT 1 FROM questions WHERE text = ?", (_normal(question),)).fetchone()
        if exact is not None or self._near.copy_of(question) is not None:
            return Problem("near a training question",
                           "this question (or nearly the same) is in the training data; ask"
                           " about the fact in other words")
        return None


EXAM_PROMPTS = ("exam_ask", "exam_question")


def exam_step(*, gates, training: TrainingQuestions, answers: str = "written", model: str = "large",
              prompts=EXAM_PROMPTS, **options):
    """The step that writes one question and reference answer per fact (``Fact.as_sample``)
    with the pipeline's ``prompts`` (for ``answers: sentence`` and for written answers; by
    default ``exam_ask`` and ``exam_question``), held to the pair gates, and refused (then
    retried with the reason) when the question is, or nearly is, a ``training`` question."""
    from .qa import question_step

    return question_step(gates=gates, answers=answers, name="exam", model=model, prompts=prompts,
                         also=lambda pair, sample: training.problem(pair["question"]), **options)


# -- 4. what teaches each fact ---------------------------------------------------------------------


def teaching(items: list[dict], records: Iterable[tuple[str, int, str, bool]]) -> dict[str, dict]:
    """For each exam item (``id``, ``question``, ``answer``, ``sentence``), which training
    records teach its fact, and which hold it at all. ``records`` are ``(file, line, text,
    trained)``, one per turn of a record (``trained``: text the model learns to say, not a
    prompt it is shown). A turn is *about* a fact when it shares at least half of the fact
    sentence's content words; such a turn holds the fact when it holds the sentence, or
    states the reference answer by ``score_answer``'s rule. Returns ``{id: {"taught_by":
    [trained records that hold it], "held_by": [any that do]}}``, records as ``{"file",
    "line"}``, each once."""
    from .gates import _keys
    from .scoring import score_answer

    facts = [(item, _normal(item["sentence"]), _keys(item["sentence"])) for item in items]
    found = {item["id"]: {"taught_by": [], "held_by": []} for item in items}
    for file, line, text, trained in records:
        keys, normal = _keys(text), None
        for item, sentence, needed in facts:
            if not needed or len(keys & needed) * 2 < len(needed):
                continue  # not about this fact: the cheap test first, on every turn
            normal = normal if normal is not None else _normal(text)
            if sentence not in normal and not score_answer(item["question"], item["answer"], text).correct:
                continue
            where = {"file": file, "line": line}
            entry = found[item["id"]]
            for key, counts in (("held_by", True), ("taught_by", trained)):
                if counts and where not in entry[key][-1:]:
                    entry[key].append(where)
    return found


async def make_exam(record, output_dir, file: str, facts: list[Fact], training: dict[str, list], *,
                    gates, answers: str = "written", options: dict, progress=(0.9, 1.0),
                    prompts=EXAM_PROMPTS) -> dict:
    """Make the exam about ``facts`` and write it to ``output_dir``/``file`` (the exam output
    the pipeline declares; counted in ``record``, a ``RunRecord``; each drop under step
    ``exam`` with its reason);
    return what the manifest says of it. ``training`` is every training file the run wrote,
    ``{file: rows}`` (any of atk's formats: text, messages, sharegpt, segments, preference
    pairs; ``rows`` a list, or ``JsonLines`` of the file, read as they are gone through,
    twice): its user turns are the questions an exam question must not copy, and its records
    are what must teach a seen fact and must not hold a held-out one. ``options`` are the
    step's (``Sampling.writing(seed)``)."""
    from .files import atomic_write_jsonl
    from .gates import Problem
    from .qa import pair_of

    questions = (text for rows in training.values() for row in rows
                 for role, text in turns_of(row) if role == "user")
    known = TrainingQuestions(questions, gates.near_duplicate_threshold)
    step = exam_step(gates=gates, training=known, answers=answers, prompts=prompts, **options)
    samples = [fact.as_sample() for fact in facts]
    results = await step.run(samples, progress=progress)
    by_id = {fact.id: fact for fact in facts}
    asked = [{"id": sample["id"], "fact": by_id[sample["id"]], "pair": pair_of(result.value, sample, answers)}
             for sample, result in record.step("exam", samples, results)]
    found = teaching([{"id": a["id"], "sentence": a["fact"].sentence, **a["pair"]} for a in asked],
                     _training_records(training))

    def problem(item):
        fact, entry = item["fact"], found[item["id"]]
        if fact.seen and not entry["taught_by"]:
            return Problem("not taught", "no training record teaches this fact (none the model"
                                         " learns from holds its sentence or states its answer)")
        if not fact.seen and entry["held_by"]:
            where = entry["held_by"][0]
            return Problem("held-out fact in training", f"{where['file']} line {where['line']}"
                           " holds the held-out fact")
        return None

    kept = record.gate("exam_taught", asked, problem)
    rows = [exam_row(i["fact"], i["pair"], found[i["id"]]["taught_by"] if i["fact"].seen else []) for i in kept]
    atomic_write_jsonl(Path(output_dir) / file, rows)
    record.wrote(file, len(rows))
    return {"facts": len(facts), "held_out": sum(not f.seen for f in facts), "items": len(rows),
            "seen": sum(r["seen"] for r in rows), "unseen": sum(not r["seen"] for r in rows),
            "training_questions": len(known)}


def turns_of(row) -> list[tuple[str, str]]:
    """The texts of a training record of any of atk's formats, each with who says it:
    ``user``/``assistant``/``system`` turns (messages, sharegpt, a preference pair's prompt and
    chosen answer, a ``question``/``answer`` record, segments' ChatML), or ``text``
    (pretraining text)."""
    return [(role, text) for role, text, _ in _turns(row)]


_CHATML = re.compile(r"<\|im_start\|>(\w+)\n(.*?)(?:<\|im_end\|>|\Z)", re.S)


def _turns(row) -> list[tuple[str, str, bool]]:
    """``turns_of``, each turn with whether the model is trained to say it: pretraining text,
    an assistant turn (not one marked ``weight: 0``), a preference pair's chosen answer, a
    trained segment."""
    if not isinstance(row, dict):
        return []
    found = []
    if isinstance(row.get("text"), str):
        found.append(("text", row["text"], True))
    if isinstance(row.get("question"), str) and isinstance(row.get("answer"), str):  # a plain pair
        found += [("user", row["question"], False), ("assistant", row["answer"], True)]
    roles = {"human": "user", "gpt": "assistant", "system": "system"}
    for key in ("messages", "prompt", "chosen", "conversations"):
        for message in row.get(key) or ():
            if isinstance(message, dict):
                role = message.get("role") or roles.get(message.get("from"), "")
                text = message.get("content", message.get("value"))
                if isinstance(text, str):
                    trained = role == "assistant" and key != "prompt" and message.get("weight", 1) != 0
                    found.append((role, text, trained))
    for segment in row.get("segments") or ():
        if not (isinstance(segment, dict) and isinstance(segment.get("text"), str)):
            continue
        if segment.get("label"):  # trained: an answer's text after its role header
            found.append(("assistant", segment["text"].replace("<|im_end|>", "").strip(), True))
        else:
            found += [(role, text.strip(), False) for role, text in _CHATML.findall(segment["text"])
                      if text.strip()]
    return found


def _training_records(training: dict[str, list]):
    """``(file, line, text, trained)`` for ``teaching``: every turn of every record."""
    for file, rows in training.items():
        for line, row in enumerate(rows, 1):
            for _, text, trained in _turns(row):
                yield file, line, text, trained


def exam_row(fact: Fact, pair: dict, taught_by: list[dict]) -> dict:
    return {"id": fact.id, "question": pair["question"], "answer": pair["answer"],
            **({"folder": fact.folder} if fact.folder else {}),
            "source": fact.source, "start": fact.start, "end": fact.end, "sentence": fact.sentence,
            "chunk_id": fact.chunk_id, "context": fact.chunk, "seen": fact.seen,
            "taught_by": taught_by}


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
