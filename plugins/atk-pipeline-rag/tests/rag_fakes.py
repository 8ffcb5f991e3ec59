"""Test doubles for rag-data: a scripted model that answers each prompt plausibly."""

import re

from atk_core import RequestError


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
    """Six short documents on three subjects: two on tides, two on bread, two on bees."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "tides-1.txt": "Tides are the regular rise and fall of the sea. They are caused mainly by the"
                       " pull of the Moon's gravity on the oceans.",
        "tides-2.txt": "Spring tides are the largest tides of the month. They come at new moon and full"
                       " moon, when the Sun and the Moon pull in a line.",
        "bread-1.md": "Bread dough rises because of yeast, a single-celled fungus that feeds on the"
                      " sugars in flour and gives off carbon dioxide.",
        "bread-2.md": "Kneading the dough builds a network of gluten. The gluten traps the carbon"
                      " dioxide from the yeast, so the bread rises.",
        "bees-1.txt": "A honey bee colony has one queen, who lays all of the colony's fertilised eggs"
                      " in the wax cells of the comb.",
        "bees-2.txt": "Worker bees make honey from nectar. They carry the nectar home and pass it to"
                      " younger bees, who store it in wax cells.",
    }
    for name, text in texts.items():
        (folder / name).write_text(text + "\n")
    return folder
