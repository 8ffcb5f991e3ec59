"""Training formats: one conversation written as ShareGPT, as OpenAI messages, or as Axolotl
``input_output`` segments.

A conversation is a list of ``{"role": "system"|"user"|"assistant", "content"}``
messages. ``sharegpt`` renames roles the ShareGPT way (``human``, ``gpt``);
``segments`` renders the conversation as ChatML text cut into labelled
pieces, for Axolotl's ``input_output`` type, where only the pieces labelled
``true`` are trained: by default the last assistant answer.
"""

from __future__ import annotations

from typing import Callable

SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def sharegpt(messages) -> dict:
    """``{"conversations": [{"from": "system"|"human"|"gpt", "value": ...}]}``."""
    return {"conversations": [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]}
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
