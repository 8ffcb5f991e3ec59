"""Resume: a run killed with SIGKILL midway, run again, ends exactly as an uninterrupted run,
and the server never answers the same request twice."""

import hashlib
import signal
import sqlite3
import subprocess
import sys
import time

from atk_core.testing import FakeOpenAIServer
from support import stderr_lines


def answer(text, payload):
    # Depends on the question, and leaves some questions unanswerable.
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return {"wrong": True} if "item 7?" in text else {"answer": f"A-{digest}"}


def write_config(path, server, output_dir, count):
    path.write_text(
        f"pipeline: answers\ncount: {count}\noutput_dir: {output_dir}\n"
        "progress: [jsonl]\n"
        "models:\n"
        f"  large: {{backend: openai, model: fake, base_url: '{server.url}', concurrency: 4,"
        " retry_base_delay: 0.01}\n"
    )
    return path


def stored_answers(output_dir):
    database = output_dir / "store.sqlite"
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_kill_9_midway_then_rerun_matches_a_clean_run(answers_site, tmp_path):
    count = 60
    with FakeOpenAIServer(answer=answer) as clean_server:
        clean_dir = tmp_path / "clean"
        config = write_config(tmp_path / "clean.yaml", clean_server, clean_dir, count)
        clean = subprocess.run([sys.executable, "-m", "atk_core", "run", str(config)],
                               env=answers_site.env(), capture_output=True, text=True, timeout=120)
        assert clean.returncode == 0, clean.stderr
        clean_requests = len(clean_server.requests)

    with FakeOpenAIServer(answer=answer) as server:
        server.answer_limit = 25  # then every request hangs, so the kill finds work in flight
        output_dir = tmp_path / "resumed"
        config = write_config(tmp_path / "resumed.yaml", server, output_dir, count)
        process = subprocess.Popen([sys.executable, "-m", "atk_core", "run", str(config)],
                                   env=answers_site.env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while stored_answers(output_dir) < 25 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored_answers(output_dir) == 25
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert not (output_dir / "answers.jsonl").exists()  # no half-written output
        sent_before = len(server.requests)

        server.answer_limit = None
        rerun = subprocess.run([sys.executable, "-m", "atk_core", "run", str(config)],
                               env=answers_site.env(), capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert server.answered_twice() == []
        # Only unanswered requests went out again: the total is the clean run's plus the
        # ones that were hanging (unanswered) when the process was killed.
        hanging = sent_before - 25
        assert len(server.requests) == clean_requests + hanging

        again = subprocess.run([sys.executable, "-m", "atk_core", "run", str(config)],
                               env=answers_site.env(), capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert len(server.requests) == clean_requests + hanging  # a finished run sends nothing

    for name in ("answers.jsonl", "failures.jsonl"):
        assert (output_dir / name).read_bytes() == (clean_dir / name).read_bytes(), name
    answers = (clean_dir / "answers.jsonl").read_text().splitlines()
    failures = (clean_dir / "failures.jsonl").read_text().splitlines()
    assert len(answers) == count - 1 and len(failures) == 1
    assert "does not match the schema" in failures[0] and "(after 2 attempts)" in failures[0]


def test_unreachable_backend_fails_the_run_with_one_line(answers_site, tmp_path):
    server = FakeOpenAIServer().start()
    server.stop()  # a port nobody listens on any more
    config = tmp_path / "down.yaml"
    config.write_text(
        f"pipeline: answers\ncount: 3\noutput_dir: {tmp_path / 'out'}\nprogress: [jsonl]\n"
        f"models:\n  large: {{backend: openai, base_url: '{server.url}', max_retries: 1,"
        " retry_base_delay: 0.01}\n"
    )
    result = subprocess.run([sys.executable, "-m", "atk_core", "run", str(config)],
                            env=answers_site.env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    (line,) = stderr_lines(result)
    assert line.startswith("atk: error: pipeline 'answers' failed: model 'large' (openai): gave up after 2 attempts: cannot reach")
