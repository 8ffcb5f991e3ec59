"""Test doubles for domain-expert: a scripted model that answers the prompts of all four
parts plausibly, from the text it is given."""

import json
import re
from pathlib import Path

from atk_core import RequestError
from atk_core.testing import write_documents

COAST = {
    "tides.txt": "Tides are the regular rise and fall of the sea. They are caused mainly by the pull"
                 " of the Moon's gravity on the oceans. Most coasts have two high tides about every 24"
                 " hours and 50 minutes. The biggest tides come at new and full moon.",
    "harbours.md": "# Harbours\n\nThe harbour at Kelmouth was dug in 1790 by 300 workmen. Its stone"
                   " pier is 410 metres long and shelters forty fishing boats. The harbour master"
                   " rings a bell at high water so the boats can leave together.",
    "dunes.txt": "Sand dunes form where the wind blows dry sand off a beach. Marram grass traps the"
                 " sand with its roots, so the dune grows taller each year. A dune ridge can move"
                 " inland by 5 metres in a stormy winter.",
}
KITCHEN = {
    "bread.md": "# Bread\n\nBread dough rises because of yeast, a single-celled fungus. When yeast feeds"
                " on the sugars in flour, it gives off carbon dioxide gas. Kneading builds a network of"
                " gluten that traps the gas, so the dough swells.",
    "cheese.txt": "Cheese is made by curdling milk with rennet, an enzyme from the stomachs of calves."
                  " The curds are cut, drained and pressed into moulds. A hard cheese such as cheddar"
                  " is aged for 9 to 24 months in a cool cellar.",
    "jam.txt": "Jam sets because of pectin, a gum found in the cell walls of fruit. Boiling fruit with"
               " sugar to 104 degrees Celsius draws the pectin out. Apples and lemons hold the most"
               " pectin, and strawberries hold little.",
}


def write_inputs(folder):
    """Two folders of three short documents each, on unrelated subjects: folder/coast and
    folder/kitchen."""
    folder = Path(folder)
    write_documents(folder / "coast", COAST)
    write_documents(folder / "kitchen", KITCHEN)
    return folder


def _focus(user):
    return re.search(r"Sentence: (.*)", user).group(1)


def _chunk(user):
    return re.search(r'"""\n(.*?)\n"""', user, re.S).group(1)


def _sentences(text):
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if len(s.split()) > 3]


def _question(focus):
    return f"What is known about {' '.join(focus.rstrip('.').split()[:3])}?"


def _exam_question(focus):
    words = focus.rstrip(".").split()  # the sentence's own words, from its third on: no training question's
    return f"What about {' '.join(words[2:8])}?"


def respond(request):
    system = request.messages[0]["content"]
    user = request.messages[-1]["content"]
    if "whether a passage of text is worth" in system:
        return {"reason": "it states facts", "suitable": True}
    if "holds content worth learning" in system:
        return {"reason": "facts", "has_content": True}
    if "You list the facts a passage states" in system:
        return {"facts": _sentences(_chunk(user))[:2]}
    if "You restate what a passage says" in system:
        sentences = list(reversed(_sentences(_chunk(user))))
        if "JSON object" in user:
            return json.dumps({f"fact {i}": s for i, s in enumerate(sentences, 1)})
        if "as XML" in user:
            return "<facts>" + "".join(f"<fact>{s}</fact>" for s in sentences) + "</facts>"
        if "questions and answers" in user:
            return "\n".join(f"Question: What about {' '.join(s.split()[:3])}? Answer: {s}" for s in sentences)
        return "\n".join(f"- {s}" for s in sentences)
    if "notice and correct its" in system:
        focus = _focus(user)
        value = {"question": _question(focus), "flawed_answer": f"{' '.join(focus.split()[:-1])} Zanzibar.",
                 "follow_up": "Are you sure? That sounds wrong to me."}
        if "correction" in system:  # answers: written
            value["correction"] = focus
        return value
    if "You write exam questions that test" in system:  # the exam (answers: written)
        focus = _focus(user)
        return {"question": _exam_question(focus), "answer": focus}
    if "You write exam questions." in system:  # the exam (answers: sentence)
        return {"question": _exam_question(_focus(user))}
    if "You write quiz questions about facts" in system:
        focus = _focus(user)
        return {"question": _question(focus), "answer": focus}
    if "question that the sentence answers" in system:
        return {"question": _question(_focus(user))}
    if "check quiz questions" in system:
        return {"reason": "checked", "answerable": True}
    if "check answers to quiz questions" in system:
        return {"reason": "agrees", "accurate": True}
    if "answered twice" in system:
        return {"reason": "checked", "confirmed": True}
    if "natural conversation" in system:
        pairs = re.findall(r"Q: (.*)\n\s+A: (.*)", user)
        return {"messages": [m for q, a in pairs for m in ({"role": "user", "content": q},
                                                           {"role": "assistant", "content": a})]}
    if "do not hold the answer" in system:
        return {"answer": "The documents I was given do not say, so I cannot tell you."}
    raise RequestError(f"unexpected prompt: {system[:60]}")


def reads_the_passage(request):
    """A model under test (atk eval) that knows nothing of the documents: with the passage in
    its prompt, it answers with the passage's sentence that shares most words with the question."""
    text = request.messages[-1]["content"]
    if "Passage:" not in text:
        return "I do not know."
    question = set(re.findall(r"\w+", text.rsplit("Question:", 1)[1].lower()))
    return max(_sentences(_chunk(text)), key=lambda s: len(question & set(re.findall(r"\w+", s.lower()))))
