"""Training formats: one conversation written as ShareGPT, as OpenAI messages, or as Axolotl
``input_output`` segments; a preference pair; and the writer that puts a set of
conversations into every format a pipeline declares.

A conversation is a list of ``{"role": "system"|"user"|"assistant", "content"}``
messages. ``sharegpt`` renames roles the ShareGPT way (``human``, ``gpt``);
``segments`` renders the conversation as ChatML text cut into labelled
pieces, for Axolotl's ``input_output`` type, where only the pieces labelled
``true`` are trained: by default the last assistant answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .files import atomic_write_jsonl
from .outputs import Output

SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def sharegpt(messages) -> dict:
    """``{"conversations": [{"from": "system"|"human"|"gpt", "value": ...}]}``; a message's
    ``weight`` (0: context, not trained) is kept."""
    return {"conversations": [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"],
                               **({"weight": m["weight"]} if "weight" in m else {})}
                              for m in messages]}


def chatml(role: str, content: str) -> str:
    """One message as ChatML text: ``<|im_start|>role\\ncontent<|im_end|>\\n``."""
    return f"<|im_start|>{role}\n{content}<|im_end|>\n"


def segments(messages, train: Callable[[int, dict], bool] | None = None) -> dict:
    """``{"segments": [{"label": bool, "text": ...}]}``: the conversation as ChatML, where a
    message that ``train(index, message)`` accepts (default: the last assistant message)
    is trained, its role header excepted, and everything else is context. Neighbouring
    pieces with the same label are joined; the texts together are the whole conversation."""
    messages = list(messages)
    if train is None:
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        train = lambda index, message: index == last  # noqa: E731
    pieces: list[dict] = []

    def add(label: bool, text: str):
        if pieces and pieces[-1]["label"] == label:
            pieces[-1]["text"] += text
        else:
            pieces.append({"label": label, "text": text})

    for index, message in enumerate(messages):
        if train(index, message):
            add(False, f"<|im_start|>{message['role']}\n")
            add(True, f"{message['content']}<|im_end|>\n")
        else:
            add(False, chatml(message["role"], message["content"]))
    return {"segments": pieces}


# -- a set of conversations, in every declared format -------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """One conversation of a dataset: a stable ``id`` (the same inputs and config give the
    same ids) and its messages, ``{"role", "content"}``; an assistant message with
    ``"weight": 0`` is context, not trained (every other assistant message is)."""

    id: str
    messages: list = field(default_factory=list)

    def trained(self, index: int, message: dict) -> bool:
        return message["role"] == "assistant" and message.get("weight", 1) != 0


def conversation_row(conversation: Conversation, format: str) -> dict:
    """The line a conversation is in ``format`` (``messages``, ``sharegpt`` or ``segments``),
    its id first. ``messages`` keeps a ``weight`` a message has; ``segments`` trains the
    messages ``Conversation.trained`` says."""
    if format == "messages":
        row = {"messages": [dict(m) for m in conversation.messages]}
    elif format == "sharegpt":
        row = sharegpt(conversation.messages)
    elif format == "segments":
        row = segments(conversation.messages, conversation.trained)
    else:
        raise ValueError(f"{format!r} is not a conversation format (messages, sharegpt, segments)")
    return {"id": conversation.id, **row}


def write_conversations(output_dir, conversations: list[Conversation], outputs, record) -> list[str]:
    """Write ``conversations`` to every ``sft`` output among ``outputs`` (a pipeline's
    declared ``Output``s), each in its format, atomically, and count each file in
    ``record`` (a ``RunRecord``), so the manifest lists it under its declaration. Returns
    the files written."""
    written = []
    for output in outputs:
        if output.kind != "sft":
            continue
        rows = [conversation_row(c, output.format) for c in conversations]
        atomic_write_jsonl(Path(output_dir) / output.file, rows)
        record.wrote(output.file, len(rows))
        written.append(output.file)
    if not written:
        raise ValueError("write_conversations: none of the outputs given is an sft output")
    return written


def preference_row(id: str, prompt: list, chosen: str, rejected: str) -> dict:
    """One preference pair in the conversational form TRL's DPO trainer and Axolotl's
    ``chat_template.default`` DPO type read: ``prompt`` the messages before the answer,
    ``chosen`` and ``rejected`` each one assistant message."""
    return {"id": id, "prompt": [{"role": m["role"], "content": m["content"]} for m in prompt],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


def write_records(output_dir, rows: list, output: Output, record) -> None:
    """Write ``rows`` as the declared ``output`` (any kind), atomically, and count it in
    ``record``."""
    atomic_write_jsonl(Path(output_dir) / output.file, rows)
    record.wrote(output.file, len(rows))
