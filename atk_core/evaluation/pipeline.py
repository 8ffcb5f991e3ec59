"""``exam-eval``: each model answers an exam, and every answer is scored against its reference.

``atk eval EXAM --model NAME=BACKEND[:MODEL] ...`` runs this pipeline; it runs as
any pipeline does, so a second ``atk eval`` sends nothing (every answer is in the
run's store), an interrupted one resumes, and ``--estimate`` works. Every role the
config defines is a model under test except ``judge``:

1. each model answers every question closed-book (its prompt holds the question
   only) and, with ``open_book``, again with the passage the fact comes from (the
   most the model can score: a ceiling);
2. each answer is scored against the exam's reference answer by
   ``atk_core.toolkit.scoring.score_answer`` (a rule, not a model: see
   docs/eval.md); with a ``judge`` role, the judge's verdict is recorded beside
   it, never instead of it;
3. ``answers.jsonl``: every answer, its score and why; ``eval.json``: per model and
   book, accuracy with its 95 % interval, per source document, and for facts the
   training data taught (``seen``) and held out of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from ..errors import ConfigError
from ..toolkit.constraints import AtLeast, NonEmpty
from ..toolkit.outputs import Output

NAME = "exam-eval"
JUDGE = "judge"
ANSWERS = "answers.jsonl"
REPORT = "eval.json"
REQUIRED = ("id", "question", "answer")

OUTPUTS = (
    Output(ANSWERS, "records", primary=True,
           description="every model's answer to every exam question, with its score and why"),
)


async def exam_eval(*, exam: Annotated[str, NonEmpty], output_dir: str, models: dict, open_book: bool = False,
                    max_tokens: Annotated[int, AtLeast(8)] = 200, seed: int = 0, task_id=None, **kwargs):
    """Ask every model the exam's questions and score the answers (see the module)."""
    from ..engine.manifest import RunRecord
    from ..engine.progress import set_progress
    from ..engine.steps import PipelineStep, yes_no_schema
    from ..toolkit.files import atomic_write_json, atomic_write_jsonl
    from ..toolkit.scoring import score_answer

    items = read_exam(exam)
    record = RunRecord()
    under_test = [role for role in models if role != JUDGE]
    books = ("closed", "open") if open_book else ("closed",)
    runs = [(role, book) for role in under_test for book in books]
    answers = []
    for number, (role, book) in enumerate(runs):
        step = PipelineStep(name=f"{role}: {book} book", prompt=f"answer_{book}", model=role,
                            max_tokens=max_tokens, temperature=0.0, seed=seed, max_attempts=1)
        results = await step.run(items, progress=(number / len(runs) * 0.9, (number + 1) / len(runs) * 0.9))
        for item, result in zip(items, results):
            # A request that failed is no answer: counted apart, not scored as a wrong one.
            text = result.value.strip() if result.ok and isinstance(result.value, str) else ""
            score = score_answer(item["question"], item["answer"], text) if result.ok else None
            answers.append({
                "model": role, "book": book, "id": item["id"], "question": item["question"],
                "reference": item["answer"], "answer": text, "answered": result.ok,
                "correct": score.correct if score else None, "recall": round(score.recall, 3) if score else None,
                "why": score.reason if score else f"no answer: {result.reason}",
                "source": _document(item), "seen": item.get("seen") if isinstance(item.get("seen"), bool) else None,
            })
        record.count(step.name, len(items), sum(1 for r in results if r.ok))
    if JUDGE in models and answers:
        judge = PipelineStep(name=JUDGE, prompt="judge_answer", model=JUDGE, json_schema=yes_no_schema("same_fact"),
                             max_tokens=256, temperature=0.0, seed=seed)
        judged = [a for a in answers if a["answered"]]
        asked = [{"id": _judged_id(a), "question": a["question"], "reference": a["reference"],
                  "answer": a["answer"] or "(no answer)"} for a in judged]
        verdicts = await judge.run(asked, progress=(0.9, 0.99))
        for answer in answers:
            answer["judge"] = None  # None: no verdict
        for answer, verdict in zip(judged, verdicts):
            answer["judge"] = bool(verdict.value["same_fact"]) if verdict.ok else None
        record.count(JUDGE, len(asked), sum(1 for v in verdicts if v.ok))
    output = Path(output_dir)
    atomic_write_jsonl(output / ANSWERS, answers)
    record.wrote(ANSWERS, len(answers))
    report = report_of(exam, items, answers, under_test, books, models)
    atomic_write_json(output / REPORT, report)
    record.write(output, extra={"eval": {"models": under_test, "books": list(books), "items": len(items)}})
    set_progress(task_id, 1.0, f"{len(items)} questions, {len(under_test)} model(s)")
    return report


def _judged_id(answer: dict) -> str:
    """A judge's sample id: one per question, model and book, whatever characters they hold."""
    import hashlib

    key = json.dumps([answer["id"], answer["model"], answer["book"]])
    return "judge-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _document(item: dict):
    """An item's document, with its input folder when the run read several."""
    source = item.get("source")
    if source is None:
        return None
    return f"{item['folder']}/{source}" if item.get("folder") else str(source)


def exam_file(path) -> Path:
    """The exam ``path`` names: the file itself, or, for a run's folder, the output its
    manifest declares with kind ``exam`` (``ConfigError`` if it declares none, or several)."""
    path = Path(path)
    if not path.is_dir():
        return path
    try:
        declared = json.loads((path / "manifest.json").read_text(encoding="utf-8"))["declared_outputs"]
        if not isinstance(declared, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"exam {str(path)!r}: a folder, but no finished run (no manifest.json"
                          " that lists its outputs); give the exam's file") from None
    exams = sorted(file for file, entry in declared.items()
                   if isinstance(entry, dict) and entry.get("kind") == "exam"
                   and not Path(file).is_absolute() and ".." not in Path(file).parts)
    if len(exams) != 1:
        found = f"declares {len(exams)}: {', '.join(exams)}" if exams else "declares no exam"
        raise ConfigError(f"exam {str(path)!r}: the run {found}; give the exam's file")
    return path / exams[0]


def run_folder_of(exam: Path) -> Path:
    """The finished run an exam file belongs to (the nearest folder above it with a
    manifest.json), else the exam's own folder."""
    for folder in list(exam.parents)[:3]:
        if (folder / "manifest.json").is_file():
            return folder
    return exam.parent


def read_exam(path) -> list[dict]:
    """An exam's items (``id``, ``question``, ``answer``...), from its file or its run's
    folder, or the ``ConfigError`` naming the first thing wrong with it."""
    from ..engine.confinement import outside_readable

    path = exam_file(path)
    refused = outside_readable(path)
    if refused:  # atk serve's runs read only what they were allowed
        raise ConfigError(f"exam {str(path)!r}: {refused}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"exam {str(path)!r}: no such file (an exam is the file a run declares"
                          " with kind exam, or that run's folder)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"exam {str(path)!r}: cannot be read: {exc}") from None
    items, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise ConfigError(f"exam {str(path)!r} line {number}: not JSON") from None
        missing = [k for k in REQUIRED if not isinstance(item, dict) or not isinstance(item.get(k), str)
                   or not item[k].strip()]
        if missing:
            raise ConfigError(f"exam {str(path)!r} line {number}: no {missing[0]!r} (an exam item"
                              " has an id, a question and its reference answer)")
        if item["id"] in seen:
            raise ConfigError(f"exam {str(path)!r} line {number}: id {item['id']!r} twice")
        seen.add(item["id"])
        items.append({**item, "context": item.get("context") or ""})
    if not items:
        raise ConfigError(f"exam {str(path)!r}: no questions")
    return items


def report_of(exam, items, answers, under_test, books, models) -> dict:
    """What ``eval.json`` holds: per model and book, the summary overall, per source document,
    and for seen and held-out facts; the judge's beside it, if there was one."""
    from ..toolkit.scoring import summarise

    def summary(rows):
        answered = [r for r in rows if r["answered"]]
        found = {**summarise([r["correct"] for r in answered]), "failed": len(rows) - len(answered)}
        judged = [r for r in answered if r.get("judge") is not None]
        if rows and "judge" in rows[0]:
            found["judge"] = summarise([r["judge"] for r in judged])
            found["judge"]["agrees_with_rule"] = (sum(r["judge"] == r["correct"] for r in judged) / len(judged)
                                                  if judged else None)
        return found

    report = {"exam": str(exam), "questions": len(items), "books": list(books),
              "seen": sum(1 for i in items if i.get("seen") is True),
              "held_out": sum(1 for i in items if i.get("seen") is False),
              "rule": "atk_core.toolkit.scoring.score_answer (docs/eval.md)", "models": {}}
    for role in under_test:
        entry = {"model": _described(models[role])}
        for book in books:
            rows = [a for a in answers if a["model"] == role and a["book"] == book]
            sources = sorted({str(r["source"]) for r in rows if r["source"] is not None})
            entry[book] = {
                **summary(rows),
                "by_document": {s: summary([r for r in rows if str(r["source"]) == s]) for s in sources},
                "seen": summary([r for r in rows if r["seen"] is True]),
                "held_out": summary([r for r in rows if r["seen"] is False]),
            }
        report["models"][role] = entry
    return report


def _described(model) -> str:
    """``backend:model`` of a role (a ``Model`` in a run, its settings in a check)."""
    spec = getattr(model, "spec", None)
    backend = getattr(spec, "backend", None) or (model.get("backend") if isinstance(model, dict) else "?")
    name = getattr(getattr(model, "backend", None), "model", None) or (
        model.get("model") if isinstance(model, dict) else None)
    return f"{backend}:{name}" if name else str(backend)


def vet(*, exam, models, open_book=False, **values) -> None:
    """Before anything runs: the exam can be read (with a passage per question for open
    book), and there is a model to test."""
    items = read_exam(exam)
    if not [role for role in models if role != JUDGE]:
        raise ConfigError("models: no model to test (every role but judge is one)")
    bare = [item["id"] for item in items if not item["context"].strip()]
    if open_book and bare:
        raise ConfigError(f"open_book: {len(bare)} question(s) of the exam have no passage (context),"
                          f" {bare[0]!r} the first; an open-book question needs one")


def table(report: dict) -> str:
    """The report as the console shows it: a line per model and book, models side by side."""
    def percent(summary):
        if not summary or summary.get("accuracy") is None:
            return "-"
        failed = f", {summary['failed']} no answer" if summary.get("failed") else ""
        return f"{100 * summary['accuracy']:.0f}% ({summary['correct']}/{summary['total']}{failed})"

    def interval(summary):
        low, high = summary.get("interval") or (0, 1)
        return f"{100 * low:.0f}-{100 * high:.0f}%"

    judged = any("judge" in entry.get(book, {}) for entry in report["models"].values()
                 for book in report["books"])
    header = ["model", "book", "correct", "95% interval", "seen facts", "held-out facts"] + \
        (["judge says"] if judged else [])
    rows = []
    for role, entry in report["models"].items():
        for book in report["books"]:
            found = entry[book]
            rows.append([f"{role} ({entry['model']})", book, percent(found), interval(found),
                         percent(found["seen"]), percent(found["held_out"])]
                        + ([percent(found.get("judge"))] if judged else []))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines) + "\n"
