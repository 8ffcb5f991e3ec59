"""Test doubles for repvar: a scripted model that answers each prompt plausibly, from the chunk
it is given, with deliberate trouble on some inputs."""

import json
import re

from atk_core import RequestError


def _chunk(user: str) -> str:
    return re.search(r'"""\n(.*?)\n"""', user, re.S).group(1)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if len(s.split()) > 3]


def _subjects(sentences: list[str]) -> list[str]:
    """A key for each sentence: its first words, lower-cased, as many as make it unique."""
    keys = []
    for sentence in sentences:
        words = re.findall(r"[\w'-]+", sentence.lower())
        size = 2
        while " ".join(words[:size]) in keys and size < len(words):
            size += 1
        keys.append(" ".join(words[:size]))
    return keys


def respond(request):
    system = request.messages[0]["content"]
    user = request.messages[-1]["content"]
    if "holds content worth learning" in system:
        return {"reason": "facts", "has_content": "Share this page" not in user}
    if "You list the facts a passage states" in system:
        if "GIBBERISH-FACTS" in user:
            return {"facts": ["the_fact_1", "Unicorns run the Bank of England."]}  # none grounded
        return {"facts": _sentences(_chunk(user))[:3]}
    if "You restate what a passage says" in system:
        chunk = _chunk(user)
        sentences = list(reversed(_sentences(chunk)))  # a restatement, not the chunk in order
        if "essay" in user and "rejected" not in user:
            return chunk  # a copy of the chunk: caught, then restated on the retry
        if "questions and answers" in user:
            return "\n".join(f"Question: What about {' '.join(s.split()[:3])}? Answer: {s}"
                             for s in sentences)
        if "as a list" in user:
            return "\n".join(f"- {s}" for s in sentences)
        if "JSON object" in user:  # keys that name each fact's subject, as the prompt asks
            return json.dumps(dict(zip(_subjects(sentences), sentences)))
        if "as XML" in user:
            return "<facts>" + "".join(f"<fact>{s}</fact>" for s in sentences) + "</facts>"
        # every other form: the sentences, in another order, each said once
        return " ".join(sentences)
    raise RequestError(f"unexpected prompt: {system[:60]}")


def write_inputs(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tides.txt").write_text(
        "Tides are the regular rise and fall of the sea. They are caused mainly by the pull of the"
        " Moon's gravity on the oceans, with a smaller pull from the Sun. Most coasts have two high"
        " tides and two low tides about every 24 hours and 50 minutes.\n")
    (folder / "bread.md").write_text(
        "# Bread\n\nBread dough rises because of yeast, a single-celled fungus. When yeast feeds on"
        " the sugars in flour, it gives off carbon dioxide gas. Kneading builds a network of gluten"
        " that traps the gas, so the dough swells.\n")
    (folder / "nav.html").write_text(
        "<html><body><p>Home page of the tide tables.</p><p>Share this page with your friends"
        " today.</p></body></html>")
    # Two sentences, so that a restatement can be more than the one sentence again (a copy).
    (folder / "odd.txt").write_text(
        "GIBBERISH-FACTS appear here in a plain sentence about the sea and the tides today. The"
        " sea rises and falls with the tides twice a day on most coasts.\n")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    return folder
