"""rag-data: documents in, conversations that teach a model to use retrieved context out.

A model deployed behind retrieval sees a question and a few retrieved
passages, some of them beside the point, and sometimes none that hold the
answer. This pipeline writes that situation as training data. The recipe:

1. read, chunk, content gate and the small model's filter (shared start);
2. generate: a question-answer pair about one sentence of each chunk
   (large model; the question step factual-qa uses, with its gates);
3. deduplicate: near-copies of a question kept before are dropped;
4. retrieve: the question is searched (SQLite FTS5, BM25) over the run's kept
   chunks; the context is k chunks (k picked by the seed, 1..``max_chunks``):
   the source chunk and the best other hits, or, in ``failure_share`` of the
   samples, the best hits without the source ("failure" samples);
5. refuse: a failure sample's answer says the documents do not hold it
   (large model, gated: it says so, and does not give the answer away; or,
   with ``refusals: fixed``, the text of ``prompts/refusal.txt``).

Outputs: the conversation (a system prompt holding the numbered documents,
the user's question, the answer) as ShareGPT, as OpenAI messages and as
Axolotl ``input_output`` segments where only the answer is trained, and
``retrieval.jsonl``, which chunks each sample was given and their scores.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Annotated, Literal

from atk_core import (
    STOPWORDS, AtLeast, Between, Conversation, Documents, Output, PairGates, PipelineError,
    PipelineStep, Problem, RunRecord, Sampling, StepEnvironment, chatter_problem, check_input_dir,
    chunk_filter, derive_seed, duplicate_questions, first_problem, focus_samples,
    grounding_problem, pair_of, placeholder_problem, question_id, question_step, repetition_problem,
    require_roles, set_progress, ShardedRun, unknown_word_problem, with_fields, words, conversation_row,
)

from .retrieval import ChunkIndex

# Config fields that have a new name: a config with the old one is refused in one line.
RENAMED = {"model_checks": "verdicts"}

OUTPUTS = (
    Output("rag.sharegpt.jsonl", "sft", "sharegpt", primary=True,
           description="a question, the retrieved documents, the answer or the refusal"),
    Output("rag.messages.jsonl", "sft", "messages", description="the same, as OpenAI messages"),
    Output("rag.segments.jsonl", "sft", "segments", description="the same, only the answer trained"),
    Output("retrieval.jsonl", "records", description="what each question was given, and whether it"
                                                     " holds the answer"),
)

REFUSAL_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "minLength": 1}},
                  "required": ["answer"]}
# How a reply says the documents do not hold the answer.
_SAYS_NOT = re.compile(
    r"\b(?:do(?:es)? not|don['’]t|doesn['’]t|cannot|can['’]t|no (?:information|mention|answer)|"
    r"not (?:say|mention|contain|include|state|cover))\b", re.IGNORECASE)

Count = Annotated[int, AtLeast(1)]


@with_fields(documents=Documents(), sampling=Sampling())
async def rag_data(
    *,
    input_dir: str,
    output_dir: str,
    documents: Documents,
    seed: int = 0,
    questions_per_chunk: Count = 1,
    answers: Literal["written", "sentence"] = "written",
    max_chunks: Count = 3,
    failure_share: Annotated[float, Between(0, 1)] = 0.2,
    refusals: Literal["written", "fixed"] = "written",
    verdicts: Literal["enforce", "note", "skip"] = "enforce",
    filter_votes: Count = 3,
    vote_threshold: Annotated[float, Between(0, 1, minimum_open=True)] = 0.5,
    gates: PairGates = PairGates(),
    gate_copies: bool = True,
    sampling: Sampling,
    task_id=None,
    **kwargs,
):
    """Turn a folder of documents into conversations that use, or refuse from, retrieved
    context. The annotations are what a config may set; ``vet_config`` the rest."""
    record = RunRecord()
    judge = chunk_filter(votes=filter_votes, threshold=vote_threshold, **sampling.checking(seed))
    generate = question_step(gates=gates, answers=answers, gate_copies=gate_copies,
                             **sampling.writing(seed))
    refuse = PipelineStep(name="refuse", prompt="write_refusal", model="large",
                          json_schema=REFUSAL_SCHEMA, validator=_refusal_gate,
                          gate_copies=gate_copies, **sampling.writing(seed, max_tokens=256))
    prompts = StepEnvironment.from_run().prompts
    system = prompts.load("system")
    output = Path(output_dir)
    files = [o.file for o in OUTPUTS[:4]]

    # A shard at a time; retrieval searches the whole corpus, so every shard is read and
    # judged first, into the index (a file beside the partial outputs).
    async with ShardedRun(input_dir, output, record, documents, files, seed=seed) as run:
        index = ChunkIndex(path=run.folder / "index.sqlite")
        try:
            # 1. read, chunk, content, filter
            await run.survey(lambda shard: index.add(shard.samples, shard.by_id), judge=judge,
                             policy=verdicts, rejected="judged without content", judged=(0.02, 0.15),
                             task_id=task_id)
            near = run.near_copies(gates)
            kinds = run.state.get("failure_samples", 0)
            async for shard in run.shards():
                samples = shard.samples

                # 2. generate, 3. deduplicate
                focused = focus_samples(samples, questions_per_chunk, seed, record)
                results = await generate.run(focused, progress=shard.progress(0.15, 0.6))
                pairs = [{**pair_of(result.value, sample, answers),
                          "id": question_id("rag", sample["id"], result.value["question"]),
                          "chunk_id": sample["chunk_id"], "focus": sample["focus"]}
                         for sample, result in record.step("generate", focused, results)]
                pairs = record.gate("deduplicate", pairs, duplicate_questions(gates, near=near))

                # 4. retrieve: the context each question is given, from the whole corpus
                for pair in pairs:
                    pair.update(_context(pair, index, max_chunks, failure_share, seed, record,
                                         gates.grounding_threshold))
                record.count("retrieve", len(pairs), len(pairs))

                # 5. refuse: the failure samples' answers
                failures = [p for p in pairs if p["failure"]]
                if failures and refusals == "written":
                    results = await refuse.run(failures, progress=shard.progress(0.6, 0.9))
                    refused = {s["id"]: r.value["answer"].strip()
                               for s, r in record.step("refuse", failures, results)}
                    pairs = [p for p in pairs if not p["failure"] or p["id"] in refused]
                    for pair in pairs:
                        if pair["failure"]:
                            pair["answer"] = refused[pair["id"]]
                elif failures:
                    text = prompts.load("refusal").render({}).strip()
                    for pair in failures:
                        pair["answer"] = text

                # outputs, appended shard after shard
                chats, retrieval = _rows(pairs, index, system)
                for output_ in OUTPUTS[:3]:
                    run.extend(output_.file, (conversation_row(c, output_.format) for c in chats))
                run.extend(OUTPUTS[3].file, retrieval)
                kinds += sum(p["failure"] for p in pairs)
                run.finished(shard, {"failure_samples": kinds})
        finally:
            index.close()
    run.write_record()
    conversations = run.counts[OUTPUTS[0].file]
    set_progress(task_id, 1.0, f"{conversations} conversations ({kinds} with the answer not in the context)")
    if not conversations:
        raise PipelineError(f"no conversation survived the checks; see {output / 'failures.jsonl'}"
                            f" or run: atk inspect {output}")
    return {"conversations": conversations, "failure_samples": kinds}


def _rows(pairs, index: ChunkIndex, system):
    """Each pair's conversation (the retrieved chunks in its system prompt) and its line of
    retrieval.jsonl; a chunk found anywhere in the corpus, through the index."""
    chats, retrieval = [], []
    for pair in pairs:
        places = {c["chunk_id"]: index.place(c["chunk_id"]) for c in pair["context"]}
        context = "\n\n".join(f"Document {n} (from {places[c['chunk_id']][0]}):\n{index.text(c['chunk_id'])}"
                              for n, c in enumerate(pair["context"], 1))
        chats.append(Conversation(pair["id"], [
            {"role": "system", "content": system.render({"context": context}).strip()},
            {"role": "user", "content": pair["question"]},
            {"role": "assistant", "content": pair["answer"]}]))
        retrieval.append({"id": pair["id"], "question": pair["question"], "failure": pair["failure"],
                          "source_chunk": pair["chunk_id"], "source": index.place(pair["chunk_id"])[0],
                          "context": [{**c, "source": places[c["chunk_id"]][0],
                                       "start": places[c["chunk_id"]][1],
                                       "end": places[c["chunk_id"]][2]} for c in pair["context"]]})
    return chats, retrieval


def _context(pair, index: ChunkIndex, max_chunks: int, failure_share: float,
             seed: int, record: RunRecord, threshold: float) -> dict:
    """The chunks a sample is given: ``k`` of them (1..max_chunks, by the seed); the source
    and the best other hits for its question, or (a failure sample, by the seed) only other
    hits, none of which holds the answer (another document may say it too: a hit in which
    the answer is grounded is left out). With no such hit, a would-be failure sample keeps
    its source."""
    k = 1 + derive_seed(seed, pair["id"], "k") % max_chunks
    failure = derive_seed(seed, pair["id"], "failure") % 10_000 < round(failure_share * 10_000)
    others = index.search(pair["question"], k + 5 if failure else k, exclude=[pair["chunk_id"]])
    if failure:
        lacking = [(chunk_id, score) for chunk_id, score in others
                   if grounding_problem(pair["answer"], index.text(chunk_id), threshold=threshold)]
        for _ in range(len(others) - len(lacking)):
            record.note("retrieve", "a hit that holds the answer left out of a failure sample")
        others = lacking
    if failure and not others:
        record.note("retrieve", "no other chunk to retrieve: kept its source")
        failure = False
    given = [{"chunk_id": cid, "score": score, "is_source": False}
             for cid, score in others[:k if failure else k - 1]]
    if not failure:
        given.append({"chunk_id": pair["chunk_id"], "score": None, "is_source": True})
    random.Random(derive_seed(seed, pair["id"], "order")).shuffle(given)
    return {"failure": failure, "context": given}


def _refusal_gate(value, sample) -> Problem | None:
    """A failure sample's answer: it says the documents do not hold the answer, and does not
    give it anyway (no number or name of the sentence it is about that the question lacks)."""
    text = value["answer"].strip()
    if not _SAYS_NOT.search(text):
        return Problem("does not refuse", "the documents do not hold the answer: say so plainly,"
                                          " without guessing")
    asked = set(words(sample["question"]))
    focus = sample["focus"]
    told = {m.group(0) for m in _TOLD.finditer(focus)
            if m.group(0).lower() not in asked and m.group(0).lower() not in STOPWORDS
            and not (m.group(0)[0].isupper() and _starts_sentence(focus, m.start()))}
    leaked = sorted(w for w in told if re.search(rf"\b{re.escape(w)}\b", text))
    if leaked:
        return Problem("answers from memory", f"the reply gives the answer away ({', '.join(leaked)});"
                                              " the documents do not hold it, so do not answer")
    return first_problem(lambda: chatter_problem(text), lambda: placeholder_problem(text),
                         lambda: repetition_problem(text),
                         lambda: unknown_word_problem(text, sample["focus"], sample["question"]))


# What a refusal must not say: the focus sentence's numbers and names.
_TOLD = re.compile(r"\b(?:\d[\d,.]*\d|\d|[A-Z][a-z]{2,})\b")


def _starts_sentence(text: str, at: int) -> bool:
    """The word at ``at`` begins the text or a sentence ("However, ...": not a name)."""
    before = text[:at].rstrip(" \t\n\"'(")
    return not before or before[-1] in ".!?:"


def vet_config(*, input_dir, models, output_dir=None, **values) -> None:
    """What atk checks before a run writes anything, beyond what the annotations say."""
    check_input_dir(input_dir, output_dir)
    written = values["refusals"] == "written" and values["failure_share"] > 0
    require_roles(models, {"large": ["generate"] + (["refuse"] if written else []),
                           "small": ["filter"] if values["verdicts"] != "skip" else []})
