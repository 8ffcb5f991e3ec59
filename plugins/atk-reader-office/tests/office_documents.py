"""Office files for the tests, written with each format's own library (the writers of
python-docx, python-pptx and EbookLib), each with furniture that must not be read."""

from __future__ import annotations

from pathlib import Path

# Sentences a question can be asked about, and the furniture around them.
HANDBOOK = {
    "title": "Harbour Handbook",
    "intro": "The harbour at Wedmore was dredged in 1902 to admit steamships.",
    "tides": "The tide at the harbour mouth rises four metres at springs.",
    "walls": "The north wall was rebuilt in granite after the storm of 1953.",
    "items": ["Pilots board at the fairway buoy.", "Tugs wait inside the breakwater."],
    "header": "Wedmore Harbour Board - internal use",
    "footer": "Printed copies are uncontrolled",
}

DECK = {
    "title": "Lighthouse keeping",
    "slide2": "Keepers wound the clockwork every four hours through the night.",
    "bullet": "The lens turned on a bath of mercury.",
    "notes": "The Fresnel lens was designed in 1822 by Augustin Fresnel.",
    "slide3": "Automation ended resident keeping at Exford in 1998.",
    "footer": "Coastal Heritage Trust 2024",
    "notice": "Not for redistribution",
}

BOOK = {
    "title": "Tides and Shores",
    "chapter1": "The Moon",
    "moon": "The pull of the Moon raises two bulges of water on opposite sides of the Earth.",
    "chapter2": "The Coast",
    "coast": "Funnel-shaped estuaries such as the Severn amplify the range of the tide.",
    "section": "Bores",
    "bore": "A tidal bore is a wave that runs upstream when the tide comes in.",
}


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    section = document.sections[0]
    section.header.paragraphs[0].text = HANDBOOK["header"]
    section.footer.paragraphs[0].text = HANDBOOK["footer"]
    document.add_heading(HANDBOOK["title"], level=0)
    document.add_paragraph(HANDBOOK["intro"])
    document.add_heading("Tides", level=1)
    document.add_paragraph(HANDBOOK["tides"])
    document.add_heading("Walls", level=2)
    document.add_paragraph(HANDBOOK["walls"])
    for item in HANDBOOK["items"]:
        document.add_paragraph(item, style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, (("Berth", "Depth"), ("North quay", "9 m"))):
        for cell, value in zip(row.cells, cells):
            cell.text = value
    document.save(path)
    return path


def write_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.enum.shapes import PP_PLACEHOLDER
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[0])  # title slide
    first.shapes.title.text = DECK["title"]
    first.placeholders[1].text = "A short history"
    second = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
    second.shapes.title.text = "Keeping the light"
    body = second.placeholders[1].text_frame
    body.text = DECK["slide2"]
    bullet = body.add_paragraph()
    bullet.text, bullet.level = DECK["bullet"], 1
    second.notes_slide.notes_text_frame.text = DECK["notes"]
    third = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    third.shapes.title.text = "The end of keeping"
    box = third.shapes.add_textbox(Inches(1), Inches(2), Inches(8), Inches(1))
    box.text_frame.text = DECK["slide3"]
    # Furniture on every slide: the layout's footer and slide number placeholders, and a notice
    # drawn as a text box at the bottom.
    for number, slide in enumerate(deck.slides, 1):
        for placeholder in slide.slide_layout.placeholders:
            kind = placeholder.placeholder_format.type
            if kind in (PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.SLIDE_NUMBER):
                slide.shapes.clone_placeholder(placeholder)
        for shape in slide.placeholders:
            kind = shape.placeholder_format.type
            if kind == PP_PLACEHOLDER.FOOTER:
                shape.text_frame.text = DECK["footer"]
            elif kind == PP_PLACEHOLDER.SLIDE_NUMBER:
                shape.text_frame.text = f"Slide {number}"
        notice = slide.shapes.add_textbox(Inches(1), Inches(7), Inches(8), Inches(0.4))
        notice.text_frame.text = DECK["notice"]
    deck.save(path)
    return path


def write_epub(path: Path) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("tides-and-shores")
    book.set_title(BOOK["title"])
    book.set_language("en")
    book.add_author("A. Tester")
    one = epub.EpubHtml(title=BOOK["chapter1"], file_name="moon.xhtml", lang="en")
    one.content = f"<h1>{BOOK['chapter1']}</h1><p>{BOOK['moon']}</p>"
    two = epub.EpubHtml(title=BOOK["chapter2"], file_name="coast.xhtml", lang="en")
    two.content = (f"<h1>{BOOK['chapter2']}</h1><p>{BOOK['coast']}</p>"
                   f"<h2>{BOOK['section']}</h2><p>{BOOK['bore']}</p>")
    for chapter in (one, two):
        book.add_item(chapter)
    book.toc = (epub.Link("moon.xhtml", BOOK["chapter1"], "moon"), epub.Link("coast.xhtml", BOOK["chapter2"], "coast"))
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", one, two]
    epub.write_epub(str(path), book)
    return path
