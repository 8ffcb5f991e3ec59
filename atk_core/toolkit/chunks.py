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

import hashlib
import re
from dataclasses import dataclass

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
    def rank(chunk):
        return hashlib.sha256(f"{seed}:{chunk.text}".encode("utf-8")).hexdigest()

    chosen = {c.id for c in sorted(chunks, key=rank)[:size]}
    return [c for c in chunks if c.id in chosen]


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


class Corpus:
    """A folder of documents, read and chunked a shard at a time, so that what a pipeline
    holds at once is a shard's worth, not the corpus.

    The folder's files (``folder_files``: sorted by path) are cut into ``shards``, runs of
    consecutive files of about ``shard_bytes`` bytes together (one shard of all of them when
    ``shard_bytes`` is None, or with ``subset_size``, a choice among all chunks). Going
    through the shards in order, ``chunks(shard)`` gives what ``chunk_folder`` gives for
    those files, and keeps ``record``'s books the same way: an exact duplicate of a chunk in
    an earlier shard is dropped as it would be in one pass (the ids kept so far are
    remembered: 16 hex digits each). So a pipeline that treats each chunk on its own and
    appends its outputs shard after shard writes what one pass over the whole folder writes.
    ``finish()`` raises the ``PipelineError`` of a corpus without one readable document.
    """

    def __init__(self, input_dir, record, *, chunk_size: int, subset_size: int | None = None,
                 seed: int = 0, shard_bytes: int | None = None):
        from .documents import folder_files, input_folder

        self.folder = input_folder(input_dir)
        self.input_dir = input_dir
        self.record = record
        self.chunk_size, self.subset_size, self.seed = chunk_size, subset_size, seed
        # Each shard a list of paths relative to the folder, as text (a corpus of many files
        # holds much less so than as Path objects).
        files = [path.relative_to(self.folder).as_posix() for path in folder_files(self.folder)]
        if shard_bytes is None or subset_size is not None:
            self.shards = [files]
        else:
            self.shards = _runs_of(self.folder, files, shard_bytes)
        self.documents = 0
        self._unreadable = 0
        self._suffixes: tuple[str, ...] = ()
        self._seen: set[int] = set()  # the kept chunks' ids, as the numbers they spell

    def chunks(self, files) -> list[Chunk]:
        """The chunks of one shard's ``files`` that go on (see the class)."""
        from .documents import read_folder

        record = self.record
        reading = read_folder(self.folder, files=[self.folder / name for name in files])
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
        chunks, duplicates = chunk_documents(documents, self.chunk_size, _Ids(self._seen))
        for chunk in duplicates:
            record.drop("chunk", chunk.id, f"chunk: exact duplicate of an earlier chunk ({chunk.source})",
                        kind="duplicate chunk")
        if self.subset_size is not None:
            chunks = chunk_subset(chunks, self.subset_size, self.seed)
        record.count("chunk", len(documents), len(chunks))
        return chunks

    def state(self) -> dict:
        """What the shards read so far leave for the next ones (JSON), for a checkpoint."""
        return {"documents": self.documents, "unreadable": self._unreadable,
                "suffixes": list(self._suffixes), "seen": sorted(self._seen)}

    def restore(self, state: dict) -> None:
        self.documents, self._unreadable = state["documents"], state["unreadable"]
        self._suffixes, self._seen = tuple(state["suffixes"]), set(state["seen"])

    def finish(self) -> None:
        from ..errors import PipelineError

        if not self.documents:
            raise PipelineError(
                f"no readable documents in {self.input_dir} ({self._unreadable} file(s) skipped;"
                f" readable: {' '.join(self._suffixes)})"
            )


class _Ids:
    """A set of chunk ids kept as the 64-bit numbers their hex digits spell (``c-`` and 16
    hex digits: about half the memory of the text), for ``chunk_documents``."""

    def __init__(self, numbers: set):
        self.numbers = numbers

    def __contains__(self, chunk_id: str) -> bool:
        return int(chunk_id[2:], 16) in self.numbers

    def add(self, chunk_id: str) -> None:
        self.numbers.add(int(chunk_id[2:], 16))


def _runs_of(folder, files, size: int) -> list[list]:
    """``files`` (relative to ``folder``) cut into runs of consecutive files of about
    ``size`` bytes together (a file larger than that is a run of its own)."""
    runs, current, held = [], [], 0
    for path in files:
        try:
            length = (folder / path).stat().st_size
        except OSError:
            length = 0
        if current and held + length > size:
            runs.append(current)
            current, held = [], 0
        current.append(path)
        held += length
    if current or not runs:
        runs.append(current)
    return runs
