"""domain-expert: folders of documents in, a training mix and its Axolotl configs out.

It makes no request of its own: it runs four installed pipelines as parts of
itself (``run_part``), each over one input folder at a time, so a folder's
parts see only that folder's chunks, and assembles what they wrote:

1. per folder: ``repvar`` (the chunks and their restatements, for continued
   pretraining), ``factual-qa`` (QA conversations), ``rag-data`` (answers from
   retrieved context, or refusals), ``correction`` (a wrong answer, then the
   correction) — each part's outputs, ``failures.jsonl`` and ``manifest.json``
   in ``parts/<pipeline>/<n>-<folder>/``;
2. ``pretraining/``: the chunks and repvar's text, as ``{"text": ...}`` lines;
3. ``sft/``: one mix of the QA, RAG and correction conversations (and, if set,
   a generic instruction dataset), balanced by tokens to ``mix``'s shares,
   some without their system prompt;
4. ``axolotl/pretrain.yaml`` and ``axolotl/sft.yaml``;
5. ``manifest.json``: every part's funnel, the token count of every file and
   the mix by source.

Each training file has a ``.sources.jsonl`` beside it, line for line: which
folder, part output and line each record came from.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from atk_core import (
    Between, ConfigError, Documents, NonEmpty, PairGates, PipelineError, RunRecord, Sampling,
    atomic_write_jsonl, atomic_write_text, check_part, derive_seed, part_fields, run_part,
    segments, set_progress, with_fields,
)

from . import axolotl
from .axolotl import Training
from .mix import Item, balance, load_generic
from atk_core import token_counter

# The parts, in the order they run over each folder, the config field that holds each
# one's own settings, and the mix source it feeds (repvar feeds pretraining).
PARTS = {"repvar": ("repvar", None), "factual-qa": ("factual_qa", "qa"),
         "rag-data": ("rag_data", "rag"), "correction": ("correction", "correction")}
# Fields of domain-expert's own that every part taking them gets (a part's own settings win).
SHARED = ("seed", "model_checks", "answers", "gates") + tuple(
    f.name for group in (Documents, Sampling) for f in dataclasses.fields(group))
# What each part wrote that the assembly reads.
PART_FILES = {"repvar": ("pretraining.jsonl", "sources.jsonl"),
              "factual-qa": "conversations.messages.jsonl",
              "rag-data": "rag.messages.jsonl", "correction": "correction.messages.jsonl"}

CHUNKS = "pretraining/chunks.jsonl"
RESTATED = "pretraining/repvar.jsonl"
MIX = "sft/mix.jsonl"
CORRECTION_SEGMENTS = "sft/corrections.segments.jsonl"
PRETRAIN_CONFIG = "axolotl/pretrain.yaml"
SFT_CONFIG = "axolotl/sft.yaml"

Share = Annotated[float, Between(0, 1)]


@dataclass(frozen=True)
class Mix:
    """The shares of the SFT mix's tokens, by source; they add up to 1."""

    qa: Share = 0.45
    rag: Share = 0.3
    correction: Share = 0.25
    generic: Share = 0.0

    def __post_init__(self):
        total = self.qa + self.rag + self.correction + self.generic
        if abs(total - 1) > 1e-6:
            shares = ", ".join(f"{f.name} {getattr(self, f.name):g}" for f in dataclasses.fields(self))
            raise ValueError(f"the shares add up to {total:g}, not 1 ({shares}; a share left out"
                             " keeps its default)")


@dataclass(frozen=True)
class WithoutSystemPrompt:
    """The share of each source's conversations that lose their system prompt (a RAG
    conversation's system prompt holds its documents, so it always keeps it)."""

    qa: Share = 0.2
    correction: Share = 0.2
    generic: Share = 0.0


@with_fields(documents=Documents(chunk_size=2000), sampling=Sampling(max_tokens=1024))
async def domain_expert(
    *,
    input_dirs: Annotated[list[str], NonEmpty],
    output_dir: str,
    base_model: str,
    documents: Documents,
    sampling: Sampling,
    seed: int = 0,
    model_checks: Literal["enforce", "note", "skip"] = "enforce",
    answers: Literal["written", "sentence"] = "written",
    gates: PairGates = PairGates(),
    factual_qa: dict | None = None,
    repvar: dict | None = None,
    rag_data: dict | None = None,
    correction: dict | None = None,
    mix: Mix = Mix(),
    without_system_prompt: WithoutSystemPrompt = WithoutSystemPrompt(),
    generic_dataset: str | None = None,
    generic_split: str = "train",
    corrections_format: Literal["messages", "segments"] = "messages",
    tokenizer: str | None = None,
    training: Training = Training(),
    axolotl_extra: dict | None = None,
    task_id=None,
    **kwargs,
):
    """Run the four parts over each folder and assemble the training data and configs. The
    annotations are what a config may set; ``check_config`` the rest."""
    settings = {"seed": seed, "model_checks": model_checks, "answers": answers, "gates": gates,
                **dataclasses.asdict(documents), **dataclasses.asdict(sampling)}
    own = {"factual_qa": factual_qa, "repvar": repvar, "rag_data": rag_data, "correction": correction}
    output = Path(output_dir)
    record = RunRecord()
    generic = load_generic(generic_dataset, generic_split) if mix.generic > 0 else []
    counter = token_counter(tokenizer or base_model)

    # 1. the parts, folder by folder
    plan = [(folder, name) for folder in input_dirs for name in PARTS if _wanted(name, mix)]
    share = 0.95 / len(plan)
    for index, (folder, name) in enumerate(plan):
        await run_part(name, output_dir=part_dir(output, name, input_dirs, folder),
                       progress=(index * share, (index + 1) * share),
                       **part_arguments(name, settings, own, folder))
    set_progress(task_id, 0.95, "assembling the training data")
    parts = []  # each part's funnel into the run's (its steps and drops, named after the part)
    for folder, name in plan:
        place = part_dir(output, name, input_dirs, folder)
        parts.append(_replay(record, place, f"{name} {place.name}", output, folder))

    # 2. pretraining text
    texts = {CHUNKS: [], RESTATED: []}
    for folder in input_dirs:
        place = part_dir(output, "repvar", input_dirs, folder)
        rows, sources = (_read(place / name) for name in PART_FILES["repvar"])
        for line, (row, source) in enumerate(zip(rows, sources), 1):
            target = CHUNKS if source["kind"] == "chunk" else RESTATED
            texts[target].append((row, {"folder": str(folder), "part_output": _relative(place, output) + "/pretraining.jsonl",
                                        "line": line, "kind": source["kind"], "form": source["form"],
                                        "document": source["source"], "start": source["start"],
                                        "end": source["end"]}))

    # 3. the SFT mix
    offered = {source: [] for source in ("qa", "rag", "correction")}
    for folder in input_dirs:
        for name, (_, source) in PARTS.items():
            if source is None or not _wanted(name, mix):
                continue
            place = part_dir(output, name, input_dirs, folder)
            where = f"{_relative(place, output)}/{PART_FILES[name]}"
            for line, row in enumerate(_read(place / PART_FILES[name]), 1):
                origin = {"source": source, "folder": str(folder), "part_output": where, "line": line}
                offered[source].append(_item(source, row["messages"], origin, seed,
                                             without_system_prompt, corrections_format, counter))
    offered["generic"] = [
        _item("generic", messages, {"source": "generic", "dataset": generic_dataset, "line": line},
              seed, without_system_prompt, corrections_format, counter)
        for line, messages in enumerate(generic, 1)]
    try:
        chosen, report = balance(offered, dataclasses.asdict(mix), seed)
    except ValueError as exc:
        raise PipelineError(str(exc)) from None
    random.Random(derive_seed(seed, "mix", "order")).shuffle(chosen)
    record.count("mix", sum(map(len, offered.values())), len(chosen))
    taken = {id(item) for item in chosen}
    for item in (i for items in offered.values() for i in items if id(i) not in taken):
        record.drop("mix", _origin_key(item.origin), f"mix: more {item.source} than its share of"
                    " the tokens", "beyond its source's share")

    files = {MIX: [i for i in chosen if "messages" in i.row]}
    if corrections_format == "segments":
        files[CORRECTION_SEGMENTS] = [i for i in chosen if "segments" in i.row]
    for path, (rows, origins) in {**{p: _split(t) for p, t in texts.items()},
                                  **{p: ([i.row for i in items], [i.origin for i in items])
                                     for p, items in files.items()}}.items():
        atomic_write_jsonl(output / path, rows)
        atomic_write_jsonl(output / _sources(path), origins)

    # 4. Axolotl configs
    stages = axolotl.configs(base_model=base_model, training=training, pretraining=[CHUNKS, RESTATED],
                             sft=[(MIX, "messages")] + ([(CORRECTION_SEGMENTS, "segments")]
                                                        if corrections_format == "segments" else []),
                             extra=axolotl_extra or {})
    for stage, path in (("pretrain", PRETRAIN_CONFIG), ("sft", SFT_CONFIG)):
        atomic_write_text(output / path, axolotl.render(stage, stages[stage]))

    # 5. the manifest: every part's funnel, the tokens
    tokens = {path: sum(counter.count(row["text"]) for row, _ in rows) for path, rows in texts.items()}
    tokens.update({path: sum(i.tokens for i in items) for path, items in files.items()})
    outputs = {path: len(rows) for path, rows in texts.items()}
    outputs.update({path: len(items) for path, items in files.items()})
    outputs.update({_sources(path): count for path, count in list(outputs.items())})
    record.write(output, outputs=outputs, primary=MIX, extra={
        "tokens": {"counter": counter.describe(), "files": tokens,
                   "mix": {source: entry["tokens"] for source, entry in report.items()}},
        "mix": report,
        "parts": parts,
        "axolotl": [PRETRAIN_CONFIG, SFT_CONFIG],
    })
    set_progress(task_id, 1.0, f"{len(chosen)} conversations in the mix,"
                               f" {outputs[CHUNKS] + outputs[RESTATED]} pretraining texts")
    return {"mix": len(chosen), "pretraining": outputs[CHUNKS] + outputs[RESTATED]}


def _wanted(name: str, mix: Mix) -> bool:
    source = PARTS[name][1]
    return source is None or getattr(mix, source) > 0


def part_dir(output: Path, name: str, input_dirs: list, folder) -> Path:
    """Where a part over one folder writes: ``parts/<pipeline>/<n>-<folder name>``."""
    number = list(input_dirs).index(folder) + 1
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(str(folder)).expanduser().resolve().name).strip("-.")
    return Path(output) / "parts" / name / f"{number}-{slug or 'documents'}"


def part_arguments(name: str, settings: dict, own: dict, folder) -> dict:
    """A part's fields: domain-expert's shared settings that it takes, its own settings over
    them, and its input folder."""
    field, _ = PARTS[name]
    taken = part_fields(name)
    arguments = {k: v for k, v in settings.items() if k in taken}
    arguments.update(own.get(field) or {})
    arguments["input_dir"] = str(folder)
    if name == "repvar":
        arguments["include_chunks"] = True  # the pretraining chunks are repvar's
    return arguments


def _item(source, messages, origin, seed, without_system_prompt, corrections_format, counter) -> Item:
    """One conversation offered to the mix, as it will be written: maybe without its system
    prompt (by the seed), each message marked trained or not."""
    share = getattr(without_system_prompt, source, 0.0)
    key = _origin_key(origin)
    if messages and messages[0]["role"] == "system" and share > 0 \
            and derive_seed(seed, "without system prompt", key) % 10_000 < round(share * 10_000):
        messages = messages[1:]
        origin = {**origin, "system_prompt": False}
    if source == "correction" and corrections_format == "segments":
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        row = segments(plain)  # only the last answer, the correction, is trained
        return Item(source, row, counter.segments(row["segments"]), origin)
    row = {"messages": [{"role": m["role"], "content": m["content"],
                         "training": m["role"] == "assistant" and m.get("weight", 1) != 0}
                        for m in messages]}
    return Item(source, row, counter.conversation(messages), origin)


def _origin_key(origin: dict) -> str:
    return f"{origin.get('part_output') or origin.get('dataset')}:{origin['line']}"


def _replay(record: RunRecord, place: Path, label: str, output: Path, folder) -> dict:
    """A part's funnel into the run's record (its steps, drops and notes under ``label``);
    returns what the manifest says of the part."""
    import json

    manifest = json.loads((place / "manifest.json").read_text(encoding="utf-8"))
    for step in manifest["steps"]:
        record.count(f"{label}: {step['name']}", step["in"], step["out"])
        for note, times in step.get("notes", {}).items():
            for _ in range(times):
                record.note(f"{label}: {step['name']}", note)
    for failure in _read(place / "failures.jsonl"):
        record.drop(f"{label}: {failure['step']}", failure["sample_id"], failure["reason"], failure["kind"])
    return {"pipeline": manifest["pipeline"], "folder": str(folder), "output_dir": _relative(place, output),
            "outputs": manifest["outputs"], "steps": manifest["steps"]}


def _read(path: Path) -> list:
    import json

    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _split(pairs):
    return [row for row, _ in pairs], [origin for _, origin in pairs]


def _sources(path: str) -> str:
    return path[: -len(".jsonl")] + ".sources.jsonl"


def _relative(place: Path, output: Path) -> str:
    return place.relative_to(output).as_posix()


# -- the config check ----------------------------------------------------------------------------


def check_config(*, input_dirs, models, output_dir=None, prompt_overrides=None, **values) -> None:
    """What atk checks before a run writes anything, beyond what the annotations say: the
    folders, every part's fields (as the part itself would check them), and the mix's
    sources."""
    folders = [Path(str(f)).expanduser().resolve() for f in input_dirs]
    for index, folder in enumerate(folders):
        for other in folders[:index]:
            if folder == other:
                raise ConfigError(f"input_dirs lists {input_dirs[index]!r} twice")
            if other in folder.parents or folder in other.parents:
                inner, outer = (input_dirs[index], input_dirs[folders.index(other)]) \
                    if other in folder.parents else (input_dirs[folders.index(other)], input_dirs[index])
                raise ConfigError(f"input_dirs: {inner!r} is inside {outer!r}, so its documents"
                                  " would be read with both folders; list folders side by side")
    mix, training = values["mix"], values["training"]
    own = {field: values.get(field) for field, _ in PARTS.values()}
    for field, settings in own.items():
        if settings is not None and not isinstance(settings, dict):
            raise ConfigError(f"{field} must be a mapping of the part's own fields, not {settings!r}")
        for reserved in ("input_dir", "output_dir"):
            if settings and reserved in settings:
                raise ConfigError(f"{field}: {reserved} is domain-expert's to set (input_dirs, output_dir)")
    if (own["repvar"] or {}).get("include_chunks") is False:
        raise ConfigError("repvar: include_chunks must stay true: the pretraining chunks are repvar's")
    settings = {k: values[k] for k in SHARED}
    output = Path(output_dir) if output_dir is not None else Path("output")
    for folder in input_dirs:
        for name in PARTS:
            if _wanted(name, mix):
                check_part(name, models=models, output_dir=part_dir(output, name, input_dirs, folder),
                           prompt_overrides=prompt_overrides,
                           **part_arguments(name, settings, own, folder))
    if values["corrections_format"] == "segments" and training.chat_template != "chatml":
        raise ConfigError("corrections_format: segments are written in ChatML, so training.chat_template"
                          f" must be chatml (not {training.chat_template!r}); or use messages")
    generic = values["generic_dataset"]
    if mix.generic > 0 and not generic:
        raise ConfigError("mix.generic is above 0 but generic_dataset is not set")
    if generic and mix.generic == 0:
        raise ConfigError("generic_dataset is set but mix.generic is 0: give it a share of the mix")
    if generic and Path(generic).expanduser().exists():  # on this machine: read it now
        load_generic(generic, values["generic_split"])  # each row a conversation, or one line why not
    elif generic and generic.endswith((".json", ".jsonl")):
        raise ConfigError(f"generic_dataset {generic!r}: no such file")
    elif generic and importlib.util.find_spec("datasets") is None:
        raise ConfigError(f"generic_dataset {generic!r} is not a file, and loading a Hugging Face"
                          " dataset needs `datasets` (pip install 'atk-pipeline-expert[hf]')")
