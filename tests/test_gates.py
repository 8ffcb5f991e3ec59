"""The quality gates, on the junk a small model really wrote and on the text it should have written."""

import pytest

from atk_core import (
    NearDuplicates, conversation_problem, copied_problem, grounding_problem, placeholder_problem,
    question_problem, refers_to_source,
)

GUTENBERG = (
    "Johannes Gutenberg, a goldsmith from Mainz, built a printing press with movable metal type"
    " around 1450. His best-known book is the Gutenberg Bible, printed in Latin in the 1450s."
    " About 180 copies were made, and 49 of them survive."
)
GETTYSBURG = (
    "Four score and seven years ago our fathers brought forth on this continent, a new nation,"
    " conceived in Liberty, and dedicated to the proposition that all men are created equal."
    " President Abraham Lincoln delivered the address at the dedication of the Soldiers' National"
    " Cemetery in Gettysburg, Pennsylvania, on November 19, 1863."
)


def kind(problem):
    return problem.kind if problem is not None else None


# -- what the embedded model wrote, each caught ---------------------------------------------------


@pytest.mark.parametrize("question, answer, expected", [
    ("The Gettysburg Address", "It is a speech.", "not a question"),
    ("Why?", "Because.", "question too short"),
    ("What does the passage say about the nation?", "It was new.", "refers to the passage"),
    ("According to the text, who spoke?", "Lincoln.", "refers to the passage"),
    ("What did the author want the reader to feel?", "Sad.", "refers to the passage"),
    ("What is the best recipe for pancakes?", "Flour and eggs.", "question not about the content"),
    ("Lincoln delivered the address?", "Lincoln delivered the address", "question is the answer"),
    # seen on a saffron document: one word of the text in a question about something else
    ("Which word is a synonym of the nation in a famous speech?", "Liberty.",
     "question not about the content"),
    ("Which of the following did Lincoln say at Gettysburg?", "That the nation was new.",
     "asks about absent choices"),
    (" ".join(["What"] + ["very"] * 45 + ["long?"]), "x", "question too long"),
])
def test_questions_that_are_not_questions_about_the_content(question, answer, expected):
    assert kind(question_problem(question, chunk=GETTYSBURG, answer=answer)) == expected


def test_a_real_question_passes():
    assert question_problem("Where did Lincoln deliver the address in 1863?", chunk=GETTYSBURG,
                            answer="In Gettysburg, Pennsylvania.") is None


@pytest.mark.parametrize("answer, expected", [
    ("It was followed by a four-day memorial service.", "answer not grounded"),
    ("He delivered it on the Golden Coast.", "answer not grounded"),  # a name the chunk lacks
    ("He delivered it in 1865.", "answer not grounded"),  # a number the chunk lacks
    ("Soldiers marched through muddy fields while bands played hymns.", "answer not grounded"),
    ("!!!", "answer empty"),
])
def test_answers_that_say_what_the_chunk_does_not(answer, expected):
    assert kind(grounding_problem(answer, GETTYSBURG)) == expected


@pytest.mark.parametrize("answer", [
    "President Abraham Lincoln delivered it on November 19, 1863.",
    "At the dedication of the Soldiers' National Cemetery in Gettysburg.",
    "That all men are created equal.",
    "Lincoln delivered it in Pennsylvania.",
])
def test_grounded_answers_pass(answer):
    assert grounding_problem(answer, GETTYSBURG) is None


def test_inflections_count_as_the_same_word_and_the_threshold_is_a_setting():
    chunk = "Gutenberg invented a press with movable type, which printers adopted quickly."
    assert grounding_problem("Movable type was his invention, quickly adopted.", chunk) is None
    loose = "Movable type was his invention, adopted by eager scribes everywhere."
    assert kind(grounding_problem(loose, chunk)) == "answer not grounded"
    assert grounding_problem(loose, chunk, threshold=0.5) is None


@pytest.mark.parametrize("text, expected", [
    ("the_story_with_fact_1", "placeholder text"),
    ("<answer>", "placeholder text"),
    ("The capital is [insert city here].", "placeholder text"),
    ("It was {answer}.", "placeholder text"),
    ("...", "placeholder text"),
    ("Answer", "placeholder text"),
    ("Lincoln spoke at Gettysburg.", None),
    ("He said: the world will little note, nor long remember.", None),
])
def test_placeholders(text, expected):
    assert kind(placeholder_problem(text)) == expected


def test_text_copied_from_the_prompts_instructions_is_caught_but_not_the_chunks_words():
    prompt = ("Write one question a curious reader might ask, and its answer, using only facts from"
              " the passage. Example: the passage contains the fact that water boils.")
    copied = "The passage contains the fact that water boils at sea level?"
    assert kind(copied_problem(copied, prompt, GUTENBERG)) == "copied from the prompt"
    # Words that are in the chunk too are the content, not a copy.
    prompt_with_chunk = prompt + " " + GUTENBERG
    assert copied_problem("Gutenberg built a printing press with movable metal type.",
                          prompt_with_chunk, GUTENBERG) is None


def test_the_passage_is_named_in_an_answer_too():
    assert kind(refers_to_source("The passage contains the fact")) == "refers to the passage"
    assert refers_to_source("The passage of the law took a year.") is None


# -- conversations --------------------------------------------------------------------------------


def test_a_conversation_must_carry_the_answers_it_was_written_from():
    messages = [{"role": "user", "content": "What is the first thing that Gutenberg invented?"},
                {"role": "assistant", "content": "The answer to this question lies in Mainz!"}]
    problem = conversation_problem(messages, ["A printing press with movable metal type."])
    assert kind(problem) == "conversation misses a pair"
    good = [{"role": "user", "content": "What did Gutenberg build?"},
            {"role": "assistant", "content": "He built a printing press with movable metal type."}]
    assert conversation_problem(good, ["A printing press with movable metal type."]) is None


@pytest.mark.parametrize("roles, contents, expected", [
    (["assistant", "user"], ["a", "b"], "roles do not alternate"),
    (["user", "user"], ["a", "b"], "roles do not alternate"),
    (["user", "assistant", "user"], ["a", "b", "c"], "roles do not alternate"),
    (["user", "assistant"], ["Hello there", "Hello there!"], "repeated turn"),
    (["user", "assistant"], ["Hello", "  "], "empty turn"),
])
def test_conversation_shape(roles, contents, expected):
    messages = [{"role": r, "content": c} for r, c in zip(roles, contents)]
    assert kind(conversation_problem(messages)) == expected


# -- near duplicates ------------------------------------------------------------------------------


def test_near_duplicate_questions_collapse_to_the_first():
    seen = NearDuplicates(threshold=0.7)
    assert seen.add("a", "What did Johannes Gutenberg build around 1450?") is None
    assert seen.add("b", "What did Johannes Gutenberg build around the year 1450?") == "a"
    assert seen.add("c", "what did johannes gutenberg build, around 1450") == "a"
    assert seen.add("d", "How many copies of the Gutenberg Bible survive?") is None
    assert seen.add("e", "How many copies of the Gutenberg Bible survive today?") == "d"


def test_near_duplicates_are_deterministic():
    questions = [f"What happened in the year {1400 + n % 7} to printer number {n % 5}?" for n in range(60)]

    def verdicts():
        seen = NearDuplicates(threshold=0.8)
        return [seen.add(str(i), q) for i, q in enumerate(questions)]

    first = verdicts()
    assert first == verdicts()
    assert first.count(None) < len(questions)  # some collapsed


def test_near_duplicates_find_what_datasketchs_own_lsh_finds():
    # The index lives in SQLite, not in datasketch's MinHashLSH: the same earliest near copy
    # of every text, by datasketch's own query over the same signatures.
    import random

    from datasketch import MinHashLSH

    rng = random.Random(3)
    words = "tide harbour keeper lamp whale oil bell dawn boat river weir salmon kiln lime quarry".split()
    texts = []
    for _ in range(300):
        texts.append(f"What {' '.join(rng.choice(words) for _ in range(rng.randint(4, 9)))} in {rng.randint(1800, 1805)}?")
        if rng.random() < 0.4:
            texts.append(rng.choice(texts).replace("What", "Which", 1))
    seen = NearDuplicates(threshold=0.7)
    lsh, signatures, expected = MinHashLSH(threshold=0.7, num_perm=128), {}, []
    for i, text in enumerate(texts):
        minhash = seen._minhash(text)
        close = [k for k in lsh.query(minhash) if signatures[k].jaccard(minhash) >= 0.7]
        expected.append(min(close, key=int) if close else None)
        if not close:
            lsh.insert(str(i), minhash)
            signatures[str(i)] = minhash
    assert [seen.add(str(i), text) for i, text in enumerate(texts)] == expected
    assert 30 < sum(e is not None for e in expected) < len(texts) // 2


@pytest.mark.parametrize("question, answer, source, expected", [
    ("What was the name of the eruption in 1783?", "1783", None, "answer repeats the question"),
    ("How many copies of the Gutenberg Bible survive?", "Some of them survive on vellum.", None,
     "answer does not answer"),
    ("When did the canal open?", "It opened with great ceremony.", None,
     "answer does not answer"),
    ("How many workers died building the Panama Canal?", "The canal was a disaster that cost 31 lives.",
     "Yellow fever and malaria killed thousands of workers.", "answer not from its sentence"),
    ("How many workers died building the Panama Canal?", "Thousands of workers died of yellow fever.",
     "Yellow fever and malaria killed thousands of workers.", None),
    ("When did the canal open?", "It opened on 15 August 1914.", None, None),
    ("How long did the Laki eruption last?", "It lasted eight months.", None, None),
])
def test_an_answer_must_answer_its_question(question, answer, source, expected):
    from atk_core import answer_fits_problem

    assert kind(answer_fits_problem(question, answer, source=source)) == expected


def test_a_question_that_gives_its_answer_away():
    from atk_core import answer_fits_problem

    sentence = ("President Abraham Lincoln delivered this address at the dedication of the Soldiers'"
                " National Cemetery in Gettysburg, Pennsylvania.")
    leaky = ("What did President Abraham Lincoln deliver at the dedication of the Soldiers' National"
             " Cemetery in Gettysburg, Pennsylvania?")
    assert kind(answer_fits_problem(leaky, sentence, source=sentence)) == "question gives the answer away"
    fair = "Where did Abraham Lincoln deliver the Gettysburg Address?"
    assert answer_fits_problem(fair, sentence, source=sentence) is None


def test_the_source_reference_gate_can_be_turned_off():
    from atk_core import PairGates

    question = "According to the passage, when did Lincoln deliver the address?"
    answer = "On November 19, 1863."
    assert kind(PairGates().problem(question, answer, GETTYSBURG)) == "refers to the passage"
    assert PairGates(source_reference=False, answer_fit=False).problem(question, answer, GETTYSBURG) is None
    assert kind(PairGates(question_form=False).problem(question, answer, GETTYSBURG)) == \
        "refers to the passage"


def test_focus_samples_note_a_chunk_with_no_sentence_to_ask_about():
    from atk_core import RunRecord, focus_samples

    record = RunRecord()
    samples = [{"id": "c1", "chunk": GETTYSBURG},
               {"id": "c2", "chunk": "Bees make honey. Queens lay eggs. Drones mate."}]
    focused = focus_samples(samples, 2, 0, record)
    assert {f["chunk_id"] for f in focused} == {"c1"} and all(f["id"].startswith("c1/s") for f in focused)
    assert record.steps["generate"].notes == {"chunk without a sentence to ask about": 1}
    assert focus_samples(samples, 2, 0) == focused  # without a record, the same samples


def test_focus_sentences_skip_markup_that_is_not_prose():
    from atk_core import focus_sentences

    text = ("Cargo Book\n==========\n\n[The Cargo Book]: https://doc.rust-lang.org/cargo/ explains"
            " the cargo tool well.\n\nSee https://example.org for the whole manual of the tool.\n\n"
            "| Option | Meaning of the option |\n|---|---|\n\n"
            "Cargo downloads the dependencies of a Rust package and compiles them.")
    assert [s for _, s in focus_sentences(text, 5, 0, "k")] == [
        "Cargo downloads the dependencies of a Rust package and compiles them."]


@pytest.mark.parametrize("question", [
    "What is the answer to the question about salt marsh protection?",
    "What does this question ask about the Kelmouth harbour?",
])
def test_a_question_about_a_question_or_an_answer_is_refused(question):
    problem = question_problem(question)
    assert problem is not None and problem.kind == "question about itself", problem


@pytest.mark.parametrize("question", [
    "Who found an answer to the longitude problem in 1761?",
    "How long do students have to complete the quiz?",
    "What does the Answer button on the kiosk do?",
    "Which form must the answer to a tax query use?",
])
def test_a_question_that_merely_uses_the_word_answer_or_quiz_passes(question):
    assert question_problem(question) is None
