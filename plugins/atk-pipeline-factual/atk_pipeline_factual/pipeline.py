"""factual-qa: documents in, checked question-answer pairs and conversations out.

The recipe, in order:

1. read the input folder (text, Markdown, HTML, PDF, JSON lines);
2. chunk the documents (about ``chunk_size`` characters; duplicates dropped);
3. content: a chunk must hold sentences with enough content words (no model);
4. judge: does the chunk hold facts worth questions?        (small model, a vote)
5. generate: one question-answer pair per focus sentence     (large model)
   -- the model writes both (``answers: written``), or only the question, the
   sentence itself being the answer (``answers: sentence``, for a small model);
   gated: a real question about its sentence, an answer grounded in the chunk
   that answers it, no placeholder, nothing copied from the prompt; a pair
   that fails is asked again with the problem shown;
6. deduplicate: near-copies of a question kept before are dropped (no model);
7. check_question: answerable from the chunk alone?          (small model, a vote)
8. check_answer: accurate to the chunk?                      (small model)
9. conversation: each chunk's pairs as one dialogue          (large model)
   -- gated: roles alternate, no turn repeats, every answer is carried.

The model's own checks (4, 7, 8) are only as good as the model:
``verdicts: note`` keeps what a weak model rejects (and counts it),
``skip`` does not ask. The deterministic gates hold either way. Every dropped
sample is in ``failures.jsonl`` with its step, kind and reason; the outputs
are written atomically and are the same bytes on every run of the same
inputs and config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from pathlib import Path
from typing import Annotated, Literal

from atk_core import (
    AtLeast, Between, ConfigError, Conversation, Documents, ExamSettings, Fact, JsonLines, NonEmpty,
    Output, PairGates, PipelineError, PipelineStep, Problem, RunRecord, Sampling, VoteStep,
    check_input_dir, choose_facts, conversation_problem, conversation_row, derive_seed,
    duplicate_questions, first_problem, focus_samples, make_exam, pair_of,
    placeholder_problem, prose_problem, question_id, question_problem, question_step,
    refers_to_source, require_roles, set_progress, ShardedRun, with_fields, without, yes_no_schema,
)

log = logging.getLogger("atk")

DEFAULT_SYSTEM_PROMPTS = (
    "You are a helpful assistant who answers questions accurately and clearly.",
    "You are a knowledgeable expert. Answer precisely, in full sentences.",
)

# Config fields that have a new name: a config with the old one is refused in one line.
RENAMED = {"model_checks": "verdicts"}

OUTPUTS = (
    Output("conversations.sharegpt.jsonl", "sft", "sharegpt", primary=True,
           description="each chunk's pairs as one conversation"),
    Output("conversations.messages.jsonl", "sft", "messages", description="the same, as OpenAI messages"),
    Output("qa_pairs.jsonl", "records", description="every kept pair, with its source and offsets"),
    Output("exam.jsonl", "exam", description="with exam.size: questions about facts the pairs teach (and,"
           " with unseen_share, facts held out of them), never trained on"),
)

CONVERSATION_SCHEMA = {
    "type": "object",
    "properties": {"messages": {"type": "array", "minItems": 2, "items": {
        "type": "object",
        "properties": {"role": {"type": "string", "enum": ["user", "assistant"]},
                       "content": {"type": "string", "minLength": 1}},
        "required": ["role", "content"]}}},
    "required": ["messages"],
}

Count = Annotated[int, AtLeast(1)]


@with_fields(documents=Documents(), sampling=Sampling(max_tokens=1024))
async def factual_qa(
    *,
    input_dir: str,
    output_dir: str,
    documents: Documents,
    seed: int = 0,
    questions_per_chunk: Count = 3,
    answers: Literal["written", "sentence"] = "written",
    verdicts: Literal["enforce", "note", "skip"] | dict = "enforce",
    judge_votes: Count = 3,
    question_votes: Count = 3,
    vote_threshold: Annotated[float, Between(0, 1, minimum_open=True)] = 0.5,
    pairs_per_conversation: Count = 3,
    system_prompts: Annotated[list[str], NonEmpty] = DEFAULT_SYSTEM_PROMPTS,
    rewrite_conversations: bool = True,
    conversation_fallback: bool = True,
    gates: PairGates = PairGates(),
    gate_copies: bool = True,
    conversation_coverage: Annotated[float, Between(0, 1)] = 0.6,
    exam: ExamSettings = ExamSettings(size=0),
    sampling: Sampling,
    task_id=None,
    **kwargs,
):
    """Turn a folder of documents into checked QA pairs and multi-turn conversations.

    The annotations are what a config may set; atk checks them before the run
    starts, and ``vet_config`` below looks at what they cannot say.
    """
    record = RunRecord()
    policies = verdict_policies(verdicts)
    output = Path(output_dir)
    steps = _Steps(gates, answers, gate_copies, sampling, seed, judge_votes, question_votes,
                   vote_threshold, policies, rewrite_conversations, conversation_coverage)
    files = [o.file for o in OUTPUTS[:3]]
    facts = []
    # A shard at a time: what is held at once is a shard's worth (with the run-wide duplicate
    # finders). The exam chooses its facts among all chunks, so with one every shard is read
    # and judged first, and the facts chosen in passes over what the survey kept.
    async with ShardedRun(input_dir, output, record, documents, files, seed=seed) as run:
        near = run.near_copies(gates)
        if exam.size:
            def chosen():
                return {"facts": [dataclasses.asdict(fact)
                                  for fact in choose_facts(run.surveyed_chunks(), exam, seed)]}

            await run.survey(lambda shard: None, judge=steps.judge, policy=policies["judge"],
                             task_id=task_id, state=chosen)
            facts = [Fact(**fact) for fact in run.state["facts"]]
        # A held-out fact's sentence is cut from its chunk before anything is written from
        # it, so no pair or conversation can hold it.
        held: dict[str, list[str]] = {}
        for fact in facts:
            if not fact.seen:
                held.setdefault(fact.chunk_id, []).append(fact.sentence)
        fallbacks = _Fallbacks(run.state.get("fallbacks"))
        async for shard in run.shards(judge=steps.judge, policy=policies["judge"], task_id=task_id):
            samples, by_id = shard.samples, shard.by_id
            cut = {i: dataclasses.replace(by_id[i], text=without(by_id[i].text, s))
                   for i, s in held.items() if i in by_id}
            if cut:
                by_id.update(cut)
                samples = [{**s, "chunk": by_id[s["id"]].text} if s["id"] in cut else s for s in samples]
            pairs, conversations = await _pairs_and_conversations(
                steps, record, samples, by_id, near, questions_per_chunk, pairs_per_conversation,
                list(system_prompts), conversation_fallback, fallbacks, seed, shard)
            chats = [Conversation(group["id"], [{"role": "system", "content": group["system_prompt"]}, *turns])
                     for group, turns in conversations]
            for output_ in OUTPUTS[:2]:
                run.extend(output_.file, (conversation_row(c, output_.format) for c in chats))
            run.extend(OUTPUTS[2].file, (
                {k: p[k] for k in ("id", "question", "answer", "source", "start", "end", "chunk_id")}
                for p in pairs))
            run.finished(shard, {**run.state, "fallbacks": fallbacks.state()})
        if fallbacks.reasons:  # kept, but not silently: the user should know the model could not
            log.warning(
                "factual-qa: %d of %d conversations were built from the checked pairs as they"
                " are, because the model's rewrite failed (most often: %s); set"
                " conversation_fallback: false to drop them instead",
                sum(fallbacks.reasons.values()), fallbacks.total, fallbacks.reasons.most_common(1)[0][0])
    qa_count, chat_count = run.counts[OUTPUTS[2].file], run.counts[OUTPUTS[0].file]
    exam_report = None
    if facts:
        # What is trained on: the conversations (qa_pairs.jsonl is a record of the pairs, and a
        # pair a conversation left out teaches nothing).
        training = {OUTPUTS[1].file: JsonLines(output / OUTPUTS[1].file)}
        exam_report = await make_exam(record, output, OUTPUTS[3].file, facts, training, gates=gates,
                                      answers=answers, options=sampling.writing(seed), progress=(0.97, 0.99),
                                      prompts=("ask_question", "generate_question"))
    run.write_record(extra={"exam": exam_report} if exam_report else None)
    set_progress(task_id, 1.0, f"{qa_count} QA pairs, {chat_count} conversations")
    if not chat_count:
        raise PipelineError(
            f"no conversation survived the checks; see {output / 'failures.jsonl'}"
            f" or run: atk inspect {output}"
        )
    return {"qa_pairs": qa_count, "conversations": chat_count}


class _Steps:
    """The steps and run-wide gates of one run, made once and used for every shard."""

    def __init__(self, gates, answers, gate_copies, sampling, seed, judge_votes, question_votes,
                 vote_threshold, policies, rewrite_conversations, coverage):
        checking = sampling.checking(seed)
        self.policies, self.answers, self.rewrite = policies, answers, rewrite_conversations
        self.judge = VoteStep.yes_no("judge", "judge_chunk", "suitable", model="small", votes=judge_votes,
                                     threshold=vote_threshold, **checking)
        self.generate = question_step(gates=gates, answers=answers, gate_copies=gate_copies,
                                      **sampling.writing(seed))
        self.gates = gates
        self.check_question = VoteStep.yes_no("check_question", "check_question", "answerable", model="small",
                                              votes=question_votes, threshold=vote_threshold, **checking)
        self.check_answer = PipelineStep(name="check_answer", prompt="check_answer", model="small",
                                         json_schema=yes_no_schema("accurate"), max_tokens=256, **checking)
        self.conversation = PipelineStep(name="conversation", prompt="write_conversation", model="large",
                                         json_schema=CONVERSATION_SCHEMA,
                                         validator=_conversation_gate(gates, coverage),
                                         gate_copies=gate_copies, **sampling.writing(seed))


async def _pairs_and_conversations(steps, record, samples, by_id, near, questions_per_chunk,
                                   pairs_per_conversation, system_prompts, fallback, fallbacks, seed, shard):
    """Steps 5 to 9 for one shard's chunk samples: its kept pairs and conversations."""
    policies = steps.policies
    # 5. generate: one pair per focus sentence (large model), gated
    focused = focus_samples(samples, questions_per_chunk, seed, record)
    results = await steps.generate.run(focused, progress=shard.progress(0.2, 0.5))
    pairs = [_pair(by_id[sample["chunk_id"]], pair_of(result.value, sample, steps.answers))
             for sample, result in record.step("generate", focused, results)]

    # 6. deduplicate (no model): exact copies within a chunk (a question's id holds its
    # chunk's), near copies of a question kept before anywhere in the run
    pairs = record.gate("deduplicate", pairs, duplicate_questions(steps.gates, near=near))

    # 7. answerable from the chunk alone? (small model, a vote)
    if policies["check_question"] != "skip":
        results = await steps.check_question.run(pairs, progress=shard.progress(0.5, 0.7))
        pairs = record.apply_verdicts("check_question", pairs, results, policy=policies["check_question"],
                                      rejected="question judged unanswerable")

    # 8. answer accurate to the chunk? (small model)
    if policies["check_answer"] != "skip":
        results = await steps.check_answer.run(pairs, progress=shard.progress(0.7, 0.85))
        pairs = record.apply_verdicts("check_answer", pairs, results, policy=policies["check_answer"],
                                      rejected="answer judged inaccurate", field="accurate")

    # 9. conversations (large model), gated
    groups = _conversation_groups(pairs, pairs_per_conversation, system_prompts, seed)
    if steps.rewrite:
        results = await steps.conversation.run(groups, progress=shard.progress(0.85, 1.0))
        conversations = _with_fallback(record, groups, results, fallback, fallbacks)
    else:
        conversations = [(g, _messages_from_pairs(g["pair_list"])) for g in groups]
        record.count("conversation", len(groups), len(groups))
    return pairs, conversations


# -- the gates ------------------------------------------------------------------------------------


def _conversation_gate(gates: PairGates, coverage: float):
    """The validator of a written conversation: its shape, its turns, and the pairs it carries
    (coverage 0: not checked)."""
    def check(value, sample):
        turns = value["messages"]
        answers = [p["answer"] for p in sample["pair_list"]] if coverage else []
        checks = [lambda: conversation_problem(turns, answers, coverage=coverage)]
        if gates.question_form:  # the user asks: a turn of theirs is a question
            checks += [lambda text=turn["content"]: _user_question_problem(text)
                       for turn in turns if turn["role"] == "user"]
        for turn in turns:
            if gates.placeholders:
                checks.append(lambda text=turn["content"]: placeholder_problem(text))
            if gates.source_reference:
                checks.append(lambda text=turn["content"]: refers_to_source(text))
        chunk = sample["pair_list"][0]["chunk"]
        checks += [lambda text=turn["content"]: prose_problem(text, chunk, known=sample["pairs"])
                   for turn in turns if turn["role"] == "assistant"]
        return first_problem(*checks)

    return check


def _user_question_problem(text):
    problem = question_problem(text, min_words=2)
    if problem is not None and problem.kind in ("not a question", "question too short"):
        return Problem("user turn not a question",
                       f"the user's turn {text!r} is not a question; the user asks, the"
                       " assistant answers")
    return None


# -- samples ----------------------------------------------------------------------------------------


def _pair(chunk, item) -> dict:
    question, answer = item["question"], item["answer"]
    return {"id": question_id("q", chunk.id, question), "question": question, "answer": answer, "source": chunk.source,
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


class _Fallbacks:
    """How many conversations the run had, and why each one built from its pairs was."""

    def __init__(self, state: dict | None = None):
        self.total = state["total"] if state else 0
        self.reasons = Counter(state["reasons"] if state else {})

    def state(self) -> dict:
        return {"total": self.total, "reasons": dict(self.reasons)}


def _with_fallback(record, groups, results, fallback, fallbacks: _Fallbacks):
    """The written conversations; where the model could not write one and ``fallback`` is on,
    the checked pairs as they are (counted in ``fallbacks``, which the run says in one
    warning at the end)."""
    if not fallback:
        return [(g, r.value["messages"]) for g, r in record.step("conversation", groups, results)]
    conversations = []
    fallbacks.total += len(groups)
    for group, result in zip(groups, results):
        if result.ok:
            conversations.append((group, result.value["messages"]))
        else:
            record.note("conversation", "built from the pairs as they are")
            fallbacks.reasons[result.reason] += 1
            conversations.append((group, _messages_from_pairs(group["pair_list"])))
    record.count("conversation", len(groups), len(conversations))
    return conversations


def _messages_from_pairs(pairs) -> list[dict]:
    turns = []
    for pair in pairs:
        turns.append({"role": "user", "content": pair["question"]})
        turns.append({"role": "assistant", "content": pair["answer"]})
    return turns


def vet_config(*, input_dir, models, output_dir=None, **values) -> None:
    """What atk checks before a run writes anything (``Pipeline(vet=...)``), beyond what
    the annotations say: the input folder, and the model roles the chosen steps use."""
    check_input_dir(input_dir, output_dir)
    for old in ("skip_judge", "skip_question_check", "skip_answer_check"):
        if old in values:
            check = old.removeprefix("skip_")
            check = {"question_check": "check_question", "answer_check": "check_answer"}.get(check, check)
            raise ConfigError(f"{old} is now part of verdicts: verdicts: {{{check}: skip}}"
                              " turns that check off")
    policies = verdict_policies(values["verdicts"])
    require_roles(models, {
        "large": ["generate"] + (["conversation"] if values["rewrite_conversations"] else []),
        "small": [name for name, policy in policies.items() if policy != "skip"]})


VERDICT_STEPS = ("judge", "check_question", "check_answer")
POLICIES = ("enforce", "note", "skip")


def verdict_policies(verdicts) -> dict[str, str]:
    """The policy for each step whose verdicts decide what is kept: ``verdicts`` is one for
    all (enforce, note, skip), or a mapping of some steps to theirs (the others enforce).
    ``ConfigError`` naming a step or policy that is not one."""
    if isinstance(verdicts, str):
        return {check: verdicts for check in VERDICT_STEPS}
    for check, policy in verdicts.items():
        if check not in VERDICT_STEPS:
            raise ConfigError(f"verdicts: {check!r} is not a step that gives verdicts (those are:"
                              f" {', '.join(VERDICT_STEPS)})")
        if policy not in POLICIES:
            raise ConfigError(f"verdicts.{check} must be one of {', '.join(POLICIES)}, not {policy!r}")
    return {check: verdicts.get(check, "enforce") for check in VERDICT_STEPS}
