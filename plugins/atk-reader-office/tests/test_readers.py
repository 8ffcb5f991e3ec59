"""The office readers through read_documents, as every pipeline reads a folder: documents
written by each format's own library, headings kept, furniture left out, origins said."""

import io
import zipfile

from atk_core import chunk_document, read_folder
from office_documents import BOOK, DECK, HANDBOOK, write_docx, write_epub, write_pptx


def read_one(path):
    reading = read_folder(path.parent)
    assert reading.unreadable == []
    (document,) = reading.documents
    return document, reading.summary()["readers"]


def test_a_word_document_keeps_its_headings_lists_and_tables_and_not_its_header_or_footer(tmp_path):
    document, readers = read_one(write_docx(tmp_path / "handbook.docx"))
    assert document.text == (
        f"# {HANDBOOK['title']}\n\n{HANDBOOK['intro']}\n\n## Tides\n\n{HANDBOOK['tides']}\n\n"
        f"### Walls\n\n{HANDBOOK['walls']}\n\n- {HANDBOOK['items'][0]}\n- {HANDBOOK['items'][1]}\n\n"
        "Berth | Depth\nNorth quay | 9 m")
    assert HANDBOOK["header"] not in document.text and HANDBOOK["footer"] not in document.text
    assert document.where(document.text.index("The north wall")) == "Harbour Handbook > Tides > Walls"
    assert readers["docx"]["distribution"] == "atk-reader-office" and readers["docx"]["documents"] == 1


def test_a_deck_reads_slide_by_slide_with_notes_and_without_footers_or_numbers(tmp_path):
    document, readers = read_one(write_pptx(tmp_path / "deck.pptx"))
    assert document.text == (
        f"# {DECK['title']}\n\nA short history\n\n# Keeping the light\n\n{DECK['slide2']}\n"
        f"- {DECK['bullet']}\n\n{DECK['notes']}\n\n# The end of keeping\n\n{DECK['slide3']}")
    assert [o.where for o in document.origins] == [
        "slide 1, Lighthouse keeping", "slide 2, Keeping the light",
        "slide 2 notes, Keeping the light", "slide 3, The end of keeping"]
    assert readers["pptx"]["notes"] == {"repeated blocks removed (footers, notices)": 3}
    assert [c.where for c in chunk_document(document, 2000)] == ["slides 1-3"]


def test_a_book_reads_its_chapters_in_order_named_as_its_contents_name_them(tmp_path):
    document, _ = read_one(write_epub(tmp_path / "book.epub"))
    assert document.text == (
        f"# {BOOK['chapter1']}\n\n{BOOK['moon']}\n\n# {BOOK['chapter2']}\n\n{BOOK['coast']}\n\n"
        f"## {BOOK['section']}\n\n{BOOK['bore']}")
    assert document.where(document.text.index("A tidal bore")) == "The Coast > Bores"
    assert document.where(document.text.index("The pull")) == "The Moon"


def test_files_they_cannot_read_are_reported_with_the_reason_and_the_reader(tmp_path):
    (tmp_path / "fake.docx").write_bytes(b"not a zip at all")
    (tmp_path / "fake.pptx").write_bytes(b"")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
    (tmp_path / "hollow.epub").write_bytes(buffer.getvalue())
    reading = read_folder(tmp_path)
    assert reading.documents == []
    found = {p.source: (p.reader, p.reason) for p in reading.unreadable}
    assert found == {
        "fake.docx": ("docx", "not a Word document that can be read (it is not a zip package)"),
        "fake.pptx": ("pptx", "not a PowerPoint deck that can be read (it is not a zip package)"),
        "hollow.epub": ("epub", "not an EPUB book that can be read (a part it needs is missing:"
                                " There is no item named 'META-INF/container.xml' in the archive)")}
