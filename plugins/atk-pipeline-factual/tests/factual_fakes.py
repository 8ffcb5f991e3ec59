"""Test doubles for factual-qa: a scripted model that answers each step's prompt plausibly."""

import re

from atk_core import RequestError
from atk_core.testing import question_about as find_its_sentence
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
def question_about(focus: str, chunk: str) -> str:
    """The question about ``focus``, a sentence of ``chunk``: the one above or, for other
    documents, the testing kit's (one about a few words in a row of the sentence that the
    chunk's other sentences have least)."""
    return QUESTIONS.get(focus) or find_its_sentence(focus, chunk)


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
        if "in the training data" in user:  # the exam's retry: the question is a training question
            words = focus.rstrip(".").split()
            return {"question": f"What is said about {' '.join(words[1:4])}?", "answer": focus}
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


def scripted(**extra):
    """A role on the scripted backend answering with ``respond``."""
    return {"backend": "scripted", "respond": respond, **extra}


def run(tmp_path, name="out", models=None, **fields):
    """factual-qa in-process over the mixed test inputs (and a sentence nothing can be asked
    about) in ``tmp_path/in``, into ``tmp_path/name``; its ``RunResult``."""
    from atk_core.testing import run_pipeline

    fields.setdefault("input_dir", str(tmp_path / "in"))
    if not (tmp_path / "in").exists():
        write_inputs(tmp_path / "in")
        (tmp_path / "in" / "never.txt").write_text(
            "UNANSWERABLE-FOREVER is written here, in a sentence nobody can turn into a question.")
    models = models or {"small": scripted(), "large": scripted()}
    return run_pipeline("factual-qa", output_dir=tmp_path / name, models=models, **fields)
