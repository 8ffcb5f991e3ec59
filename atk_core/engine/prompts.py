"""Prompts live in files beside the pipeline, not in its code.

A chat prompt is a YAML list of ``{role, content}``; a completion prompt is a
``.txt`` file. ``{name}`` is a placeholder; ``{{`` and ``}}`` are literal
braces, and braces around anything that is not a plain name (a JSON example)
stay as they are. A run's ``prompt_overrides`` folder is searched before the
pipeline package's ``prompts/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .confinement import outside_readable
from ..errors import ConfigError, PipelineError

EXTENSIONS = (".yaml", ".yml", ".txt")
RETRY_NOTE_FILE = "retry_note.txt"
# What ``{retry_note}`` says after a rejected answer, unless a prompt folder has RETRY_NOTE_FILE.
RETRY_NOTE = "\n\nYour previous answer was rejected: {problem}. Answer again and fix this."
ROLES = ("system", "user", "assistant")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PromptError(PipelineError):
    """A prompt file is missing, malformed, or asks for a value nobody gave it."""


@dataclass(frozen=True)
class Prompt:
    """A loaded prompt: chat ``messages`` or a completion ``text``."""

    name: str
    source: str  # where it was read from, for error messages
    messages: tuple | None = None
    text: str | None = None

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def placeholders(self) -> set[str]:
        parts = [m["content"] for m in self.messages] if self.is_chat else [self.text]
        return {m.group(1) for part in parts for m in _PLACEHOLDER.finditer(part) if m.group(1)}

    def own_words(self) -> str:
        """The prompt's own text (instructions, examples), its placeholders left out: what an
        answer should not copy."""
        parts = [m["content"] for m in self.messages] if self.is_chat else [self.text]
        return "\n".join(_PLACEHOLDER.sub(lambda m: "" if m.group(1) else m.group(0)[0], part)
                         for part in parts)

    def render(self, values: dict):
        """Fill the placeholders: a list of messages for chat, a string for completion."""
        if self.is_chat:
            return [{"role": m["role"], "content": self._fill(m["content"], values)}
                    for m in self.messages]
        return self._fill(self.text, values)

    def _fill(self, text: str, values: dict) -> str:
        def replace(match):
            token = match.group(0)
            if token == "{{":
                return "{"
            if token == "}}":
                return "}"
            name = match.group(1)
            if name not in values:
                raise PromptError(
                    f"prompt {self.source} uses {{{name}}}, but no value named {name!r} was given"
                    f" (given: {', '.join(sorted(values)) or 'none'})"
                )
            return str(values[name])

        return _PLACEHOLDER.sub(replace, text)


def parse_prompt(text: str, name: str, source: str) -> Prompt:
    """A Prompt from file text; ``source`` ends in .txt for completion prompts."""
    if source.endswith(".txt"):
        return Prompt(name=name, source=source, text=text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PromptError(f"prompt {source}: invalid YAML{where}") from None
    if not isinstance(data, list) or not data:
        raise PromptError(f"prompt {source}: a chat prompt is a YAML list of {{role, content}}")
    messages = []
    for i, item in enumerate(data):
        if (not isinstance(item, dict) or set(item) != {"role", "content"}
                or item["role"] not in ROLES or not isinstance(item["content"], str)):
            raise PromptError(
                f"prompt {source}: item {i + 1} must be {{role: system|user|assistant, content: text}}"
            )
        messages.append({"role": item["role"], "content": item["content"]})
    return Prompt(name=name, source=source, messages=tuple(messages))


class PromptLibrary:
    """Finds prompts: the override folder first, then the pipeline's ``prompts/``."""

    def __init__(self, package_prompts=None, overrides: str | Path | None = None):
        if isinstance(package_prompts, str):
            package_prompts = Path(package_prompts)
        self.package_prompts = package_prompts  # a Traversable or Path, or None
        self.overrides = Path(overrides) if overrides else None
        self._cache: dict[str, Prompt] = {}
        self._retry_note: str | None = None

    @classmethod
    def for_run(cls, run) -> "PromptLibrary":
        return cls(run.pipeline.prompts(), run.prompt_overrides)

    def _places(self):
        """Where prompts are looked for, in order, with how to name each in messages."""
        if self.overrides is not None:
            yield self.overrides, str(self.overrides)
        if self.package_prompts is not None:
            yield self.package_prompts, "the pipeline's prompts/"

    def retry_note(self) -> str:
        """What ``{retry_note}`` says after a rejected answer; ``{problem}`` is the reason.

        ``retry_note.txt`` in the override folder or the pipeline's ``prompts/``
        (its text, after a blank line), else atk's own sentence: the words the
        model sees stay out of code and can be changed like any prompt.
        """
        if self._retry_note is None:
            entry = next((folder / RETRY_NOTE_FILE for folder, _ in self._places()
                          if (folder / RETRY_NOTE_FILE).is_file()), None)
            text = self._read(entry).strip() if entry is not None else ""
            self._retry_note = "\n\n" + text if text else RETRY_NOTE
        return self._retry_note

    def names(self, folder: str = "") -> list[str]:
        """The prompts in a (sub)folder, override folder and package together, by name
        (``variations/essay`` for ``variations/essay.yaml``), sorted: a user adds one by
        putting a file in the override folder's subfolder."""
        found = set()
        for place, _ in self._places():
            directory = place / folder if folder else place
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                if entry.is_file() and entry.name.endswith(EXTENSIONS) and entry.name != RETRY_NOTE_FILE:
                    stem = entry.name.rsplit(".", 1)[0]
                    found.add(f"{folder}/{stem}" if folder else stem)
        return sorted(found)

    def _read(self, entry) -> str:
        """A prompt file's text; one of the override folder's only if the run may read it."""
        if self.overrides is not None and isinstance(entry, Path):
            why = outside_readable(entry)
            if why:
                raise ConfigError(f"prompt override {str(entry)!r}: {why}")
        return entry.read_text(encoding="utf-8")

    def load(self, name: str) -> Prompt:
        if name not in self._cache:
            self._cache[name] = self._find(name)
        return self._cache[name]

    def _find(self, name: str) -> Prompt:
        candidates = [name] if name.endswith(EXTENSIONS) else [name + ext for ext in EXTENSIONS]
        places = list(self._places())
        for folder, label in places:
            for candidate in candidates:
                entry = folder / candidate
                if entry.is_file():
                    source = f"{label.rstrip('/')}/{candidate}" if label.startswith("the") else str(entry)
                    return parse_prompt(self._read(entry), name, source)
        searched = " or ".join(label for _, label in places) or "no prompt folder"
        raise ConfigError(f"prompt {name!r} not found in {searched}")
