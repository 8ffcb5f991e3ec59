"""What a pipeline writes, declared: each output's file, kind and format.

A pipeline lists its outputs in its registration::

    OUTPUTS = (
        Output("glossary.messages.jsonl", "sft", "messages", primary=True),
        Output("definitions.jsonl", "records", description="each term with its source"),
    )
    register(Pipeline(name="glossary", function=glossary, outputs=OUTPUTS))

and everything downstream reads the declaration, never a file name: a
composing pipeline such as domain-expert takes a part's SFT conversations
into its mix and its pretraining text into its pretraining stage by *kind*;
``atk export`` writes one dataset config per declared output; ``atk
inspect``, ``atk list``, ``atk init`` and ``atk serve`` show them. A run's
``manifest.json`` says, under ``declared_outputs``, the declaration of every
file it wrote.

Kinds, and the formats a file of each kind may have:

- ``pretraining``: text for continued pretraining; format ``text``
  (``{"text": ...}`` per line);
- ``sft``: conversations to fine-tune on; ``messages`` (``{"messages":
  [{"role", "content"}]}``, OpenAI's), ``sharegpt`` (``{"conversations":
  [{"from", "value"}]}``) or ``segments`` (Axolotl ``input_output``);
- ``preference``: a prompt with a chosen and a rejected answer, for DPO;
  format ``preference`` (``{"prompt": [messages], "chosen": [message],
  "rejected": [message]}``, the conversational form TRL and Axolotl's
  ``chat_template.default`` read);
- ``exam``: questions held out from training, with reference answers;
  format ``exam``;
- ``records``: anything else (pairs with their offsets, retrieval logs,
  where each line of another file came from); format ``records``.

A file name may hold ``*`` (any characters), for a pipeline whose files
depend on its config; a written file takes the declaration that names it, or
else the first pattern it matches, in the order they are declared (so
declare ``*.sources.jsonl`` before ``pretraining/*.jsonl``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from ..errors import PluginError

# kind -> (what it is, in words; the formats a file of that kind may have)
KINDS = {
    "pretraining": ("pretraining text", ("text",)),
    "sft": ("SFT conversations", ("messages", "sharegpt", "segments")),
    "preference": ("preference pairs", ("preference",)),
    "exam": ("an exam", ("exam",)),
    "records": ("plain records", ("records",)),
}
# What a kind is trained with: the kinds a training mix can take.
TRAINABLE = ("pretraining", "sft", "preference")


@dataclass(frozen=True)
class Output:
    """One file a pipeline writes (see the module's text). ``format`` defaults to the kind's
    only format (an ``sft`` output must name its own); ``primary`` marks the file a
    person should read first (at most one per pipeline); ``sources`` names a ``records``
    output that says, line for line, where each record of this one came from."""

    file: str
    kind: str
    format: str | None = None
    primary: bool = False
    description: str = ""
    sources: str | None = None

    def __post_init__(self):
        if not isinstance(self.file, str) or not self.file.endswith(".jsonl") or self.file.startswith("/") \
                or "\\" in self.file or any(p in ("", ".", "..") for p in self.file.split("/")):
            raise PluginError(f"output {self.file!r}: a file is a relative path ending in .jsonl,"
                              " with no '..' in it")
        if self.kind not in KINDS:
            raise PluginError(f"output {self.file!r}: kind {self.kind!r} is not one of"
                              f" {', '.join(KINDS)}")
        formats = KINDS[self.kind][1]
        if self.format is None:
            if len(formats) > 1:
                raise PluginError(f"output {self.file!r}: a {self.kind} output names its format"
                                  f" ({', '.join(formats)})")
            object.__setattr__(self, "format", formats[0])
        elif self.format not in formats:
            raise PluginError(f"output {self.file!r}: a {self.kind} output's format is one of"
                              f" {', '.join(formats)}, not {self.format!r}")
        if self.sources is not None and not (isinstance(self.sources, str) and self.sources.endswith(".jsonl")):
            raise PluginError(f"output {self.file!r}: sources names another .jsonl output")

    @property
    def described(self) -> str:
        """The kind in words, with the format: ``SFT conversations (messages)``."""
        return described({"kind": self.kind, "format": self.format})

    def matches(self, file: str) -> bool:
        return fnmatch.fnmatchcase(file, self.file) if "*" in self.file else file == self.file

    def to_dict(self) -> dict:
        entry = {"file": self.file, "kind": self.kind, "format": self.format}
        if self.primary:
            entry["primary"] = True
        if self.description:
            entry["description"] = self.description
        if self.sources:
            entry["sources"] = self.sources
        return entry


def checked_outputs(owner: str, outputs) -> tuple[Output, ...]:
    """``outputs`` as a tuple of ``Output``, or ``PluginError`` naming ``owner``: each an
    ``Output``, no file twice, at most one primary, each ``sources`` itself declared."""
    if outputs is None:
        return ()
    if isinstance(outputs, Output) or not isinstance(outputs, (list, tuple)):
        raise PluginError(f"{owner}: outputs must be a list of atk_core.Output")
    outputs = tuple(outputs)
    for output in outputs:
        if not isinstance(output, Output):
            raise PluginError(f"{owner}: outputs must be a list of atk_core.Output, not {output!r}")
    files = [o.file for o in outputs]
    twice = sorted({f for f in files if files.count(f) > 1})
    if twice:
        raise PluginError(f"{owner}: output {twice[0]!r} is declared twice")
    primary = [o.file for o in outputs if o.primary]
    if len(primary) > 1:
        raise PluginError(f"{owner}: only one output is primary, not {', '.join(primary)}")
    for output in outputs:
        if output.sources and not any(o.file == output.sources and o.kind == "records" for o in outputs):
            raise PluginError(f"{owner}: output {output.file!r} names sources {output.sources!r},"
                              " which is not declared as a records output")
    return outputs


def declaration_of(outputs, file: str) -> Output | None:
    """The declaration in ``outputs`` of ``file``: the one naming it exactly, else the first
    pattern it matches, in the order they are declared; or None."""
    exact = [o for o in outputs if o.file == file]
    return exact[0] if exact else next((o for o in outputs if o.matches(file)), None)


def of_kind(outputs, kind: str) -> list[Output]:
    return [o for o in outputs if o.kind == kind]


def described(declaration) -> str:
    """A declaration as a manifest holds it (``{"kind", "format"}``), in words: ``SFT
    conversations (messages)``, ``preference pairs``; "" for anything else."""
    if not isinstance(declaration, dict) or declaration.get("kind") not in KINDS:
        return ""
    words, formats = KINDS[declaration["kind"]]
    return f"{words} ({declaration.get('format')})" if len(formats) > 1 else words
