"""correction: documents in, conversations that teach a model to correct a flawed answer out.

A model that is only ever shown right answers never learns what to do after
a wrong one. Each conversation here is a question, a subtly wrong answer, the
user doubting it, and the corrected answer grounded in the document; trained
so that the wrong answer is context and only the correction is learned. The
recipe:

1. read, chunk, content gate and the small model's filter (shared start);
2. generate, per focus sentence of a chunk (large model):
   - ``flaws: written``: the question, the wrong answer, the follow-up and
     (``answers: written``) the correction, in one answer; with ``answers:
     sentence`` the sentence itself is the correction;
   - ``flaws: altered``: only the question (factual-qa's question step); the
     wrong answer is the right one with one detail changed by code
     (``flaws.py``) and the follow-up is one of ``prompts/follow_ups.txt``;
   every sample is gated: the question and correction as a pair (the shared
   ``PairGates``), the wrong answer on topic but not grounded in the chunk
   (it must say something the chunk does not) and not the correction, the
   follow-up real text;
3. deduplicate: near-copies of a question kept before are dropped;
4. check (small model, a vote): is the first answer wrong and the correction
   right? Enforced, noted or skipped as ``verdicts`` says.

The final assistant message is an acknowledgement from
``prompts/acknowledgements.txt`` (picked by the seed) and the correction.
Outputs (declared in ``OUTPUTS``): OpenAI messages with the wrong turn
``"weight": 0`` and the correction ``"weight": 1``; Axolotl ``input_output``
segments where only the correction is trained; preference pairs (the
question, the correction chosen, the wrong answer rejected) for DPO; and
``corrections.jsonl``, each sample with its source and offsets.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated, Literal

from atk_core import (
    AtLeast, Between, Documents, PairGates, PipelineError, PipelineStep, Problem, RunRecord,
    Conversation, Output, Sampling, StepEnvironment, VoteStep, chatter_problem, check_input_dir,
    chunk_filter, content_words, derive_seed, duplicate_questions, first_problem, focus_samples,
    grounding_problem, pair_of, placeholder_problem, preference_row, prose_problem, question_id,
    question_step, refers_to_source, repetition_problem, require_roles, set_progress, ShardedRun, conversation_row,
    unknown_word_problem, with_fields,
)

from .flaws import alter, names_in

# Config fields that have a new name: a config with the old one is refused in one line.
RENAMED = {"model_checks": "verdicts"}

OUTPUTS = (
    Output("correction.messages.jsonl", "sft", "messages", primary=True,
           description="question, wrong answer (weight 0), doubt, correction (weight 1)"),
    Output("correction.segments.jsonl", "sft", "segments", description="the same, only the correction trained"),
    Output("correction.preference.jsonl", "preference",
           description="the question, the correction chosen, the wrong answer rejected"),
    Output("corrections.jsonl", "records", description="every sample, with its source and offsets"),
)

_TEXT = {"type": "string", "minLength": 1}
WRITTEN_SCHEMA = {"type": "object", "required": ["question", "flawed_answer", "follow_up", "correction"],
                  "properties": {k: _TEXT for k in ("question", "flawed_answer", "follow_up", "correction")}}
FLAWED_SCHEMA = {"type": "object", "required": ["question", "flawed_answer", "follow_up"],
                 "properties": {k: _TEXT for k in ("question", "flawed_answer", "follow_up")}}
# A sample is four short texts: a model that writes more lost its way.
SAMPLE_MAX_TOKENS = 384

Count = Annotated[int, AtLeast(1)]


@with_fields(documents=Documents(), sampling=Sampling())
async def correction(
    *,
    input_dir: str,
    output_dir: str,
    documents: Documents,
    seed: int = 0,
    questions_per_chunk: Count = 1,
    flaws: Literal["written", "altered"] = "written",
    answers: Literal["written", "sentence"] = "written",
    verdicts: Literal["enforce", "note", "skip"] = "enforce",
    filter_votes: Count = 3,
    check_votes: Count = 3,
    vote_threshold: Annotated[float, Between(0, 1, minimum_open=True)] = 0.5,
    gates: PairGates = PairGates(),
    gate_copies: bool = True,
    sampling: Sampling,
    task_id=None,
    **kwargs,
):
    """Turn a folder of documents into conversations where a wrong answer is corrected. The
    annotations are what a config may set; ``vet_config`` the rest."""
    record = RunRecord()
    checking = sampling.checking(seed)
    prompts = StepEnvironment.from_run().prompts
    judge = chunk_filter(votes=filter_votes, threshold=vote_threshold, **checking)
    options = dict(gate_copies=gate_copies, **sampling.writing(seed))
    short = dict(options, max_tokens=min(sampling.max_tokens, SAMPLE_MAX_TOKENS))
    sentence = answers == "sentence"
    write = PipelineStep(name="generate", model="large",
                         prompt="write_flawed" if sentence else "write_correction",
                         json_schema=FLAWED_SCHEMA if sentence else WRITTEN_SCHEMA,
                         validator=lambda value, sample: _sample_problem(
                             _written(value, sample, answers), sample, gates, answers),
                         **short)
    ask = question_step(gates=gates, answers=answers, **options)
    check = VoteStep.yes_no("check", "check_correction", "confirmed", model="small",
                            votes=check_votes, threshold=vote_threshold, **checking)
    follow_ups = _lines(prompts, "follow_ups")
    system = prompts.load("system").render({}).strip()
    acknowledgements = _lines(prompts, "acknowledgements")
    output = Path(output_dir)
    files = [o.file for o in OUTPUTS]

    # A shard at a time; a code-made flaw takes a name from anywhere in the corpus, so every
    # shard is read and judged first, and its names kept.
    async with ShardedRun(input_dir, output, record, documents, files, seed=seed) as run:
        # 1. read, chunk, content, filter
        names = set(run.state.get("names", []))
        await run.survey(lambda shard: names.update(*(names_in(s["chunk"]) for s in shard.samples)),
                         judge=judge, policy=verdicts, rejected="judged without content",
                         judged=(0.02, 0.15), task_id=task_id, state=lambda: {"names": sorted(names)})
        near = run.near_copies(gates)
        async for shard in run.shards():
            samples, by_id = shard.samples, shard.by_id

            # 2. generate (large model), gated
            focused = focus_samples(samples, questions_per_chunk, seed, record)
            if flaws == "written":
                results = await write.run(focused, progress=shard.progress(0.15, 0.65))
                made = [_written(result.value, sample, answers)
                        for sample, result in record.step("generate", focused, results)]
            else:
                results = await ask.run(focused, progress=shard.progress(0.15, 0.65))
                asked = [{**pair_of(result.value, sample, answers), "sample": sample}
                         for sample, result in record.step("generate", focused, results)]
                # Every name of the run: alter() leaves out those the sample's own chunk holds.
                made = [_altered(pair, follow_ups, names, seed) for pair in asked]
                made = record.gate("alter", made, lambda s: s.get("problem") or _sample_problem(
                    s, s["sample"], gates, answers, pair=False))  # the question step gated the pair
            made = record.gate("deduplicate", made, duplicate_questions(gates, near=near))

            # 3. check (small model, a vote): the first answer wrong, the correction right
            if verdicts != "skip" and made:
                results = await check.run([{**s["sample"], **_fields(s), "id": s["id"]} for s in made],
                                          progress=shard.progress(0.65, 0.9))
                made = record.apply_verdicts("check", made, results, policy=verdicts,
                                             rejected="correction not confirmed")

            # outputs, appended shard after shard
            chats, preferences, rows = [], [], []
            for sample in made:
                chunk = by_id[sample["sample"]["chunk_id"]]
                pick = random.Random(derive_seed(seed, sample["id"], "acknowledgement"))
                final = f"{pick.choice(acknowledgements)} {sample['correction']}"
                asked = [{"role": "system", "content": system}, {"role": "user", "content": sample["question"]}]
                # only the last assistant message, the correction, is trained
                chats.append(Conversation(sample["id"], [
                    *asked, {"role": "assistant", "content": sample["flawed_answer"], "weight": 0},
                    {"role": "user", "content": sample["follow_up"]},
                    {"role": "assistant", "content": final, "weight": 1}]))
                preferences.append(preference_row(sample["id"], asked, sample["correction"],
                                                  sample["flawed_answer"]))
                rows.append({"id": sample["id"], **_fields(sample), "flaw": sample["flaw"],
                             "chunk_id": chunk.id, "source": chunk.source, "start": chunk.start,
                             "end": chunk.end, "focus": sample["sample"]["focus"]})
            for output_ in OUTPUTS[:2]:
                run.extend(output_.file, (conversation_row(c, output_.format) for c in chats))
            run.extend(OUTPUTS[2].file, preferences)
            run.extend(OUTPUTS[3].file, rows)
            run.finished(shard, {"names": sorted(names)})
    run.write_record()
    corrections = run.counts[OUTPUTS[3].file]
    set_progress(task_id, 1.0, f"{corrections} corrections")
    if not corrections:
        raise PipelineError(f"no correction survived the checks; see {output / 'failures.jsonl'}"
                            f" or run: atk inspect {output}")
    return {"corrections": corrections}


def _fields(sample: dict) -> dict:
    return {k: sample[k] for k in ("question", "flawed_answer", "follow_up", "correction")}


def _written(value: dict, sample: dict, answers: str) -> dict:
    """A sample the large model wrote whole (the correction is the sentence when ``answers``
    is ``"sentence"``)."""
    fixed = sample["focus"] if answers == "sentence" else value["correction"]
    return {"id": question_id("correction", sample["id"], value["question"]), "sample": sample, "flaw": "written",
            "question": value["question"].strip(), "flawed_answer": value["flawed_answer"].strip(),
            "follow_up": value["follow_up"].strip(), "correction": fixed.strip()}


def _altered(pair: dict, follow_ups: list[str], names: set, seed: int) -> dict:
    """A sample whose wrong answer is the right one with a detail changed by code."""
    sample = pair["sample"]
    key = question_id("correction", sample["id"], pair["question"])
    rng = random.Random(derive_seed(seed, key, "flaw"))
    changed = alter(pair["answer"], sample["chunk"], names, rng, question=pair["question"])
    made = {"id": key, "sample": sample, "question": pair["question"], "correction": pair["answer"],
            "follow_up": rng.choice(follow_ups), "flawed_answer": "", "flaw": ""}
    if changed is None:
        made["problem"] = Problem("nothing to alter", "the answer has no number, name or verb to"
                                                      " change into a wrong answer")
    else:
        made["flawed_answer"], made["flaw"] = changed
    return made


def _sample_problem(made: dict, sample: dict, gates: PairGates, answers: str, *,
                    pair: bool = True) -> Problem | None:
    """The gates of one sample: the question and correction as a pair (unless ``pair`` is
    false); a wrong answer that is about the question but says something the chunk does
    not, and is not the correction; a follow-up that is real text."""
    question, flawed, follow_up = made["question"], made["flawed_answer"], made["follow_up"]
    correction, chunk = made["correction"], sample["chunk"]
    written = made["flaw"] == "written"

    def flaw_problem():
        if " ".join(flawed.lower().split()) == " ".join(correction.lower().split()):
            return Problem("flawed answer is the correction",
                           "the wrong answer is the same as the right one; get one detail wrong")
        about = set(content_words(question)) | set(content_words(sample["focus"]))
        if not about & set(content_words(flawed)):
            return Problem("flawed answer off topic",
                           "the wrong answer is not about the question; answer it, with one detail"
                           " wrong")
        if written and grounding_problem(flawed, chunk, threshold=1.0) is None:
            return Problem("flawed answer not wrong",
                           "the wrong answer says only what the passage says; change one detail"
                           " (a number, a name, a cause) so that it is wrong")
        return None

    def follow_up_problem():
        own = set(content_words(follow_up))
        if own and own <= set(content_words(flawed)) | set(content_words(correction)):
            return Problem("follow-up repeats an answer",
                           "the follow-up repeats an answer; write what the user says back: a short"
                           " reply that doubts the answer")
        return None

    return first_problem(
        lambda: gates.problem(question, correction, chunk, sample["focus"],
                              answer_is_source=answers == "sentence") if pair else None,
        lambda: prose_problem(correction, chunk, known=question) if answers != "sentence" else None,
        lambda: placeholder_problem(flawed), lambda: chatter_problem(flawed),
        lambda: refers_to_source(flawed), flaw_problem,
        # the wrong answer is wrong on purpose, but still written in real words, without a loop
        lambda: repetition_problem(flawed), lambda: unknown_word_problem(flawed, chunk, question),
        lambda: placeholder_problem(follow_up), lambda: chatter_problem(follow_up),
        lambda: refers_to_source(follow_up), follow_up_problem,
        lambda: repetition_problem(follow_up),
        lambda: unknown_word_problem(follow_up, chunk, f"{question}\n{flawed}"))


def _lines(prompts, name: str) -> list[str]:
    """The non-empty lines of a text prompt file (a list to pick from)."""
    lines = [line.strip() for line in prompts.load(name).render({}).splitlines() if line.strip()]
    if not lines:
        raise PipelineError(f"prompts/{name}.txt has no line to pick from")
    return lines


def vet_config(*, input_dir, models, output_dir=None, **values) -> None:
    """What atk checks before a run writes anything, beyond what the annotations say."""
    check_input_dir(input_dir, output_dir)
    require_roles(models, {"large": ["generate"],
                           "small": ["filter", "check"] if values["verdicts"] != "skip" else []})
