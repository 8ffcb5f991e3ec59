"""Test doubles for factual-qa: a scripted model that answers each step's prompt plausibly."""

import re

from atk_core import RequestError
from atk_core.testing import write_mixed_inputs as write_inputs  # noqa: F401  (for the tests)

# The question a careful writer asks about each sentence of write_inputs' documents: in the
# sentence's own words, of the kind the sentence answers (what, how long, how much, how often).
QUESTIONS = {
    "The waggle dance tells other bees where flowers are.": "What do bees learn from the waggle dance?",
    "Worker bees live about six weeks in summer.": "How long do worker bees live in summer?",
    "Honey holds less than twenty percent water.": "How much water does honey hold?",
    "Lighthouse keepers wound the clockwork every night.":
        "How often did lighthouse keepers wind the clockwork?",
}
_SKIP = frozenset("""a an the and or but of in on at to for from by with as is are was were be been
it its this that these those they their there here who which what when where why how not no
""".split())


def question_about(focus: str, chunk: str) -> str:
    """The question about ``focus``, a sentence of ``chunk``: the one above or, for other
    documents, one about a few words in a row of the sentence (two or three of its content
    words) that the chunk's other sentences have least, so that it asks about this sentence
    and no other; never all of its content words (the answer must say something more)."""
    if focus in QUESTIONS:
        return QUESTIONS[focus]
    tokens = re.findall(r"[\w'-]+", focus)
    content = [t.lower() not in _SKIP for t in tokens]
    others = [s.lower() for s in re.split(r"(?<=[.!?])\s+", " ".join(chunk.split())) if s.strip() != focus]

    def shared(word):  # in how many other sentences (by its first five letters: "tide", "tides")
        return sum(bool(re.search(rf"(?<![\w-]){re.escape(word[:5].lower())}", s)) for s in others)

    spread = [shared(t) for t in tokens]
    most = max(1, min(3, sum(content) - 1))
    windows = [(i, j) for i in range(len(tokens)) for j in range(i, min(i + 4, len(tokens)))
               if content[i] and content[j] and min(2, most) <= sum(content[i:j + 1]) <= most]
    windows = windows or [(i, i) for i in range(len(tokens)) if content[i]][:1]

    def rank(window):  # the fewest words no other sentence has, else the most such; the first
        said = [spread[k] for k in range(window[0], window[1] + 1) if content[k]]
        if not any(said):
            return (0, len(said), 0, window[0])
        return (1, -said.count(0), sum(said), window[0])

    i, j = min(windows, key=rank)
    phrase = " ".join(tokens[i:j + 1])
    return f"What about {phrase}?" if j > i else f"What about the {phrase}?"


def respond(request):
    """Answer like a well-behaved model would, with deliberate trouble on some inputs."""
    system = request.messages[0]["content"]
    user = request.messages[-1]["content"]
    if "whether a passage of text is worth" in system:
        if "Share this page" in user and "Keepers" not in user:
            return {"reason": "navigation only", "suitable": False}
        return {"reason": "it states facts", "suitable": True}
    if "You write quiz questions about facts" in system:
        focus = re.search(r"Sentence: (.*)", user).group(1)
        chunk = re.search(r'"""\n(.*?)\n"""', user, re.S).group(1)
        subject = " ".join(focus.rstrip(".").split()[:3])
        if "rejected" not in user and "waggle" in focus:
            return '{"question": "this is not json'  # fixed on the retry
        if "UNANSWERABLE-FOREVER" in focus:
            return "I would rather not."  # malformed on every attempt
        if "Lighthouse" in focus and "rejected" not in user:
            # Not grounded (a place the chunk does not name): caught by the gate, fixed on the retry.
            return {"question": f"Where did {subject}?", "answer": "They did it on the Golden Coast."}
        if "six weeks" in focus:
            # A question the gates pass (its answer is a length of time, from its sentence) but
            # the small model's vote rejects: the sentence says how long in summer, not in winter.
            return {"question": "How long do worker bees live in winter?", "answer": focus}
        return {"question": question_about(focus, chunk), "answer": focus}
    if "question that the sentence answers" in system:  # answers: sentence
        focus = re.search(r"Sentence: (.*)", user).group(1)
        chunk = re.search(r'"""\n(.*?)\n"""', user, re.S).group(1)
        if "waggle" in focus and "rejected" not in user:
            # the sentence itself behind a question word: caught, then fixed
            return {"question": f"What is {focus[0].lower()}{focus[1:].rstrip('.')}?"}
        return {"question": question_about(focus, chunk)}
    if "check quiz questions" in system:
        return {"reason": "checked", "answerable": "in winter" not in user}
    if "check answers to quiz questions" in system:
        return {"reason": "agrees", "accurate": True}
    if "natural conversation" in system:
        pairs = re.findall(r"Q: (.*)\n\s+A: (.*)", user)
        messages = []
        for question, answer in pairs:
            messages += [{"role": "user", "content": question},
                         {"role": "assistant", "content": answer}]
        return {"messages": messages}
    raise RequestError(f"unexpected prompt: {system[:60]}")
