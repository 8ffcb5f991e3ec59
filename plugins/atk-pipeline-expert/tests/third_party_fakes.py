"""The answers of a scripted model for domain-expert's four parts (expert_fakes) and for the
parts that test_parts_from_wheels installs beside them: a third party's glossary pipeline and
a pipeline made with `atk new pipeline`."""

import re

from expert_fakes import respond as expert_respond


def _passage(user: str) -> str:
    return user.split("\n\n", 1)[1]


def respond(request):
    system = request.messages[0]["content"]
    user = request.messages[-1]["content"]
    if "You keep a glossary" in system:
        passage = _passage(user)
        term = max(re.findall(r"[A-Za-z]{5,}", passage), key=len).lower()
        sentence = next(s for s in re.split(r"(?<=[.!?])\s+", passage) if term in s.lower())
        return {"term": term, "definition": f"In these documents, {term} is used here: {sentence.strip()}"}
    if "You summarize passages" in system:
        return re.split(r"(?<=[.!?])\s+", " ".join(_passage(user).split()))[0]
    return expert_respond(request)
