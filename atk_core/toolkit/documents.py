"""Documents: reading a folder of text, Markdown, HTML, PDF and JSON lines, in a fixed order.

Every pipeline that starts from a folder of documents reads it here, so that
they all read the same files the same way. Every file is either a
``Document`` or an ``Unreadable`` with the reason; a pipeline records the
reasons in its failures file. Nothing here guesses an encoding: text must be
UTF-8, which is what a training set will be written in anyway. pypdf is
imported only when a PDF is read.

These live in atk-core rather than in a package of their own because every
pipeline needs them and they need nothing heavy: a pipeline package depends
on ``atk-core`` alone.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from ..engine.confinement import outside_readable, readable_roots
from ..errors import ConfigError

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED = TEXT_SUFFIXES + HTML_SUFFIXES + (".pdf", ".jsonl")


@dataclass(frozen=True)
class Document:
    """One document's text; ``source`` is its path relative to the input folder (with
    ``#L<n>`` for a line of a ``.jsonl`` file)."""

    source: str
    text: str


@dataclass(frozen=True)
class Unreadable:
    """A file (or ``.jsonl`` line) that is not a document, and why."""

    source: str
    reason: str


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
                          f" there ({' '.join(SUPPORTED)})")
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


def read_documents(folder) -> tuple[list[Document], list[Unreadable]]:
    """Every document under ``folder`` (recursively, sorted by path) and every file that is not."""
    folder = Path(folder)
    roots = readable_roots()
    documents, problems = [], []
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder)),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    for path in files:
        source = path.relative_to(folder).as_posix()
        suffix = path.suffix.lower()
        outside = outside_readable(path, roots)
        if outside:
            problems.append(Unreadable(source, outside))
            continue
        if suffix not in SUPPORTED:
            problems.append(Unreadable(source, f"unsupported file type {suffix or '(none)'}"))
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(Unreadable(source, f"cannot read: {exc.strerror}"))
            continue
        if suffix == ".jsonl":
            found, bad = _read_jsonl(data, source)
            documents += found
            problems += bad
            continue
        text, reason = _read_one(data, suffix)
        if reason:
            problems.append(Unreadable(source, reason))
        else:
            documents.append(Document(source, text))
    return documents, problems


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _read_one(data: bytes, suffix: str) -> tuple[str, str | None]:
    if suffix == ".pdf":
        return _read_pdf(data)
    text, reason = _decode(data)
    if reason:
        return "", reason
    if suffix in HTML_SUFFIXES:
        text = html_to_text(text)
    return _non_empty(text)


def _decode(data: bytes) -> tuple[str, str | None]:
    if b"\x00" in data[:8192]:
        return "", "binary file, not text"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return "", f"not UTF-8 text (bad byte at offset {exc.start})"


def _non_empty(text: str) -> tuple[str, str | None]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return "", "empty: no text"
    return text, None


def _read_pdf(data: bytes) -> tuple[str, str | None]:
    import io

    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        return "", "reading PDFs needs pypdf, which is not installed (pip install pypdf)"

    # pypdf logs what it tolerates in a damaged file straight to stderr; the file's
    # problem, if it has one, is recorded in failures.jsonl instead.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            return "", "PDF is encrypted"
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        return "", f"unreadable PDF: {type(exc).__name__}: {str(exc)[:120]}"
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        return "", "PDF has no text layer (scanned?)"
    return _non_empty(text)


def _read_jsonl(data: bytes, source: str) -> tuple[list[Document], list[Unreadable]]:
    text, reason = _decode(data)
    if reason:
        return [], [Unreadable(source, reason)]
    documents, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}#L{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            problems.append(Unreadable(where, "line is not JSON"))
            continue
        value = record.get("text") if isinstance(record, dict) else None
        if not isinstance(value, str):
            problems.append(Unreadable(where, "line has no string 'text' field"))
            continue
        body, reason = _non_empty(value)
        if reason:
            problems.append(Unreadable(where, reason))
        else:
            documents.append(Document(where, body))
    if not documents and not problems:
        problems.append(Unreadable(source, "empty: no lines"))
    return documents, problems


# -- HTML ---------------------------------------------------------------------------------------

_DROPPED = {"script", "style", "noscript", "template", "svg", "head"}
_BLOCKS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
           "table", "section", "article", "header", "footer", "blockquote", "pre", "dd", "dt",
           "hr", "main", "aside", "nav", "figure", "figcaption", "title"}


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.title: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        if tag in _DROPPED:
            self.skipping += 1
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag in _DROPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self._in_title:
            self.title.append(data)
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page: scripts and styles dropped, blocks as paragraphs."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    paragraphs = []
    for block in "".join(parser.parts).split("\n\n"):
        line = " ".join(block.split())
        if line:
            paragraphs.append(line)
    title = " ".join("".join(parser.title).split())
    if title and (not paragraphs or paragraphs[0] != title):
        paragraphs.insert(0, title)
    return "\n\n".join(paragraphs)
