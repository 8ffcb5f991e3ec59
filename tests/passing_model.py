"""A stand-in model for factual-qa whose every answer passes: on-topic questions, yes votes,
faithful conversations. The scripted backend imports it by name in `atk run` subprocesses
(``passing_model:respond``, with this folder on PYTHONPATH); FakeOpenAIServer answers with
``server_answer``."""

import re
import zlib


def answer(system: str, user: str):
    if "whether a passage of text is worth" in system:
        return {"reason": "it states facts", "suitable": True}
    if "You write quiz questions about facts" in system:
        from atk_core.testing import question_about

        focus = re.search(r"Sentence: (.*)", user).group(1)
        chunk = re.search(r'"""\n(.*?)\n"""', user, re.S).group(1)
        return {"question": question_about(focus, chunk), "answer": focus}
    if "check quiz questions" in system:
        return {"reason": "answerable", "answerable": True}
    if "check answers to quiz questions" in system:
        return {"reason": "accurate", "accurate": True}
    if "natural conversation" in system:
        messages = []
        for question, reply in re.findall(r"Q: (.*)\n\s+A: (.*)", user):
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
        return {"messages": messages}
    raise ValueError("unexpected prompt")


def respond(request):
    return answer(request.messages[0]["content"], request.messages[-1]["content"])


def respond_sometimes_no(request):
    """The same, but the question check says no to about half of the questions."""
    system, user = request.messages[0]["content"], request.messages[-1]["content"]
    if "check quiz questions" in system:
        return {"reason": "checked", "answerable": zlib.crc32(user.encode()) % 2 == 0}
    return respond(request)


def server_answer(text, payload):
    return answer(payload["messages"][0]["content"], payload["messages"][-1]["content"])
