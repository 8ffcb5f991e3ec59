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
from collections import Counter
from pathlib import Path
from typing import Annotated

from atk_core import (
    AtLeast, Between, ConfigError, NonEmpty, PipelineError, PipelineStep, RunRecord, VoteStep,
    atomic_write_jsonl, check_input_dir, chunk_folder, derive_seed, set_progress,
)

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


Temperature = Annotated[float, Between(0, 2)]
Count = Annotated[int, AtLeast(1)]


async def factual_qa(
    *,
    input_dir: str,
    output_dir: str,
    chunk_size: Annotated[int, AtLeast(200)] = 3000,
    use_subset: bool = False,
    subset_size: Count = 100,
    seed: int = 0,
    questions_per_chunk: Count = 3,
    question_votes: Count = 3,
    vote_threshold: Annotated[float, Between(0, 1, minimum_open=True)] = 0.5,
    pairs_per_conversation: Count = 3,
    system_prompts: Annotated[list[str], NonEmpty] = DEFAULT_SYSTEM_PROMPTS,
    skip_judge: bool = False,
    skip_question_check: bool = False,
    skip_answer_check: bool = False,
    rewrite_conversations: bool = True,
    conversation_fallback: bool = True,
    temperature: Temperature = 0.7,
    check_temperature: Temperature = 0.6,
    max_tokens: Annotated[int, AtLeast(16)] = 1024,
    max_attempts: Count = 3,
    task_id=None,
    **kwargs,
):
    """Turn a folder of documents into checked QA pairs and multi-turn conversations.

    The annotations are what a config may set; atk checks them before the run
    starts, and ``check_config`` below looks at what they cannot say.
    """
    record = RunRecord()

    # 1. read, 2. chunk
    set_progress(task_id, 0.0, "reading documents")
    chunks = chunk_folder(input_dir, record, chunk_size=chunk_size, seed=seed,
                          subset_size=subset_size if use_subset else None)
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
    groups = _conversation_groups(pairs, pairs_per_conversation, list(system_prompts), seed)
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
    """What atk checks before a run writes anything (``Pipeline(check=...)``), beyond what
    the annotations say: the input folder, and the model roles the chosen steps use."""
    check_input_dir(input_dir, output_dir)
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
