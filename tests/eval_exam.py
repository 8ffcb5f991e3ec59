"""A hand-written exam for ``atk eval``'s tests, about two documents made up for them (so no
model can know the answers from elsewhere), and scripted models that answer it.

Each item is what a run's ``exam/exam.jsonl`` holds: the question, its reference answer, the
passage it comes from (for open book), its source, and whether training saw it."""

import json
from pathlib import Path

VARROW = (
    "The Isle of Varrow lies eleven miles off the northern coast and has about 340 residents. "
    "Its only village, Scarholm, grew up around a herring harbour built in 1843. "
    "A ferry called the Morwen Lass crosses to the mainland twice a day in summer and once a day in winter. "
    "The island's lighthouse was designed by the engineer Ada Pellow and first lit in 1871. "
    "Varrow sheep are small and brown, and their wool is spun on the island into a yarn called skelly. "
    "Peat from the western moor was the main fuel until the island was joined to the grid in 1967."
)
BRENNET = (
    "The Brennet clock works in Dunmore made tower clocks from 1790 until it closed in 1932. "
    "Its founder, Josiah Brennet, had trained as a blacksmith in Leeds. "
    "The works' largest clock, for Saint Oda's church, has a dial four metres across. "
    "Brennet clocks were wound by hand once a week, which took a strong man about twenty minutes. "
    "In 1888 the works built the first electric clock in the county, for the Dunmore railway station. "
    "The last Brennet clock still running keeps time in the market hall at Kelby."
)
DOCUMENTS = {"varrow.txt": VARROW, "brennet.txt": BRENNET}

# (source, question, reference answer, seen)
ITEMS = [
    ("varrow.txt", "How far off the northern coast does the Isle of Varrow lie?", "Eleven miles.", True),
    ("varrow.txt", "About how many people live on the Isle of Varrow?", "About 340 residents.", True),
    ("varrow.txt", "What is the name of the only village on Varrow?", "Scarholm.", True),
    ("varrow.txt", "In what year was the herring harbour of Scarholm built?", "In 1843.", True),
    ("varrow.txt", "What is the ferry to the Isle of Varrow called?", "The Morwen Lass.", True),
    ("varrow.txt", "How often does the Varrow ferry cross in winter?", "Once a day.", False),
    ("varrow.txt", "Who designed the lighthouse on Varrow?", "The engineer Ada Pellow.", True),
    ("varrow.txt", "When was the Varrow lighthouse first lit?", "In 1871.", False),
    ("varrow.txt", "What is the yarn spun from Varrow sheep's wool called?", "Skelly.", True),
    ("varrow.txt", "When was the Isle of Varrow joined to the electricity grid?", "In 1967.", False),
    ("brennet.txt", "What did the Brennet clock works in Dunmore make?", "Tower clocks.", True),
    ("brennet.txt", "In what year did the Brennet clock works close?", "In 1932.", True),
    ("brennet.txt", "What trade had Josiah Brennet trained in?", "He trained as a blacksmith.", True),
    ("brennet.txt", "In which city did Josiah Brennet train?", "In Leeds.", False),
    ("brennet.txt", "How wide is the dial of the Brennet clock at Saint Oda's church?", "Four metres across.", True),
    ("brennet.txt", "How often were Brennet clocks wound?", "By hand once a week.", True),
    ("brennet.txt", "How long did winding a Brennet clock take?", "About twenty minutes.", False),
    ("brennet.txt", "For which building did the works build the county's first electric clock?",
     "For the Dunmore railway station.", True),
    ("brennet.txt", "Where does the last running Brennet clock keep time?", "In the market hall at Kelby.", True),
    ("brennet.txt", "In what year did the Brennet works build its first electric clock?", "In 1888.", True),
]


def exam_rows() -> list[dict]:
    rows = []
    for number, (source, question, answer, seen) in enumerate(ITEMS, 1):
        rows.append({"id": f"exam-{number:03d}", "question": question, "answer": answer,
                     "source": source, "context": DOCUMENTS[source], "seen": seen, "taught_by": []})
    return rows


def write_exam(folder) -> Path:
    """The exam as a run writes it: ``folder/exam/exam.jsonl``; returns the file."""
    path = Path(folder) / "exam" / "exam.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in exam_rows()), encoding="utf-8")
    return path


# -- scripted models under test (imported by the scripted backend in the atk subprocess) ------------


def _references() -> list[tuple[str, str]]:
    return [(question, answer) for _, question, answer, _ in ITEMS]


def _asked(request) -> str:
    text = request.messages[-1]["content"]
    return text.rsplit("Question:", 1)[-1].strip()


def from_reference(request):
    """Knows every answer: says the reference, in a sentence of its own."""
    asked = _asked(request)
    answer = next(a for q, a in _references() if q == asked)
    return f"I believe the answer is this: {answer}"


def other_reference(request):
    """Answers every question with the reference of the next one."""
    pairs = _references()
    index = next(i for i, (q, _) in enumerate(pairs) if q == _asked(request))
    return pairs[(index + 1) % len(pairs)][1]


def judge_by_rule(request):
    """A judge that agrees when the answer holds the reference's first word of content."""
    text = request.messages[-1]["content"]
    reference = text.split("Reference answer:", 1)[1].split("\n", 1)[0].strip()
    answer = text.split("Student's answer:", 1)[1].strip()
    key = reference.rstrip(".").split()[-1].lower()
    return {"reason": "compared", "same_fact": key in answer.lower()}


def only_with_passage(request):
    """Knows nothing itself; reads the answer off the passage when it is given one."""
    text = request.messages[-1]["content"]
    if "Passage:" not in text:
        return "I do not know."
    return from_reference(request)


def fails_on_years(request):
    """Refuses every question that asks for a year (a server that errs), knows the rest."""
    from atk_core import RequestError

    if "year" in _asked(request):
        raise RequestError("the server refused this request")
    return from_reference(request)
