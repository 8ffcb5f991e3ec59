"""Test doubles for factual-qa: a scripted model that answers each step's prompt plausibly."""

import re

from atk_core import RequestError
from atk_core.testing import write_mixed_inputs as write_inputs  # noqa: F401  (for the tests)


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
        subject = " ".join(focus.rstrip(".").split()[:3])
        if "rejected" not in user and "waggle" in focus:
            return '{"question": "this is not json'  # fixed on the retry
        if "UNANSWERABLE-FOREVER" in focus:
            return "I would rather not."  # malformed on every attempt
        if "Lighthouse" in focus and "rejected" not in user:
            # Not grounded (a place the chunk does not name): caught by the gate, fixed on the retry.
            return {"question": f"Where did {subject}?", "answer": "They did it on the Golden Coast."}
        if "six weeks" in focus:  # a question the small model's vote rejects
            return {"question": f"Why does it matter that {subject}?", "answer": focus}
        return {"question": f"What is known about {subject}?", "answer": focus}
    if "question that the sentence answers" in system:  # answers: sentence
        focus = re.search(r"Sentence: (.*)", user).group(1)
        if "waggle" in focus and "rejected" not in user:
            return {"question": focus.rstrip(".") + "?"}  # the sentence itself: caught, then fixed
        return {"question": f"What is known about {' '.join(focus.rstrip('.').split()[:3])}?"}
    if "check quiz questions" in system:
        return {"reason": "checked", "answerable": "Why does" not in user}
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
