"""domain-expert: folders of documents in, a training mix and its Axolotl configs out.

It makes no request of its own: it runs installed pipelines as parts of itself
(``run_part``), each over one input folder at a time, so a folder's parts see
only that folder's chunks, and assembles what they wrote by what each part
*declares* (its ``outputs``: file, kind, format), never by file name. Any
installed pipeline that declares pretraining text, SFT conversations or
preference pairs can be a part (``parts:``; default: repvar, factual-qa,
rag-data, correction):

1. per folder, per part: its outputs, ``failures.jsonl`` and ``manifest.json``
   in ``parts/<pipeline>/<n>-<folder>/``;
2. ``pretraining/<part>.jsonl``: each part's pretraining text, as ``{"text"}``
   lines;
3. ``sft/mix.jsonl``: one mix of the parts' SFT conversations (and, if set, a
   generic instruction dataset), balanced by tokens to ``mix``'s shares, some
   without their system prompt; ``sft/<part>.segments.jsonl`` for the parts
   in ``as_segments``;
4. ``preference/pairs.jsonl``: every part's preference pairs;
5. ``axolotl/pretrain.yaml``, ``sft.yaml`` and (with preference pairs)
   ``dpo.yaml``, each sized to its data;
6. ``exam/exam.jsonl`` (``exam: {size: 40, unseen_share: 0}``): questions about
   facts of the documents that the training data teaches, worded apart from every
   training question, with reference answers, kept out of training, for ``atk eval``
   (see ``atk_core.toolkit.exam``); with ``unseen_share``, that share of the facts is
   held out: every part reads the documents without their sentences;
7. ``manifest.json``: every part's funnel, the token count of every file, the
   mix by part, each training stage's size, and the exam's.

Each training file has a ``.sources.jsonl`` beside it, line for line: which
part, folder, part output and line each record came from (and what the part's
own ``sources`` output says of it).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import logging
import random
import re
import shutil
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from atk_core import (
    AtomicFile, ConfigError, Conversation, Documents, ExamSettings, JsonLines, NonEmpty, Output, PairGates,
    PipelineError, RunRecord, Sampling, atomic_write_text, conversation_row, jsonl_text,
    derive_seed, facts_of_folders, make_exam, part_fields, part_outputs, redact, run_part,
    set_progress, token_counter, vet_part, with_fields,
)

from . import axolotl
from .axolotl import Data, Training
from .mix import Item, balance, load_generic

log = logging.getLogger("atk")

NAME = "domain-expert"
DEFAULT_PARTS = ("repvar", "factual-qa", "rag-data", "correction")
# The default shares of the SFT mix, for the default parts.
DEFAULT_MIX = {"factual-qa": 0.45, "rag-data": 0.3, "correction": 0.25}
DEFAULT_WITHOUT_SYSTEM_PROMPT = {"factual-qa": 0.2, "correction": 0.2}
GENERIC = "generic"
# Fields of domain-expert's own that every part taking them gets (a part's own settings win).
SHARED = ("seed", "verdicts", "answers", "gates") + tuple(
    f.name for group in (Documents, Sampling) for f in dataclasses.fields(group))

MIX = "sft/mix.jsonl"
EXAM = "exam/exam.jsonl"
PREFERENCE = "preference/pairs.jsonl"
# Config fields that have a new name: a config with the old one is refused in one line.
RENAMED = {"model_checks": "verdicts"}

OUTPUTS = (
    Output(MIX, "sft", "messages", primary=True,
           description="the parts' conversations, balanced by tokens to mix's shares"),
    Output("sft/*.segments.jsonl", "sft", "segments", description="the conversations of as_segments' parts"),
    Output(PREFERENCE, "preference", description="every part's preference pairs, for the DPO stage"),
    # before pretraining/*.jsonl, which its files beside the pretraining text match too
    Output("*.sources.jsonl", "records",
           description="beside each training file, line for line: where each record came from"),
    Output("pretraining/*.jsonl", "pretraining", description="each part's pretraining text"),
    Output(EXAM, "exam", description="questions about facts the training data teaches (and,"
           " with unseen_share, facts it does not), with reference answers; never trained on"),
)


@dataclass(frozen=True)
class Part:
    """A part as the assembly sees it: its own settings and what it declares, by kind."""

    name: str
    settings: dict
    sft: Output | None          # the conversations the mix reads (messages, else sharegpt)
    pretraining: tuple          # its pretraining text outputs
    preference: tuple           # its preference pair outputs


@with_fields(documents=Documents(chunk_size=2000), sampling=Sampling(max_tokens=1024))
async def domain_expert(
    *,
    input_dirs: Annotated[list[str], NonEmpty],
    output_dir: str,
    base_model: str,
    documents: Documents,
    sampling: Sampling,
    parts: list[str] | dict = DEFAULT_PARTS,
    seed: int = 0,
    verdicts: Literal["enforce", "note", "skip"] = "enforce",
    answers: Literal["written", "sentence"] = "written",
    gates: PairGates = PairGates(),
    mix: dict | None = None,
    without_system_prompt: dict | None = None,
    generic_dataset: str | None = None,
    generic_split: str = "train",
    as_segments: list[str] = (),
    tokenizer: str | None = None,
    training: Training = Training(),
    axolotl_extra: dict | None = None,
    exam: ExamSettings = ExamSettings(),
    task_id=None,
    **kwargs,
):
    """Run the parts over each folder and assemble the training data and configs. The
    annotations are what a config may set; ``vet_config`` the rest."""
    settings = {"seed": seed, "verdicts": verdicts, "answers": answers, "gates": gates,
                **dataclasses.asdict(documents), **dataclasses.asdict(sampling)}
    chosen_parts = parts_of(parts)
    shares = shares_of(mix, chosen_parts, generic_dataset)
    dropped_prompts = system_prompt_shares(without_system_prompt, chosen_parts)
    output = Path(output_dir)
    record = RunRecord()
    generic = load_generic(generic_dataset, generic_split) if shares.get(GENERIC, 0) > 0 else []
    counter = token_counter(tokenizer or base_model)

    # 0. the exam's facts; the documents without the held-out ones, for every part to read
    facts = facts_of_folders(input_dirs, documents.chunk_size, exam, seed, shard_bytes=documents.shard_bytes)
    reads = {folder: redact(folder, [fact for where, fact in facts if where == folder],
                            output / "exam" / "inputs" / folder_name(input_dirs, folder),
                            shard_bytes=documents.shard_bytes)
             for folder in input_dirs}

    # 1. the parts, folder by folder
    plan = [(folder, part) for folder in input_dirs for part in chosen_parts if _wanted(part, shares)]
    if not plan:
        raise PipelineError(_NOTHING_TO_RUN)
    share = (0.9 if facts else 0.95) / len(plan)
    for index, (folder, part) in enumerate(plan):
        await run_part(part.name, output_dir=part_dir(output, part.name, input_dirs, folder),
                       progress=(index * share, (index + 1) * share),
                       **part_arguments(part, settings, reads[folder]))
    set_progress(task_id, 0.9 if facts else 0.95, "assembling the training data")
    # What the run drops (the parts' failures, the mix's leftovers) goes to files, not memory.
    spool = output / ".atk-spool"
    shutil.rmtree(spool, ignore_errors=True)  # a killed run's
    record.spool(spool)
    funnels = []  # each part's funnel into the run's (its steps and drops, named after the part)
    for folder, part in plan:
        place = part_dir(output, part.name, input_dirs, folder)
        funnels.append(_replay(record, place, f"{part.name} {place.name}", output, folder))

    # 2. pretraining text, 4. preference pairs: every record of every part, in order, from the
    # files each part's manifest says it wrote, by their declared kind, written out as it is
    # read; 3. the SFT mix: what each conversation offers (its tokens, where it is), its text
    # read again when it is written. Held: a few numbers a record, not the records.
    out = _Outputs(output)
    lengths = {"pretrain": array("q"), "sft": array("q"), "dpo": array("q")}
    offered = {name: [] for name in shares}
    texts = []  # the pretraining files, in the order they were first written to
    try:
        for folder, part in plan:
            place = part_dir(output, part.name, input_dirs, folder)
            written = _written(place)
            for file, declared in _of_kind(written, "pretraining"):
                target = _pretraining_file(part, file)
                for row, origin, _ in _PartFile(place, file, declared, part, folder, output).records():
                    if target not in texts:
                        texts.append(target)
                    lengths["pretrain"].append(counter.count(row["text"]))
                    out.write(target, row, origin, lengths["pretrain"][-1])
            for file, declared in _of_kind(written, "preference"):
                for row, origin, _ in _PartFile(place, file, declared, part, folder, output).records():
                    row = _preference(row, f"{origin['part_output']} line {origin['line']}")
                    lengths["dpo"].append(_pair_tokens(row, counter))
                    out.write(PREFERENCE, row, origin, lengths["dpo"][-1])
            # 3. the SFT mix: a part's conversations as messages (else as sharegpt)
            if not shares.get(part.name):
                continue
            conversations = _of_kind(written, "sft")
            readable = ([c for c in conversations if c[1].get("format") == "messages"]
                        or [c for c in conversations if c[1].get("format") == "sharegpt"])
            for file, declared in readable:
                source = _PartFile(place, file, declared, part, folder, output)
                for row, origin, at in source.records():
                    item = _item(part.name, row.get("id"), _messages(row, declared["format"]), origin, seed,
                                 dropped_prompts, as_segments, counter)
                    offered[part.name].append(_Offered(part.name, item.tokens, source, at))
        if GENERIC in offered:
            offered[GENERIC] = [
                _item(GENERIC, None, messages, {"part": GENERIC, "dataset": generic_dataset, "line": line},
                      seed, dropped_prompts, as_segments, counter)
                for line, messages in enumerate(generic, 1)]
        try:
            chosen, report = balance(offered, shares, seed)
        except ValueError as exc:
            raise PipelineError(str(exc)) from None
        random.Random(derive_seed(seed, "mix", "order")).shuffle(chosen)
        record.count("mix", sum(map(len, offered.values())), len(chosen))
        taken = {id(item) for item in chosen}
        for item in (i for items in offered.values() for i in items if id(i) not in taken):
            key = item.key if isinstance(item, _Offered) else _origin_key(item.origin)
            record.drop("mix", key, f"mix: more {item.source} than its share of the tokens",
                        "beyond its source's share")
        del taken, offered

        sft_paths = [MIX] if any(share > 0 for share in shares.values()) else []
        sft_paths += [f"sft/{name}.segments.jsonl" for name in as_segments]
        for path in sft_paths:
            out.start(path)
        for item in chosen:
            if isinstance(item, _Offered):  # its record read again, and made as it was offered
                row, origin = item.file.at(item.at)
                item = _item(item.source, row.get("id"), _messages(row, item.file.format), origin, seed,
                             dropped_prompts, as_segments, counter)
            out.write(MIX if item.source not in as_segments else f"sft/{item.source}.segments.jsonl",
                      item.row, item.origin, item.tokens)
            lengths["sft"].append(item.tokens)
        files = out.finish(texts, sft_paths, record)
    except BaseException:
        out.discard()
        raise
    pairs = out.records.get(PREFERENCE, 0)
    tokens = {path: out.tokens[path] for path in files}

    # 5. Axolotl configs, each stage sized to its data
    lengths = {stage: n for stage, n in lengths.items() if n}
    data = {stage: Data(len(n), sum(n), max(n)) for stage, n in lengths.items()}
    margin = 1.25 if counter.describe().get("method") == "estimate" else 1.0  # bytes / 4 runs low
    epochs = {"pretrain": training.pretrain_epochs, "sft": training.sft_epochs, "dpo": training.dpo_epochs}
    sizes = {stage: axolotl.size(d, training, epochs=epochs[stage], packing_allowed=stage != "dpo",
                                 margin=margin, lengths=lengths[stage])
             for stage, d in data.items()}
    stages = axolotl.configs(base_model=base_model, training=training, pretraining=sorted(texts),
                             sft=[(MIX, "messages")] * bool(out.records.get(MIX))
                             + [(p, "segments") for p in sft_paths if p != MIX and out.records[p]],
                             preference=[PREFERENCE] if pairs else [], sizes=sizes,
                             extra=axolotl_extra or {})
    what = {"pretrain": "text", "sft": "conversation", "dpo": "preference pair"}
    configs = []
    for stage, config in stages.items():
        path = f"axolotl/{stage}.yaml"
        about = axolotl.comment(stage, data[stage], sizes[stage], what[stage])
        atomic_write_text(output / path, axolotl.render(stage, config, about))
        configs.append(path)
        if axolotl.too_small(sizes[stage]):
            log.warning("%s: %d %ss make %d optimizer steps an epoch, too few to learn from; make"
                        " more data before training on it", path, data[stage].records, what[stage],
                        sizes[stage].steps_per_epoch)
        if sizes[stage].too_long:
            log.warning("%s: %d %ss are longer than training.sequence_len %d, and Axolotl drops them;"
                        " raise it to keep them", path, sizes[stage].too_long, what[stage],
                        training.sequence_len)

    # 6. the exam, against what was written for training
    exam_report = None
    if facts:
        set_progress(task_id, 0.93, f"the exam: {len(facts)} facts")
        exam_report = await make_exam(record, output, EXAM, [fact for _, fact in facts],
                                      {path: JsonLines(output / path) for path in files}, gates=gates,
                                      answers=answers, options=sampling.writing(seed), progress=(0.93, 0.99))

    # 7. the manifest: every part's funnel, the tokens, the stages, the exam
    record.write(output, extra={
        **({"exam": exam_report} if exam_report is not None else {}),
        "tokens": {"counter": counter.describe(), "files": tokens,
                   "mix": {source: entry["tokens"] for source, entry in report.items()}},
        "mix": report,
        "parts": funnels,
        "axolotl": configs,
        "training": {stage: {**dataclasses.asdict(data[stage]), **dataclasses.asdict(sizes[stage]),
                             "too_small": axolotl.too_small(sizes[stage])} for stage in stages},
    })
    pretraining = sum(out.records[path] for path in texts)
    set_progress(task_id, 1.0, f"{len(chosen)} conversations in the mix, {pretraining} pretraining"
                               f" texts, {pairs} preference pairs")
    return {"mix": len(chosen), "pretraining": pretraining, "preference": pairs}


# -- the parts -----------------------------------------------------------------------------------


def parts_of(parts) -> list[Part]:
    """The parts a config names (a list of pipeline names, or a mapping of each to its own
    settings), with what each declares; ``ConfigError`` naming a part that is not
    installed, is domain-expert, or declares nothing to train on."""
    if isinstance(parts, (list, tuple)):
        named = {}
        for name in parts:
            if not isinstance(name, str):
                raise ConfigError(f"parts: {name!r} is not a pipeline name")
            if name in named:
                raise ConfigError(f"parts lists {name!r} twice")
            named[name] = {}
    elif isinstance(parts, dict):
        named = {}
        for name, settings in parts.items():
            if settings is not None and not isinstance(settings, dict):
                raise ConfigError(f"parts: {name}'s settings must be a mapping of its own fields,"
                                  f" not {settings!r}")
            named[str(name)] = dict(settings or {})
    else:
        raise ConfigError("parts must be a list of pipeline names, or a mapping of each to its settings")
    if not named:
        raise ConfigError("parts names no pipeline")
    chosen = []
    for name, settings in named.items():
        if name == NAME:
            raise ConfigError(f"parts: {NAME} cannot be a part of itself")
        if name == GENERIC:
            raise ConfigError(f"parts: {GENERIC!r} names the generic dataset's share in mix; a"
                              " pipeline of that name cannot be a part")
        for reserved in ("input_dir", "output_dir"):
            if reserved in settings:
                raise ConfigError(f"parts: {name}: {reserved} is {NAME}'s to set (input_dirs, output_dir)")
        try:
            declared = part_outputs(name)
        except ConfigError as exc:
            raise ConfigError(f"parts: {exc}") from None
        kinds = {o.kind for o in declared}
        if not kinds & {"pretraining", "sft", "preference"}:
            what = (f"declares only {', '.join(sorted(kinds))} ({', '.join(o.file for o in declared)})"
                    if declared else "declares no outputs")
            raise ConfigError(f"parts: {name} {what}; a part must write pretraining text, SFT"
                              " conversations or preference pairs")
        conversations = [o for o in declared if o.kind == "sft"]
        readable = ([o for o in conversations if o.format == "messages"]
                    or [o for o in conversations if o.format == "sharegpt"])
        if conversations and not readable:
            raise ConfigError(f"parts: {name} writes its conversations only as segments; the mix"
                              " reads messages or sharegpt")
        chosen.append(Part(name, settings, readable[0] if readable else None,
                           tuple(o for o in declared if o.kind == "pretraining"),
                           tuple(o for o in declared if o.kind == "preference")))
    return chosen


def shares_of(mix: dict | None, parts: list[Part], generic_dataset=None) -> dict[str, float]:
    """The SFT mix's shares by part (and ``generic``), in the parts' order: ``mix`` as the
    config sets it, each part that writes conversations named; by default today's shares
    for today's parts, else equal shares. ``ConfigError`` for a share that is no number
    from 0 to 1, a name that is no such part, a part left out, or shares that do not add
    up to 1."""
    talking = [p.name for p in parts if p.sft is not None]
    if mix is None:
        if set(talking) == set(DEFAULT_MIX):
            mix = dict(DEFAULT_MIX)
        else:
            mix = {name: round(1 / len(talking), 12) for name in talking} if talking else {}
    _by_source("mix", mix, talking)
    missing = [name for name in talking if name not in mix]
    if missing:
        raise ConfigError(f"mix gives {missing[0]} no share: set mix.{missing[0]} (0 leaves its"
                          " conversations out)")
    shares = {name: float(mix[name]) for name in talking}
    shares[GENERIC] = float(mix.get(GENERIC, 0))
    total = sum(shares.values())
    if (talking or shares[GENERIC]) and abs(total - 1) > 1e-6:
        listed = ", ".join(f"{name} {value:g}" for name, value in shares.items())
        raise ConfigError(f"mix: the shares add up to {total:g}, not 1 ({listed})")
    return shares


def system_prompt_shares(without: dict | None, parts: list[Part]) -> dict[str, float]:
    """The share of each source's conversations that lose their system prompt (default:
    today's for today's parts); ``ConfigError`` for a name that is no conversation source
    or a share that is no number from 0 to 1."""
    talking = [p.name for p in parts if p.sft is not None]
    if without is None:
        return {k: v for k, v in DEFAULT_WITHOUT_SYSTEM_PROMPT.items() if k in talking}
    _by_source("without_system_prompt", without, talking)
    return {name: float(value) for name, value in without.items()}


def _by_source(field: str, shares, talking: list[str]) -> None:
    """``ConfigError`` unless ``shares`` maps parts that write conversations (or ``generic``)
    to numbers from 0 to 1."""
    if not isinstance(shares, dict):
        raise ConfigError(f"{field} must be a mapping of each part that writes conversations to a share")
    for name, value in shares.items():
        if name != GENERIC and name not in talking:
            raise ConfigError(f"{field}: {name!r} is not a part that writes SFT conversations"
                              f" (those are: {', '.join(talking) or 'none'}; and {GENERIC})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"{field}.{name} must be a number from 0 to 1, not {value!r}")


def _wanted(part: Part, shares: dict) -> bool:
    """A part runs unless all it gives is conversations and its share is 0."""
    return bool(part.pretraining or part.preference or shares.get(part.name))


def part_dir(output: Path, name: str, input_dirs: list, folder) -> Path:
    """Where a part over one folder writes: ``parts/<pipeline>/<n>-<folder name>``."""
    return Path(output) / "parts" / name / folder_name(input_dirs, folder)


def folder_name(input_dirs: list, folder) -> str:
    """``<n>-<folder name>``: an input folder's name in the run's own folders."""
    number = list(input_dirs).index(folder) + 1
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(str(folder)).expanduser().resolve().name).strip("-.")
    return f"{number}-{slug or 'documents'}"


def part_arguments(part: Part, settings: dict, folder) -> dict:
    """A part's fields: domain-expert's shared settings that it takes, its own settings over
    them, and its input folder."""
    taken = part_fields(part.name)
    arguments = {k: v for k, v in settings.items() if k in taken}
    arguments.update(part.settings)
    arguments["input_dir"] = str(folder)
    return arguments


# -- reading what the parts wrote -------------------------------------------------------------------


def _written(place: Path) -> dict:
    """What a part's manifest says it wrote: file -> its declaration (kind, format, sources)."""
    import json

    declared = json.loads((place / "manifest.json").read_text(encoding="utf-8")).get("declared_outputs")
    return declared if isinstance(declared, dict) else {}


def _of_kind(written: dict, kind: str) -> list[tuple[str, dict]]:
    return [(file, entry) for file, entry in written.items() if entry.get("kind") == kind]


class _PartFile:
    """A file a part wrote, read a record at a time: each record with where it came from
    (what the part's own ``sources`` output says of that line, then the part, the folder,
    the file and line, which nothing of the part's overrides), and where it is in the files,
    to read it again (``at``)."""

    def __init__(self, place: Path, file: str, declared: dict, part: Part, folder, output: Path):
        self.path, self.format = place / file, declared.get("format")
        self.sources_name = declared.get("sources")
        self.sources = place / self.sources_name if self.sources_name else None
        self.where = f"{_relative(place, output)}/{file}"
        self.part, self.folder = part, folder

    def records(self):
        """``(row, origin, at)`` for each record, in order."""
        import json
        from contextlib import nullcontext

        with open(self.path, "rb") as rows, \
                (open(self.sources, "rb") if self.sources else nullcontext()) as about:
            line = 0
            while True:
                offset, text = _next_line(rows)
                if text is None:
                    break
                line += 1
                about_offset, extra = _next_line(about) if about else (None, b"{}")
                if extra is None:
                    self._mismatch()
                yield json.loads(text), self._origin(json.loads(extra), line), (line, offset, about_offset)
            if about and _next_line(about)[1] is not None:
                self._mismatch()

    def at(self, at) -> tuple[dict, dict]:
        """The record and origin ``records`` gave with ``at``, read again."""
        import json

        line, offset, about_offset = at
        with open(self.path, "rb") as rows:
            rows.seek(offset)
            row = json.loads(rows.readline())
        extra = {}
        if self.sources:
            with open(self.sources, "rb") as about:
                about.seek(about_offset)
                extra = json.loads(about.readline())
        return row, self._origin(extra, line)

    def _origin(self, extra: dict, line: int) -> dict:
        return {**extra, "part": self.part.name, "folder": str(self.folder), "part_output": self.where,
                "line": line}

    def _mismatch(self):
        raise PipelineError(f"{self.where}: {self.sources_name} has {_count(self.sources)} lines for"
                            f" {_count(self.path)} records")


def _next_line(handle) -> tuple[int, bytes | None]:
    """Where the next line that is not blank starts, and the line (None at the end)."""
    while True:
        offset = handle.tell()
        text = handle.readline()
        if not text:
            return offset, None
        if text.strip():
            return offset, text


def _count(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


class _Offered:
    """A conversation offered to the mix without its text: its source, its tokens as it will
    be written, and where to read it again if it is chosen."""

    __slots__ = ("source", "tokens", "file", "at")

    def __init__(self, source: str, tokens: int, file: _PartFile, at: tuple):
        self.source, self.tokens, self.file, self.at = source, tokens, file, at

    @property
    def key(self) -> str:
        return f"{self.file.where}:{self.at[0]}"


class _Outputs:
    """The run's data files, written a record at a time, each with its ``.sources.jsonl``
    (what each line came from), and put in place together by ``finish``."""

    def __init__(self, output: Path):
        self.output = output
        self.files: dict[str, tuple[AtomicFile, AtomicFile]] = {}
        self.records: dict[str, int] = {}
        self.tokens: dict[str, int] = {}

    def start(self, path: str) -> None:
        if path not in self.files:
            self.files[path] = (AtomicFile(self.output / path), AtomicFile(self.output / _sources(path)))
            self.records[path] = self.tokens[path] = 0

    def write(self, path: str, row: dict, origin: dict, tokens: int) -> None:
        self.start(path)
        rows, sources = self.files[path]
        rows.write(jsonl_text([row]).encode("utf-8"))
        sources.write(jsonl_text([origin]).encode("utf-8"))
        self.records[path] += 1
        self.tokens[path] += tokens

    def finish(self, texts: list[str], sft: list[str], record: RunRecord) -> list[str]:
        """Every file in place, in ``record``: the pretraining ``texts``, the ``sft`` files
        (written even when empty), and the preference pairs when there are some; their list."""
        files = [*texts, *sft, *([PREFERENCE] if self.records.get(PREFERENCE) else [])]
        for path in files:
            for handle in self.files[path]:
                handle.commit()
            record.wrote(path, self.records[path])
            record.wrote(_sources(path), self.records[path])
        return files

    def discard(self) -> None:
        for rows, sources in self.files.values():
            rows.discard()
            sources.discard()


def _pretraining_file(part: Part, file: str) -> str:
    """Where a part's pretraining text goes: ``pretraining/<part>.jsonl``, or, for a part that
    declares several, ``pretraining/<part>.<its file>.jsonl``."""
    if len(part.pretraining) == 1 and "*" not in part.pretraining[0].file:
        return f"pretraining/{part.name}.jsonl"
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", file[: -len(".jsonl")]).strip("_")
    return f"pretraining/{part.name}.{stem}.jsonl"


def _preference(row, where: str) -> dict:
    """A preference pair as the DPO stage reads it (``prompt`` messages, ``chosen`` and
    ``rejected`` each a list of messages); ``PipelineError`` naming the line otherwise."""
    shaped = isinstance(row, dict) and all(
        isinstance(row.get(k), list) and row[k] and all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                        for m in row[k])
        for k in ("prompt", "chosen", "rejected"))
    if not shaped:
        raise PipelineError(f"{where}: a preference pair needs prompt, chosen and rejected as lists of"
                            " messages (atk_core.preference_row writes them)")
    return row


_SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}


def _messages(row: dict, format: str) -> list[dict]:
    """A part's conversation as messages (``role``, ``content``, and a ``weight`` it has)."""
    if format == "messages":
        return [dict(m) for m in row["messages"]]
    return [{"role": _SHAREGPT_ROLES.get(m["from"], m["from"]), "content": m["value"],
             **({"weight": m["weight"]} if "weight" in m else {})} for m in row["conversations"]]


def _item(source, record_id, messages, origin, seed, without_system_prompt, as_segments, counter) -> Item:
    """One conversation offered to the mix, as it will be written: maybe without its system
    prompt (by the seed), each message marked trained or not."""
    share = without_system_prompt.get(source, 0.0)
    key = _origin_key(origin)
    if messages and messages[0]["role"] == "system" and share > 0 \
            and derive_seed(seed, "without system prompt", key) % 10_000 < round(share * 10_000):
        messages = messages[1:]
        origin = {**origin, "system_prompt": False}
    conversation = Conversation(record_id or key, messages)
    if source in as_segments:
        row = conversation_row(conversation, "segments")
        return Item(source, row, counter.segments(row["segments"]), origin)
    row = {"messages": [{"role": m["role"], "content": m["content"],
                         "training": conversation.trained(i, m)} for i, m in enumerate(messages)]}
    if record_id:
        row = {"id": record_id, **row}
    return Item(source, row, counter.conversation(messages), origin)


def _pair_tokens(row: dict, counter) -> int:
    return counter.conversation(row["prompt"] + row["chosen"]) + counter.conversation(row["rejected"])


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


def _sources(path: str) -> str:
    return path[: -len(".jsonl")] + ".sources.jsonl"


def _relative(place: Path, output: Path) -> str:
    return place.relative_to(output).as_posix()


# -- the config check ----------------------------------------------------------------------------


def vet_config(*, input_dirs, models, output_dir=None, prompt_overrides=None, **values) -> None:
    """What atk checks before a run writes anything, beyond what the annotations say: the
    folders, the parts (installed, with something to train on, every field as the part
    itself would check it), the mix's shares, and the generic dataset."""
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
    training = values["training"]
    chosen = parts_of(values["parts"])
    # A part's field at the top (or in an old per-part section, which the config flattens)
    # would reach no part: say where it goes. Other unknown keys are let be, as in every pipeline.
    for old, now in _RENAMED.items():
        if old in values:
            raise ConfigError(f"{old} is now {now}")
    misplaced = sorted(k for k in values if k not in _FIELDS
                       and any(k in part_fields(p.name) for p in chosen))
    if misplaced:
        raise ConfigError(f"{NAME} has no field {misplaced[0]!r}; a part's own fields go under parts:"
                          " (parts: {factual-qa: {questions_per_chunk: 3}})")
    shares = shares_of(values["mix"], chosen, values["generic_dataset"])
    system_prompt_shares(values["without_system_prompt"], chosen)
    talking = [p.name for p in chosen if p.sft is not None]
    if not any(_wanted(part, shares) for part in chosen):
        raise ConfigError(_NOTHING_TO_RUN)
    extra = values["axolotl_extra"] or {}
    if (extra.get("sample_packing") or (extra.get("dpo") or {}).get("sample_packing")) \
            and any(p.preference for p in chosen):
        raise ConfigError("axolotl_extra: Axolotl refuses sample_packing in an RL stage (dpo.yaml);"
                          " set it under pretrain: or sft: only")
    for name in values["as_segments"]:
        if name not in talking:
            raise ConfigError(f"as_segments: {name!r} is not a part that writes SFT conversations"
                              f" (those are: {', '.join(talking) or 'none'})")
    settings = {k: values[k] for k in SHARED}
    output = Path(output_dir) if output_dir is not None else Path("output")
    for folder in input_dirs:
        for part in chosen:
            if _wanted(part, shares):
                vet_part(part.name, models=models, prompt_overrides=prompt_overrides,
                           output_dir=part_dir(output, part.name, input_dirs, folder),
                           **part_arguments(part, settings, folder))
    if values["as_segments"] and training.chat_template != "chatml":
        raise ConfigError("as_segments: segments are written in ChatML, so training.chat_template"
                          f" must be chatml (not {training.chat_template!r}); or leave as_segments empty")
    generic = values["generic_dataset"]
    if shares.get(GENERIC, 0) > 0 and not generic:
        raise ConfigError("mix.generic is above 0 but generic_dataset is not set")
    if generic and shares.get(GENERIC, 0) == 0:
        raise ConfigError("generic_dataset is set but mix.generic is 0: give it a share of the mix")
    if generic and Path(generic).expanduser().exists():  # on this machine: read it now
        load_generic(generic, values["generic_split"])  # each row a conversation, or one line why not
    elif generic and generic.endswith((".json", ".jsonl")):
        raise ConfigError(f"generic_dataset {generic!r}: no such file")
    elif generic and importlib.util.find_spec("datasets") is None:
        raise ConfigError(f"generic_dataset {generic!r} is not a file, and loading a Hugging Face"
                          " dataset needs `datasets` (pip install 'atk-pipeline-expert[hf]')")


_NOTHING_TO_RUN = ("no part has anything to give: every part that writes only conversations has"
                   " share 0 in mix, and no part writes pretraining text or preference pairs")
# Fields of an earlier domain-expert, and what took their place.
_RENAMED = {"corrections_format": "as_segments (as_segments: [correction] for segments)"}
# The fields of domain-expert's own (a part's field beside them is misplaced).
_FIELDS = set(inspect.signature(domain_expert).parameters) - {"kwargs", "task_id"}
