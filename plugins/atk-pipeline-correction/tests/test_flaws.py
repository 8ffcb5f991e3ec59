"""Wrong answers made by code: one detail changed, never one the document or question holds,
never broken text."""

import random

import pytest

from atk_pipeline_correction.flaws import alter, names_in


def flaw(answer, chunk=None, names=(), question=""):
    return alter(answer, chunk if chunk is not None else answer, set(names), random.Random(3),
                 question=question)


def test_a_number_becomes_one_the_document_does_not_hold():
    chunk = "It had 200,000, residents in 1990 and 400,000 in 2020."
    flawed, change = flaw("It had 200,000, residents.", chunk)
    assert change.startswith("number 200,000 -> ")
    new = change.split(" -> ")[1]
    assert new not in ("200,000", "400,000") and flawed == f"It had {new}, residents."


@pytest.mark.parametrize("answer, expected", [
    ("The barrier was opened in 1984.", r"^The barrier was opened in (19[5-9]\d|20[01]\d)\.$"),
    ("Each gate is 61 metres wide.", r"^Each gate is (122|183|30|92|244|610) metres wide\.$"),
    ("It weighs 2.5 tonnes.", r"^It weighs \d+\.\d tonnes\.$"),
    ("It takes three generations.", r"^It takes (one|two|four|five|six|seven|eight|nine|ten|eleven"
                                    r"|twelve) generations\.$"),
])
def test_each_kind_of_number_keeps_its_form(answer, expected):
    import re

    flawed, _ = flaw(answer)
    assert re.match(expected, flawed), flawed


@pytest.mark.parametrize("answer", [
    "There was no rain.", "He was never king.", "A tin can holds beans.",
    "The will was read aloud by nobody.", "It has " + "9" * 400 + " atoms.",
])
def test_nothing_is_made_that_would_be_broken_text(answer):
    result = flaw(answer)
    assert result is None or " not no " not in result[0] and "inf" not in result[0], result


def test_what_the_question_says_is_left_alone():
    flawed, change = flaw("In 1990, the town had 5,000 people.", question="What happened in 1990?")
    assert flawed.startswith("In 1990,") and change.startswith("number 5,000 -> ")


def test_a_name_is_swapped_only_for_another_that_stands_alone():
    thames = "The Thames Barrier protects London. It was opened in Woolwich."
    assert names_in(thames) == {"London", "Woolwich"}
    assert names_in("Saffron comes from the saffron crocus, Crocus sativus, grown in Spain.") == {"Spain"}
    flawed, change = flaw("Crocus grows in Spain", names=names_in(thames))
    assert change in ("name Spain -> London", "name Spain -> Woolwich") and "Crocus" in flawed
    assert flaw("Built by Telford", "Built by an engineer", names={"Telford"}) is None
