"""factual-qa: documents in, validated question-answer pairs and conversations out.

The recipe, in order:

1. read the input folder (text, Markdown, HTML, PDF, JSON lines);
2. chunk the documents (about ``chunk_size`` characters; duplicates dropped);
3. judge each chunk: does it hold facts worth questions?   (small model)
4. write question-answer pairs for each chunk              (large model)
5. check each question is answerable from the chunk alone   (small model, majority vote)
6. check each answer is accurate to the chunk              (small model)
7. write a conversation from each chunk's surviving pairs  (large model)

Every dropped sample is in ``failures.jsonl`` with its reason; the outputs
are written atomically and are the same bytes on every run of the same
inputs and config.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from pathlib import Path

from atk_core import ConfigError, PipelineError, PipelineStep, RunRecord, VoteStep, set_progress
from atk_core.files import atomic_write_jsonl
from atk_core.steps import derive_seed

from .chunking import chunk_all, subset
from .documents import SUPPORTED, read_folder

log = logging.getLogger("atk")

DEFAULT_SYSTEM_PROMPTS = (
    "You are a helpful assistant who answers questions accurately and clearly.",
    "You are a knowledgeable expert. Answer precisely, in full sentences.",
)

QA_PAIRS = "qa_pairs.jsonl"
SHAREGPT = "conversations.sharegpt.jsonl"
MESSAGES = "conversations.messages.jsonl"


# Schemas stay simple: llama.cpp turns them into grammars, and length limits
# (maxLength) blow those up. Lengths are checked by the validators instead.


def _verdict_schema(field: str) -> dict:
    return {
        "type": "object",
        "properties": {"reason": {"type": "string"}, field: {"type": "boolean"}},
        "required": ["reason", field],
    }


def _questions_schema(limit: int) -> dict:
    pair = {"type": "object",
            "properties": {"question": {"type": "string", "minLength": 1},
                           "answer": {"type": "string", "minLength": 1}},
            "required": ["question", "answer"]}
    return {"type": "object",
            "properties": {"questions": {"type": "array", "items": pair,
                                         "minItems": 1, "maxItems": limit}},
            "required": ["questions"]}


CONVERSATION_SCHEMA = {
    "type": "object",
    "properties": {"messages": {"type": "array", "minItems": 2, "items": {
        "type": "object",
        "properties": {"role": {"type": "string", "enum": ["user", "assistant"]},
                       "content": {"type": "string", "minLength": 1}},
        "required": ["role", "content"]}}},
    "required": ["messages"],
}


def _complete_pairs(value, sample):
    # A repeated question is not an error: pairs are keyed by their text, so it collapses.
    if any(not p["answer"].strip() or not p["question"].strip() for p in value["questions"]):
        return False, "every question and answer must have text"
    return True, None


def _alternating(value, sample):
    roles = [m["role"] for m in value["messages"]]
    expected = ["user", "assistant"] * (len(roles) // 2 + 1)
    if roles != expected[: len(roles)]:
        return False, "messages must alternate user, assistant, user, assistant, starting with user"
    if roles[-1] != "assistant":
        return False, "the conversation must end with an assistant message"
    if any(not m["content"].strip() for m in value["messages"]):
        return False, "every message must have text"
    return True, None


async def factual_qa(
    *,
    input_dir,
    output_dir,
    chunk_size=3000,
    use_subset=False,
    subset_size=100,
    seed=0,
    questions_per_chunk=3,
    question_votes=3,
    vote_threshold=0.5,
    pairs_per_conversation=3,
    system_prompts=DEFAULT_SYSTEM_PROMPTS,
    skip_judge=False,
    skip_question_check=False,
    skip_answer_check=False,
    rewrite_conversations=True,
    conversation_fallback=True,
    temperature=0.7,
    check_temperature=0.6,
    max_tokens=1024,
    max_attempts=3,
    task_id=None,
    **kwargs,
):
    """Turn a folder of documents into checked QA pairs and multi-turn conversations."""
    settings = _checked_settings(locals())
    record = RunRecord()
    folder = _input_folder(input_dir)

    # 1. read
    set_progress(task_id, 0.0, "reading documents")
    documents, unreadable = read_folder(folder)
    for problem in unreadable:
        record.drop("read", problem.source, f"read: {problem.reason}", kind=problem.reason.split(":")[0])
    record.count("read", len(documents) + len(unreadable), len(documents))
    if not documents:
        raise PipelineError(
            f"no readable documents in {input_dir} ({len(unreadable)} file(s) skipped;"
            " supported: .txt .md .html .pdf .jsonl)"
        )

    # 2. chunk
    chunks, duplicates = chunk_all(documents, settings["chunk_size"])
    for chunk in duplicates:
        record.drop("chunk", chunk.id, f"chunk: exact duplicate of an earlier chunk ({chunk.source})",
                    kind="duplicate chunk")
    if use_subset:
        chunks = subset(chunks, settings["subset_size"], seed)
    record.count("chunk", len(documents), len(chunks))
    by_id = {chunk.id: chunk for chunk in chunks}
    samples = [chunk.as_sample() for chunk in chunks]

    checking = dict(temperature=check_temperature, max_attempts=max_attempts, seed=seed)

    # 3. judge
    if not skip_judge:
        samples = await _verdict(record, "judge", "judge_chunk", "suitable", samples,
                                 progress=(0.02, 0.2), rejected="judged unsuitable", **checking)

    # 4. generate question-answer pairs
    generate = PipelineStep(name="generate", prompt="generate_questions", model="large",
                            json_schema=_questions_schema(questions_per_chunk),
                            validator=_complete_pairs, temperature=temperature,
                            max_tokens=max_tokens, max_attempts=max_attempts, seed=seed)
    for sample in samples:
        sample["questions_per_chunk"] = questions_per_chunk
    results = await generate.run(samples, progress=(0.2, 0.5))
    pairs = []
    for sample, result in record.step("generate", samples, results):
        for item in result.value["questions"][:questions_per_chunk]:
            pairs.append(_pair(by_id[sample["id"]], item))
    pairs = list({p["id"]: p for p in pairs}.values())  # the same question twice is one pair

    # 5. answerable from the chunk alone?
    if not skip_question_check:
        vote = VoteStep(name="check_question", prompt="check_question", model="small",
                        json_schema=_verdict_schema("answerable"), votes=question_votes,
                        threshold=vote_threshold, decide=lambda v: v["answerable"],
                        max_tokens=256, **checking)
        results = await vote.run(pairs, progress=(0.5, 0.7))
        pairs = [p for p, _ in record.step("check_question", pairs, results)]

    # 6. answer accurate to the chunk?
    if not skip_answer_check:
        pairs = await _verdict(record, "check_answer", "check_answer", "accurate", pairs,
                               progress=(0.7, 0.85), rejected="answer judged inaccurate", **checking)

    # 7. conversations
    groups = _conversation_groups(pairs, pairs_per_conversation, settings["system_prompts"], seed)
    if rewrite_conversations:
        write = PipelineStep(name="conversation", prompt="write_conversation", model="large",
                             json_schema=CONVERSATION_SCHEMA, validator=_alternating,
                             temperature=temperature, max_tokens=max_tokens,
                             max_attempts=max_attempts, seed=seed)
        results = await write.run(groups, progress=(0.85, 1.0))
        if conversation_fallback:
            # The pairs are already checked: when the model cannot turn them into a
            # conversation, they become one as they are rather than being lost.
            conversations, reasons = [], Counter()
            for group, result in zip(groups, results):
                if result.ok:
                    conversations.append((group, result.value["messages"]))
                else:
                    record.note("conversation", "built from the pairs as they are")
                    reasons[result.reason] += 1
                    conversations.append((group, _messages_from_pairs(group["pair_list"])))
            record.count("conversation", len(groups), len(conversations))
            if reasons:  # kept, but not silently: the user should know the model could not
                log.warning(
                    "factual-qa: %d of %d conversations were built from the checked pairs as they"
                    " are, because the model's rewrite failed (most often: %s); set"
                    " conversation_fallback: false to drop them instead",
                    sum(reasons.values()), len(groups), reasons.most_common(1)[0][0])
        else:
            conversations = [(g, r.value["messages"])
                             for g, r in record.step("conversation", groups, results)]
    else:
        conversations = [(g, _messages_from_pairs(g["pair_list"])) for g in groups]
        record.count("conversation", len(groups), len(groups))

    # outputs
    output = Path(output_dir)
    qa_records = [{k: p[k] for k in ("id", "question", "answer", "source", "start", "end", "chunk_id")}
                  for p in pairs]
    sharegpt, messages = [], []
    for group, turns in conversations:
        with_system = [{"role": "system", "content": group["system_prompt"]}, *turns]
        messages.append({"messages": with_system})
        sharegpt.append({"conversations": [
            {"from": {"system": "system", "user": "human", "assistant": "gpt"}[m["role"]],
             "value": m["content"]} for m in with_system]})
    atomic_write_jsonl(output / QA_PAIRS, qa_records)
    atomic_write_jsonl(output / SHAREGPT, sharegpt)
    atomic_write_jsonl(output / MESSAGES, messages)
    record.write(output, outputs={QA_PAIRS: len(qa_records), SHAREGPT: len(sharegpt),
                                  MESSAGES: len(messages)}, primary=SHAREGPT)
    set_progress(task_id, 1.0, f"{len(qa_records)} QA pairs, {len(sharegpt)} conversations")
    if not sharegpt:
        raise PipelineError(
            f"no conversation survived the checks; see {output / 'failures.jsonl'}"
            f" or run: atk inspect {output}"
        )
    return {"qa_pairs": len(qa_records), "conversations": len(sharegpt)}


async def _verdict(record, name, prompt, field, samples, *, progress, rejected, **options):
    """A small-model yes/no check: the samples whose answer sets ``field`` true go on."""
    step = PipelineStep(name=name, prompt=prompt, model="small", json_schema=_verdict_schema(field),
                        max_tokens=256, **options)
    results = await step.run(samples, progress=progress)
    kept = record.step(name, samples, results, keep=lambda v: v[field],
                       why_not=lambda r: f"{rejected}: {r.value['reason']}")
    return [sample for sample, _ in kept]


def _pair(chunk, item) -> dict:
    question, answer = item["question"].strip(), item["answer"].strip()
    digest = hashlib.sha256(f"{chunk.id}\n{question}".encode("utf-8")).hexdigest()[:16]
    return {"id": f"q-{digest}", "question": question, "answer": answer, "source": chunk.source,
            "start": chunk.start, "end": chunk.end, "chunk_id": chunk.id, "chunk": chunk.text}


def _conversation_groups(pairs, size, system_prompts, seed) -> list[dict]:
    by_chunk: dict[str, list] = {}
    for pair in pairs:
        by_chunk.setdefault(pair["chunk_id"], []).append(pair)
    groups = []
    for chunk_pairs in by_chunk.values():
        for start in range(0, len(chunk_pairs), size):
            group = chunk_pairs[start:start + size]
            digest = hashlib.sha256("\n".join(p["id"] for p in group).encode()).hexdigest()[:16]
            conversation_id = f"conv-{digest}"
            groups.append({
                "id": conversation_id,
                "pair_list": group,
                "pairs": "\n".join(f"{i}. Q: {p['question']}\n   A: {p['answer']}"
                                   for i, p in enumerate(group, 1)),
                "turns": 2 * len(group),
                "system_prompt": system_prompts[derive_seed(seed, conversation_id) % len(system_prompts)],
            })
    return groups


def _messages_from_pairs(pairs) -> list[dict]:
    turns = []
    for pair in pairs:
        turns.append({"role": "user", "content": pair["question"]})
        turns.append({"role": "assistant", "content": pair["answer"]})
    return turns


def check_config(*, input_dir, models, output_dir=None, **values) -> None:
    """What atk checks before a run writes anything (``Pipeline(check=...)``): the
    config's values, with this pipeline's defaults filled in, and its model roles."""
    _checked_settings(values)
    folder = _input_folder(input_dir)
    try:
        names = [entry.name for entry in os.scandir(folder)]
    except OSError as exc:
        raise ConfigError(f"cannot read input_dir {str(input_dir)!r}: {exc.strerror}") from None
    if not names:
        raise ConfigError(f"input_dir {str(input_dir)!r} is empty; put the documents to read"
                          f" there ({' '.join(SUPPORTED)})")
    if output_dir is not None:
        out, inside = Path(output_dir).expanduser().resolve(), folder.resolve()
        if out == inside or inside in out.parents:
            raise ConfigError(f"output_dir {str(output_dir)!r} is inside input_dir"
                              f" {str(input_dir)!r}: the outputs would be read as documents"
                              " next time; put them elsewhere")
    uses = {"large": ["generate"] + (["conversation"] if values["rewrite_conversations"] else [])}
    small = [name for name, skip in (("judge", "skip_judge"), ("check_question", "skip_question_check"),
                                     ("check_answer", "skip_answer_check")) if not values[skip]]
    if small:
        uses["small"] = small
    for role, steps in uses.items():
        if role not in models:
            defined = ", ".join(sorted(models)) or "none"
            raise ConfigError(f"models: has no {role!r} role, which the {', '.join(steps)} step(s)"
                              f" use (defined: {defined})")


def _input_folder(input_dir) -> Path:
    if not isinstance(input_dir, (str, Path)) or not str(input_dir).strip():
        raise ConfigError(f"input_dir must be a folder path, not {input_dir!r}")
    folder = Path(input_dir).expanduser()
    if not folder.exists():
        raise ConfigError(f"input_dir {str(input_dir)!r} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"input_dir {str(input_dir)!r} is not a folder")
    return folder


def _checked_settings(values: dict) -> dict:
    """Check the config's values before anything runs; a bad one is a config error naming it."""
    def whole(name, low):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be a whole number of at least {low}, not {value!r}")
        return value

    for name, low in (("chunk_size", 200), ("subset_size", 1), ("questions_per_chunk", 1),
                      ("question_votes", 1), ("pairs_per_conversation", 1), ("max_tokens", 16),
                      ("max_attempts", 1)):
        whole(name, low)
    seed = values["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be a whole number, not {seed!r}")
    for name in ("temperature", "check_temperature"):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
            raise ConfigError(f"{name} must be a number from 0 to 2, not {value!r}")
    threshold = values["vote_threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ConfigError(f"vote_threshold must be a fraction above 0 and at most 1, not {threshold!r}")
    prompts = values["system_prompts"]
    if isinstance(prompts, str):
        prompts = [prompts]
    if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ConfigError("system_prompts must be a non-empty list of texts")
    for name in ("skip_judge", "skip_question_check", "skip_answer_check", "rewrite_conversations",
                 "conversation_fallback",
                 "use_subset"):
        if not isinstance(values[name], bool):
            raise ConfigError(f"{name} must be true or false, not {values[name]!r}")
    return {**values, "system_prompts": list(prompts)}
