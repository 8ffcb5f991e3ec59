"""The meaning gates: an answer of the kind asked for, and a question that finds its own answer
among the passage's sentences (atk_core.toolkit.meaning, through PairGates); and the prose gates on free
text (atk_core.toolkit.prose). Examples are the ones that got through before, from the issue and from
our own notes, then hand-labelled pairs over documents written for the purpose."""

import json
from pathlib import Path

import pytest

from atk_core import PairGates, prose_problem

ROOT = Path(__file__).resolve().parents[1]
LABELLED = ROOT / "bench" / "meaning_pairs"


def kind(problem):
    return problem.kind if problem is not None else None


SAFFRON = (
    "Saffron is a spice made from the dried stigmas of the saffron crocus. Iran grows about nine"
    " tenths of the world's saffron, most of it in the province of Khorasan. About 150,000 flowers"
    " are needed to make one kilogram of dried saffron. The flowers are picked by hand in the early"
    " morning, before the sun wilts them."
)
LIGHTHOUSE = (
    "Point Reyes Lighthouse was the first light on the North Shore of Northern California's coast,"
    " lit in 1870. Its Fresnel lens has 1,032 glass prisms. The lens bends the light of one flame"
    " into a narrow beam that can be seen 24 miles out to sea. A keeper climbed 300 steps every"
    " evening to light the lamp."
)
MOHS = (
    "The Mohs scale is a ranking of minerals by their hardness, that is, by which mineral can"
    " scratch which. It was devised in 1812 by the German mineralogist Friedrich Mohs. A fingernail"
    " has a hardness of about 2.5, and a steel knife blade about 5.5. Talc is the softest mineral on"
    " the scale and diamond the hardest."
)
ROSETTA = (
    "The Rosetta Stone is a slab of granodiorite carved with a decree issued at Memphis in 196 BC."
    " French soldiers found the stone in July 1799 near the town of Rashid. The Rosetta Stone has"
    " been on display in the British Museum in London since 1802. The decree on the Rosetta Stone"
    " is written three times, in hieroglyphs, in Demotic script and in Ancient Greek."
)
TIDES = (
    "Tides are the regular rise and fall of the sea, caused by the pull of the Moon and the Sun."
    " Spring tides are tides with the greatest range between high and low water. They happen when"
    " the Sun, Moon and Earth line up at new moon and full moon. During spring tides the Bay of"
    " Fundy in Canada has a tidal range of up to 16 metres, the largest in the world."
)


@pytest.mark.parametrize("chunk, question, answer, expected", [
    # Our own notes: a true sentence of the document that does not answer its question.
    (SAFFRON, "Which country grows the most saffron?",
     "About 150,000 flowers are needed to make one kilogram of dried saffron.", "answer does not answer"),
    (SAFFRON, "Which country grows the most saffron?",
     "Iran grows about nine tenths of the world's saffron, most of it in the province of Khorasan.", None),
    (LIGHTHOUSE, "What was the first light on the North Shore of Northern California's Coast?",
     "The lens bends the light of one flame into a narrow beam that can be seen 24 miles out to sea.",
     "answer does not answer"),
    (LIGHTHOUSE, "What was the first light on the North Shore of Northern California's Coast?",
     "Point Reyes Lighthouse was the first light on the North Shore of Northern California's coast,"
     " lit in 1870.", None),
    (MOHS, "What is the Mohs scale? How does it measure mineral hardness?",
     "A fingernail has a hardness of about 2.5, and a steel knife blade about 5.5.", "answer does not answer"),
    (MOHS, "What is the Mohs scale? How does it measure mineral hardness?",
     "The Mohs scale is a ranking of minerals by their hardness, that is, by which mineral can scratch"
     " which.", None),
    # The issue's: kept before, dropped now; and the good pair that was dropped, kept now.
    (ROSETTA, "When was the Rosetta Stone found?",
     "The Rosetta Stone has been on display in the British Museum in London since 1802.",
     "answer does not answer"),
    (ROSETTA, "When was the Rosetta Stone found?",
     "French soldiers found the stone in July 1799 near the town of Rashid.", None),
    (ROSETTA, "Where is the Rosetta Stone displayed today?",
     "The Rosetta Stone is a slab of granodiorite carved with a decree issued at Memphis in 196 BC.",
     "answer does not answer"),
    (TIDES, "What are spring tides?",
     "During spring tides the Bay of Fundy in Canada has a tidal range of up to 16 metres, the largest"
     " in the world.", "answer does not answer"),
    (TIDES, "When do spring tides happen?",
     "They happen when the Sun, Moon and Earth line up at new moon and full moon.", None),
    (TIDES, "What are spring tides?", "Spring tides are tides with the greatest range between high and"
     " low water.", None),
])
def test_the_answer_answers_the_question(chunk, question, answer, expected):
    assert kind(PairGates().problem(question, answer, chunk, answer)) == expected


@pytest.mark.parametrize("question, good, bad", [
    ("Who devised the Mohs scale?", "It was devised in 1812 by the German mineralogist Friedrich Mohs.",
     "The Mohs scale was devised in 1812."),
    ("When did French soldiers find the Rosetta Stone?", "French soldiers found the stone in July 1799.",
     "French soldiers found the stone near the town of Rashid."),
    ("When do spring tides happen?", "Spring tides happen at new moon and full moon.",
     "Spring tides have the greatest range between high and low water."),
    ("Where did French soldiers find the Rosetta Stone?", "French soldiers found the stone near the town of Rashid.",
     "French soldiers found the stone in July 1799."),
    ("How many glass prisms does the Fresnel lens have?", "Its Fresnel lens has 1,032 glass prisms.",
     "Its Fresnel lens was made in 1867 of glass prisms."),
    ("How long can the beam of the lighthouse be seen?", "The beam can be seen for about 24 miles.",
     "The beam was first seen in 1870."),
    ("How much saffron does Iran grow?", "Iran grows about nine tenths of the world's saffron.",
     "Iran grows saffron in the province of Khorasan."),
    ("Why are saffron flowers picked in the early morning?",
     "The flowers are picked in the early morning because the sun wilts them later in the day.",
     "The flowers are picked by hand in the early morning."),
    ("Why was the decree written three times?", "The decree was written three times so that priests,"
     " officials and Greek rulers could all read it.", "The decree is written three times, in three scripts."),
    ("How old was Friedrich Mohs when he devised the scale?", "Mohs was 38 years old when he devised the scale.",
     "Mohs devised the scale in Graz."),
])
def test_the_answer_is_of_the_kind_asked_for(question, good, bad):
    from atk_core.toolkit.meaning import kind_problem

    assert kind_problem(question, good) is None
    found = kind_problem(question, bad)
    assert found is not None and found[0] == "answer does not answer"


def test_a_question_another_sentence_answers_as_well_is_ambiguous_and_the_retry_names_it():
    chunk = ("The first lighthouse on the coast was lit in 1870 by its keeper, John Hale."
             " The first lighthouse on the island was lit in 1871 by its keeper, Ann Wood."
             " Keepers lived in small houses beside the towers.")
    answer = "The first lighthouse on the coast was lit in 1870 by its keeper, John Hale."
    problem = PairGates().problem("When was the first lighthouse lit by its keeper?", answer, chunk, answer)
    assert kind(problem) == "ambiguous question"
    assert "The first lighthouse on the island was lit in 1871" in problem.message
    assert "island" in problem.message  # the words that tell the two apart, for the retry
    assert PairGates().problem("When was the first lighthouse on the coast lit?", answer, chunk, answer) is None


def test_the_question_must_find_its_own_sentence_first():
    answer = "About 150,000 flowers are needed to make one kilogram of dried saffron."
    problem = PairGates().problem("Which country grows the most saffron?", answer, SAFFRON, answer)
    assert kind(problem) == "answer does not answer"
    # Off, the pair passes the other gates: the meaning gates are what catch it.
    assert PairGates(search=False, answer_fit=False).problem(
        "Which country grows the most saffron?", answer, SAFFRON, answer) is None


def test_a_written_answer_is_searched_as_the_sentence_it_came_from():
    focus = "French soldiers found the stone in July 1799 near the town of Rashid."
    assert PairGates().problem("When was the Rosetta Stone found?", "It was found in July 1799.",
                               ROSETTA, focus) is None
    wrong = "The Rosetta Stone has been on display in the British Museum in London since 1802."
    assert kind(PairGates().problem("When was the Rosetta Stone found?", "It was found in 1802.",
                                    ROSETTA, wrong)) == "answer does not answer"
    # Without a focus, the sentence an answer comes from is found by its words.
    from atk_core import answer_sentence

    assert answer_sentence("The soldiers found it near Rashid in July 1799.", ROSETTA) == focus


def test_neighbouring_text_is_searched_too():
    chunk = ("The lens was made for the lighthouse at Cordouan by the glassworks of Saint-Gobain."
             " It was first lit in 1823.")
    before = "The lens was designed by the physicist Augustin Fresnel, who wanted a brighter beam."
    question = "Who designed the lens for the lighthouse?"
    answer = "The lens was made for the lighthouse at Cordouan by the glassworks of Saint-Gobain."
    assert PairGates().problem(question, answer, chunk, answer) is None
    found = PairGates().problem(question, answer, chunk, answer, context=before)
    assert kind(found) in ("answer does not answer", "ambiguous question") and "Fresnel" in found.message


def _labelled(name):
    pairs = [json.loads(line) for line in (LABELLED / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    documents = {p["document"]: (LABELLED / "documents" / p["document"]).read_text() for p in pairs}
    return pairs, documents


@pytest.mark.parametrize("name", ["set_a", "set_b", "set_c"])
def test_hand_labelled_pairs_are_kept_and_dropped_as_a_person_would(name):
    """Pairs written and labelled by hand over documents written for the purpose: every answer a
    sentence of its document, every question well formed; the bad ones answer another question."""
    pairs, documents = _labelled(name)
    gates = PairGates()
    good = [p for p in pairs if p["label"] == "good"]
    bad = [p for p in pairs if p["label"] == "bad"]
    kept = [p for p in good if gates.problem(p["question"], p["answer"], documents[p["document"]], p["answer"]) is None]
    dropped = [p for p in bad if gates.problem(p["question"], p["answer"], documents[p["document"]], p["answer"])]
    print(f"{name}: kept {len(kept)}/{len(good)} good, dropped {len(dropped)}/{len(bad)} bad")
    assert len(good) >= 20 and len(bad) >= 20
    assert len(dropped) / len(bad) >= 0.9
    assert len(kept) / len(good) >= 0.8  # set B paraphrases on purpose; all sets together: 90 %


def test_all_hand_labelled_pairs_together_meet_the_floor():
    gates = PairGates()
    counts = {"good": [0, 0], "bad": [0, 0]}
    for name in ("set_a", "set_b", "set_c"):
        pairs, documents = _labelled(name)
        for p in pairs:
            passed = gates.problem(p["question"], p["answer"], documents[p["document"]], p["answer"]) is None
            counts[p["label"]][0] += passed if p["label"] == "good" else not passed
            counts[p["label"]][1] += 1
    assert counts["good"][0] / counts["good"][1] >= 0.9, counts
    assert counts["bad"][0] / counts["bad"][1] >= 0.9, counts


# -- prose -------------------------------------------------------------------------------------------

CLOCK = ("The astronomical clock in the cathedral was built in 1410 by the clockmaker Mikulas of"
         " Kadan. It shows the position of the Sun and the Moon, and a procession of figures moves"
         " every hour. The clock was damaged in 1945 and repaired after the war.")


@pytest.mark.parametrize("text, expected", [
    (" ".join(["The clock shows the position of the Sun and the Moon."] * 32), "repetition loop"),
    ("The clock was built in 1410, and the bacber figures of the bacber clock move every hour.",
     "garbled word"),
    ("The clock was built in 1410. It was powered by a water wheel turning a wooden axle.", "invented fact"),
    ("The clock was built in 1410 by Jan Hus.", "invented fact"),
    ("The clock was built in 1412 by the clockmaker Mikulas of Kadan.", "invented fact"),
    ("However, the facts can be rephrased for clarity and detail. The clock was built in 1410.",
     "talks about the task"),
    ("Built in 1410 by Mikulas of Kadan, the cathedral's astronomical clock shows where the Sun and the"
     " Moon are; every hour a procession of figures moves. Damaged in 1945, it was repaired after the war.",
     None),
])
def test_prose_holds_a_floor(text, expected):
    assert kind(prose_problem(text, CLOCK)) == expected


def test_ordinary_words_and_inflections_are_words_and_garble_is_not():
    from atk_core import is_english_word

    for word in ("colonies", "travelling", "organisation", "harbours", "largest", "repaired", "figures"):
        assert is_english_word(word), word
    for word in ("bacber", "clockworkk", "xqzt"):
        assert not is_english_word(word), word


def test_a_pair_that_misses_its_question_is_dropped_with_its_kind_and_shown_by_inspect(tmp_path):
    """Through a real run: the model keeps asking a question another sentence answers; the
    sample is dropped, failures.jsonl and the manifest say why, and `atk inspect` shows it."""
    import re

    from atk_core.testing import read_jsonl, run_cli, run_pipeline

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "saffron.txt").write_text(SAFFRON + "\n", encoding="utf-8")

    def respond(request):
        sentence = re.search(r"Sentence: (.*)", request.messages[-1]["content"]).group(1)
        if sentence.startswith("About 150,000"):
            return {"question": "Which country grows the most saffron?"}  # Iran's sentence answers it
        if sentence.startswith("Iran"):
            return {"question": "Which country grows about nine tenths of the world's saffron?"}
        return {"question": "What is saffron made from?"}

    scripted = {"backend": "scripted", "respond": respond}
    result = run_pipeline("factual-qa", output_dir=tmp_path / "out", input_dir=str(docs), answers="sentence",
                          models={"small": scripted, "large": scripted}, verdicts="skip",
                          rewrite_conversations=False, questions_per_chunk=4)
    assert result.exit_code == 0, result.error
    kept = {p["answer"][:14] for p in read_jsonl(tmp_path / "out" / "qa_pairs.jsonl")}
    assert "Iran grows abo" in kept and "About 150,000 " not in kept
    failures = read_jsonl(tmp_path / "out" / "failures.jsonl")
    missed = [f for f in failures if f["kind"] == "answer does not answer"]
    assert [f["sample_id"].rsplit("/", 1)[1] for f in missed] == ["s2"]  # the 150,000 flowers
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    generate = next(s for s in manifest["steps"] if s["name"] == "generate")
    assert generate["dropped"].get("answer does not answer") == 1
    shown = run_cli("inspect", tmp_path / "out", "-n", "0")
    assert shown.returncode == 0 and "answer does not answer" in shown.stdout


def test_a_stand_in_answer_fits_the_question_shape_a_small_model_is_held_to():
    """answers: sentence holds the question to a pattern while it is decoded; the dry run of
    `atk run --estimate` and the scripted backend answer with values that fit it."""
    from atk_core import schema_problem, value_for_schema
    from atk_core.toolkit.qa import QUESTION_SCHEMA

    for value in (value_for_schema(QUESTION_SCHEMA),
                  value_for_schema(QUESTION_SCHEMA, text=lambda path: f"placeholder for {path}")):
        assert schema_problem(value, QUESTION_SCHEMA) is None, value
        assert value["question"].endswith("?")
    assert schema_problem({"question": "It opened in 1932."}, QUESTION_SCHEMA)
