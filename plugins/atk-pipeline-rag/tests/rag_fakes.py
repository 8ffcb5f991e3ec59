"""Test doubles for rag-data: a scripted model that answers each prompt plausibly."""

import re
import shutil
from pathlib import Path

from atk_core import RequestError

DOCUMENTS = Path(__file__).resolve().parent / "documents"


# The question a careful writer asks about each sentence of documents/: in the sentence's own
# words, of the kind the sentence answers (how many, who, where, why, when...), so that the
# question finds its sentence and no other.
QUESTIONS = {
    "A honey bee colony has one queen, who lays all of the colony's fertilised eggs in the wax"
    " cells of the comb.": "How many queens does a honey bee colony have?",
    "Worker bees make honey from nectar.": "What do worker bees make honey from?",
    "They carry the nectar home and pass it to younger bees, who store it in wax cells.":
        "Where do younger bees store the nectar?",
    "Bread dough rises because of yeast, a single-celled fungus that feeds on the sugars in flour"
    " and gives off carbon dioxide.": "Why does bread dough rise?",
    "Kneading the dough builds a network of gluten.": "What does kneading the dough build?",
    "The gluten traps the carbon dioxide from the yeast, so the bread rises.":
        "What does the gluten trap?",
    "Tides are the regular rise and fall of the sea.": "What are the tides?",
    "They are caused mainly by the pull of the Moon's gravity on the oceans.": "What causes the tides?",
    "Spring tides are the largest tides of the month.": "Which tides are the largest of the month?",
    "They come at new moon and full moon, when the Sun and the Moon pull in a line.":
        "When do spring tides come?",
}


def question_about(focus: str) -> str:
    """The question about a sentence: the one above, or (for documents a test writes itself)
    one that names the sentence's first words."""
    return QUESTIONS.get(focus) or f"What is known about {' '.join(focus.rstrip('.').split()[:3])}?"


def respond(request):
    system = request.messages[0]["content"]
    user = request.messages[-1]["content"]
    if "holds content worth learning" in system:
        return {"reason": "facts", "has_content": True}
    if "You write quiz questions about facts" in system:  # answers: written
        focus = re.search(r"Sentence: (.*)", user).group(1)
        return {"question": question_about(focus), "answer": focus}
    if "question that the sentence answers" in system:  # answers: sentence
        focus = re.search(r"Sentence: (.*)", user).group(1)
        return {"question": question_about(focus)}
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
