"""Scoring an answer against a reference answer, without a model: the rule ``atk eval`` applies.

``score_answer(question, reference, answer)`` returns a ``Score``: right or wrong, the share of
the reference's key items the answer states (``recall``), which it states, misses and
contradicts, and one line saying why. The rule is lexical and deterministic, so that a user
can predict it:

1. **Key items** of the reference are
   - its *numbers* (weight 2), normalised: "1,200" = "1200" = "1200.0" = "1 200"; the words
     one to nineteen, the tens, hundred, thousand, million, billion and dozen ("twenty-five",
     "two hundred and fifty", "1.5 million", "a dozen", "an hour"); percentages ("45 %",
     "45 per cent"). A number with a unit is one item ("4 weeks", "100 °C", "1.7 L"), stated
     by the same number with the same unit or none ("230 degrees" states "230 °C"); a date
     with a year is one item, stated by its year ("4 June 1915" by "1915");
   - its *names* (weight 2): capitalised words not at a sentence's start, and runs of
     capitalised words ("Karl Drais", "River Aire"). A name is stated by its last distinctive
     word ("Drais", "Aire"), unless the answer gives that word another first name ("Peter
     Olsen" does not state "Maria Olsen"). A nationality before a noun ("German inventor")
     is a word, not a name;
   - its *content words* (weight 1): the other words, lower-cased, without stopwords (and
     without light verbs: make, take, keep, put...), compared by a light stem ("boils",
     "boiling" and "boiled" are one word).
   Items joined by "or" ("February or March", "2 or 3 minutes") are one item: either states it.
2. Items the **question** already holds earn nothing, so restating the question scores 0. If
   that leaves none, all the reference's items count.
3. When the question asks **who / where / which city...** (names), **when / which year /
   which day** (numbers, dates, months, weekdays) or **how many / much / long / often...,
   what temperature...** (numbers), only the reference's items of that kind count, if it has
   any: "Drais" answers "Who built it?" although the reference adds the year.
4. A **yes/no question** (opening with is, does, can, should...; no "or" in it) answered
   with "yes" or "no" is judged by that word, against the reference's opening yes or no (or
   "no" if the reference holds a negation, else "yes"). An answer that says neither is
   judged as in 1-3; if the reference adds nothing to the question, the answer must negate
   exactly when the reference does.
5. A **contradiction** makes the answer wrong whatever its recall:
   - the answer gives numbers of its own but none of the reference's ("says 1912 where the
     reference says 1915"), or a number in the unit of a reference number it does not state
     ("says 30 minutes where the reference says 40 minutes");
   - the answer names something the reference does not, of the same kind (a month, a weekday,
     any other name), and none of the reference's names of that kind;
   - the answer opens with the other yes or no;
   - one text negates a word (the first content word within three words after not, no,
     never, without, n't...) and the other, which negates nothing, states it: "The kettle
     is dishwasher safe." against "It is not dishwasher safe."
6. The answer is **correct** when nothing contradicts it and its recall (the weighted share
   of the counted items it states) is at least ``RECALL_NEEDED``. An empty answer, or one
   that says it does not know and states none of the items, is wrong.

Known limits: no synonyms ("faster" is not "speeds up", "CO2" is not "carbon dioxide"); no
unit conversion ("2.2 kW" is not "2,200 watts", "a month" is not "four weeks"); no irregular
forms ("built" is not "build", "monthly" is not "month"); an answer whose words are all the
question's ("The Wool programme" for "Which programme for wool?") earns nothing; an invented
extra fact is not caught unless it contradicts a number or name; a list whose parts share
words can pass half given ("a chain whip" for "a chain whip and a lockring tool"); a
qualified yes is a yes; negation only as in 5 (an answer saying "out of reach" as "cannot
reach" is taken to negate); English only.

``wilson_interval`` and ``summarise`` turn a list of verdicts into an accuracy with its 95 %
interval.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

# On the hand-labelled pairs (bench/answer_pairs/), right answers that miss something
# reach recall 0.67-0.8 (two items of three: "Citric acid." for "use citric acid, not
# vinegar"), partial answers 0.5 or less (one figure of two: "20 minutes." for "40
# minutes, the lid on for the first 20"). Agreement is the same for any threshold from
# 0.34 to 0.6 and falls from 0.67 on, so the threshold sits just under two of three.
RECALL_NEEDED = 0.6

NUMBER_WEIGHT = 2
NAME_WEIGHT = 2
WORD_WEIGHT = 1


@dataclass(frozen=True)
class Score:
    """One answer scored against its reference."""

    correct: bool
    recall: float
    stated: tuple[str, ...]
    missing: tuple[str, ...]
    contradicted: tuple[str, ...]
    reason: str


def score_answer(question: str, reference: str, answer: str) -> Score:
    """Whether ``answer`` gives what ``reference`` says in reply to ``question`` (see the module)."""
    asked, said, given = _read(question), _read(reference), _read(answer)
    items = _counted_items(question, asked, said, given)
    stated = tuple(item for item in items if _holds(given, item))
    missing = tuple(item for item in items if item not in stated)
    recall = _weight(stated) / _weight(items) if items else 0.0
    clash = _yes_no_clash(items, given) or _contradiction(asked, said, given)
    failure = _failure(answer, stated, items, clash)
    return Score(correct=failure is None and recall >= RECALL_NEEDED, recall=round(recall, 4),
                 stated=_texts(stated), missing=_texts(missing), contradicted=(clash[0],) if clash else (),
                 reason=failure or _recall_reason(stated, missing, recall))


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for ``correct`` out of ``total`` (95 % with the default z).

    With no trials nothing is known: (0.0, 1.0).
    """
    if total < 0 or not 0 <= correct <= total:
        raise ValueError(f"{correct} correct out of {total} is not a count")
    if total == 0:
        return (0.0, 1.0)
    share = correct / total
    spread = z * z / total
    centre = (share + spread / 2) / (1 + spread)
    half = z * math.sqrt(share * (1 - share) / total + spread / (4 * total)) / (1 + spread)
    # All right (or all wrong) reaches 1 (or 0) exactly: rounding would leave it a hair short.
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == total else min(1.0, centre + half)
    return (low, high)


def summarise(scores: list[bool]) -> dict:
    """How many verdicts are right, of how many, the accuracy (None with none) and its interval."""
    correct, total = sum(1 for right in scores if right), len(scores)
    low, high = wilson_interval(correct, total)
    return {"correct": correct, "total": total, "accuracy": correct / total if total else None,
            "interval": [low, high]}


# -- what a text says ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """A key item: a number (``key`` its value), a name or a word (``key`` a stem), or a yes/no."""

    kind: str  # "number", "name", "word" or "yes/no"
    text: str  # as the text writes it
    key: str
    unit: str = ""  # a number's unit ("minute"), or ""
    group: str = ""  # a name's kind: "month", "weekday" or "name"
    given: frozenset[str] = frozenset()  # a name's other words: "maria" in "Maria Olsen"
    counted: bool = True  # a month inside a date is not counted: the date's year is
    alternatives: tuple[_Item, ...] = ()  # "late February or March": either one states it

    @property
    def weight(self) -> int:
        return WORD_WEIGHT if self.kind == "word" else NUMBER_WEIGHT if self.kind == "number" else NAME_WEIGHT


@dataclass(frozen=True)
class _Reading:
    items: tuple[_Item, ...]  # what counts: numbers, names ("A or B" as one) and content words
    numbers: tuple[_Item, ...]  # every number, one by one
    names: tuple[_Item, ...]  # every name, one by one
    stems: frozenset[str]  # of every word, capitalised or not
    values: frozenset[str]
    negated: frozenset[str]  # content stems a negation denies
    plain: frozenset[str]  # content stems said without one
    negates: bool
    opener: str | None  # "yes" or "no" when the text opens with one


@dataclass(frozen=True)
class _Token:
    text: str
    lower: str
    kind: str  # "word", "digits" or "punct"
    starts: bool  # first word of a sentence
    glued: bool  # written right after the token before, no space ("21st")
    begin: int  # where it is in the text
    end: int


# (first token, token after the last, item)
_Span = tuple[int, int, _Item]


def _read(text: str) -> _Reading:
    text = re.sub(r"\bper\s+cent\b", "percent", text, flags=re.IGNORECASE)
    tokens = _tokens(text)
    numbers = _numbers(text, tokens)
    names = _names(tokens, _covered(numbers))
    numbers, names = _dates(text, tokens, numbers, names)
    words = _content_words(tokens, _covered(numbers) | _covered(names))
    negated, plain = _polarity(tokens, _covered(numbers))
    items = [item for spans in (numbers, names) for _, _, item in _either(tokens, spans) if item.counted]
    first = next((t.lower for t in tokens if t.kind == "word"), None)
    return _Reading(
        items=(*items, *words), numbers=tuple(item for _, _, item in numbers),
        names=tuple(item for _, _, item in names),
        stems=frozenset(_stem(t.lower) for t in tokens if t.kind == "word"),
        values=frozenset(item.key for _, _, item in numbers), negated=negated, plain=plain,
        negates=any(_negates(t) for t in tokens), opener=_OPENERS.get(first))


def _covered(spans: list[_Span]) -> set[int]:
    return {j for start, end, _ in spans for j in range(start, end)}


def _either(tokens: list[_Token], spans: list[_Span]) -> list[_Span]:
    """Items joined by "or" ("2 or 3 minutes", "February or March") as one item with alternatives."""
    joined: list[_Span] = []
    for start, end, item in sorted(spans, key=lambda span: span[0]):
        between = {t.lower for t in tokens[joined[-1][1]:start]} if joined else set()
        if "or" in between and between <= {"or", ",", "either"}:
            first_start, _, first = joined[-1]
            joined[-1] = (first_start, end, replace(first, text=f"{first.text} or {item.text}",
                                                    alternatives=(*first.alternatives, item)))
        else:
            joined.append((start, end, item))
    return joined


_UNIT_SIGN = r"°\s?[CF]\b|[℃℉%°]"
_TOKEN = re.compile(r"(?<![\d.,])\d{1,3}(?:[, \u00a0\u202f]\d{3})+(?!\d)(?:\.\d+)?"  # 1,200 and 300 000
                    r"|\d+(?:\.\d+)?|" + _UNIT_SIGN + r"|[^\W\d_]+(?:['’][^\W\d_]+)*|[.!?;:,()\"“”]|\n")
_SENTENCE_ENDS = {".", "!", "?", ":", "\n"}


def _tokens(text: str) -> list[_Token]:
    tokens, starts, end = [], True, -1
    for match in _TOKEN.finditer(text):
        raw, place = match.group(), (starts, match.start() == end, match.start(), match.end())
        end = match.end()
        if raw[0].isdigit():
            tokens.append(_Token(raw, raw, "digits", *place))
        elif re.fullmatch(_UNIT_SIGN, raw):
            tokens.append(_Token(raw, raw.replace(" ", "").lower(), "word", *place))
        elif raw[0].isalpha():
            word = raw if _negates_word(raw.lower()) else re.split(r"['’]", raw)[0]
            tokens.append(_Token(word, word.lower(), "word", *place))
        else:
            tokens.append(_Token(raw, raw, "punct", *place))
            starts = raw in _SENTENCE_ENDS
            continue
        starts = False
    return tokens


# -- numbers ------------------------------------------------------------------------------------

_SMALL = {w: n for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    " sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * n for n, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_NUMBER_WORDS = {**_SMALL, **_TENS, **_SCALES, "dozen": 12}
# "one of the oldest", "the one on the left", "buy one.": a pronoun, not a count.
_NOT_A_COUNT_AFTER = {"of", "another"}
_NOT_A_COUNT_BEFORE = {"the", "this", "that", "each", "every", "any", "which", "no", "no-one"}
_ORDINAL_ENDINGS = {"st", "nd", "rd", "th", "s"}
_BEFORE_ONE_UNIT = {"for", "in", "within", "about", "around", "approximately", "roughly", "nearly", "almost",
                    "under", "over", "after", "than", "least", "only", "just", "take", "takes", "took",
                    "last", "lasts", "lasted"}

_UNITS = {
    "second": "second", "sec": "second", "secs": "second", "s": "second", "minute": "minute",
    "min": "minute", "mins": "minute", "hour": "hour", "hr": "hour", "hrs": "hour", "h": "hour",
    "day": "day", "week": "week", "wk": "week", "month": "month", "year": "year", "yr": "year",
    "yrs": "year", "decade": "decade", "century": "century", "centuries": "century",
    "litre": "litre", "liter": "litre", "l": "litre", "millilitre": "millilitre", "milliliter": "millilitre",
    "ml": "millilitre", "gram": "gram", "gramme": "gram", "g": "gram", "kilogram": "kilogram",
    "kilo": "kilogram", "kg": "kilogram", "milligram": "milligram", "mg": "milligram",
    "metre": "metre", "meter": "metre", "m": "metre", "kilometre": "kilometre", "kilometer": "kilometre",
    "km": "kilometre", "centimetre": "centimetre", "centimeter": "centimetre", "cm": "centimetre",
    "millimetre": "millimetre", "millimeter": "millimetre", "mm": "millimetre", "inch": "inch",
    "inches": "inch", "foot": "foot", "feet": "foot", "ft": "foot", "mile": "mile", "pound": "pound",
    "lb": "pound", "lbs": "pound", "ounce": "ounce", "oz": "ounce", "celsius": "celsius",
    "fahrenheit": "fahrenheit", "kelvin": "kelvin", "degree": "degree", "watt": "watt", "w": "watt",
    "kilowatt": "kilowatt", "kw": "kilowatt", "volt": "volt", "v": "volt", "amp": "amp", "ampere": "amp",
    "percent": "percent", "%": "percent", "calorie": "calorie", "kcal": "calorie", "°c": "celsius",
    "℃": "celsius", "°f": "fahrenheit", "℉": "fahrenheit", "°": "degree",
}


def _numbers(text: str, tokens: list[_Token]) -> list[_Span]:
    """Each number with its unit, as ``text`` writes it."""
    found, i = [], 0
    while i < len(tokens):
        end, value = _number_at(tokens, i)
        if value is None:
            i += 1
            continue
        unit = _unit_at(tokens, end)
        stop = end + 1 if unit else end
        written = text[tokens[i].begin:tokens[stop - 1].end]
        found.append((i, stop, _Item("number", written, _canonical(value), unit=unit)))
        i = stop
    return found


def _number_at(tokens: list[_Token], i: int) -> tuple[int, float | None]:
    """Where the number starting at token ``i`` ends, and its value (None if none starts there)."""
    token = tokens[i]
    if token.kind == "digits":
        value, end = float(re.sub(r"[, \u00a0\u202f]", "", token.text)), i + 1
        if end < len(tokens) and tokens[end].glued and tokens[end].text in _ORDINAL_ENDINGS:
            end += 1  # "21st", "1860s"
        elif end < len(tokens) and tokens[end].lower in _SCALES:
            value, end = value * _SCALES[tokens[end].lower], end + 1
        return end, value
    words, end = _number_words_at(tokens, i)
    if not words or _is_pronoun_one(tokens, i, words):
        return i, None
    return end, _words_value(words)


def _number_words_at(tokens: list[_Token], i: int) -> tuple[list[str], int]:
    words, end = [], i
    if tokens[i].lower in ("a", "an") and i + 1 < len(tokens):
        if tokens[i + 1].lower in (*_SCALES, "dozen"):
            words, end = ["one"], i + 1  # "a hundred"
        elif _is_one_unit(tokens, i):
            return ["one"], i + 1  # "an hour"
    while end < len(tokens):
        lower = tokens[end].lower
        if lower in _NUMBER_WORDS:
            words.append(lower)
        elif not (lower == "and" and words and end + 1 < len(tokens)
                  and tokens[end + 1].lower in _NUMBER_WORDS):  # "two hundred and fifty"
            break
        end += 1
    return words, end


def _is_one_unit(tokens: list[_Token], i: int) -> bool:
    """"(takes) an hour", "(for) a week": one of a unit, but not a rate ("a million visitors a year")."""
    unit = _unit_at(tokens, i + 1)
    if not unit or unit == "second" or len(tokens[i + 1].lower) <= 2:  # "a second coat"
        return False
    return tokens[i].starts or tokens[i - 1].lower in _BEFORE_ONE_UNIT


def _is_pronoun_one(tokens: list[_Token], i: int, words: list[str]) -> bool:
    if words != ["one"]:
        return False
    after = tokens[i + 1] if i + 1 < len(tokens) else None
    before = tokens[i - 1].lower if i > 0 else ""
    if after is None or after.kind != "word":  # "buy one." is a pronoun, "One." alone a count
        return not (tokens[i].starts and (after is None or after.text in _SENTENCE_ENDS))
    return after.lower in _NOT_A_COUNT_AFTER or before in _NOT_A_COUNT_BEFORE


def _words_value(words: list[str]) -> float:
    total = current = 0
    for word in words:
        if word in _SCALES and _SCALES[word] >= 1000:
            total, current = total + (current or 1) * _SCALES[word], 0
        elif word in _SCALES or word == "dozen":
            current = (current or 1) * _NUMBER_WORDS[word]
        else:
            current += _NUMBER_WORDS[word]
    return float(total + current)


def _unit_at(tokens: list[_Token], i: int) -> str:
    if i >= len(tokens) or tokens[i].kind != "word":
        return ""
    lower = tokens[i].lower
    return _UNITS.get(lower) or (_UNITS.get(lower[:-1], "") if lower.endswith("s") and len(lower) > 3 else "")


def _canonical(value: float) -> str:
    value = round(value, 6)
    return str(int(value)) if value == int(value) else str(value)


def _units_agree(one: str, other: str) -> bool:
    # "230 degrees" is "230 °C": a bare "degree" agrees with any temperature.
    return not one or not other or one == other or "degree" in (one, other) and {one, other} <= _TEMPERATURES


_TEMPERATURES = {"degree", "celsius", "fahrenheit", "kelvin"}


# -- names and dates ----------------------------------------------------------------------------

_MONTHS = set("january february march april may june july august september october november december".split())
_WEEKDAYS = set("monday tuesday wednesday thursday friday saturday sunday".split())
_NATIONALITY_ENDINGS = ("an", "ish", "ese", "ch", "ic")
_CONNECTORS = {"of", "de", "del", "der", "van", "von", "da", "di", "du", "la", "le"}
# A name is stated by its last word unless that word only says what kind of thing it is.
_GENERIC = set("""river mount lake street road lane bridge station church hall park house castle square
museum university college school hospital company ltd inc co corporation bank sir saint st dr mr mrs ms
""".split())


def _names(tokens: list[_Token], used: set[int]) -> list[_Span]:
    """Each name, in the tokens not ``used`` by numbers."""
    found, i = [], 0
    while i < len(tokens):
        run = _capitalised_run(tokens, i, used)
        i = run[-1] + 1 if run else i + 1
        while run and tokens[run[0]].lower in _STOPWORDS and not _calendar_group(tokens[run[0]].lower):
            run = run[1:]  # "The Aire", "In May"
        if run and _is_name(tokens, run) and not _is_adjective(tokens, run):
            found.append((run[0], run[-1] + 1, _name_item(tokens, run)))
    return found


def _capitalised_run(tokens: list[_Token], i: int, used: set[int]) -> list[int]:
    def capitalised(j: int) -> bool:
        token = tokens[j]
        return (j not in used and token.kind == "word" and token.text[0].isupper()
                and token.lower not in _UNITS)

    run, j = [], i
    while j < len(tokens) and (capitalised(j) or run and tokens[j].lower in _CONNECTORS
                               and j + 1 < len(tokens) and capitalised(j + 1)):
        run.append(j)
        j += 1
    return run


def _is_name(tokens: list[_Token], run: list[int]) -> bool:
    # A lone capitalised word opening a sentence may be any word ("Pour", "Lyon"): not a name.
    if len(run) == 1 and tokens[run[0]].starts:
        return bool(_calendar_group(tokens[run[0]].lower))
    return any(len(tokens[j].text) > 1 for j in run)


def _is_adjective(tokens: list[_Token], run: list[int]) -> bool:
    """"German inventor", "French chef": a nationality (by its ending) before a noun, not a name."""
    after = run[-1] + 1
    return (len(run) == 1 and tokens[run[0]].lower.endswith(_NATIONALITY_ENDINGS) and after < len(tokens)
            and tokens[after].kind == "word" and tokens[after].text.islower())


def _calendar_group(word: str) -> str:
    """"month" or "weekday" for a month's or a weekday's name (or its plural), else ""."""
    for name in (word, word[:-1] if word.endswith("s") else word):
        if name in _MONTHS:
            return "month"
        if name in _WEEKDAYS:
            return "weekday"
    return ""


def _name_item(tokens: list[_Token], run: list[int]) -> _Item:
    words = [tokens[j].lower for j in run if tokens[j].lower not in _CONNECTORS]
    key = next((w for w in reversed(words) if w not in _GENERIC), words[-1])
    group = (len(words) == 1 and _calendar_group(key)) or "name"
    text = " ".join(tokens[j].text for j in run)
    given = frozenset(w for w in words if w != key and w not in _GENERIC)
    return _Item("name", text, _stem(key), group=group, given=given)


def _dates(text: str, tokens: list[_Token], numbers: list[_Span],
           names: list[_Span]) -> tuple[list[_Span], list[_Span]]:
    """A month with a year ("4 June 1915", "June 4, 1915", "June 1915") becomes one number: its year.

    The month stays a name (another month contradicts it) but is not counted apart.
    """
    numbers, dated = list(numbers), []
    for start, end, name in names:
        near = [span for span in numbers if end <= span[0] <= end + 2]
        year = next((span for span in near if _is_year(span[2])), None)
        if name.group != "month" or year is None:
            dated.append((start, end, name))
            continue
        days = [span for span in numbers if span[1] == start or span in near and span is not year]
        day = next((span for span in days if _is_day(span[2])), None)  # "4 June", "June 4,"
        parts = sorted([span for span in (day, year) if span] + [(start, end, name)], key=lambda span: span[0])
        numbers = [span for span in numbers if span is not day and span is not year]
        first, last = parts[0][0], parts[-1][1]
        written = text[tokens[first].begin:tokens[last - 1].end]
        numbers.append((first, last, replace(year[2], text=written)))
        dated.append((start, end, replace(name, counted=False)))
    return sorted(numbers, key=lambda span: span[0]), dated


def _is_year(item: _Item) -> bool:
    return not item.unit and item.key.isdigit() and 1000 <= int(item.key) <= 2100


def _is_day(item: _Item) -> bool:
    return not item.unit and item.key.isdigit() and 1 <= int(item.key) <= 31


# -- words --------------------------------------------------------------------------------------

_STOPWORDS = frozenset("""
a about above after again against all also am an and any are around as at be because been before
being below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself just
me more most my myself nor now of off on once only or other our ours ourselves out over own same
she should so some such than that the their theirs them themselves then there these they this
those through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself yourselves every another either many much may might must shall used
using use like well yes yeah yep nope etc get got onto upon per via whose approximately roughly nearly almost
exactly around some something anything thing things way really actually please let lets
make makes made making take takes took taking keep keeps kept keeping put puts putting give gives
gave go goes went going come comes came get gets getting
""".split())
_NEGATIONS = {"not", "no", "never", "without", "cannot", "nor", "none", "neither", "nothing", "nope"}
_OPENERS = {"yes": "yes", "yeah": "yes", "yep": "yes", "no": "no", "nope": "no"}


def _content_words(tokens: list[_Token], taken: set[int]) -> tuple[_Item, ...]:
    found = {}
    for j, token in enumerate(tokens):
        if j in taken or token.kind != "word" or not _is_content(token.lower):
            continue
        found.setdefault(_stem(token.lower), _Item("word", token.lower, _stem(token.lower)))
    return tuple(found.values())


def _is_content(lower: str) -> bool:
    return len(lower) > 2 and lower not in _STOPWORDS and lower not in _NEGATIONS and not _negates_word(lower)


def _negates_word(lower: str) -> bool:
    return lower.endswith(("n't", "n’t"))


def _negates(token: _Token) -> bool:
    return token.kind == "word" and (token.lower in _NEGATIONS or _negates_word(token.lower))


def _polarity(tokens: list[_Token], used: set[int]) -> tuple[frozenset[str], frozenset[str]]:
    """The content stems a negation denies (the first within three words after it), and the others."""
    negated, plain, scope = set(), set(), 0
    for j, token in enumerate(tokens):
        if token.kind == "punct" or token.lower == "but":
            scope = 0
        elif _negates(token):
            scope = 3
        elif token.kind == "word":
            content = j not in used and _is_content(token.lower)
            if content:
                (negated if scope else plain).add(_stem(token.lower))
            scope = 0 if content else max(scope - 1, 0)
    return frozenset(negated), frozenset(plain)


def _stem(word: str) -> str:
    """A light stem: "boils", "boiling", "boiled" -> "boil"; "batteries" -> "battery"; "rise" -> "ris"."""
    word = word.lower()
    if len(word) <= 3:
        return word
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if not word.endswith(suffix) or word.endswith(("eed", "ss", "us", "is")) and suffix in ("ed", "s"):
            continue
        base = word[: -len(suffix)] + replacement
        if len(base) < 3:
            break
        if suffix in ("ing", "ed") and len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
            base = base[:-1]  # "stopped" -> "stop", but "filled" -> "fill"
        word = base
        break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


# -- the rule -----------------------------------------------------------------------------------

_YES_NO_QUESTION = re.compile(
    r"^\W*(?:is|are|was|were|do|does|did|can|could|should|would|will|has|have|had|may|must|shall"
    r"|isn't|aren't|doesn't|don't|can't)\b", re.IGNORECASE)
_ASKS = [
    ("name", re.compile(r"^\W*(?:who|whom|whose|where)\b|\bby whom\b|\b(?:which|what) (?:person|author|company"
                        r"|city|town|village|country|county|region|state|province|river|lake|island|mountain"
                        r"|street|continent)\b", re.IGNORECASE)),
    ("date", re.compile(r"^\W*(?:since |until )?when\b|\b(?:what|which) (?:year|date|month|day|time)\b",
                        re.IGNORECASE)),
    ("number", re.compile(
        r"\bhow (?:many|much|long|often|far|old|big|large|heavy|fast|hot|high|tall|deep|wide|warm|cold)\b"
        r"|\bwhat (?:(?:is|are|was|were) )?(?:the )?(?:temperature|percentage|proportion|share|size|speed"
        r"|weight|length|age|capacity|voltage|power|price|cost|distance|height|depth|width)\b", re.IGNORECASE)),
]
_DONT_KNOW = re.compile(
    r"\b(?:(?:do|does|did|can|could)\s*(?:not|n['’]t)\s+(?:know|say|tell|find|answer|determine)"
    r"|not\s+(?:sure|certain)|unsure|no\s+idea|unknown|no\s+information|cannot\s+(?:answer|say|tell|determine)"
    r"|not\s+(?:stated|mentioned|specified|given|provided))\b", re.IGNORECASE)


def _counted_items(question: str, asked: _Reading, said: _Reading, given: _Reading) -> tuple[_Item, ...]:
    everything = list(said.items)
    new = [item for item in everything if not _holds(asked, item)]
    if _is_yes_no(question) and (given.opener or not new):
        return (_yes_no_item(said),)
    items = new or everything
    asks = next((kind for kind, pattern in _ASKS if pattern.search(question)), None)
    focused = [item for item in items if asks and _is_asked_for(item, asks)]
    return tuple(focused or items)


def _is_yes_no(question: str) -> bool:
    return bool(_YES_NO_QUESTION.search(question)) and " or " not in question.lower()


def _yes_no_item(said: _Reading) -> _Item:
    answer = said.opener or ("no" if said.negates else "yes")
    return _Item("yes/no", answer, answer)


def _is_asked_for(item: _Item, asks: str) -> bool:
    if asks == "name":
        return item.kind == "name" and item.group == "name"
    if asks == "date":
        return item.kind == "number" or item.group in ("month", "weekday")
    return item.kind == "number"


def _holds(reading: _Reading, item: _Item) -> bool:
    """Whether ``reading`` holds ``item`` (the question already asking it; the answer stating it)."""
    if item.alternatives:
        return any(_holds(reading, one) for one in (replace(item, alternatives=()), *item.alternatives))
    if item.kind == "number":
        return any(n.key == item.key and _units_agree(n.unit, item.unit) for n in reading.numbers)
    if item.kind == "yes/no":
        return (reading.opener or ("no" if reading.negates else "yes")) == item.key
    if item.kind == "name" and any(n.key == item.key and not _same_name(n, item) for n in reading.names):
        return False  # "Peter Olsen" does not state "Maria Olsen"
    return item.key in reading.stems


def _same_name(one: _Item, other: _Item) -> bool:
    return one.key == other.key and (not one.given or not other.given or bool(one.given & other.given))


def _yes_no_clash(items: tuple[_Item, ...], given: _Reading) -> tuple[str, str] | None:
    if len(items) == 1 and items[0].kind == "yes/no" and given.opener and given.opener != items[0].key:
        return items[0].text, f"says {given.opener} where the reference says {items[0].text}"
    return None


def _contradiction(asked: _Reading, said: _Reading, given: _Reading) -> tuple[str, str] | None:
    """(the reference's item, why) for the first thing the answer says against the reference."""
    return _number_clash(asked, said, given) or _name_clash(asked, said, given) or _negation_clash(said, given)


def _number_clash(asked: _Reading, said: _Reading, given: _Reading) -> tuple[str, str] | None:
    theirs = [n for n in said.numbers if n.key not in asked.values]
    own = [n for n in given.numbers if n.key not in asked.values
           and not any(n.key == r.key and _units_agree(n.unit, r.unit) for r in said.numbers)]
    if not theirs or not own:
        return None
    unstated = [r for r in theirs if not _holds(given, r)]
    if len(unstated) == len(theirs):
        return _said_instead(own[0], theirs[0])
    for number in own:  # "30 minutes" where the reference says "40 minutes" (and "20 minutes")
        rival = next((r for r in unstated if number.unit and r.unit and _units_agree(number.unit, r.unit)),
                     None)
        if rival:
            return _said_instead(number, rival)
    return None


def _name_clash(asked: _Reading, said: _Reading, given: _Reading) -> tuple[str, str] | None:
    for group in ("month", "weekday", "name"):
        theirs = [n for n in said.names if n.group == group and n.key not in asked.stems]
        own = [n for n in given.names if n.group == group and _is_foreign(n, asked, said)]
        if theirs and own and not any(_holds(given, n) for n in theirs):
            return _said_instead(own[0], theirs[0])
    return None


def _is_foreign(name: _Item, asked: _Reading, said: _Reading) -> bool:
    """Whether an answer's name is neither the question's nor the reference's."""
    if name.key in asked.stems:
        return False
    namesakes = [n for n in said.names if n.key == name.key]
    if namesakes:
        return not any(_same_name(name, n) for n in namesakes)
    return name.key not in said.stems


def _negation_clash(said: _Reading, given: _Reading) -> tuple[str, str] | None:
    """A word one text negates and the other, which negates nothing, states."""
    if said.negates == given.negates:
        return None
    negating, stating = (said, given) if said.negates else (given, said)
    stem = min((negating.negated - negating.plain) & stating.plain, default=None)
    if stem is None:
        return None
    word = _word(said, stem)
    return word, (f"states {word!r} where the reference negates it" if said.negates
                  else f"negates {word!r} where the reference states it")


def _word(reading: _Reading, stem: str) -> str:
    """The word ``reading`` writes for ``stem``: "increases" rather than "increas"."""
    return next((item.text for item in reading.items if item.kind == "word" and item.key == stem), stem)


def _said_instead(own: _Item, theirs: _Item) -> tuple[str, str]:
    return theirs.text, f"says {own.text} where the reference says {theirs.text}"


def _failure(answer: str, stated: tuple[_Item, ...], items: tuple[_Item, ...],
             clash: tuple[str, str] | None) -> str | None:
    """Why the answer is wrong whatever its recall, or None."""
    if not answer.strip():
        return "empty answer"
    if not stated and _DONT_KNOW.search(answer):
        return "says it does not know"
    if clash:
        return clash[1]
    if not items:
        return "the reference has no key items"
    return None


def _recall_reason(stated: tuple[_Item, ...], missing: tuple[_Item, ...], recall: float) -> str:
    if stated and stated[0].kind == "yes/no":
        return f"answers {stated[0].text}, as the reference does"
    reason = f"states {len(stated)} of {len(stated) + len(missing)} key items (recall {recall:.2f})"
    return reason + (f"; misses {', '.join(_texts(missing[:3]))}" if missing else "")


def _weight(items: tuple[_Item, ...]) -> int:
    return sum(item.weight for item in items)


def _texts(items: tuple[_Item, ...]) -> tuple[str, ...]:
    return tuple(item.text for item in items)
