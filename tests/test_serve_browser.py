"""`atk serve` end to end in a real browser: Debian's Chromium, driven by Playwright."""

import json
import math
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

import serve_helpers  # noqa: E402
from atk_core.testing import run_cli  # noqa: E402
from eval_exam import write_exam  # noqa: E402
from serve_helpers import AtkServer, factual_config, factual_folder  # noqa: E402

SCRIPTED = "{backend: scripted, respond: 'factual_fakes:respond'}"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors


def test_start_watch_and_download_a_run_in_the_browser(page, tmp_path):
    expect = sync_api.expect
    # As a user would: `atk init factual-qa --samples`, then `atk serve` in that folder.
    work = factual_folder(tmp_path / "work")
    server = AtkServer(tmp_path / "runs", cwd=work)
    try:
        page.goto(server.page_url)
        expect(page.locator("#pipelines [data-pipeline='factual-qa']")).to_contain_text("Documents to")

        # New run: choose the pipeline; its template fills the editor.
        page.click("text=+ New run")
        page.select_option("#pipeline-select", "factual-qa")
        editor = page.locator("#config-editor")
        expect(editor).to_have_value(re.compile(r"^# factual-qa"))
        template = editor.input_value()
        assert template == (work / "factual-qa.yaml").read_text()

        # A mistake is refused, with the CLI's message next to the editor.
        editor.fill(template.replace("pipeline: factual-qa", "pipeline: factual-qq"))
        page.click("#start-run")
        expect(page.locator("#config-error")).to_have_text(re.compile(
            r"^unknown pipeline 'factual-qq'; did you mean 'factual-qa'\? \(installed: [a-z, -]*factual-qa[a-z, -]*\)$"))
        assert server.get("/api/runs")[1] == []

        # Edited to run offline on the scripted backend over the sample documents, and a file
        # it cannot read (so the funnel has a drop to show).
        (work / "documents" / "scan.bin").write_bytes(bytes(range(256)))
        edited = (template
                  .replace("small: {backend: llamacpp}", f"small: {SCRIPTED}")
                  .replace("large: {backend: llamacpp}", f"large: {SCRIPTED}")
                  .replace("rewrite_conversations: true", "rewrite_conversations: false")
                  .replace("input_dir: ./documents", f"input_dir: {work / 'documents'}"))
        assert edited.count("scripted") == 2 and "rewrite_conversations: false" in edited
        editor.fill(edited)
        expect(page.locator("#config-check")).to_have_class(re.compile(r"\bok\b"))
        page.click("#start-run")

        # The runs page: the new run's bar goes to 100%.
        row = page.locator("#runs .run-row").first
        expect(row).to_have_attribute("data-status", "done", timeout=60_000)
        expect(row.locator(".pct")).to_have_text("100%")
        expect(row.locator(".bar .fill")).to_have_attribute("style", re.compile(r"width: 100"))
        page.wait_for_timeout(600)  # let the bar's transition settle
        page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
        run_id = row.get_attribute("data-run")

        # Its page: counts, log, files; download the conversations.
        row.click()
        expect(page).to_have_url(re.compile(re.escape(f"#/runs/{run_id}") + "$"))
        expect(page.locator(".hero .pill")).to_have_text("done")
        expect(page.locator("#steps [data-step='read']")).to_contain_text("4")
        expect(page.locator("#log")).to_contain_text("factual-qa finished")
        item = page.locator("#files [data-path='conversations.sharegpt.jsonl']")
        expect(item).to_contain_text("main output")
        # each file says what its pipeline declares it holds
        expect(item.locator(".fmeta")).to_contain_text("SFT conversations (sharegpt)")
        expect(page.locator("#files [data-path='qa_pairs.jsonl'] .fmeta")).to_contain_text("plain records")
        with page.expect_download() as download_info:
            item.locator("[data-file]").click()
        download = download_info.value
        assert download.suggested_filename == "conversations.sharegpt.jsonl"
        saved = tmp_path / "downloaded.jsonl"
        download.save_as(saved)
        records = [json.loads(line) for line in saved.read_text().splitlines()]
        assert records and all(r["conversations"][0]["from"] == "system" for r in records)
        assert saved.read_bytes() == (
            tmp_path / "runs" / run_id / "output" / "conversations.sharegpt.jsonl").read_bytes()

        # Its data: the funnel as a chart, one bar per step, and the records a page at a time.
        output = tmp_path / "runs" / run_id / "output"
        manifest = json.loads((output / "manifest.json").read_text())
        bars = page.locator("#funnel svg .funnel-step")
        expect(bars).to_have_count(len(manifest["steps"]))
        read_step = page.locator("#funnel [data-step='read']")
        expect(read_step.locator("title")).to_have_text(
            "read: 4 in, 3 out; dropped: 1 unsupported file type .bin")
        expect(page.locator("#funnel .funnel-reasons")).to_contain_text("read 1 × unsupported file type .bin")
        # The kept part of each bar is as long as the samples that went on.
        widths = [float(w) for w in read_step.locator("rect").evaluate_all(
            "rects => rects.map(r => r.getAttribute('width'))")]
        assert widths[1] == pytest.approx(widths[0] * 3 / 4, abs=1)
        expect(page.locator("#data-file")).to_have_value("conversations.sharegpt.jsonl")
        expect(page.locator("#data-file option[value='qa_pairs.jsonl']")).to_have_text(
            "qa_pairs.jsonl (plain records)")
        expect(page.locator("#records .record").first.locator("[data-role='system']")).to_be_visible()
        pairs = [json.loads(line) for line in (output / "qa_pairs.jsonl").read_text().splitlines()]
        page.select_option("#data-file", "qa_pairs.jsonl")
        expect(page.locator("#data-where")).to_have_text(f"1–{min(10, len(pairs))} of {len(pairs)}")
        expect(page.locator("#records .record").first).to_contain_text(pairs[0]["question"])
        failures = [json.loads(line) for line in (output / "failures.jsonl").read_text().splitlines()]
        page.select_option("#data-file", "failures.jsonl")
        first = page.locator("#records .record.failure").first
        expect(first.locator(".kind")).to_have_text(failures[0]["kind"])
        expect(first).to_contain_text(failures[0]["reason"])
        if len(failures) > 10:  # page on, and back
            page.click("#data-next")
            expect(page.locator("#data-where")).to_contain_text("11–")
            page.click("#data-prev")
        expect(page.locator("#data-prev")).to_be_disabled()
        page.screenshot(path=str(tmp_path / "run.png"), full_page=True)
        assert (tmp_path / "runs.png").stat().st_size > 10_000
    finally:
        server.stop()


def test_the_page_with_a_token(page, tmp_path):
    expect = sync_api.expect
    work = factual_folder(tmp_path / "work")
    token = "browser-token-567890"
    server = AtkServer(tmp_path / "runs", token=token, env={**os.environ, "ATK_SERVE_TOKEN": token}, cwd=work)
    try:
        run = server.start_run((work / "factual-qa.yaml").read_text()
                               .replace("{backend: llamacpp}", str(SCRIPTED))
                               .replace("rewrite_conversations: true", "rewrite_conversations: false"))
        server.wait_for_status(run["id"], "done")
        page.goto(server.url + "?token=" + token)
        assert "token" not in page.url  # taken once, then sent as a header
        expect(page.locator("#pipelines [data-pipeline='factual-qa']")).to_be_visible()
        # A reload keeps it (the tab's session storage); a new tab without the URL's token is
        # told to open that URL again, and works with it. No cookie holds the token.
        page.reload()
        expect(page.locator("#pipelines [data-pipeline='factual-qa']")).to_be_visible()
        assert page.context.cookies() == []
        tab = page.context.new_page()
        assert tab.goto(server.url + "#/runs/" + run["id"]).status == 200
        expect(tab.locator("#banner")).to_contain_text("needs its token")
        tab.goto(server.url + "?token=" + token + "#/runs/" + run["id"])
        expect(tab.locator(".hero .pill")).to_have_text("done")
        tab.close()
        page.locator("#runs .run-row").first.click()
        item = page.locator("#files [data-path='conversations.sharegpt.jsonl']")
        with page.expect_download() as download_info:
            item.locator("[data-file]").click()
        saved = tmp_path / "downloaded.jsonl"
        download_info.value.save_as(saved)
        assert saved.read_bytes() == Path(
            tmp_path / "runs" / run["id"] / "output" / "conversations.sharegpt.jsonl").read_bytes()
        # A browser that never had the token gets the page, but no data.
        stranger = page.context.browser.new_context()
        try:
            other = stranger.new_page()
            assert other.goto(server.url).status == 200
            expect(other.locator("#banner")).to_contain_text("needs its token")
            expect(other.locator("#runs .run-row")).to_have_count(0)
        finally:
            stranger.close()
    finally:
        server.stop()


def test_a_late_template_never_replaces_what_the_user_typed(page, tmp_path):
    # The template is fetched while the page is already usable. Hold its responses, choose the
    # pipeline again (Playwright fires `change` even for the same value) and type: when the
    # responses arrive the typed text must still be there, and a second fetch must not be made.
    expect = sync_api.expect
    work = factual_folder(tmp_path / "work")
    server = AtkServer(tmp_path / "runs", cwd=work)
    held = []
    try:
        page.route("**/api/pipelines/*/template", lambda route: held.append(route))
        page.goto(server.page_url + "#/new/factual-qa")
        while not held:
            page.wait_for_timeout(20)
        page.select_option("#pipeline-select", "factual-qa")
        editor = page.locator("#config-editor")
        editor.fill("pipeline: factual-qq\n")
        page.wait_for_timeout(200)
        assert len(held) == 1
        held.pop().continue_()
        expect(page.locator("#config-error")).to_contain_text("unknown pipeline 'factual-qq'")
        assert editor.input_value() == "pipeline: factual-qq\n"
        # The template did arrive: one click brings it back.
        page.click("text=Reset to template")
        expect(editor).to_have_value((work / "factual-qa.yaml").read_text())
        assert held == []
    finally:
        server.stop()


def test_a_running_run_shows_its_cost_so_far_and_the_projected_total(page, tmp_path):
    expect = sync_api.expect
    work = factual_folder(tmp_path / "work")
    server = AtkServer(tmp_path / "runs", cwd=work)
    try:
        priced = {**serve_helpers.SCRIPTED, "delay": 0.4, "concurrency": 1, "price_in": 3.0,
                  "price_out": 15.0}
        run = server.start_run(factual_config(work, models={"small": priced, "large": priced}))
        page.goto(server.page_url + "#/runs/" + run["id"])
        models = page.locator(".card-body.models")
        # While it goes: per role, what was sent and spent so far, and the projection.
        expect(models.locator("[data-role='large']")).to_contain_text(
            re.compile(r"\d+ sent .* tokens · \$\d+\.\d{4} · ~\$\d+\.\d{4} projected in all"),
            timeout=60_000)
        expect(page.get_by_role("heading", name="Models, so far")).to_be_visible()
        live = server.run(run["id"])  # what the page shows, from the API
        assert live["status"] == "running"
        assert {use["role"] for use in live["usage"]} == {"small", "large"}
        assert all(use["projected_cost"] >= use["cost"] for use in live["usage"] if use["cost"])
        # Once done, the manifest's final figures replace it, without a projection.
        server.wait_for_status(run["id"], "done", timeout=300)
        expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible(timeout=15_000)
        expect(models).not_to_contain_text("projected")
        manifest = json.loads((tmp_path / "runs" / run["id"] / "output" / "manifest.json").read_text())
        expect(models.locator("[data-role='large']")).to_contain_text(
            f"${manifest['models']['large']['cost_total']:.4f}")
    finally:
        server.stop()


# A model that knows the answer to every third question of tests/eval_exam.py, and gives the
# next question's answer to the others: an accuracy between none and all.
SOME_RIGHT = """
from eval_exam import ITEMS, _asked, from_reference, other_reference

def some_right(request):
    index = [question for _, question, _, _ in ITEMS].index(_asked(request))
    return from_reference(request) if index % 3 == 0 else other_reference(request)
"""


def shown(summary) -> str:
    """A score as the page writes it (JavaScript's Math.round, not Python's round)."""
    if summary is None or summary["accuracy"] is None:
        return "-"
    return f"{math.floor(100 * summary['accuracy'] + 0.5)}% ({summary['correct']}/{summary['total']})"


def test_a_runs_evals_are_a_table_and_a_chart_on_its_page(page, tmp_path):
    expect = sync_api.expect
    work = factual_folder(tmp_path / "work")
    server = AtkServer(tmp_path / "runs", cwd=work)
    try:
        plain, evaluated = (server.start_run(factual_config(work, seed=seed)) for seed in (1, 2))
        for run in (plain, evaluated):
            assert server.wait_for_status(run["id"], "done", "failed")["status"] == "done"
        output = tmp_path / "runs" / evaluated["id"] / "output"
        (tmp_path / "models" / "some_right.py").parent.mkdir()
        (tmp_path / "models" / "some_right.py").write_text(SOME_RIGHT)
        tests = Path(__file__).resolve().parent
        # A model's name is the user's text: the page shows it as text, never as HTML.
        odd = "tuned<b>&x"
        result = run_cli(
            "eval", write_exam(output), "--open-book", "--model", "knows=scripted",
            "--model", "tuned=scripted", "--model", "wrong=scripted", "--judge", "scripted",
            "--set", "models.knows.respond=eval_exam:from_reference",
            "--set", "models.tuned.respond=some_right:some_right", "--set", f"models.tuned.model={odd}",
            "--set", "models.wrong.respond=eval_exam:other_reference",
            "--set", "models.judge.respond=eval_exam:judge_by_rule", cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tmp_path / "models")])})
        assert result.returncode == 0, result.stderr
        report = json.loads((output / "eval" / "eval.json").read_text())
        # A second eval, into a folder the user chose, of an exam with no held-out facts.
        all_seen = tmp_path / "all-seen.jsonl"
        all_seen.write_text("".join(json.dumps({**json.loads(line), "seen": True}) + "\n"
                                    for line in (output / "exam" / "exam.jsonl").read_text().splitlines()))
        result = run_cli("eval", all_seen, "--model", "knows=scripted", "--output", output / "all-seen",
                         "--set", "models.knows.respond=eval_exam:from_reference", cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(tests)})
        assert result.returncode == 0, result.stderr

        page.goto(server.page_url + "#/runs/" + evaluated["id"])
        cards = page.locator("#evals .eval-card")
        expect(cards).to_have_count(2)
        assert cards.evaluate_all("cards => cards.map(c => c.dataset.eval)") == ["eval", "all-seen"]
        card = cards.first
        expect(card.locator(".card-head")).to_contain_text(
            f"{report['questions']} questions · {report['seen']} seen in training · {report['held_out']} held out")
        # The table: a row per model and book, as eval.json says.
        rows = card.locator("tbody tr")
        expected = [(name, book, entry[book]) for name, entry in report["models"].items()
                    for book in report["books"]]
        assert len(expected) == 3 * 2
        expect(rows).to_have_count(len(expected))
        for index, (name, book, scores) in enumerate(expected):
            row = rows.nth(index)
            low, high = (math.floor(100 * v + 0.5) for v in scores["interval"])
            assert row.locator("[data-col='model'] .name").inner_text() == name
            assert row.locator("[data-col='model'] .what").inner_text() == report["models"][name]["model"]
            assert row.locator("[data-col='book']").inner_text() == book
            assert row.locator("[data-col='correct'] .value").inner_text() == shown(scores)
            assert row.locator("[data-col='correct'] .ci").inner_text() == f"{low}–{high}%"
            assert row.locator("[data-col='seen']").inner_text() == shown(scores["seen"])
            assert row.locator("[data-col='held_out']").inner_text() == shown(scores["held_out"])
            assert row.locator("[data-col='judge']").inner_text() == shown(scores["judge"])
        assert card.locator("b").count() == 0
        # The chart: a bar per model and book, as tall as its accuracy, with its interval.
        bars = card.locator("svg .eval-bar")
        expect(bars).to_have_count(len(expected))
        drawn = bars.evaluate_all("bars => bars.map(b => [b.dataset.model, b.dataset.book,"
                                  " Number(b.getAttribute('height')), Number(b.getAttribute('y'))])")
        assert [(name, book) for name, book, *_ in drawn] == [(name, book) for name, book, _ in expected]
        accuracies = [scores["accuracy"] for *_, scores in expected]
        heights = [height for *_, height, _ in drawn]
        assert len({round(a, 2) for a in accuracies}) >= 3  # none, some and all: heights to compare
        tallest = max(heights)
        for (name, book, height, top), accuracy in zip(drawn, accuracies):
            assert height / tallest == pytest.approx(accuracy / max(accuracies), abs=0.01), (name, book)
            assert top + height == pytest.approx(drawn[0][3] + drawn[0][2])  # on one baseline
        expect(card.locator("svg .eval-interval")).to_have_count(len(expected))
        # Nothing held out: no accuracy to show, and no judge column without a judge.
        other = cards.nth(1).locator("tbody tr")
        expect(other).to_have_count(1)
        expect(other.locator("[data-col='held_out']")).to_have_text("-")
        expect(other.locator("[data-col='seen']")).not_to_have_text("-")
        expect(cards.nth(1).locator("[data-col='judge']")).to_have_count(0)
        expect(cards.nth(1).locator("svg .eval-bar")).to_have_count(1)
        page.screenshot(path=str(tmp_path / "eval.png"), full_page=True)

        # A run without an eval shows none.
        page.goto(server.page_url + "#/runs/" + plain["id"])
        expect(page.locator(".hero .pill")).to_have_text("done")
        expect(page.locator("#files [data-path='manifest.json']")).to_be_visible()
        expect(page.locator("#evals")).to_be_hidden()
        expect(page.locator("#evals .eval-card")).to_have_count(0)
    finally:
        server.stop()
