"""``atk eval``: models answer an exam, every answer is scored by a rule, and a second eval sends
nothing. Real subprocesses of the CLI, the scripted backend as the models under test (their
answers are in tests/eval_exam.py), a hand-written exam about documents made up for it."""

import json
import os
from pathlib import Path

from atk_core.testing import run_cli, stderr_lines
from eval_exam import ITEMS, write_exam

HERE = Path(__file__).resolve().parent


def env():  # the scripted models (tests/eval_exam.py) are imported in the subprocess
    paths = [str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def atk_eval(*args, cwd):
    return run_cli("eval", *args, env=env(), cwd=cwd)


def settings(name, respond, log):
    return ["--set", f"models.{name}.respond=eval_exam:{respond}", "--set", f"models.{name}.log={log}"]


def test_a_model_that_knows_the_references_scores_near_full_one_that_does_not_near_zero(tmp_path):
    exam = write_exam(tmp_path / "run")
    result = atk_eval(exam, "--model", "knows=scripted", "--model", "wrong=scripted",
                      *settings("knows", "from_reference", tmp_path / "knows.calls"),
                      *settings("wrong", "other_reference", tmp_path / "wrong.calls"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((exam.parent / "eval" / "eval.json").read_text())
    knows, wrong = report["models"]["knows"]["closed"], report["models"]["wrong"]["closed"]
    assert knows["total"] == wrong["total"] == len(ITEMS)
    assert knows["accuracy"] >= 0.95, knows
    assert wrong["accuracy"] <= 0.1, wrong
    low, high = knows["interval"]
    assert low < knows["accuracy"] <= high <= 1.0
    assert set(knows["by_document"]) == {"varrow.txt", "brennet.txt"}
    assert knows["seen"]["total"] == sum(seen for *_, seen in ITEMS)
    assert knows["held_out"]["total"] == sum(not seen for *_, seen in ITEMS)
    # The table, models side by side.
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["model", "book"]
    assert [line.split()[0] for line in lines[1:]] == ["knows", "wrong"]
    answers = [json.loads(line) for line in (exam.parent / "eval" / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 2 * len(ITEMS)
    assert all(a["why"] for a in answers)


def test_a_second_eval_sends_nothing_and_writes_the_same_bytes(tmp_path):
    exam = write_exam(tmp_path / "run")
    args = (exam, "--model", "knows=scripted", *settings("knows", "from_reference", tmp_path / "calls"),
            "--output", tmp_path / "eval")
    assert atk_eval(*args, cwd=tmp_path).returncode == 0
    sent = len((tmp_path / "calls").read_text().splitlines())
    assert sent == len(ITEMS)
    first = {name: (tmp_path / "eval" / name).read_bytes() for name in ("answers.jsonl", "eval.json")}
    again = atk_eval(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len((tmp_path / "calls").read_text().splitlines()) == sent  # nothing sent
    assert "nothing asked" in again.stderr
    assert {name: (tmp_path / "eval" / name).read_bytes() for name in first} == first
    assert again.stdout == atk_eval(*args, cwd=tmp_path).stdout  # the same table
    # --- a lost eval.json is written again, from the store: still nothing sent
    (tmp_path / "eval" / "eval.json").unlink()
    replayed = atk_eval(*args, cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert "0 requests sent" in replayed.stderr
    assert len((tmp_path / "calls").read_text().splitlines()) == sent
    assert {name: (tmp_path / "eval" / name).read_bytes() for name in first} == first


def test_open_book_asks_again_with_the_passage(tmp_path):
    exam = write_exam(tmp_path / "run")
    result = atk_eval(exam, "--open-book", "--model", "reader=scripted",
                      *settings("reader", "only_with_passage", tmp_path / "calls"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((exam.parent / "eval" / "eval.json").read_text())
    entry = report["models"]["reader"]
    assert entry["closed"]["accuracy"] == 0.0
    assert entry["open"]["accuracy"] >= 0.95
    assert [line.split()[2] for line in result.stdout.splitlines()[1:]] == ["closed", "open"]


def test_a_judge_is_reported_beside_the_rule_never_instead_of_it(tmp_path):
    exam = write_exam(tmp_path / "run")
    result = atk_eval(exam, "--model", "knows=scripted", "--judge", "scripted",
                      *settings("knows", "from_reference", tmp_path / "calls"),
                      "--set", "models.judge.respond=eval_exam:judge_by_rule", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    closed = json.loads((exam.parent / "eval" / "eval.json").read_text())["models"]["knows"]["closed"]
    assert closed["accuracy"] >= 0.95 and closed["judge"]["total"] == len(ITEMS)
    assert 0 <= closed["judge"]["agrees_with_rule"] <= 1
    assert "judge" not in json.loads((exam.parent / "eval" / "eval.json").read_text())["models"]
    assert "judge says" in result.stdout.splitlines()[0]


def test_the_estimate_counts_every_question_for_every_model_and_book(tmp_path):
    exam = write_exam(tmp_path / "run")
    result = atk_eval(exam, "--open-book", "--model", "a=scripted", "--model", "b=scripted", "--estimate",
                      "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    estimate = json.loads(result.stdout)
    assert estimate["total"]["requests_if_all_survive"] == 2 * 2 * len(ITEMS)
    assert not (exam.parent / "eval").exists()


def test_mistakes_are_one_line_and_write_nothing(tmp_path):
    exam = write_exam(tmp_path / "run")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "question": "Why?"}) + "\n")
    cases = [
        ((tmp_path / "missing.jsonl", "--model", "a=scripted"), "no such file"),
        ((bad, "--model", "a=scripted", "--output", tmp_path / "out"), "line 1: no 'answer'"),
        ((exam,), "give at least one --model"),
        ((exam, "--model", "judge=scripted"), "judge is the --judge's role"),
        ((exam, "--model", "scripted"), "write NAME=BACKEND[:MODEL]"),
        ((exam, "--model", "a=nosuchbackend"), "nosuchbackend"),
    ]
    for args, message in cases:
        result = atk_eval(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        [line] = stderr_lines(result)
        assert line.startswith("atk: error: ") and message in line, (args, line)
        assert "Traceback" not in result.stderr
    assert not (exam.parent / "eval").exists() and not (tmp_path / "out").exists()


def test_a_request_that_fails_is_no_answer_not_a_wrong_one(tmp_path):
    exam = write_exam(tmp_path / "run")
    result = atk_eval(exam, "--model", "flaky=scripted", *settings("flaky", "fails_on_years", tmp_path / "calls"),
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    closed = json.loads((exam.parent / "eval" / "eval.json").read_text())["models"]["flaky"]["closed"]
    years = sum("year" in question for _, question, _, _ in ITEMS)
    assert closed["failed"] == years and closed["total"] == len(ITEMS) - years
    assert closed["accuracy"] == 1.0  # every answer it gave is right
    assert f"{len(ITEMS) - years}/{len(ITEMS) - years}, {years} no answer" in result.stdout


def test_a_second_eval_of_unchanged_names_says_every_answer_came_from_the_store(tmp_path):
    exam = write_exam(tmp_path / "run")
    args = (exam, "--model", "knows=scripted", *settings("knows", "from_reference", tmp_path / "calls"))
    assert atk_eval(*args, cwd=tmp_path).returncode == 0
    again = atk_eval(*args, cwd=tmp_path)
    assert "if the model behind a name has changed" in again.stderr
    (tmp_path / "run" / "exam" / "eval" / "answers.jsonl").unlink()  # replayed from the store
    replayed = atk_eval(*args, cwd=tmp_path)
    assert "every answer of knows came from the store" in replayed.stderr


def test_an_exam_without_seen_says_nothing_of_seen_or_held_out_facts(tmp_path):
    exam = tmp_path / "exam.jsonl"
    rows = [json.loads(line) for line in write_exam(tmp_path / "run").read_text().splitlines()]
    exam.write_text("".join(json.dumps({k: v for k, v in row.items() if k != "seen"}) + "\n" for row in rows))
    result = atk_eval(exam, "--model", "knows=scripted", *settings("knows", "from_reference", tmp_path / "calls"),
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert report["seen"] == report["held_out"] == 0
    closed = report["models"]["knows"]["closed"]
    assert closed["seen"]["total"] == closed["held_out"]["total"] == 0 and closed["total"] == len(ITEMS)


def test_more_mistakes_refused_before_anything_is_sent(tmp_path):
    exam = write_exam(tmp_path / "run")
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"id": "x", "question": "Why?", "answer": "Because."}) + "\n")
    other_run = tmp_path / "other"
    other_run.mkdir()
    (other_run / "manifest.json").write_text(json.dumps({"pipeline": "factual-qa"}))
    cases = [
        ((exam, "--model", "qwen2.5=scripted"), "letters, digits, _ and -"),
        ((bare, "--open-book", "--model", "a=scripted", "--output", tmp_path / "o1"), "no passage"),
        ((exam, "--model", "a=scripted", "--output", other_run), "holds a run of factual-qa"),
    ]
    for args, message in cases:
        result = atk_eval(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        [line] = stderr_lines(result)
        assert message in line, line
    assert json.loads((other_run / "manifest.json").read_text()) == {"pipeline": "factual-qa"}
    assert not (tmp_path / "o1").exists()
