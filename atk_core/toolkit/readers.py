"""atk-core's own readers: plain text, Markdown, web pages, PDF and JSON lines.

They are registered through ``atk_register_readers``, the hook every reader
plugin uses, so ``atk list readers`` shows them beside installed ones and an
installed reader can take one of their suffixes over. Nothing here guesses
an encoding: text must be UTF-8, which is what a training set will be written
in anyway. Heavy libraries (pypdf, trafilatura) are imported only when a file
needs them.
"""

from __future__ import annotations

import json
import re

from ..hookspecs import hookimpl
from .documents import Document, DocumentText, Origin, Reader, ReadError, Unreadable


@hookimpl
def atk_register_readers(register):
    register("text", TextReader)
    register("markdown", MarkdownReader)
    register("html", HtmlReader)
    register("pdf", PdfReader)
    register("jsonl", JsonLinesReader)


def decode(data: bytes) -> str:
    """UTF-8 text (a byte-order mark dropped, line ends made ``\\n``), or ``ReadError``."""
    if b"\x00" in data[:8192]:
        raise ReadError("binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadError(f"not UTF-8 text (bad byte at offset {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


class TextReader(Reader):
    """Plain UTF-8 text, as it is: offsets are the file's own."""

    suffixes = (".txt",)

    def read(self, data, source):
        return decode(data)


class MarkdownReader(Reader):
    """Markdown, as it is; each section knows the headings it is under."""

    suffixes = (".md", ".markdown")

    def read(self, data, source):
        text = decode(data)
        return Document(source, text, heading_origins(text))


_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_HEADING_LINE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")


def heading_origins(text: str) -> tuple[Origin, ...]:
    """Each Markdown section's stretch of ``text`` and its heading path
    (``Installing > On Linux``); what comes before the first heading has none."""
    origins, path, position, fenced = [], [], 0, False
    current: tuple[int, str] | None = None
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        found = None if fenced else _HEADING_LINE.match(line)
        if found:
            if current is not None:
                origins.append(Origin(current[0], position, current[1]))
            level = len(found.group(1))
            path = [h for h in path if h[0] < level] + [(level, " ".join(found.group(2).split()))]
            current = (position, " > ".join(title for _, title in path))
        position += len(line)
    if current is not None:
        origins.append(Origin(current[0], position, current[1]))
    return tuple(o for o in origins if text[o.start:o.end].strip())


class HtmlReader(Reader):
    """Web pages: the article (trafilatura, where installed), else the page's visible text."""

    suffixes = (".html", ".htm")

    def read(self, data, source):
        from .html import article_text, html_to_text

        html = decode(data)
        article, extractor = article_text(html)
        text = DocumentText()
        if article is not None:
            text.add_markdown(article)
            text.note(f"article by {extractor}")
        else:
            text.add_markdown(html_to_text(html, headings=True))
            text.note(f"page text by html.parser ({extractor})")
        return text


class PdfReader(Reader):
    """PDF text layers, page by page, without running headers, footers and page numbers."""

    suffixes = (".pdf",)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"%PDF-")

    def read(self, data, source):
        from .pdf import clean_pages, pdf_pages

        cleaned = clean_pages(pdf_pages(data))
        text = DocumentText()
        for number, lines in enumerate(cleaned.pages, 1):
            text.add("\n".join(lines), where=f"page {number}")
        text.note("repeated lines removed (running headers, footers, page numbers)", cleaned.removed)
        text.note("hyphenated words joined", cleaned.joined)
        return text


class JsonLinesReader(Reader):
    """JSON lines: each line's "text" field is a document (source file.jsonl#L3)."""

    suffixes = (".jsonl",)

    def read(self, data, source):
        text = decode(data)
        found = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{source}#L{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                found.append(Unreadable(where, "line is not JSON"))
                continue
            value = record.get("text") if isinstance(record, dict) else None
            if not isinstance(value, str):
                found.append(Unreadable(where, "line has no string 'text' field"))
                continue
            found.append(Document(where, value.replace("\r\n", "\n").replace("\r", "\n")))
        if not found:
            raise ReadError("empty: no lines")
        return found
