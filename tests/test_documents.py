"""Documents and chunks, the shared start of every pipeline: reading inputs and chunking them."""

from pathlib import Path

from atk_core import (
    Document, chunk_document, chunk_documents, chunk_subset, html_to_text, read_documents, read_folder,
)
from atk_core.toolkit.documents import folder_files
from atk_core.testing import pdf_bytes, write_mixed_inputs as write_inputs


def test_every_kind_of_input_is_read_or_reported(tmp_path):
    reading = read_folder(write_inputs(tmp_path / "in"))
    documents, problems = reading.documents, reading.unreadable
    assert [d.source for d in documents] == [
        "bees.md", "nested/page.html", "records.jsonl#L1", "report.pdf"]
    # The page's article where trafilatura is installed (atk-core[articles]), else its visible text.
    (how,) = reading.summary()["readers"]["html"]["notes"]
    assert documents[1].text == ("The Fresnel lens was designed in 1822." if how.startswith("article by")
                                 else "Lights\n\nThe Fresnel lens was designed in 1822.\n\nShare this page")
    assert "Lighthouse keepers wound the clockwork" in documents[3].text
    assert documents[3].where(0) == "page 1"
    assert {(p.source, p.reason, p.reader) for p in problems} == {
        ("blank.txt", "empty: no text", "text"),
        ("latin1.txt", "not UTF-8 text (bad byte at offset 3)", "text"),
        ("picture.bin", "unsupported file type .bin", None),
        ("records.jsonl#L2", "line is not JSON", "jsonl"),
        ("records.jsonl#L3", "line has no string 'text' field", "jsonl"),
        ("scan.pdf", "PDF has no text layer (scanned?)", "pdf"),
    }
    assert read_documents(tmp_path / "in") == (documents, problems)


def test_files_are_walked_in_the_order_of_their_relative_paths(tmp_path):
    # Walked a folder at a time, the order must still be that of the whole paths as text:
    # "a-c.txt" and "a.txt" come before everything under "a/" ("-" and "." sort before "/").
    names = ["a/b.txt", "a-c.txt", "a.txt", "a/b/c/d.txt", "a0/x.md", "B.txt", "b/c-/e.txt", "b/c.txt",
             "b/c/d.txt", "a b/q.md", "é.txt", "a/.hidden/x.txt", ".hidden.txt"]
    folder = tmp_path / "in"
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")
    (folder / "linked").symlink_to(folder / "b", target_is_directory=True)  # not followed
    (folder / "linked.txt").symlink_to(folder / "a.txt")  # a file, as any other
    walked = [path.relative_to(folder).as_posix() for path in folder_files(folder)]
    visible = [name for name in names if "/." not in "/" + name]
    assert walked == sorted(visible + ["linked.txt"])
    assert walked[:4] == ["B.txt", "a b/q.md", "a-c.txt", "a.txt"]


def test_binary_data_with_a_text_suffix(tmp_path):
    (tmp_path / "fake.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    documents, problems = read_documents(tmp_path)
    assert documents == []
    reasons = {p.source: p.reason for p in problems}
    assert reasons["fake.txt"] == "binary file, not text"
    assert reasons["broken.pdf"].startswith("unreadable PDF")


def test_html_drops_scripts_styles_and_keeps_blocks():
    text = html_to_text("<style>p{}</style><h1>Title</h1><p>One &amp; two</p><script>x()</script><li>three</li>")
    assert text == "Title\n\nOne & two\n\nthree"


def test_pdf_text_layer_roundtrip(tmp_path):
    (tmp_path / "a.pdf").write_bytes(pdf_bytes("Hello PDF"))
    documents, _ = read_documents(tmp_path)
    assert documents[0].text.strip() == "Hello PDF"


def long_document():
    paragraphs = [" ".join(f"Sentence {p}.{s} says something true." for s in range(12)) for p in range(6)]
    return Document("doc.txt", "\n\n".join(paragraphs))


def test_chunks_are_exact_slices_near_the_size_ending_at_breaks():
    document = long_document()
    chunks = chunk_document(document, 800)
    assert len(chunks) > 3
    for chunk in chunks:
        assert document.text[chunk.start:chunk.end] == chunk.text
        assert len(chunk.text) <= 800 * 1.25
        assert chunk.text.endswith(".")  # a sentence or paragraph end, never mid-word
    covered = "".join(document.text[c.start:c.end] for c in chunks).replace(" ", "").replace("\n", "")
    assert covered == document.text.replace(" ", "").replace("\n", "")


def test_duplicates_are_dropped_and_subsets_are_deterministic():
    a = Document("a.txt", "Same paragraph here.\n\nAnother one.")
    b = Document("b.txt", "Same paragraph here.\n\nAnother one.")
    kept, duplicates = chunk_documents([a, b], 1000)
    assert [c.source for c in kept] == ["a.txt"] and [c.source for c in duplicates] == ["b.txt"]
    many = chunk_document(long_document(), 300)
    first, second = chunk_subset(many, 3, seed=1), chunk_subset(many, 3, seed=1)
    assert first == second and len(first) == 3
    assert [c.start for c in first] == sorted(c.start for c in first)  # original order kept
    assert chunk_subset(many, 3, seed=2) != first
