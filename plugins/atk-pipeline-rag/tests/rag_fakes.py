"""Test doubles for rag-data: a scripted model that answers each prompt plausibly."""

import re
import shutil
from pathlib import Path

from atk_core import RequestError

DOCUMENTS = Path(__file__).resolve().parent / "documents"


def respond(request):
    system = request.messages[0]["content"]
    user = request.messages[-1]["content"]
    if "holds content worth learning" in system:
        return {"reason": "facts", "has_content": True}
    if "You write quiz questions about facts" in system:  # answers: written
        focus = re.search(r"Sentence: (.*)", user).group(1)
        words = focus.rstrip(".").split()
        return {"question": f"What is known about {' '.join(words[:3])}?", "answer": focus}
    if "question that the sentence answers" in system:  # answers: sentence
        focus = re.search(r"Sentence: (.*)", user).group(1)
        return {"question": f"What is known about {' '.join(focus.split()[:3])}?"}
    if "do not hold the answer" in system:
        question = re.search(r"question: (.*?)(?:\n|$)", user).group(1)
        if "rejected" not in user and "tides" in question.lower():
            return {"answer": "The tides rise by 15 metres."}  # not a refusal: asked again
        return {"answer": "The documents I was given do not say, so I cannot tell you."}
    raise RequestError(f"unexpected prompt: {system[:60]}")


def write_inputs(folder):
    """Six short documents on three subjects, two on each (the files in documents/),
    copied to ``folder``."""
    shutil.copytree(DOCUMENTS, folder, dirs_exist_ok=True)
    return folder
