"""Test doubles for correction: a scripted model that answers each prompt plausibly, and
makes the mistakes the gates are there to catch."""

import re
import shutil
from pathlib import Path

from atk_core import RequestError

DOCUMENTS = Path(__file__).resolve().parent / "documents"


def _focus(user):
    return re.search(r"Sentence: (.*)", user).group(1)


# The question a careful writer asks about each sentence of documents/: in the sentence's own
# words, of the kind the sentence answers (how many, where, why, when...), so that the question
# finds its sentence and no other, and does not already say the answer.
QUESTIONS = {
    "Bees of a colony serve one queen, who lays up to 2,000 eggs a day in summer.":
        "How many eggs does the queen of a bee colony lay a day?",
    "Worker bees in Europe make honey from the nectar of flowers.": "Where do worker bees make honey?",
    "Bread dough rises because of yeast, which feeds on the sugars in flour.":
        "Why does bread dough rise?",
    "Kneading the dough builds a network of gluten that traps the gas.":
        "What does kneading the dough build?",
    "Tides are caused mainly by the pull of the Moon on the oceans.": "What causes the tides?",
    "Most coasts have two high tides in about 25 hours.": "How many high tides do most coasts have?",
    "Spring tides come at new moon and full moon.": "When do spring tides come?",
}


def _question(focus):
    """The question about a sentence: the one above, or (for documents a test writes itself)
    one that names the sentence's first words."""
    return QUESTIONS.get(focus) or f"What is known about {' '.join(focus.rstrip('.').split()[:3])}?"


def respond(request):
    system = request.messages[0]["content"]
    user = request.messages[-1]["content"]
    if "holds content worth learning" in system:
        return {"reason": "facts", "has_content": True}
    if "notice and correct its" in system:  # flaws: written
        focus = _focus(user)
        words = focus.rstrip(".").split()
        value = {"question": _question(focus),
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
        return {"question": _question(_focus(user))}
    if "You write quiz questions about facts" in system:  # flaws: altered, answers: written
        focus = _focus(user)
        return {"question": _question(focus), "answer": focus}
    if "answered twice" in system:
        return {"reason": "checked", "confirmed": "Corrected answer: Kneading" not in user}
    raise RequestError(f"unexpected prompt: {system[:60]}")


def write_inputs(folder):
    """Three short documents with numbers, names and plain statements (the files in
    documents/), copied to ``folder``."""
    shutil.copytree(DOCUMENTS, folder, dirs_exist_ok=True)
    return folder
