"""Word files (.docx), through python-docx: the body in order, headings as headings.

The page headers and footers of a Word file are kept apart from its body
(they are a section's, not the text's), so they are never read: a running
header cannot land in a chunk. Word paginates only when it lays a document
out, so a block's place is the path of headings it is under.
"""

from __future__ import annotations

import io
import re
import zipfile

from atk_core import DocumentText, Reader, ReadError

from .reasons import why

_HEADING_STYLE = re.compile(r"^heading (\d)$", re.I)


class DocxReader(Reader):
    """Word documents: paragraphs, lists and tables in order, headings kept as headings."""

    suffixes = (".docx",)

    def read(self, data, source):
        import docx
        from docx.opc.exceptions import PackageNotFoundError
        from docx.table import Table

        try:
            document = docx.Document(io.BytesIO(data))
        except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise ReadError(f"not a Word document that can be read ({why(exc)})") from None
        blocks = list(document.iter_inner_content())
        titled = any(_style_level(b) == 0 for b in blocks if not isinstance(b, Table))
        text = DocumentText()
        items: list[str] = []  # the list being read: one block, its items on their own lines
        for block in blocks:
            if isinstance(block, Table):
                _flush(text, items)
                text.add(_table_text(block))
                continue
            level = _style_level(block)
            words = block.text.strip()
            if level is not None:
                _flush(text, items)
                # A document with a Title style: the title is the top heading, Heading 1 under it.
                text.heading(words, level + 1 if titled else max(level, 1))
            elif _is_list_item(block):
                if words:
                    items.append(f"- {words}")
            else:
                _flush(text, items)
                text.add(words)
        _flush(text, items)
        return text


def _flush(text: DocumentText, items: list[str]) -> None:
    if items:
        text.add("\n".join(items))
        items.clear()


def _style_level(paragraph) -> int | None:
    """0 for the Title style, N for Heading N (or a style based on it), else None."""
    style = paragraph.style
    while style is not None:
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 0
        found = _HEADING_STYLE.match(name)
        if found:
            return int(found.group(1))
        style = style.base_style
    return None


def _is_list_item(paragraph) -> bool:
    style = (paragraph.style.name or "") if paragraph.style is not None else ""
    # python-docx has no public word on numbering: a numbered paragraph has w:numPr.
    properties = getattr(paragraph._p, "pPr", None)
    numbered = properties is not None and getattr(properties, "numPr", None) is not None
    return numbered or style.lower().startswith("list")


def _table_text(table) -> str:
    rows = []
    for row in table.rows:
        cells = []
        for cell in row.cells:
            words = " ".join(cell.text.split())
            if not cells or cells[-1] != words:  # a merged cell is met once per column it spans
                cells.append(words)
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)
