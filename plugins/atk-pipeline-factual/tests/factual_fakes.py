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
    if "write questions and answers" in system:
        if "rejected" not in user and "waggle" in user:
            return '{"questions": [ this is not json'  # fixed on the retry
        if "UNANSWERABLE-FOREVER" in user:
            return "I would rather not."  # malformed on every attempt
        topic = re.search(r'"""\n(.*?)\n"""', user, re.S).group(1).split()[:4]
        subject = " ".join(topic)
        return {"questions": [
            {"question": f"What is said about {subject}?", "answer": f"It says {subject} matters."},
            {"question": f"Why does {subject} matter at all?", "answer": f"Because of {subject}."},
        ]}
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
