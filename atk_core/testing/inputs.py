"""Input files for tests: every kind of document atk reads, and the kinds it reports."""

from __future__ import annotations

import json

# Two short documents of plain facts (names, numbers, years), a few chunks' worth.
TWO_DOCUMENTS = {
    "kilns.txt": (
        "The lime kilns at Hartsop burned limestone from the quarry above the village. Each "
        "kiln was loaded from the top with layers of stone and coal. The burning took three "
        "days and nights, and the lime was drawn out at the bottom. Farmers spread the lime "
        "on their fields to sweeten the acid soil. The last kiln went cold in 1921."),
    "weir.txt": (
        "A stone weir holds back the river Lune above the old mill at Caton. Salmon climb "
        "the weir by a fish pass built in 1998. The mill race once turned a wheel six metres "
        "across. Floods in 2015 moved several stones of the weir downstream. Volunteers count "
        "the salmon that pass each autumn."),
}


def pdf_bytes(text: str | None) -> bytes:
    """A one-page PDF whose text layer holds ``text`` (None: a page with no text)."""
    stream = (f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET" if text else "").encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def write_mixed_inputs(folder):
    """``folder`` filled with one file of every kind atk reads (Markdown, HTML in a subfolder,
    a PDF, JSON lines), and some it cannot (a scanned PDF, a binary, Latin-1 text, a blank
    file, bad JSON lines) and one it skips (a hidden file); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bees.md").write_text(
        "# Bees\n\nThe waggle dance tells other bees where flowers are.\n\n"
        "Worker bees live about six weeks in summer.\n")
    (folder / "nested").mkdir()
    (folder / "nested" / "page.html").write_text(
        "<html><head><title>Lights</title><script>var hidden = 1;</script></head>"
        "<body><p>The Fresnel lens was designed in 1822.</p><footer>Share this page</footer></body></html>")
    (folder / "report.pdf").write_bytes(pdf_bytes("Lighthouse keepers wound the clockwork every night."))
    (folder / "scan.pdf").write_bytes(pdf_bytes(None))
    (folder / "records.jsonl").write_text(
        json.dumps({"text": "Honey holds less than twenty percent water."}) + "\n"
        + "not json at all\n" + json.dumps({"title": "no text field"}) + "\n")
    (folder / "picture.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    (folder / "blank.txt").write_text("   \n\n")
    (folder / ".hidden.txt").write_text("never read")
    return folder
