"""EPUB books, through EbookLib: the chapters in reading order (the spine), headings kept.

Each chapter is XHTML, read with atk-core's own ``html_to_text`` (headings as
Markdown lines, scripts and styles dropped); the book's navigation document
is not read. A block's place is its chapter as the book's table of contents
names it, then the headings it is under.
"""

from __future__ import annotations

import io
import zipfile

from atk_core import DocumentText, Reader, ReadError, html_to_text

from .reasons import why


class EpubReader(Reader):
    """EPUB books: chapters in reading order, headings kept, the table of contents' names."""

    suffixes = (".epub",)

    def read(self, data, source):
        import warnings

        import ebooklib
        from ebooklib import epub

        try:
            with warnings.catch_warnings():  # EbookLib warns about its own future defaults
                warnings.simplefilter("ignore")
                book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": False})
        except (epub.EpubException, zipfile.BadZipFile, KeyError, ValueError, AttributeError) as exc:
            raise ReadError(f"not an EPUB book that can be read ({why(exc)})") from None
        names = _toc_names(book.toc)
        text = DocumentText()
        for idref, _linear in book.spine:
            item = book.get_item_with_id(idref)
            if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
                continue
            chapter = html_to_text(item.get_content().decode("utf-8", errors="replace"),
                                   headings=True, title=False)
            text.add_markdown(chapter, where=names.get(item.get_name()))
        return text


def _toc_names(toc) -> dict[str, str]:
    """Each chapter file's first name in the table of contents."""
    names: dict[str, str] = {}
    for entry in toc:
        if isinstance(entry, tuple):  # (section, children)
            section, children = entry
            _name(names, section)
            names.update({k: v for k, v in _toc_names(children).items() if k not in names})
        else:
            _name(names, entry)
    return names


def _name(names: dict, entry) -> None:
    href, title = getattr(entry, "href", None), " ".join((getattr(entry, "title", "") or "").split())
    if href and title:
        names.setdefault(href.split("#")[0], title)
