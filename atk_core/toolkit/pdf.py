"""PDFs as text: each page's text layer, without the page furniture.

A long PDF repeats a running header, a footer and a page number on every
page; read as they are, they land in every chunk (and a question gets asked
about a running header). ``clean_pages`` drops a line that sits at the top
or the bottom of a page (its first or last ``EDGE`` lines) when the same line,
digits aside, sits there on at least half of the pages (and on three at
least: a short document keeps every line), and joins a word hyphenated across
a line break (``main-`` / ``tenance``); what it removed is counted. pypdf is
imported only when a PDF is read.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from dataclasses import dataclass

from .documents import ReadError

EDGE = 2  # lines at the top and at the bottom of a page where furniture sits
MIN_PAGES = 3

_DIGITS = re.compile(r"\d+")
_ROMAN = re.compile(r"^[ivxlcdm]+$")
_BROKEN = re.compile(r"([A-Za-z]+)-$")
_FIRST_WORD = re.compile(r"^([a-z][A-Za-z]*)(\S*)\s*")


def pdf_pages(data: bytes) -> list[str]:
    """The text layer of each page, or ``ReadError`` saying why there is none."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise ReadError("reading PDFs needs pypdf, which is not installed (pip install pypdf)") from None

    # pypdf logs what it tolerates in a damaged file straight to stderr; the file's
    # problem, if it has one, is recorded in failures.jsonl instead.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ReadError("PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise ReadError(f"unreadable PDF: {type(exc).__name__}: {str(exc)[:120]}") from None
    if not any(page.strip() for page in pages):
        raise ReadError("PDF has no text layer (scanned?)")
    return pages


@dataclass
class CleanPages:
    """Each page's lines as kept, and what was taken out."""

    pages: list[list[str]]
    removed: int  # furniture lines dropped
    joined: int  # words hyphenated across a line break, joined


def clean_pages(pages: list[str]) -> CleanPages:
    """The pages' lines without the running headers, footers and page numbers, hyphenated
    words joined (blank lines, which may part paragraphs, are kept)."""
    lines = [[line.strip() for line in page.strip().splitlines()] for page in pages]
    furniture = _furniture(lines)
    kept, removed = [], 0
    for page in lines:
        edge = _edges(page)
        keep = [line for i, line in enumerate(page) if not (i in edge and _key(line) in furniture)]
        removed += len(page) - len(keep)
        kept.append(_tidy(keep))
    joined = _join_hyphenated(kept)
    return CleanPages([_tidy(page) for page in kept], removed, joined)


def _tidy(lines: list[str]) -> list[str]:
    """No blank line at either end, nor two in a row."""
    tidy = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    while tidy and not tidy[-1]:
        tidy.pop()
    return tidy


def _key(line: str) -> str:
    """A line as furniture is compared: case and spacing aside, any number the same
    (``Page 3 of 10`` is ``page # of #``; a roman page number is one too)."""
    text = " ".join(line.lower().split())
    return "#" if _ROMAN.match(text) else _DIGITS.sub("#", text)


def _edges(page: list[str]) -> set[int]:
    """The positions of a page's first and last ``EDGE`` lines that are not blank."""
    filled = [i for i, line in enumerate(page) if line]
    return set(filled[:EDGE]) | set(filled[-EDGE:])


def _furniture(lines: list[list[str]]) -> set[str]:
    pages = [page for page in lines if any(page)]
    if len(pages) < MIN_PAGES:
        return set()
    seen = Counter()
    for page in pages:
        seen.update({_key(page[i]) for i in _edges(page)})
    return {key for key, count in seen.items() if count >= MIN_PAGES and count * 2 >= len(pages)}


def _join_hyphenated(pages: list[list[str]]) -> int:
    """Join ``main-`` at a line's end with ``tenance`` starting the next line (on this page or
    the next), in place: the hyphen goes unless both halves are words and the whole is not
    (``well-`` / ``known``). Returns how many were joined."""
    flat = [(p, i) for p, page in enumerate(pages) for i in range(len(page))]
    joined = 0
    for (p, i), (q, j) in zip(flat, flat[1:]):
        line, following = pages[p][i] or "", pages[q][j] or ""
        broken, start = _BROKEN.search(line), _FIRST_WORD.match(following)
        if not broken or not start or line.endswith("--"):
            continue
        head, tail = broken.group(1), start.group(1)
        hyphen = "-" if _keeps_hyphen(head, tail) else ""
        pages[p][i] = line[:-1] + hyphen + tail + start.group(2)
        pages[q][j] = following[start.end():] or None  # a line that was only the tail goes
        joined += 1
    for page in pages:
        page[:] = [line for line in page if line is not None]
    return joined


def _keeps_hyphen(head: str, tail: str) -> bool:
    from .prose import is_english_word

    head, tail = head.lower(), tail.lower()
    return is_english_word(head) and is_english_word(tail) and not is_english_word(head + tail)
