"""repvar: documents in, varied restatements of them out, for continued pretraining.

A model that reads a fact once, in one wording, learns the wording; one that
reads it in many forms learns the fact. The recipe, in order:

1. read, chunk, and the content gate (no model), as every pipeline does;
2. filter: does the chunk hold content worth restating?      (small model, a vote)
3. facts: the chunk's facts, one sentence each               (small model)
   -- gated: each fact grounded in the chunk, no placeholder;
4. variations: ``variations`` restatements per chunk          (large model)
   -- each in a form picked by the seed from the prompt files in
   ``prompts/variations/`` (a user adds a form with a file of their own in
   ``prompt_overrides/variations/``); gated: long enough, not a copy of the
   chunk, grounded in the chunk and its facts, no placeholder, nothing copied
   from the prompt;
5. typos: ``typo_variations`` copies of the chunk with keyboard typos (no model,
   seeded).

``pretraining.jsonl`` holds ``{"text": ...}`` rows: each chunk, its facts, its
variations and its typo copies, optionally after a ``dataset_context`` line;
``sources.jsonl`` has one line per row, in the same order, saying where it
came from (kind, form, source file, character offsets, chunk id). Every
dropped sample is in ``failures.jsonl`` with its step, kind and reason.
"""

from __future__ import annotations

import difflib
import random
import re
from pathlib import Path
from typing import Annotated, Literal

from atk_core import (
    AtLeast, Between, ConfigError, Documents, PipelineError, PipelineStep, Problem, PromptLibrary,
    Output, RunRecord, Sampling, StepEnvironment, chatter_problem, check_input_dir,
    chunk_filter, content_words, derive_seed, first_problem, grounding_problem,
    placeholder_problem, prose_problem, refers_to_source, require_roles, set_progress, ShardedRun,
    with_fields, words,
)

from .forms import form_problem
from .typos import with_typos

# Config fields that have a new name: a config with the old one is refused in one line.
RENAMED = {"model_checks": "verdicts"}

OUTPUTS = (
    Output("pretraining.jsonl", "pretraining", primary=True, sources="sources.jsonl",
           description="the chunks (include_chunks), facts, restatements and typo copies"),
    Output("sources.jsonl", "records", description="line for line: what each text is and its source"),
)
FORMS_FOLDER = "variations"

FACTS_SCHEMA = {
    "type": "object",
    "properties": {"facts": {"type": "array", "minItems": 1, "items": {"type": "string"}}},
    "required": ["facts"],
}

Count = Annotated[int, AtLeast(1)]
Fraction = Annotated[float, Between(0, 1)]


@with_fields(documents=Documents(), sampling=Sampling(temperature=0.8, max_tokens=1024))
async def repvar(
    *,
    input_dir: str,
    output_dir: str,
    documents: Documents,
    seed: int = 0,
    variations: Annotated[int, AtLeast(0)] = 4,
    forms: list[str] | None = None,
    extract_facts: bool = True,
    typo_variations: Annotated[int, AtLeast(0)] = 0,
    typo_rate: Annotated[float, Between(0, 1, minimum_open=True)] = 0.05,
    dataset_context: str | None = None,
    include_chunks: bool = True,
    verdicts: Literal["enforce", "note", "skip"] = "enforce",
    filter_votes: Count = 3,
    vote_threshold: Annotated[float, Between(0, 1, minimum_open=True)] = 0.5,
    fact_grounding: Fraction = 0.8,
    variation_grounding: Fraction = 0.7,
    min_variation_words: Annotated[int, AtLeast(1)] = 20,
    max_similarity: Fraction = 0.9,
    gate_copies: bool = True,
    sampling: Sampling,
    task_id=None,
    **kwargs,
):
    """Turn a folder of documents into varied restatements for continued pretraining.

    The annotations are what a config may set (atk checks them before the run
    starts); ``vet_config`` looks at what they cannot say.
    """
    record = RunRecord()
    checking = sampling.checking(seed)
    judge = chunk_filter(votes=filter_votes, threshold=vote_threshold, **checking)
    facts_step = PipelineStep(name="facts", prompt="extract_facts", model="small",
                              json_schema=FACTS_SCHEMA, validator=_facts_gate(fact_grounding),
                              max_tokens=min(sampling.max_tokens, 512), **checking)
    env = StepEnvironment.from_run()
    available = [name.split("/", 1)[1] for name in env.prompts.names(FORMS_FOLDER)]
    chosen_forms = _forms(available, forms)
    form_steps = {form: PipelineStep(
        name="variation", prompt=f"{FORMS_FOLDER}/{form}", model="large",
        validator=_variation_gate(env.prompts.load(f"{FORMS_FOLDER}/{form}").own_words(),
                                  variation_grounding, min_variation_words, max_similarity),
        gate_copies=gate_copies, **sampling.writing(seed)) for form in chosen_forms}
    prefix = f"{dataset_context.strip()}\n\n" if dataset_context and dataset_context.strip() else ""
    output = Path(output_dir)
    files = [o.file for o in OUTPUTS[:2]]

    # A shard of the corpus at a time: every chunk is rewritten on its own.
    async with ShardedRun(input_dir, output, record, documents, files, seed=seed) as run:
        kept_total = run.state.get("variations", 0)
        # 1. read, chunk, content; 2. filter (small model, a vote)
        async for shard in run.shards(judge=judge, policy=verdicts, rejected="judged without content",
                                      judged=(0.02, 0.15), task_id=task_id):
            samples, by_id = shard.samples, shard.by_id

            # 3. facts (small model), gated; a chunk whose facts fail still gets its variations
            facts = {sample["id"]: [] for sample in samples}
            if extract_facts:
                results = await facts_step.run(samples, progress=shard.progress(0.15, 0.3))
                for sample, result in record.step("facts", samples, results):
                    facts[sample["id"]] = _grounded_facts(result.value["facts"], sample["chunk"],
                                                          fact_grounding)

            # 4. variations (large model), each in a form the seed picks, gated
            rewrites = [{**sample, "id": f"{sample['id']}/v{index}", "chunk_id": sample["id"],
                         "form": form, "facts": _fact_lines(facts[sample["id"]])}
                        for sample in samples
                        for index, form in enumerate(_pick_forms(chosen_forms, variations, seed, sample["id"]))]
            used = sorted({r["form"] for r in rewrites})
            # One form after the other (each with the model's full concurrency), so the bar only grows.
            share, result_of = 0.6 / max(1, len(used)), {}
            for i, form in enumerate(used):
                group = [r for r in rewrites if r["form"] == form]
                for result in await form_steps[form].run(
                        group, progress=shard.progress(0.3 + i * share, 0.3 + (i + 1) * share)):
                    result_of[result.sample_id] = result
            results = [result_of[r["id"]] for r in rewrites]  # back in chunk order
            kept = {sample["id"]: result.value.strip()
                    for sample, result in record.step("variation", rewrites, results)}
            kept_total += len(kept)

            # 5. typos (no model), and the outputs
            rows, sources = [], []

            def add(text, kind, chunk, row_id, form=None):
                rows.append({"text": prefix + text})
                sources.append({"id": row_id, "kind": kind, "form": form, "source": chunk.source,
                                "start": chunk.start, "end": chunk.end, "chunk_id": chunk.id})

            for sample in samples:
                chunk = by_id[sample["id"]]
                if include_chunks:
                    add(chunk.text, "chunk", chunk, chunk.id)
                if facts[chunk.id]:
                    add(_fact_lines(facts[chunk.id]), "facts", chunk, f"{chunk.id}/facts")
                for rewrite in (r for r in rewrites if r["chunk_id"] == chunk.id):
                    if rewrite["id"] in kept:
                        add(kept[rewrite["id"]], "variation", chunk, rewrite["id"], rewrite["form"])
                for index in range(typo_variations):
                    typo_seed = derive_seed(seed, chunk.id, "typos", index)
                    add(with_typos(chunk.text, typo_rate, typo_seed), "typos", chunk, f"{chunk.id}/t{index}")
            if typo_variations:
                record.count("typos", len(samples), len(samples) * typo_variations)
            run.extend(OUTPUTS[0].file, rows)
            run.extend(OUTPUTS[1].file, sources)
            run.finished(shard, {"variations": kept_total})
    run.write_record()
    written = run.counts[OUTPUTS[0].file]
    set_progress(task_id, 1.0, f"{written} rows ({kept_total} variations)")
    if not written:
        raise PipelineError(f"no text survived the checks; see {output / 'failures.jsonl'}"
                            f" or run: atk inspect {output}")
    return {"rows": written, "variations": kept_total}


# -- forms ------------------------------------------------------------------------------------


def _forms(available: list[str], wanted: list[str] | None) -> list[str]:
    """The forms to pick from: those asked for (all there are by default), sorted."""
    if wanted is None:
        return sorted(available)
    return sorted(set(wanted))


def _pick_forms(forms: list[str], count: int, seed: int, key: str) -> list[str]:
    """``count`` forms for one chunk, picked by the seed: all different while there are
    enough, then round again in another order."""
    if not forms or not count:
        return []
    chooser = random.Random(derive_seed(seed, key, "forms"))
    picked = []
    while len(picked) < count:
        picked += chooser.sample(forms, len(forms))
    return picked[:count]


def _fact_lines(facts: list[str]) -> str:
    return "\n".join(f"- {fact}" for fact in facts)


# -- the gates ------------------------------------------------------------------------------------


def _grounded_facts(facts, chunk: str, threshold: float) -> list[str]:
    """The facts that say what the chunk says, in order, each once (a fact another one already
    says word for word is left out)."""
    kept = []
    for fact in (f.strip() for f in facts if isinstance(f, str)):
        if fact and fact not in kept and _fact_problem(fact, chunk, threshold) is None:
            kept.append(fact)
    said = [" ".join(words(f)) for f in kept]
    return [fact for fact, own in zip(kept, said)
            if not any(own != other and f" {own} " in f" {other} " for other in said)]


def _fact_problem(fact: str, chunk: str, threshold: float) -> Problem | None:
    if len(content_words(fact)) < 2:
        return Problem("fact too short", f"{fact!r} is not a fact: say what happened or what is")
    if fact.rstrip().endswith((":", ",", ";", "-")):
        return Problem("fact not a sentence", f"{fact!r} stops halfway; say the whole fact")
    return first_problem(lambda: placeholder_problem(fact), lambda: refers_to_source(fact),
                         lambda: chatter_problem(fact),
                         lambda: grounding_problem(fact, chunk, threshold=threshold),
                         lambda: prose_problem(fact, chunk))


def _facts_gate(threshold: float):
    """The validator of a list of facts: at least one of them says what the chunk says."""
    def check(value, sample):
        if _grounded_facts(value["facts"], sample["chunk"], threshold):
            return None
        problems = [_fact_problem(f, sample["chunk"], threshold) for f in value["facts"]
                    if isinstance(f, str)]
        first = next((p for p in problems if p is not None), None)
        return Problem("no grounded fact", "none of the facts is what the passage says"
                       + (f" ({first.message})" if first else ""))

    return check


def _variation_gate(own_words: str, threshold: float, min_words: int, max_similarity: float):
    """The validator of a restatement: long enough, not a copy of the chunk, grounded in the
    chunk and its facts (the form's own words, like XML tags or 'Question', allowed), no
    placeholder, and prose that holds the floor: no loop, no garbled word, no sentence the
    chunk does not say, no talk about the task."""
    def check(text, sample):
        text = text.strip()
        plain = re.sub(r"<[^>]*>", " ", text)  # an XML form's tags are its form, not filler
        count = len(words(plain))
        if count < min_words:
            return Problem("variation too short",
                           f"the restatement has {count} words; write at least {min_words}")
        if _similarity(plain, sample["chunk"]) >= max_similarity:
            return Problem("copies the chunk", "the restatement repeats the passage word for word;"
                           " restate it in the form asked for")
        known = f"{sample['chunk']}\n{sample['facts']}\n{own_words}"
        return first_problem(lambda: form_problem(sample["form"], text),
                             lambda: chatter_problem(text),
                             lambda: refers_to_source(plain),
                             lambda: placeholder_problem(plain),
                             lambda: grounding_problem(plain, known, threshold=threshold),
                         lambda: prose_problem(plain, sample["chunk"],
                                               known=f"{sample['facts']}\n{own_words}"))

    return check


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, " ".join(words(a)), " ".join(words(b)),
                                   autojunk=False).ratio()


def vet_config(*, input_dir, models, output_dir=None, forms=None, prompt_overrides=None,
                 **values) -> None:
    """What atk checks before a run writes anything, beyond what the annotations say: the
    input folder, the forms asked for, and the model roles the steps use."""
    check_input_dir(input_dir, output_dir)
    if forms is not None:
        from importlib.resources import files

        library = PromptLibrary(files(__package__) / "prompts", prompt_overrides)
        available = [name.split("/", 1)[1] for name in library.names(FORMS_FOLDER)]
        unknown = sorted(set(forms) - set(available))
        if unknown or not forms:
            raise ConfigError(f"forms: no variation prompt for {', '.join(unknown) or 'an empty list'}"
                              f" (there are: {', '.join(available)}); add a file to"
                              f" prompt_overrides/{FORMS_FOLDER}/ for a form of your own")
    asking = values["verdicts"] != "skip"
    require_roles(models, {"large": ["variation"] if values["variations"] else [],
                           "small": (["filter"] if asking else [])
                           + (["facts"] if values["extract_facts"] else [])})
