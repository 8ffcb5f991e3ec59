"""Chunks: documents split into pieces of about ``chunk_size`` characters.

Chunks end at paragraph breaks where they can, at sentence ends where a
paragraph is too long, and at spaces only as a last resort; a Markdown
heading (``## Tides``, as readers write a document's headings) starts a new
chunk once the current one is half full, and never ends one. Each chunk is an
exact slice of its document, so ``text[start:end]`` finds it again, ``where``
says where in the file it came from (``pages 3-4``), and its id is derived
from its text, so the same text is the same chunk on every run and every
machine. Exact duplicates are dropped; a seeded subset picks the same chunks
for the same seed. No tokenizer is needed (and none is
downloaded): characters are a fine budget.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from heapq import merge, nsmallest

from .documents import Document

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_HEADING = re.compile(r"#{1,6}[ \t]+\S[^\n]*")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+")


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: ``text == document.text[start:end]``; ``where`` is
    ``document.where(start, end)`` (``page 3``, ``slides 2-3``), or ``""``."""

    id: str
    source: str
    start: int
    end: int
    text: str
    where: str = ""

    def as_sample(self) -> dict:
        return {"id": self.id, "chunk": self.text, "source": self.source}


def chunk_id(text: str) -> str:
    """Stable and content-derived: the same text is the same chunk on any machine."""
    return "c-" + hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


def chunk_document(document: Document, chunk_size: int) -> list[Chunk]:
    """One document's chunks, in order."""
    text = document.text
    groups: list[list[tuple[int, int]]] = []
    for start, end in _pieces(text, chunk_size):
        if groups:
            first, last = groups[-1][0][0], groups[-1][-1][1]
            starts_section = _is_heading(text, start, end) and last - first >= chunk_size // 2
            if end - first <= chunk_size and not starts_section:
                groups[-1].append((start, end))
                continue
        groups.append([(start, end)])
    # A heading goes with what it heads, never at the end of a chunk.
    for number in range(len(groups) - 1):
        while groups[number] and _is_heading(text, *groups[number][-1]):
            groups[number + 1].insert(0, groups[number].pop())
    spans = [(group[0][0], group[-1][1]) for group in groups if group]
    # A short tail reads better joined to the chunk before it.
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < chunk_size // 4:
        spans[-2:] = [(spans[-2][0], spans[-1][1])]
    return [Chunk(chunk_id(text[s:e]), document.source, s, e, text[s:e], document.where(s, e))
            for s, e in spans]


def _is_heading(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is one Markdown heading line."""
    return _HEADING.fullmatch(text, start, end) is not None


def _pieces(text: str, limit: int) -> list[tuple[int, int]]:
    """Paragraph spans, with paragraphs longer than ``limit`` cut into sentences, then words."""
    pieces = []
    for start, end in _split(text, 0, len(text), _PARAGRAPH_BREAK):
        if end - start <= limit:
            pieces.append((start, end))
            continue
        for s_start, s_end in _split(text, start, end, _SENTENCE_END):
            if s_end - s_start <= limit:
                pieces.append((s_start, s_end))
            else:
                pieces += _hard_cut(text, s_start, s_end, limit)
    return pieces


def _split(text, start, end, pattern) -> list[tuple[int, int]]:
    """Spans of ``text[start:end]`` between matches of ``pattern``, trimmed of whitespace."""
    spans, position = [], start
    for match in pattern.finditer(text, start, end):
        spans.append((position, match.start()))
        position = match.end()
    spans.append((position, end))
    return [_trim(text, s, e) for s, e in spans if text[s:e].strip()]


def _trim(text, start, end):
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _hard_cut(text, start, end, limit) -> list[tuple[int, int]]:
    spans = []
    while end - start > limit:
        cut = text.rfind(" ", start, start + limit)
        if cut <= start:
            cut = start + limit
        spans.append(_trim(text, start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        spans.append(_trim(text, start, end))
    return spans


def sentences(text: str) -> list[str]:
    """The sentences of a text (paragraph breaks end a sentence too), whitespace collapsed."""
    found = []
    for start, end in _split(text, 0, len(text), _PARAGRAPH_BREAK):
        for s_start, s_end in _split(text, start, end, _SENTENCE_END):
            found.append(" ".join(text[s_start:s_end].split()))
    return found


def chunk_documents(documents: list[Document], chunk_size: int,
                    seen: set | None = None) -> tuple[list[Chunk], list[Chunk]]:
    """All chunks in document order, and the exact duplicates that were dropped (of each
    other, or of a chunk whose id is in ``seen``, which the kept ones are added to)."""
    kept, duplicates = [], []
    seen = set() if seen is None else seen
    for document in documents:
        for chunk in chunk_document(document, chunk_size):
            if chunk.id in seen:
                duplicates.append(chunk)
            else:
                seen.add(chunk.id)
                kept.append(chunk)
    return kept, duplicates


def chunk_subset(chunks: list[Chunk], size: int, seed: int) -> list[Chunk]:
    """A deterministic subset: the ``size`` chunks first in order of hash(seed + text),
    returned in their original order."""
    chosen = {c.id for c in sorted(chunks, key=lambda chunk: _rank(seed, chunk.text))[:size]}
    return [c for c in chunks if c.id in chosen]


def _rank(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode("utf-8")).hexdigest()


def chunk_folder(input_dir, record, *, chunk_size: int, subset_size: int | None = None,
                 seed: int = 0) -> list[Chunk]:
    """Read ``input_dir`` and chunk it, keeping ``record``'s books; the chunks that go on.

    What every pipeline over a folder of documents starts with: unreadable
    files are dropped into ``record`` (a ``RunRecord``) as step ``read`` with
    their reason and the reader's name, exact duplicate chunks as step
    ``chunk``; which reader read how many files, and what each noted (the web
    page extractor, the PDF furniture removed), goes in the manifest's
    ``reading``; ``subset_size`` keeps that many chunks, picked by ``seed``.
    No readable document at all is a ``PipelineError``. (``Corpus`` does the same a
    shard at a time.)
    """
    corpus = Corpus(input_dir, record, chunk_size=chunk_size, subset_size=subset_size, seed=seed)
    (shard,) = corpus.shards
    chunks = corpus.chunks(shard)
    corpus.finish()
    return chunks


def chunks_of_runs(folder, runs, chunk_size: int):
    """The chunks of ``folder``'s files read a run at a time (``runs``: lists of their
    paths), an exact duplicate of an earlier one dropped: what ``chunk_documents`` keeps of
    the whole folder, holding one run's documents (and the kept ids, ``ChunkIds``)."""
    from .documents import read_folder

    seen = ChunkIds()
    for run in runs:
        kept, _ = chunk_documents(read_folder(folder, files=run).documents, chunk_size, seen)
        seen.settle()
        yield from kept


SEPARATOR = "\0"  # between the paths of a shard's files


class Corpus:
    """A folder of documents, read and chunked a shard at a time, so that what a pipeline
    holds at once is a shard's worth, not the corpus.

    The folder's files (``folder_files``: sorted by path) are cut into ``shards``, runs of
    consecutive files of about ``shard_bytes`` bytes together, each the files' paths relative
    to the folder joined by ``SEPARATOR`` (one shard of all of them when
    ``shard_bytes`` is None). Going
    through the shards in order, ``chunks(shard)`` gives what ``chunk_folder`` gives for
    those files, and keeps ``record``'s books the same way: an exact duplicate of a chunk in
    an earlier shard is dropped as it would be in one pass (the ids kept so far are
    remembered, 8 bytes each). So a pipeline that treats each chunk on its own and
    appends its outputs shard after shard writes what one pass over the whole folder writes.
    With ``subset_size``, the chunks ``chunk_subset`` would choose among all of them go on:
    over several shards, a first pass finds them, holding only that many at a time.
    ``finish()`` raises the ``PipelineError`` of a corpus without one readable document.
    """

    def __init__(self, input_dir, record, *, chunk_size: int, subset_size: int | None = None,
                 seed: int = 0, shard_bytes: int | None = None):
        from .documents import folder_files, input_folder, runs_of_files

        self.folder = input_folder(input_dir)
        self.input_dir = input_dir
        self.record = record
        self.chunk_size, self.subset_size, self.seed = chunk_size, subset_size, seed
        # Each shard the paths of its files relative to the folder, joined by NUL (which no
        # path holds) into one string: a corpus of many files costs a few bytes a file.
        files = (path.relative_to(self.folder).as_posix() for path in folder_files(self.folder))
        if shard_bytes is None:
            self.shards = [SEPARATOR.join(files)]
        else:
            self.shards = [SEPARATOR.join(run) for run in runs_of_files(self.folder, files, shard_bytes)] or [""]
        self.documents = 0
        self._unreadable = 0
        self._suffixes: tuple[str, ...] = ()
        self._seen = ChunkIds()  # the kept chunks' ids
        self._chosen: set[str] | None = None  # a subset over several shards: its chunks' ids

    def chunks(self, files) -> list[Chunk]:
        """The chunks of one shard's ``files`` that go on (see the class)."""
        from .documents import read_folder

        record = self.record
        reading = read_folder(self.folder, files=self._paths(files))
        documents, unreadable = reading.documents, reading.unreadable
        self._suffixes = reading.suffixes
        for problem in unreadable:
            record.drop("read", problem.source, f"read: {problem.reason}",
                        kind=problem.reason.split(":")[0], reader=problem.reader)
        record.count("read", len(documents) + len(unreadable), len(documents))
        record.count_reading(reading)
        self.documents += len(documents)
        self._unreadable += len(unreadable)
        if len(self.shards) == 1 and not documents:
            self.finish()
        chunks, duplicates = chunk_documents(documents, self.chunk_size, self._seen)
        self._seen.settle()
        for chunk in duplicates:
            record.drop("chunk", chunk.id, f"chunk: exact duplicate of an earlier chunk ({chunk.source})",
                        kind="duplicate chunk")
        if self.subset_size is not None and len(self.shards) == 1:
            chunks = chunk_subset(chunks, self.subset_size, self.seed)
        elif self.subset_size is not None:
            chosen = self._choose()
            chunks = [chunk for chunk in chunks if chunk.id in chosen]
        record.count("chunk", len(documents), len(chunks))
        return chunks

    def _paths(self, files: str) -> list:
        return [self.folder / name for name in files.split(SEPARATOR) if name]

    def _choose(self) -> set[str]:
        """The ids of the subset's chunks, as ``chunk_subset`` over every shard's chunks would
        choose them: found (once) by a pass over the shards that keeps the ``subset_size``
        first in its order, and nothing else."""
        if self._chosen is None:
            chunks = chunks_of_runs(self.folder, map(self._paths, self.shards), self.chunk_size)
            ranked = ((_rank(self.seed, chunk.text), chunk.id) for chunk in chunks)
            self._chosen = {chunk_id for _, chunk_id in nsmallest(self.subset_size, ranked)}
        return self._chosen

    def state(self) -> dict:
        """What the shards read so far leave for the next ones (JSON), for a checkpoint."""
        return {"documents": self.documents, "unreadable": self._unreadable,
                "suffixes": list(self._suffixes), "seen": self._seen.state(),
                "chosen": None if self._chosen is None else sorted(self._chosen)}

    def restore(self, state: dict) -> None:
        self.documents, self._unreadable = state["documents"], state["unreadable"]
        self._suffixes = tuple(state["suffixes"])
        self._seen.restore(state["seen"])
        self._chosen = None if state.get("chosen") is None else set(state["chosen"])

    def finish(self) -> None:
        from ..errors import PipelineError

        if not self.documents:
            raise PipelineError(
                f"no readable documents in {self.input_dir} ({self._unreadable} file(s) skipped;"
                f" readable: {' '.join(self._suffixes)})"
            )


class ChunkIds:
    """A set of chunk ids (those kept so far, for ``chunk_documents``): each as the 64-bit number
    its 16 hex digits spell (``c-`` and the digits), in a sorted array of 8 bytes an id,
    and the ids of the shard being read in a set until ``settle()`` merges them in. A
    corpus of a million chunks holds 8 MB here, not the 70 a set of numbers would."""

    def __init__(self):
        self.settled = array("Q")
        self.recent: set[int] = set()

    def __contains__(self, chunk_id: str) -> bool:
        number = int(chunk_id[2:], 16)
        if number in self.recent:
            return True
        at = bisect_left(self.settled, number)
        return at < len(self.settled) and self.settled[at] == number

    def add(self, chunk_id: str) -> None:
        self.recent.add(int(chunk_id[2:], 16))

    def settle(self) -> None:
        if self.recent:
            self.settled = array("Q", merge(self.settled, sorted(self.recent)))
            self.recent = set()

    def state(self) -> str:
        """The ids as text for a checkpoint's JSON: base64 of the array, little-endian."""
        self.settle()
        settled = array("Q", self.settled)
        if sys.byteorder != "little":
            settled.byteswap()
        return base64.b64encode(settled.tobytes()).decode("ascii")

    def restore(self, state: str) -> None:
        self.settled = array("Q", base64.b64decode(state))
        if sys.byteorder != "little":
            self.settled.byteswap()
        self.recent = set()
