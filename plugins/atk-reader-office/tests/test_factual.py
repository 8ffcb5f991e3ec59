"""Word, PowerPoint and EPUB files flow through factual-qa like any document: questions about
their body, none about their furniture, and the manifest says which reader read them."""

import json

from atk_core.testing import read_jsonl, run_pipeline
from office_documents import BOOK, DECK, HANDBOOK, write_docx, write_epub, write_pptx
from office_fakes import respond

BODY = [HANDBOOK["intro"], HANDBOOK["tides"], HANDBOOK["walls"], *HANDBOOK["items"], DECK["slide2"],
        DECK["bullet"], DECK["notes"], DECK["slide3"], BOOK["moon"], BOOK["coast"], BOOK["bore"]]
FURNITURE = [HANDBOOK["header"], HANDBOOK["footer"], DECK["footer"], DECK["notice"], "Slide 2"]


def test_office_documents_become_questions_about_their_body(tmp_path):
    documents = tmp_path / "documents"
    documents.mkdir()
    write_docx(documents / "handbook.docx")
    write_pptx(documents / "deck.pptx")
    write_epub(documents / "book.epub")
    role = {"backend": "scripted", "respond": respond}
    result = run_pipeline("factual-qa", output_dir=tmp_path / "out", input_dir=str(documents),
                          models={"small": role, "large": role}, rewrite_conversations=False)
    assert result.exit_code == 0, result.error

    pairs = read_jsonl(tmp_path / "out" / "qa_pairs.jsonl")
    assert {p["source"] for p in pairs} == {"handbook.docx", "deck.pptx", "book.epub"}
    assert {p["answer"] for p in pairs} <= set(BODY)
    assert {HANDBOOK["walls"], DECK["notes"], BOOK["bore"]} <= {p["answer"] for p in pairs}
    written = json.dumps(pairs) + (tmp_path / "out" / "conversations.sharegpt.jsonl").read_text()
    assert [text for text in FURNITURE if text in written] == []
    reading = json.loads((tmp_path / "out" / "manifest.json").read_text())["reading"]
    assert {name: (r["distribution"], r["documents"]) for name, r in reading["readers"].items()} == {
        "docx": ("atk-reader-office", 1), "pptx": ("atk-reader-office", 1), "epub": ("atk-reader-office", 1)}
