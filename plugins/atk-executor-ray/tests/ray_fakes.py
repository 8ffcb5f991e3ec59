"""A scripted model for factual-qa that answers plausibly and notes which process answered.

Imported by name on the Ray workers too (the cluster's nodes get this folder on
PYTHONPATH), so it must not depend on the test process. With ATK_TEST_CALLS set,
each call appends "PID PARENT TIME" to that file: which process answered (on a Ray
node, its parent is the node's raylet), and when.
"""

import json
import os
import re
import time

from atk_core import RequestError


def note_call():
    path = os.environ.get("ATK_TEST_CALLS")
    if path:
        with open(path, "a", encoding="utf-8") as calls:
            calls.write(f"{os.getpid()} {os.getppid()} {time.time():.4f}\n")


def respond(request):
    note_call()
    return answer(request.messages[0]["content"], request.messages[-1]["content"])


def answer(system, user):
    if "whether a passage of text is worth" in system:
        return {"reason": "it states facts", "suitable": True}
    if "You write quiz questions about facts" in system:
        focus = re.search(r"Sentence: (.*)", user).group(1)
        subject = " ".join(focus.rstrip(".").split()[:3])
        if "kiln" in focus and "rejected" not in user:
            return '{"question": "not json'  # malformed: fixed on the retry
        return {"question": f"What is known about {subject}?", "answer": focus}
    if "check quiz questions" in system:
        return {"reason": "checked", "answerable": "tide" not in user}  # some fail the vote
    if "check answers to quiz questions" in system:
        return {"reason": "agrees", "accurate": True}
    if "natural conversation" in system:
        pairs = re.findall(r"Q: (.*)\n\s+A: (.*)", user)
        messages = []
        for question, reply in pairs:
            messages += [{"role": "user", "content": question},
                         {"role": "assistant", "content": reply}]
        return {"messages": messages}
    raise RequestError(f"unexpected prompt: {system[:60]}")


def server_answer(text, payload):
    """The same answers from an OpenAI-compatible server (FakeOpenAIServer's ``answer``)."""
    messages = payload["messages"]
    value = answer(messages[0]["content"], messages[-1]["content"])
    return value if isinstance(value, str) else json.dumps(value)


DOCUMENTS = {
    "glassworks.txt": (
        "The Marrowby glassworks opened in 1841 beside the river Tenn. Its first kiln burned "
        "beech wood brought down the river on flat barges. The works made green bottle glass "
        "for the breweries of the valley. In 1867 a second kiln was built for clear window "
        "glass. The glassblowers worked in shifts of eight hours through the night. A fire in "
        "1902 destroyed the packing sheds but spared both kilns. The works closed in 1931, when "
        "the breweries began to buy bottles from larger factories in the north."),
    "salt_marsh.txt": (
        "The Hallow salt marsh covers about four hundred hectares at the mouth of the Tenn. "
        "Twice a day the tide floods its lower channels with sea water. Samphire and sea "
        "lavender grow on the higher mud where the water lies for only an hour. Redshanks nest "
        "in the tussocks from April to July. The marsh was embanked for grazing in 1790, and "
        "the banks were breached on purpose in 2004 to let the sea back in. Since then the "
        "number of wading birds counted each winter has more than doubled."),
    "ferry.txt": (
        "A chain ferry crossed the Tenn at Colby from 1853 until the bridge opened in 1962. "
        "The ferry was pulled across on two iron chains laid on the river bed. It carried a "
        "cart and horses or up to forty people on each crossing. The ferryman's cottage still "
        "stands on the eastern bank and is now a small museum. The last ferryman, Arthur "
        "Penhale, kept a log of every crossing for thirty years. His logs record the great "
        "flood of 1912, when the ferry could not run for eleven days."),
    "orchard.txt": (
        "The Pellow orchard grows forty old varieties of cider apple on a south facing slope. "
        "The oldest trees were planted in 1880 and are still picked each October. Sheep graze "
        "under the trees in summer and keep the grass short. The apples are pressed in a "
        "wooden screw press that was built in the village in 1911. A wassail is held in the "
        "orchard every January to wish the trees a good harvest."),
}
