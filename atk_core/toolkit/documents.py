"""Documents: a folder of files read into text, each file by the reader that claims it.

Every pipeline that starts from a folder of documents reads it here, so that
they all read the same files the same way. Readers are plugins
(``atk_register_readers``): each claims suffixes (``.pdf``, ``.docx``) and
turns a file's bytes into a document's text, or says why it cannot. atk-core's
own (text, Markdown, web pages, PDF, JSON lines) are registered through the
same hook (``atk_core.toolkit.readers``); an installed reader takes a suffix
over a built-in one. Every file is either a ``Document`` or an ``Unreadable``
with the reason and the reader's name; a pipeline records the reasons in its
failures file and the readers' counts in its manifest (``chunk_folder``).

A document's text is what the chunks slice; its ``origins`` say where each
stretch of that text came from in words a user can follow in the file they
have (``page 3``, ``slide 2``, ``Installing > On Linux``), because an offset
into a PDF's extracted text points at nothing a user can open.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.confinement import outside_readable, readable_roots
from ..errors import ConfigError, one_line

log = logging.getLogger("atk")


@dataclass(frozen=True)
class Origin:
    """Where ``text[start:end]`` of a document came from, said so that a user finds it in the
    file: ``page 3``, ``slide 2, Results``, ``chapter 4, The Sea > Tides``,
    ``Installing > On Linux`` (a heading path)."""

    start: int
    end: int
    where: str


@dataclass(frozen=True)
class Document:
    """One document's text; ``source`` is its path relative to the input folder (with
    ``#L<n>`` for a line of a ``.jsonl`` file); ``origins`` (in order, not overlapping) say
    where stretches of the text came from, when the reader knows (see ``where``)."""

    source: str
    text: str
    origins: tuple[Origin, ...] = ()

    def where(self, start: int, end: int | None = None) -> str:
        """Where ``text[start:end]`` came from (``page 3``, ``pages 3-4``, ``slide 2, Results``),
        or ``""`` when the reader said nothing about that stretch."""
        end = start + 1 if end is None or end <= start else end
        labels = []
        for origin in self.origins:
            if origin.start < end and origin.end > start and origin.where not in labels:
                labels.append(origin.where)
        return _span(labels)


def _span(labels: list[str]) -> str:
    if not labels:
        return ""
    first, last = labels[0], labels[-1]
    if first == last:
        return first
    a, b = _NUMBERED.match(first), _NUMBERED.match(last)
    if a and b and a.group(1) == b.group(1):
        return f"{a.group(1)}s {a.group(2)}-{b.group(2)}"
    return f"{first} to {last}"


_NUMBERED = re.compile(r"^([a-z]+) (\d+)\b")


@dataclass(frozen=True)
class Unreadable:
    """A file (or ``.jsonl`` line) that is not a document, why, and the reader that said so
    (None when no reader took the file)."""

    source: str
    reason: str
    reader: str | None = None


class ReadError(Exception):
    """What a reader raises when it cannot read a file: the message is the reason, one line,
    recorded in the run's ``failures.jsonl`` (``"PDF is encrypted"``)."""


class Reader:
    """Base of document readers (``atk_register_readers``).

    ``suffixes``: the file suffixes it claims, lower case with the dot
    (``(".docx",)``; ``".tar.gz"`` works too). ``read(data, source)`` gets a
    file's bytes and its path relative to the input folder, and returns the
    document's text: a ``DocumentText`` (text that remembers where each block
    came from), a ``str``, a ``Document``, or, for a file that holds several
    documents, a list of ``Document`` and ``Unreadable``. It raises
    ``ReadError("why")`` for a file it cannot read. An optional ``sniff(head)``
    (the first 2 KiB) says whether a file no reader claims by its suffix is of
    its format. A reader is made with no arguments, once per folder read, and
    must be deterministic: the same bytes give the same text.
    """

    suffixes: tuple[str, ...] = ()

    def read(self, data: bytes, source: str):
        raise NotImplementedError


class DocumentText:
    """A document's text as a reader builds it, block by block, each block remembering where
    in the file it came from.

    ``add(text, where=)`` appends a block (a paragraph, a list, a table),
    separated from the one before by a blank line; ``heading(title, level,
    where=)`` a Markdown heading line (``## Title``), so chunks can break at
    it. ``where`` is the place in the file (``page 3``, ``slide 2``,
    ``chapter 4``); the path of headings the block is under is added to it
    (``chapter 4, The Sea > Tides``: a heading replaces those of its level and
    below), and a block without either has no origin. ``add_markdown`` adds Markdown text, its ``#`` lines as headings.
    ``note(what, count)`` counts something in the run's manifest, under this
    reader (``"repeated lines removed"``).
    """

    def __init__(self):
        self._blocks: list[str] = []
        self._length = 0
        self._origins: list[Origin] = []
        self._place: str | None = None
        self._headings: list[tuple[int, str]] = []
        self.notes: Counter = Counter()

    def add(self, text: str, where: str | None = None) -> None:
        block = text.replace("\r\n", "\n").replace("\r", "\n").strip()
        if block:
            self._enter(where)
            self._append(block)

    def heading(self, title: str, level: int = 1, where: str | None = None) -> None:
        title = " ".join(title.split())
        if not title:
            return
        level = min(max(int(level), 1), 6)
        self._enter(where)
        self._headings = [h for h in self._headings if h[0] < level] + [(level, title)]
        self._append(f"{'#' * level} {title}")

    def add_markdown(self, text: str, where: str | None = None) -> None:
        for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
            found = _ATX_HEADING.fullmatch(block.strip())
            if found:
                self.heading(found.group(2), len(found.group(1)), where)
            else:
                self.add(block, where)

    def note(self, what: str, count: int = 1) -> None:
        if count:
            self.notes[what] += count

    @property
    def text(self) -> str:
        return "".join(self._blocks)

    @property
    def origins(self) -> tuple[Origin, ...]:
        return tuple(self._origins)

    def document(self, source: str) -> Document:
        return Document(source, self.text, self.origins)

    def _enter(self, where):
        self._place = where

    def _append(self, block: str):
        if self._blocks:
            self._blocks.append("\n\n")
            self._length += 2
        start = self._length
        self._blocks.append(block)
        self._length += len(block)
        path = " > ".join(title for _, title in self._headings)
        place = self._place
        if place and (path == place or path.startswith(f"{place} > ")):
            place = None  # a chapter named as its heading says it once
        label = ", ".join(part for part in (place, path) if part)
        if not label:
            return
        last = self._origins[-1] if self._origins else None
        if last is not None and last.where == label and last.end + 2 == start:
            self._origins[-1] = Origin(last.start, self._length, label)
        else:
            self._origins.append(Origin(start, self._length, label))


_ATX_HEADING = re.compile(r"(#{1,6})[ \t]+([^\n]+?)[ \t]*#*")


# -- the input folder ---------------------------------------------------------------------------


def check_input_dir(input_dir, output_dir=None) -> Path:
    """The input folder as a Path, or ``ConfigError`` naming what is wrong with it: missing,
    not a folder, unreadable, empty, or holding ``output_dir`` (whose files would be read as
    documents next time). For a pipeline's ``vet``, before a run writes anything."""
    folder = input_folder(input_dir)
    try:
        names = [entry.name for entry in os.scandir(folder)]
    except OSError as exc:
        raise ConfigError(f"cannot read input_dir {str(input_dir)!r}: {exc.strerror}") from None
    if not names:
        raise ConfigError(f"input_dir {str(input_dir)!r} is empty; put the documents to read"
                          f" there ({' '.join(installed_suffixes())})")
    if output_dir is not None:
        out, inside = Path(output_dir).expanduser().resolve(), folder.resolve()
        if out == inside or inside in out.parents:
            raise ConfigError(f"output_dir {str(output_dir)!r} is inside input_dir"
                              f" {str(input_dir)!r}: the outputs would be read as documents"
                              " next time; put them elsewhere")
    return folder


def input_folder(input_dir) -> Path:
    """``input_dir`` as a Path to an existing folder, else ``ConfigError``."""
    if not isinstance(input_dir, (str, Path)) or not str(input_dir).strip():
        raise ConfigError(f"input_dir must be a folder path, not {input_dir!r}")
    folder = Path(input_dir).expanduser()
    if not folder.exists():
        raise ConfigError(f"input_dir {str(input_dir)!r} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"input_dir {str(input_dir)!r} is not a folder")
    return folder


# -- reading a folder ---------------------------------------------------------------------------


@dataclass
class FolderReading:
    """What reading a folder found: the documents, the files (or lines) that are not, and per
    reader how many files it read, the documents and unreadable ones it made, and its notes."""

    documents: list[Document] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    readers: dict[str, dict] = field(default_factory=dict)
    unclaimed: int = 0  # files no reader took
    suffixes: tuple[str, ...] = ()  # what the readers claim

    def summary(self) -> dict:
        """The manifest's ``reading`` entry: per reader (by name) ``distribution``, ``files``,
        ``documents``, ``unreadable`` and ``notes``; ``unclaimed``, the files no reader took."""
        readers = {}
        for name, tally in sorted(self.readers.items()):
            readers[name] = {**tally, "notes": dict(sorted(tally["notes"].items()))}
        return {"readers": readers, "unclaimed": self.unclaimed}


def read_documents(folder) -> tuple[list[Document], list[Unreadable]]:
    """Every document under ``folder`` (recursively, sorted by path) and every file that is not."""
    reading = read_folder(folder)
    return reading.documents, reading.unreadable


def folder_files(folder) -> Iterator[Path]:
    """The files under ``folder`` a reading goes through: recursively, in the order of their
    paths relative to ``folder`` (as text), hidden ones (a part starting with ".") skipped,
    symbolic links to folders not followed. Walked, not listed: a corpus of many files is
    never held as a list of them."""
    yield from _walk(Path(folder))


def _walk(directory: Path) -> Iterator[Path]:
    # A folder sorts as its name and "/", the character every path under it goes on with:
    # so each folder's entries, sorted by that, give the order of the whole relative paths.
    entries = []
    try:
        with os.scandir(directory) as scan:
            for entry in scan:
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        entries.append(entry.name + "/")
                    elif entry.is_file():
                        entries.append(entry.name)
                except OSError:
                    continue
    except OSError:
        return
    entries.sort()
    for name in entries:
        if name.endswith("/"):
            yield from _walk(directory / name[:-1])
        else:
            yield directory / name


def runs_of_files(folder, files, size: int) -> Iterator[list]:
    """``files`` (paths under ``folder``: relative to it, or whole) in runs of consecutive
    files of about ``size`` bytes together (a file larger than that is a run of its own)."""
    folder = Path(folder)
    run, held = [], 0
    for path in files:
        try:
            length = (folder / path).stat().st_size
        except OSError:
            length = 0
        if run and held + length > size:
            yield run
            run, held = [], 0
        run.append(path)
        held += length
    if run:
        yield run


def readings(folder, size: int) -> Iterator[FolderReading]:
    """``read_folder(folder)`` a run of files of about ``size`` bytes at a time
    (``runs_of_files``): a folder of any size read with one run's documents held."""
    folder = Path(folder)
    for run in runs_of_files(folder, folder_files(folder), size):
        yield read_folder(folder, files=run)


def read_folder(folder, readers: dict | None = None, files: list | None = None) -> FolderReading:
    """Every file under ``folder`` (``folder_files``; or only ``files``, some of them, as a
    shard of a corpus reads), read by the reader that claims it: a ``FolderReading``.
    ``readers`` (name -> reader class) are used instead of the installed ones: how a
    reader's tests read a folder before it is installed."""
    folder = Path(folder)
    choice = _Readers(readers)
    roots = readable_roots()
    reading = FolderReading(suffixes=choice.suffixes)
    for path in folder_files(folder) if files is None else files:
        source = path.relative_to(folder).as_posix()
        outside = outside_readable(path, roots)
        if outside:
            reading.unreadable.append(Unreadable(source, outside))
            reading.unclaimed += 1
            continue
        try:
            entry, reason = choice.by_name(path.name, lambda: _head(path))
        except OSError as exc:
            entry, reason = None, f"cannot read: {exc.strerror}"
        if entry is None:
            reading.unreadable.append(Unreadable(source, reason))
            reading.unclaimed += 1
            continue
        tally = reading.readers.setdefault(entry.name, {
            "distribution": entry.distribution, "files": 0, "documents": 0, "unreadable": 0,
            "notes": Counter()})
        tally["files"] += 1
        documents, problems, notes = choice.read(entry, path, source)
        reading.documents += documents
        reading.unreadable += problems
        tally["documents"] += len(documents)
        tally["unreadable"] += len(problems)
        tally["notes"].update(notes)
    return reading


def installed_suffixes() -> tuple[str, ...]:
    """The suffixes the installed readers claim, sorted."""
    return _Readers(None).suffixes


def _head(path: Path) -> bytes:
    with open(path, "rb") as file:
        return file.read(2048)


# Where a format no installed reader takes can be read from, for the reason's hint.
_PACKAGES = {".docx": "atk-reader-office", ".pptx": "atk-reader-office", ".epub": "atk-reader-office"}


@dataclass
class _Entry:
    name: str
    cls: object
    builtin: bool
    distribution: str | None
    label: str
    conflict: str | None = None


class _Readers:
    """The readers a folder is read with, chosen per file: the longest suffix claimed wins;
    an installed reader takes a suffix over a built-in one; two installed readers claiming
    the same suffix read none of its files (the reason names both)."""

    def __init__(self, readers: dict | None):
        entries = []
        if readers is None:
            from ..engine.plugins import get_registry

            registrations = get_registry().registrations("reader")
            names = Counter(r.name for r in registrations)
            for r in registrations:
                entry = _Entry(r.name, r.obj, r.plugin.builtin, r.plugin.distribution, r.plugin.label)
                if names[r.name] > 1:
                    owners = " and ".join(x.plugin.label for x in registrations if x.name == r.name)
                    entry.conflict = (f"reader name {r.name!r} is registered twice, by {owners};"
                                      " uninstall one of them")
                entries.append(entry)
        else:
            entries = [_Entry(name, cls, False, None, f"reader {name!r}") for name, cls in readers.items()]
        self.entries = entries
        self.claims: dict[str, list[_Entry]] = {}
        for entry in entries:
            for suffix in getattr(entry.cls, "suffixes", ()) or ():
                self.claims.setdefault(suffix.lower(), []).append(entry)
        self.suffixes = tuple(sorted(self.claims))
        # installed sniffers first, then the built-in ones, each by name
        self.sniffers = sorted((e for e in entries if callable(getattr(e.cls, "sniff", None))),
                               key=lambda e: (e.builtin, e.name))
        self._made: dict[int, object] = {}
        self._failed: set[str] = set()

    def by_name(self, filename: str, head) -> tuple[_Entry | None, str | None]:
        """The reader for a file, or None and why none."""
        lower = filename.lower()
        claimed = [s for s in self.claims if lower.endswith(s) and len(lower) > len(s)]
        if claimed:
            suffix = max(claimed, key=len)
            candidates = self.claims[suffix]
            installed = [e for e in candidates if not e.builtin]
            candidates = installed or candidates
            if len(candidates) > 1:
                owners = " and ".join(f"{e.name!r} ({e.label})" for e in candidates)
                return None, f"readers {owners} both claim {suffix}; uninstall one of them"
            return candidates[0], None
        if self.sniffers:
            first = head()
            for entry in self.sniffers:
                try:
                    if self._instance(entry).sniff(first):
                        return entry, None
                except Exception:  # a sniffer that fails is a no; its reader says more when it reads
                    continue
        suffix = Path(filename).suffix.lower()
        hint = f" ({_PACKAGES[suffix]} reads it: pip install {_PACKAGES[suffix]})" if suffix in _PACKAGES else ""
        return None, f"unsupported file type {suffix or '(none)'}{hint}"

    def _instance(self, entry: _Entry):
        if id(entry) not in self._made:
            self._made[id(entry)] = entry.cls()
        return self._made[id(entry)]

    def read(self, entry: _Entry, path: Path, source: str):
        """``(documents, unreadable, notes)`` of one file, whatever the reader does."""
        if entry.conflict:
            return [], [Unreadable(source, entry.conflict, entry.name)], {}
        try:
            reader = self._instance(entry)
        except Exception as exc:
            return [], [Unreadable(source, f"reader {entry.name!r} could not start: {one_line(exc)}",
                                   entry.name)], {}
        try:
            data = path.read_bytes()
        except OSError as exc:
            return [], [Unreadable(source, f"cannot read: {exc.strerror}", entry.name)], {}
        try:
            result = reader.read(data, source)
        except ReadError as exc:
            return [], [Unreadable(source, " ".join(str(exc).split()) or "unreadable", entry.name)], {}
        except Exception as exc:  # a reader's bug costs its file, not the run
            if entry.name not in self._failed:
                self._failed.add(entry.name)
                log.warning("reader %r (%s) failed on %s: %s; its files are in failures.jsonl",
                            entry.name, entry.label, source, one_line(exc))
            return [], [Unreadable(source, f"reader {entry.name!r} failed: {one_line(exc)}",
                                   entry.name)], {}
        return _outcome(result, source, entry.name)


def _outcome(result, source: str, name: str):
    notes = {}
    if isinstance(result, DocumentText):
        notes = dict(result.notes)
        result = result.document(source)
    elif isinstance(result, str):
        result = Document(source, result.replace("\r\n", "\n").replace("\r", "\n"))
    items = [result] if isinstance(result, Document) else result
    if not isinstance(items, (list, tuple)):
        return [], [Unreadable(source, f"reader {name!r} returned {type(result).__name__},"
                               " not a document's text", name)], notes
    documents, problems = [], []
    for item in items:
        if isinstance(item, Unreadable):
            problems.append(item if item.reader else Unreadable(item.source, item.reason, name))
        elif isinstance(item, Document) and item.text.strip():
            documents.append(item)
        elif isinstance(item, Document):
            problems.append(Unreadable(item.source, "empty: no text", name))
        else:
            problems.append(Unreadable(source, f"reader {name!r} returned {type(item).__name__},"
                                       " not a Document", name))
    if not documents and not problems:
        problems.append(Unreadable(source, "empty: no text", name))
    return documents, problems, notes
