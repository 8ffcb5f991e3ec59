"""The core's exam helpers (atk_core.toolkit.exam) on their own: which facts, held out how,
where a sentence is, what teaches a fact, and what a training record's turns are."""

from atk_core import Chunk, ExamSettings, choose_facts, chunk_id, redact, teaching, turns_of, without
from atk_core.toolkit.exam import find_sentence

TEXT = ("The Isle of Varrow lies eleven miles off the northern coast of the mainland. "
        "Its only village, Scarholm, grew up around a herring harbour built in 1843. "
        "A ferry called the Morwen Lass crosses to the mainland twice a day in summer. "
        "The island's lighthouse was designed by the engineer Ada Pellow in 1869. "
        "Varrow sheep are small and brown, and their wool is spun into a yarn called skelly.")


def chunk(text=TEXT, source="varrow.txt"):
    return Chunk(chunk_id(text), source, 0, len(text), text)


def test_the_held_out_share_is_of_the_facts_found_not_of_the_size_asked():
    facts = choose_facts([chunk()], ExamSettings(size=40, unseen_share=0.25), seed=0)
    assert len(facts) == 5  # every sentence, fewer than asked
    assert sum(not f.seen for f in facts) == 1  # a quarter of 5, not of 40


def test_a_sentence_is_found_where_it_starts_not_inside_a_longer_one():
    text = ("Records say that Ada Pellow designed the lighthouse at Scarholm in 1869. "
            "Ada Pellow designed the lighthouse at Scarholm in 1869.")
    start, end = find_sentence(text, "Ada Pellow designed the lighthouse at Scarholm in 1869.")
    assert start == text.index("Ada Pellow designed", 20) and end == len(text)
    assert without(text, ["Ada Pellow designed the lighthouse at Scarholm in 1869."]).startswith(
        "Records say that Ada Pellow designed")


def test_redacted_documents_are_written_fresh_each_run(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "varrow.txt").write_text(TEXT)
    facts = choose_facts([chunk()], ExamSettings(size=5, unseen_share=0.4), seed=3)
    into = redact(docs, facts, tmp_path / "out" / "inputs")
    held = [f.sentence for f in facts if not f.seen]
    assert held and not any(s in (into / "varrow.txt").read_text() for s in held)
    (docs / "varrow.txt").rename(docs / "island.txt")  # the user renames a document
    redact(docs, [f.__class__(**{**f.__dict__, "source": "island.txt"}) for f in facts], into)
    assert sorted(p.name for p in into.iterdir()) == ["island.txt"]  # no stale copy left to read


def test_a_record_teaches_a_fact_only_when_it_is_about_it_and_says_it():
    item = {"id": "e1", "question": "When was the Varrow lighthouse designed?", "answer": "In 1869.",
            "sentence": "The island's lighthouse was designed by the engineer Ada Pellow in 1869."}
    records = [
        ("mix", 1, "The war ended in 1869 with a treaty signed in Frankfurt.", True),  # same year, other fact
        ("mix", 2, "Ada Pellow designed the island's lighthouse in 1869.", True),  # says it
        ("mix", 3, "The island's lighthouse was designed by the engineer Ada Pellow in 1869.", False),  # a prompt
    ]
    found = teaching([item], records)["e1"]
    assert found["taught_by"] == [{"file": "mix", "line": 2}]
    assert found["held_by"] == [{"file": "mix", "line": 2}, {"file": "mix", "line": 3}]


def test_the_turns_of_every_format():
    segments = {"segments": [
        {"label": False, "text": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho built it?"
                                 "<|im_end|>\n<|im_start|>assistant\n"},
        {"label": True, "text": "Ada Pellow.<|im_end|>\n"}]}
    assert turns_of(segments) == [("system", "Be brief."), ("user", "Who built it?"), ("assistant", "Ada Pellow.")]
    assert turns_of({"question": "Q?", "answer": "A."}) == [("user", "Q?"), ("assistant", "A.")]
    assert turns_of({"conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]}) == [
        ("user", "Q?"), ("assistant", "A.")]
    assert turns_of({"text": "Plain text."}) == [("text", "Plain text.")]


def _chosen_in_one_piece(chunks, settings, seed):
    """What choose_facts chose before it went through its chunks in passes: every sentence
    counted, every document's facts held, then the same round-robin (``spread``)."""
    from atk_core.toolkit.chunks import sentences
    from atk_core.toolkit.exam import Fact, _normal, spread
    from atk_core.toolkit.qa import focus_sentences

    counts = {}
    for c in chunks:
        for sentence in sentences(c.text):
            counts[_normal(sentence)] = counts.get(_normal(sentence), 0) + 1
    by_document = {}
    for c in chunks:
        for _, sentence in focus_sentences(c.text, 1_000, seed, c.id):
            span = find_sentence(c.text, sentence)
            if counts.get(_normal(sentence), 0) == 1 and span is not None:
                by_document.setdefault(c.source, []).append(
                    Fact(c.source, c.start + span[0], c.start + span[1], sentence, c.id, c.text))
    return spread(by_document, settings, seed)


class _Passes:
    """Chunks given again on each pass, as a corpus read a shard at a time gives them; counts
    the passes."""

    def __init__(self, chunks):
        self.chunks, self.passes = chunks, 0

    def __iter__(self):
        self.passes += 1
        yield from self.chunks


def test_facts_chosen_in_passes_are_those_chosen_in_one_piece():
    import random

    sentences = [s.strip() + "." for s in TEXT.split(". ") if s.strip()]
    passes_made = []
    for trial in range(40):
        rng = random.Random(trial)
        chunks = []
        # Sources not in name order (as lines of a JSON-lines file come: #L10 before #L2 by
        # name), and the first documents' sentences copied later, so that they have no fact
        # and choose_facts must reach past them.
        for number in rng.sample(range(30), rng.randint(5, 30)):
            picked = rng.sample(sentences, rng.randint(1, 4))
            text = " ".join(f"{s[:-1]} in year {number * 7 + rng.randint(0, 3)}." if rng.random() < 0.6 else s
                            for s in picked)
            chunks.append(Chunk(chunk_id(f"{number}{text}"), f"docs.jsonl#L{number}", 0, len(text), text))
        settings = ExamSettings(size=rng.choice([1, 3, 5, 12]), unseen_share=rng.choice([0, 0.25]))
        passes = _Passes(chunks)
        assert choose_facts(passes, settings, trial) == _chosen_in_one_piece(chunks, settings, trial), trial
        assert choose_facts(chunks, settings, trial) == _chosen_in_one_piece(chunks, settings, trial), trial
        passes_made.append(passes.passes)
    assert min(passes_made) == 2 and max(passes_made) > 2  # some had to reach past their first documents
