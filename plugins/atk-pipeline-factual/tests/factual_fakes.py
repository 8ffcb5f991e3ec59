"""Test doubles for factual-qa: a scripted model that answers each step's prompt plausibly,
and small builders for input files (a PDF with and without a text layer)."""

import json
import re

from atk_core.models.base import RequestError


def respond(request):
    """Answer like a well-behaved model would, with deliberate trouble on some inputs."""
    system = request.messages[0]["content"]
    user = request.messages[-1]["content"]
    if "whether a passage of text is worth" in system:
        if "Share this page" in user and "Keepers" not in user:
            return {"reason": "navigation only", "suitable": False}
        return {"reason": "it states facts", "suitable": True}
    if "write questions and answers" in system:
        if "rejected" not in user and "waggle" in user:
            return '{"questions": [ this is not json'  # fixed on the retry
        if "UNANSWERABLE-FOREVER" in user:
            return "I would rather not."  # malformed on every attempt
        topic = re.search(r'"""\n(.*?)\n"""', user, re.S).group(1).split()[:4]
        subject = " ".join(topic)
        return {"questions": [
            {"question": f"What is said about {subject}?", "answer": f"It says {subject} matters."},
            {"question": f"Why does {subject} matter at all?", "answer": f"Because of {subject}."},
        ]}
    if "check quiz questions" in system:
        return {"reason": "checked", "answerable": "Why does" not in user}
    if "check answers to quiz questions" in system:
        return {"reason": "agrees", "accurate": True}
    if "natural conversation" in system:
        pairs = re.findall(r"Q: (.*)\n\s+A: (.*)", user)
        messages = []
        for question, answer in pairs:
            messages += [{"role": "user", "content": question},
                         {"role": "assistant", "content": answer}]
        return {"messages": messages}
    raise RequestError(f"unexpected prompt: {system[:60]}")


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


def write_inputs(folder):
    """A folder with one file of every kind the pipeline reads, and some it cannot."""
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
