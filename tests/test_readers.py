"""Readers are plugins (atk_register_readers): the built-in formats read well (a web page as its
article, a PDF without its page furniture), each document says where its text came from, a
third-party reader adds a format or takes one over, a broken one costs its files and not the
run, and nothing is lost silently: every file not read is in failures.jsonl with its reader."""

import json
import sys
from pathlib import Path

import pytest

from atk_core import (
    Document, DocumentText, Origin, chunk_document, read_documents, read_folder,
)
from atk_core.testing import read_jsonl, run_cli, run_pipeline, stderr_lines, write_config
from reader_documents import (
    ARTICLE, PAGE_FURNITURE, REPORT_HEADER, REPORT_PAGES, WEB_PAGE, write_report_pdf, write_web_page,
)

HERE = Path(__file__).resolve().parent
REPORT_BODY = [line for page in REPORT_PAGES for line in page if not line.endswith("-")]
REPORT_FURNITURE = [REPORT_HEADER] + [f"Page {n} of {len(REPORT_PAGES)}" for n in range(1, len(REPORT_PAGES) + 1)]


def only(reading, name):
    return reading.summary()["readers"][name]


# -- web pages ------------------------------------------------------------------------------------


def test_a_web_page_is_read_as_its_article_without_navigation_cookies_and_footer(tmp_path):
    import trafilatura  # atk-core[articles]: scripts/setup.sh installs it

    write_web_page(tmp_path / "tides.html")
    reading = read_folder(tmp_path)
    (page,) = reading.documents
    assert all(sentence in page.text for sentence in ARTICLE)
    assert [text for text in PAGE_FURNITURE if text in page.text] == []
    assert page.text.startswith("# Tides of the North Sea\n\n")  # headings kept as headings
    assert "\n\n## Why the tides differ\n\n" in page.text
    assert page.where(page.text.index("Storm surges")) == "Tides of the North Sea > Why the tides differ"
    assert only(reading, "html")["notes"] == {f"article by trafilatura {trafilatura.__version__}": 1}


def test_without_trafilatura_the_page_is_its_visible_text_and_the_manifest_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # as if it were not installed
    write_web_page(tmp_path / "tides.html")
    reading = read_folder(tmp_path)
    (page,) = reading.documents
    assert all(sentence in page.text for sentence in ARTICLE)
    assert "<script>" not in page.text and "analytics" not in page.text
    assert "## Why the tides differ" in page.text
    assert only(reading, "html")["notes"] == {"page text by html.parser (trafilatura not installed)": 1}


# -- PDF ------------------------------------------------------------------------------------------


def test_pdf_running_headers_footers_and_page_numbers_are_removed_and_counted(tmp_path):
    write_report_pdf(tmp_path / "report.pdf")
    reading = read_folder(tmp_path)
    (report,) = reading.documents
    assert [line for line in REPORT_FURNITURE if line in report.text] == []
    assert all(line in report.text for line in REPORT_BODY[:2] + REPORT_BODY[-2:])
    # main- / tenance, hyphenated across a line break, is one word again
    assert "Regular maintenance\nof the sluice gates" in report.text and "main-" not in report.text
    assert only(reading, "pdf")["notes"] == {
        "repeated lines removed (running headers, footers, page numbers)": 8,
        "hyphenated words joined": 1}
    # Every page says where it is, and a chunk says which pages it spans.
    assert [o.where for o in report.origins] == ["page 1", "page 2", "page 3", "page 4"]
    assert report.where(report.text.index("Silt samples")) == "page 3"
    chunks = chunk_document(report, 450)
    assert [c.where for c in chunks] == ["pages 1-2", "pages 3-4"]


def test_a_short_pdf_keeps_every_line_and_a_repeated_line_inside_a_page_stays(tmp_path):
    write_report_pdf(tmp_path / "short.pdf", pages=REPORT_PAGES[:2])  # two pages: no furniture known
    body = "The same caution stands in the middle of every page of this one."
    pages = [[page[0], page[1], body, page[-1], "Thank you."] for page in REPORT_PAGES[:3]]
    write_report_pdf(tmp_path / "three.pdf", pages=pages)
    short, three = read_folder(tmp_path).documents
    assert short.text.count(REPORT_HEADER) == 2 and "Page 2 of 2" in short.text
    assert REPORT_HEADER not in three.text and three.text.count(body) == 3
    assert three.text.count("Thank you.") == 0  # at the foot of every page: furniture


def test_hyphenated_words_keep_their_hyphen_when_both_halves_are_words():
    from atk_core.toolkit.pdf import clean_pages

    cleaned = clean_pages(["The port is state-\nowned and its exam-\nple is clear.\nA dash --\nstays."])
    assert cleaned.pages == [["The port is state-owned", "and its example", "is clear.",
                              "A dash --", "stays."]]
    assert cleaned.joined == 2 and cleaned.removed == 0


def test_a_pdf_without_a_suffix_is_found_by_sniffing(tmp_path):
    write_report_pdf(tmp_path / "report-from-scanner")
    reading = read_folder(tmp_path)
    assert [d.source for d in reading.documents] == ["report-from-scanner"]
    assert only(reading, "pdf")["files"] == 1 and reading.unclaimed == 0


# -- documents, origins and chunks ----------------------------------------------------------------


def test_document_text_remembers_where_each_block_came_from():
    text = DocumentText()
    text.heading("Results", 1, where="slide 2")
    text.add("Tides rose.", where="slide 2")
    text.add("Speaker notes here.", where="slide 2 notes")
    text.heading("Method", 1, where="slide 3")
    text.add("  ", where="slide 3")  # nothing: no block
    text.add("We measured.\r\nTwice.", where="slide 3")
    text.note("hidden slides left out")
    document = text.document("deck.pptx")
    assert document.text == ("# Results\n\nTides rose.\n\nSpeaker notes here.\n\n# Method\n\n"
                             "We measured.\nTwice.")
    assert document.origins == (
        Origin(0, 22, "slide 2, Results"), Origin(24, 43, "slide 2 notes, Results"),
        Origin(45, 74, "slide 3, Method"))
    assert document.where(30) == "slide 2 notes, Results"
    assert document.where(0, len(document.text)) == "slides 2-3"
    assert document.where(10_000) == ""
    assert text.notes == {"hidden slides left out": 1}


def test_a_markdown_file_keeps_its_offsets_and_knows_its_headings(tmp_path):
    (tmp_path / "guide.md").write_text("Intro line.\n\n# Install\n\nRun it.\n\n```\n# not a heading\n```\n\n"
                                       "## On Linux\n\nUse apt.\n", encoding="utf-8")
    (document,) = read_documents(tmp_path)[0]
    assert document.text == (tmp_path / "guide.md").read_text()  # offsets are the file's own
    assert document.where(0) == ""
    assert document.where(document.text.index("not a heading")) == "Install"
    assert document.where(document.text.index("Use apt")) == "Install > On Linux"


def test_chunks_break_at_headings_and_never_end_with_one():
    section = " ".join(f"Sentence {n} of this section says something true." for n in range(8))
    text = "\n\n".join(["# Intro", "Tiny intro.", "## One", section, "## Two", section.replace("true", "new"),
                        "## Three", "Short.", "Also short."])
    chunks = chunk_document(Document("a.md", text), 600)
    # Half full (300 characters), a chunk ends before a heading; below that, the heading joins it.
    assert [c.text.split("\n")[0] for c in chunks] == ["# Intro", "## Two"]
    assert "## One" in chunks[0].text
    assert all(not c.text.rstrip().splitlines()[-1].startswith("#") for c in chunks)
    assert chunks[-1].text.endswith("## Three\n\nShort.\n\nAlso short.")  # a short tail joins the chunk before


# -- plugins --------------------------------------------------------------------------------------

MEMO_READER = {
    "memo_reader.py": '''
        from atk_core import DocumentText, Reader, ReadError, hookimpl

        class MemoReader(Reader):
            """Memos: a subject line, then the body."""
            suffixes = (".memo",)

            def read(self, data, source):
                text = data.decode("utf-8")
                if text.startswith("CORRUPT"):
                    raise ReadError("memo has no subject line")
                if text.startswith("EXPLODE"):
                    raise RuntimeError("the memo parser has a bug")
                subject, _, body = text.partition("\\n")
                document = DocumentText()
                document.heading(subject.removeprefix("Subject: "), where="memo")
                document.add(body, where="memo")
                document.note("memos read")
                return document

        class ShoutingText(Reader):
            """Text, upper-cased: an installed reader takes .txt over the built-in one."""
            suffixes = (".txt",)

            def read(self, data, source):
                return data.decode("utf-8").upper()

        @hookimpl
        def atk_register_readers(register):
            register("memo", MemoReader)
            register("shouting", ShoutingText)
    ''',
}

BROKEN_READERS = {
    "broken_reader.py": '''
        import a_parser_that_is_not_installed
    ''',
    "bad_suffix_reader.py": '''
        from atk_core import Reader, hookimpl

        class Loose(Reader):
            suffixes = "memo"

            def read(self, data, source):
                return ""

        @hookimpl
        def atk_register_readers(register):
            register("loose", Loose)
    ''',
}

RIVAL_READER = {
    "rival_reader.py": '''
        from atk_core import Reader, hookimpl

        class RivalMemo(Reader):
            """Memos, another way."""
            suffixes = (".memo",)

            def read(self, data, source):
                return data.decode("utf-8")

        @hookimpl
        def atk_register_readers(register):
            register("rival-memo", RivalMemo)
    ''',
}


@pytest.fixture
def memo_site(site):
    site.add("atk-reader-memo", MEMO_READER, {"memo": "memo_reader"}, version="0.3")
    return site


def test_atk_register_readers_adds_readers_that_atk_list_shows_beside_the_built_in_ones(atk, memo_site):
    result = atk("list", "readers", "--json", env=memo_site.env())
    assert result.returncode == 0, result.stderr
    listed = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"text", "markdown", "html", "pdf", "jsonl", "memo", "shouting"} <= set(listed)
    assert listed["pdf"]["distribution"] == "atk-core" and listed["pdf"]["suffixes"] == [".pdf"]
    assert listed["memo"] == {"name": "memo", "distribution": "atk-reader-memo", "version": "0.3",
                              "description": "Memos: a subject line, then the body.",
                              "suffixes": [".memo"]}
    table = atk("list", env=memo_site.env()).stdout
    assert "readers:" in table and "Memos: a subject line, then the body. (.memo)" in table
    plugins = json.loads(atk("plugins", "--json", env=memo_site.env()).stdout)
    (builtin,) = [p for p in plugins if p["name"] == "atk_core.toolkit.readers"]
    assert builtin["builtin"] and builtin["hooks"] == ["atk_register_readers"]


def test_a_broken_reader_plugin_is_disabled_alone(atk, memo_site):
    memo_site.add("atk-reader-broken", BROKEN_READERS, {"broken": "broken_reader", "loose": "bad_suffix_reader"})
    result = atk("list", "readers", "--json", env=memo_site.env())
    assert result.returncode == 0, result.stderr
    assert {"memo", "pdf"} <= {r["name"] for r in json.loads(result.stdout)}
    lines = stderr_lines(result)
    assert len(lines) == 2, lines
    plugins = {p["name"]: p for p in json.loads(atk("plugins", "--json", env=memo_site.env()).stdout)}
    assert "a_parser_that_is_not_installed" in plugins["broken"]["error"]
    assert plugins["loose"]["error"] == ("hook atk_register_readers raised reader 'loose': suffixes must"
                                         " be a tuple of lower-case suffixes starting with '.', like"
                                         " ('.docx',), not 'memo'")
    assert plugins["memo"]["error"] is None


def test_every_file_not_read_is_in_failures_with_its_reader_and_the_manifest_counts_readers(atk, memo_site, tmp_path):
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "harbour.memo").write_text("Subject: Harbour dues\nThe harbour dues rise by a tenth in April.\n")
    (documents / "broken.memo").write_text("CORRUPT\n")
    (documents / "bug.memo").write_text("EXPLODE\n")
    (documents / "notes.txt").write_text("The ferry leaves at nine every morning.\n")
    (documents / "minutes.docx.bak").write_bytes(b"\x00\x01")
    write_report_pdf(documents / "report.pdf")
    role = {"backend": "scripted", "respond": "passing_model:respond"}
    config = write_config(tmp_path / "run.yaml", "factual-qa", input_dir=str(documents),
                          output_dir=str(tmp_path / "out"), models={"small": role, "large": role},
                          rewrite_conversations=False)
    env = memo_site.env(PYTHONPATH=memo_site.env()["PYTHONPATH"] + ":" + str(HERE))  # passing_model
    result = atk("run", config, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The buggy reader failed one file: one warning, and the run went on.
    assert [line for line in stderr_lines(result) if "reader 'memo'" in line] == [
        "atk: warning: reader 'memo' (atk-reader-memo 0.3) failed on bug.memo: RuntimeError: the memo"
        " parser has a bug; its files are in failures.jsonl"]

    out = tmp_path / "out"
    read = {f["sample_id"]: (f["reader"], f["reason"]) for f in read_jsonl(out / "failures.jsonl")
            if f["step"] == "read"}
    assert read == {
        "broken.memo": ("memo", "read: memo has no subject line"),
        "bug.memo": ("memo", "read: reader 'memo' failed: RuntimeError: the memo parser has a bug"),
        "minutes.docx.bak": (None, "read: unsupported file type .bak"),
    }
    pairs = read_jsonl(out / "qa_pairs.jsonl")
    answers = {p["answer"] for p in pairs}
    assert "The harbour dues rise by a tenth in April." in answers  # the installed reader's format
    assert "THE FERRY LEAVES AT NINE EVERY MORNING." in answers  # .txt taken over by an installed reader
    assert not any(furniture in p["answer"] or furniture in p["question"]
                   for p in pairs for furniture in REPORT_FURNITURE)
    reading = json.loads((out / "manifest.json").read_text())["reading"]
    assert reading["unclaimed"] == 1
    assert reading["readers"]["memo"] == {"distribution": "atk-reader-memo", "files": 3, "documents": 1,
                                          "unreadable": 2, "notes": {"memos read": 1}}
    assert reading["readers"]["shouting"]["files"] == 1 and "text" not in reading["readers"]
    assert reading["readers"]["pdf"]["notes"]["repeated lines removed (running headers, footers, page numbers)"] == 8
    shown = atk("inspect", out, "-n", "0", env=env).stdout.splitlines()
    at = shown.index("read by (files -> documents, and what each reader noted):")
    assert shown[at + 1:at + 5] == [
        "  memo           3 -> 1       2 not read, 1 memos read",
        "  pdf            1 -> 1       1 hyphenated words joined, 8 repeated lines removed (running"
        " headers, footers, page numbers)",
        "  shouting       1 -> 1",
        "  (none)         1 -> 0       no reader takes them"]


def test_two_installed_readers_of_one_suffix_read_none_of_its_files(atk, memo_site, tmp_path):
    memo_site.add("atk-reader-rival", RIVAL_READER, {"rival": "rival_reader"})
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "a.memo").write_text("Subject: x\ny\n")
    script = ("import json, sys\nfrom atk_core import read_documents\n"
              "documents, problems = read_documents(sys.argv[1])\n"
              "print(json.dumps([[p.source, p.reason, p.reader] for p in problems]))")
    import subprocess

    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "documents")], env=memo_site.env(),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ((source, reason, reader),) = json.loads(result.stdout)
    assert source == "a.memo" and reader is None
    assert reason == ("readers 'memo' (atk-reader-memo 0.3) and 'rival-memo' (atk-reader-rival 1.0)"
                      " both claim .memo; uninstall one of them")


def test_readers_given_to_read_folder_replace_the_installed_ones(tmp_path):
    from atk_core import Reader

    class Reversed(Reader):
        suffixes = (".txt",)

        def read(self, data, source):
            return data.decode()[::-1]

    (tmp_path / "a.txt").write_text("abc")
    (tmp_path / "b.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "minutes.docx").write_bytes(b"PK")
    reading = read_folder(tmp_path, readers={"reversed": Reversed})
    assert [(d.source, d.text) for d in reading.documents] == [("a.txt", "cba")]
    assert [(p.source, p.reason, p.reader) for p in reading.unreadable] == [
        ("b.pdf", "unsupported file type .pdf", None),
        # a format a known package reads says which
        ("minutes.docx", "unsupported file type .docx (atk-reader-office reads it: pip install"
                         " atk-reader-office)", None)]
    assert reading.unclaimed == 2


def test_a_reader_that_cannot_start_or_answers_nonsense_costs_only_its_own_files(tmp_path):
    from atk_core import Reader
    from atk_core.toolkit.readers import TextReader

    class NeedsAKey(Reader):
        suffixes = (".locked",)

        def __init__(self):
            raise RuntimeError("no licence key")

        def read(self, data, source):
            return ""

    class Confused(Reader):
        suffixes = (".odd",)

        def read(self, data, source):
            return 42

    for name, text in (("a.locked", "x"), ("b.locked", "y"), ("c.odd", "z"), ("d.txt", "Fine text.")):
        (tmp_path / name).write_text(text)
    reading = read_folder(tmp_path, readers={"locked": NeedsAKey, "odd": Confused, "text": TextReader})
    assert [d.source for d in reading.documents] == ["d.txt"]
    assert [(p.source, p.reason, p.reader) for p in reading.unreadable] == [
        ("a.locked", "reader 'locked' could not start: RuntimeError: no licence key", "locked"),
        ("b.locked", "reader 'locked' could not start: RuntimeError: no licence key", "locked"),
        ("c.odd", "reader 'odd' returned int, not a document's text", "odd")]


# -- every pipeline -------------------------------------------------------------------------------


def test_factual_qa_asks_about_the_body_and_never_the_furniture(tmp_path):
    import passing_model

    documents = tmp_path / "documents"
    write_web_page(documents / "tides.html")
    write_report_pdf(documents / "report.pdf")
    role = {"backend": "scripted", "respond": passing_model.respond}
    result = run_pipeline("factual-qa", output_dir=tmp_path / "out", input_dir=str(documents),
                          models={"small": role, "large": role}, rewrite_conversations=False)
    assert result.exit_code == 0, result.error
    pairs = read_jsonl(tmp_path / "out" / "qa_pairs.jsonl")
    assert {p["source"] for p in pairs} == {"tides.html", "report.pdf"}
    body = ARTICLE + REPORT_BODY + ["Regular maintenance of the sluice gates keeps the inner basin from silting up."]
    assert {" ".join(p["answer"].split()) for p in pairs} <= set(body)
    everything = (tmp_path / "out" / "conversations.sharegpt.jsonl").read_text() + json.dumps(pairs)
    assert [text for text in PAGE_FURNITURE + REPORT_FURNITURE if text in everything] == []
    reading = json.loads((tmp_path / "out" / "manifest.json").read_text())["reading"]
    assert {name: tally["documents"] for name, tally in reading["readers"].items()} == {"html": 1, "pdf": 1}


@pytest.mark.parametrize("pipeline", ["factual-qa", "repvar", "rag-data", "correction", "domain-expert"])
def test_every_pipeline_reads_the_body_and_none_of_the_furniture(pipeline, tmp_path):
    documents = tmp_path / "documents"
    write_web_page(documents / "tides.html")
    write_report_pdf(documents / "report.pdf")
    calls = tmp_path / "calls.jsonl"
    role = {"backend": "scripted", "log": str(calls)}  # answers that fit each step's schema
    fields = ({"input_dirs": [str(documents)], "base_model": "HuggingFaceTB/SmolLM2-135M"}
              if pipeline == "domain-expert" else {"input_dir": str(documents)})
    run_pipeline(pipeline, output_dir=tmp_path / "out", models={"small": role, "large": role}, **fields)
    asked = calls.read_text()
    assert ARTICLE[0] in asked and REPORT_BODY[0] in asked and "Regular maintenance" in asked
    assert [text for text in PAGE_FURNITURE + REPORT_FURNITURE if text in asked] == []
