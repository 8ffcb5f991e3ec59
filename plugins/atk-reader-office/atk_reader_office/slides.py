"""PowerPoint files (.pptx), through python-pptx: each slide's title as a heading, its text
in reading order, its speaker notes after it.

A slide's footer, date and slide number placeholders are furniture and are
left out, and so is a block of text that repeats on at least half of the
slides (three at least): a footer or a notice drawn as a text box on each
slide. Hidden slides are left out too; what was left out is counted in the
run's manifest. Each block says its slide (``slide 3, Results``), which a
user can open.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter

from atk_core import DocumentText, Reader, ReadError

from .reasons import why


class PptxReader(Reader):
    """PowerPoint decks: slide titles as headings, text in reading order, speaker notes."""

    suffixes = (".pptx",)

    def read(self, data, source):
        from pptx import Presentation
        from pptx.exc import PackageNotFoundError

        try:
            deck = Presentation(io.BytesIO(data))
        except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise ReadError(f"not a PowerPoint deck that can be read ({why(exc)})") from None
        text = DocumentText()
        slides = []  # (number, title, the text of each other shape, the notes)
        for number, slide in enumerate(deck.slides, 1):
            if slide._element.get("show") == "0":  # python-pptx has no public word on it
                text.note("hidden slides left out")
                continue
            title = slide.shapes.title
            heading = title.text_frame.text if title is not None and title.has_text_frame else ""
            others = (s for s in slide.shapes if title is None or s.shape_id != title.shape_id)
            blocks = [block for block in map(_shape_text, _reading_order(others)) if block.strip()]
            notes = slide.notes_slide.notes_text_frame if slide.has_notes_slide else None
            slides.append((number, heading, blocks, notes.text if notes is not None else ""))
        repeated = _repeated([blocks for _, _, blocks, _ in slides])
        for number, heading, blocks, notes in slides:
            where = f"slide {number}"
            text.heading(heading, 1, where=where)
            for block in blocks:
                if _key(block) in repeated:
                    text.note("repeated blocks removed (footers, notices)")
                else:
                    text.add(block, where=where)
            text.add(notes, where=f"{where} notes")
        return text


def _key(block: str) -> str:
    return re.sub(r"\d+", "#", " ".join(block.lower().split()))


def _repeated(slides: list[list[str]]) -> set[str]:
    """The blocks that are on at least half of the slides, and on three at least."""
    seen = Counter()
    for blocks in slides:
        seen.update({_key(block) for block in blocks})
    return {key for key, count in seen.items() if count >= 3 and count * 2 >= len(slides)}


def _reading_order(shapes):
    """Top to bottom, then left to right (a shape placed by its layout has no position: first)."""
    return sorted(shapes, key=lambda s: (s.top or 0, s.left or 0))


def _shape_text(shape) -> str:
    from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER

    if shape.is_placeholder and shape.placeholder_format.type in (
            PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.SLIDE_NUMBER, PP_PLACEHOLDER.HEADER):
        return ""
    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return "\n\n".join(filter(None, (_shape_text(s) for s in _reading_order(shape.shapes))))
    if shape.has_table:
        rows = [" | ".join(" ".join(cell.text.split()) for cell in row.cells) for row in shape.table.rows]
        return "\n".join(row for row in rows if row.strip(" |"))
    if not shape.has_text_frame:
        return ""
    lines = []
    for paragraph in shape.text_frame.paragraphs:
        words = " ".join(paragraph.text.split())
        if words:
            # Bullets below the top level are a list's items; the top level reads as text.
            lines.append(f"{'  ' * (paragraph.level - 1)}- {words}" if paragraph.level else words)
    return "\n".join(lines)
