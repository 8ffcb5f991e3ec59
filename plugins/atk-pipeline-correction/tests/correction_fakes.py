"""Test doubles for correction: a scripted model that answers each prompt plausibly, and
makes the mistakes the gates are there to catch."""

import re
import shutil
from pathlib import Path

from atk_core import RequestError

DOCUMENTS = Path(__file__).resolve().parent / "documents"


def _focus(user):
    return re.search(r"Sentence: (.*)", user).group(1)


def respond(request):
    system = request.messages[0]["content"]
    user = request.messages[-1]["content"]
    if "holds content worth learning" in system:
        return {"reason": "facts", "has_content": True}
    if "notice and correct its" in system:  # flaws: written
        focus = _focus(user)
        words = focus.rstrip(".").split()
        value = {"question": f"What is known about {' '.join(words[:3])}?",
                 "flawed_answer": f"{' '.join(words[:-1])} Zanzibar.",
                 "follow_up": "Are you sure? That sounds wrong to me."}
        retried = "rejected" in user
        if "Bees" in focus and not retried:
            value["flawed_answer"] = focus  # the right answer: rejected, asked again
        if "Worker" in focus and not retried:
            value["follow_up"] = value["flawed_answer"]  # a copy: asked again
        if "Spring" in focus:
            value["flawed_answer"] = focus  # never wrong: dropped after every attempt
        if "correction" in system:
            value["correction"] = focus
        return value
    if "question that the sentence answers" in system:  # flaws: altered, answers: sentence
        return {"question": f"What is known about {' '.join(_focus(user).split()[:3])}?"}
    if "You write quiz questions about facts" in system:  # flaws: altered, answers: written
        focus = _focus(user)
        return {"question": f"What is known about {' '.join(focus.split()[:3])}?", "answer": focus}
    if "answered twice" in system:
        return {"reason": "checked", "confirmed": "Corrected answer: Kneading" not in user}
    raise RequestError(f"unexpected prompt: {system[:60]}")


def write_inputs(folder):
    """Three short documents with numbers, names and plain statements (the files in
    documents/), copied to ``folder``."""
    shutil.copytree(DOCUMENTS, folder, dirs_exist_ok=True)
    return folder
