"""A stand-in model for factual-qa whose every answer passes, so the tests see what was read:
questions about the focus sentence, yes votes, conversations made of the pairs. The scripted
backend imports it by name (``office_fakes:respond``), in-process or in a venv's ``atk run``."""

import re


def respond(request):
    from atk_core.testing import question_about

    system, user = request.messages[0]["content"], request.messages[-1]["content"]
    if "whether a passage of text is worth" in system:
        return {"reason": "it states facts", "suitable": True}
    if "You write quiz questions about facts" in system:
        focus = re.search(r"Sentence: (.*)", user).group(1)
        chunk = re.search(r'"""\n(.*?)\n"""', user, re.S).group(1)
        return {"question": question_about(focus, chunk), "answer": focus}
    if "question that the sentence answers" in system:
        focus = re.search(r"Sentence: (.*)", user).group(1)
        chunk = re.search(r'"""\n(.*?)\n"""', user, re.S).group(1)
        return {"question": question_about(focus, chunk)}
    if "check quiz questions" in system:
        return {"reason": "answerable", "answerable": True}
    if "check answers to quiz questions" in system:
        return {"reason": "accurate", "accurate": True}
    if "natural conversation" in system:
        messages = []
        for question, reply in re.findall(r"Q: (.*)\n\s+A: (.*)", user):
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
        return {"messages": messages}
    return None  # anything else: a value that fits the step's schema
