"""Meaning: does an answer answer its question? Rules that do not ask a model.

A true sentence of a document can be kept as the answer to a question it
does not answer ("Which country grows the most saffron?" → "About 150,000
flowers are needed to make one kilogram of dried saffron."). Two checks
catch that without trusting the model, both deterministic and cheap:

- **The answer is of the kind asked for** (``answer_kind_problem``): who →
  someone named, when → a time, where → a place, how many/much/long → a
  quantity, why → a cause, which/what X → X or something of its kind. The
  rules are the table ``KINDS`` below, each with the reason it exists.
- **The question finds its answer** (``search_problem``): the question,
  searched among the sentences of the answer's passage with BM25 over
  stemmed words, ranks the answer's sentence first among the sentences of
  the asked kind, with a clear margin over the next one. A question that
  another sentence answers as well is ambiguous: a model trained on it
  learns a coin toss.

Each returns ``None`` or a ``(kind, message)`` pair; ``atk_core.toolkit.gates``
turns them into ``Problem``\\ s. The rules are for English (``LANGUAGE``);
words are stemmed with the Snowball stemmer (``snowballstemmer``, pure
Python, no download), so "invented" finds "invention".

BM25 is computed here rather than with a search library: the corpus is the
dozen or so sentences of one passage, built and searched once per pair, and
the scoring (and its behaviour on tiny corpora) must be exactly what the
tests and the figures in ``bench/quality.py`` say.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

LANGUAGE = "english"

# -- words -------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+(?:[.,]\d+)*", re.UNICODE)

# Words a search should not match on: function words, and the words that make a question a
# question ("how long", "what kind of") rather than say what it is about.
_SEARCH_STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just
me more my myself no nor not now of off on once only or other our ours ourselves out over own
same she should so some such than that the their theirs them themselves then there these they this
those through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself yourselves may might must shall also etc onto upon per via whose
many much long far old often kind type sort exactly roughly approximately generally usually
mainly typically known
""".split())


def stem(word: str) -> str:
    """A (lower-case) word's stem: its Snowball stem, irregular verbs joined to their verb.
    A number is its own stem (and is not cached: a corpus of tickets or records has more
    distinct numbers than words)."""
    return word if word.isdigit() else _stem(word)


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    word = _LEMMAS.get(word, word)
    return _SAME.get(word, None) or _stemmer().stemWord(word)


# Irregular forms a stemmer cannot join to their verb ("built" and "build", "began" and
# "begin"), and the words of naming, which questions and answers use interchangeably
# ("what is it called" / "it takes its name from"). Morphology and one family of synonyms,
# nothing more: the search stays lexical.
_LEMMAS = {
    "began": "begin", "begun": "begin", "built": "build", "made": "make", "grew": "grow", "grown": "grow",
    "rode": "ride", "ridden": "ride", "wrote": "write", "written": "write", "took": "take",
    "taken": "take", "gave": "give", "given": "give", "found": "find", "brought": "bring",
    "bought": "buy", "sold": "sell", "sent": "send", "spent": "spend", "went": "go", "gone": "go",
    "came": "come", "ran": "run", "saw": "see", "seen": "see", "knew": "know", "known": "know",
    "threw": "throw", "thrown": "throw", "flew": "fly", "flown": "fly", "drew": "draw",
    "drawn": "draw", "drove": "drive", "driven": "drive", "fell": "fall", "fallen": "fall",
    "held": "hold", "kept": "keep", "led": "lead", "left": "leave", "lost": "lose", "met": "meet",
    "paid": "pay", "said": "say", "sang": "sing", "sung": "sing", "sank": "sink", "sunk": "sink",
    "stood": "stand", "struck": "strike", "taught": "teach", "thought": "think", "told": "tell",
    "won": "win", "wore": "wear", "worn": "wear", "ate": "eat", "eaten": "eat", "fed": "feed",
    "fought": "fight", "froze": "freeze", "frozen": "freeze", "hid": "hide", "hidden": "hide",
    "laid": "lay", "lay": "lie", "lain": "lie", "meant": "mean", "rose": "rise", "risen": "rise",
    "shook": "shake", "shot": "shoot", "spoke": "speak", "spoken": "speak", "spread": "spread",
    "stole": "steal", "stolen": "steal", "swam": "swim", "tore": "tear", "torn": "tear",
    "woke": "wake", "bore": "bear", "born": "bear", "borne": "bear", "dug": "dig", "died": "die",
    "dead": "die", "death": "die", "dies": "die", "dying": "die", "birth": "bear", "lived": "live",
    "life": "live", "lives": "live", "children": "child", "men": "man", "women": "woman",
    "people": "person", "mice": "mouse", "geese": "goose", "feet": "foot", "teeth": "tooth",
}
_SAME = {
    **{w: "name" for w in ("name", "names", "named", "naming", "call", "called", "calls", "nickname",
                           "nicknamed", "nicknames", "term", "termed", "coined", "coin")},
    **{w: "begin" for w in ("begin", "begins", "beginning", "start", "starts", "started", "starting",
                            "commence", "commenced", "commences")},
}


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer(LANGUAGE)


def words(text: str) -> list[str]:
    """The words and numbers of ``text``, lower-cased, in order (a possessive's ``'s`` off:
    "Moon's" is "moon"). The gates' words too (``atk_core.words``)."""
    return list(_words(text))


@lru_cache(maxsize=1024)
def _words(text: str) -> tuple[str, ...]:
    # The gates split the same chunk for every pair and every attempt asked of it: kept.
    found = []
    for word in _WORD.findall(text):
        word = word.lower()
        found.append(word[:-2] if word.endswith(("'s", "’s")) else word)
    return tuple(found)


def terms(text: str) -> list[str]:
    """A text's words as a search sees them: lower-cased, stemmed, without function words."""
    return [_stem(w) for w in words(text) if w not in _SEARCH_STOPWORDS and (len(w) > 1 or w.isdigit())]


# -- BM25 --------------------------------------------------------------------------------------


def bm25(query: list[str], documents: list, *, k1: float = 1.2, b: float = 0.5,
         lengths: list[float] | None = None) -> list[float]:
    """Okapi BM25 scores of ``documents`` for ``query`` (a list of terms). A document is a list
    of terms, or a mapping of terms to (possibly fractional) counts.

    IDF is Lucene's, ``log(1 + (N - n + 0.5) / (n + 0.5))``, which stays positive when a term
    is in most of a handful of sentences (the passage's subject usually is). ``b`` is lower
    than the usual 0.75: sentences differ in length far more than they differ in topic, and
    the long sentence that answers a question should not lose to a short one that names it.
    """
    count = len(documents)
    if not count:
        return []
    documents = [d if isinstance(d, dict) else Counter(d) for d in documents]
    lengths = lengths or [sum(d.values()) for d in documents]
    average = sum(lengths) / count or 1.0
    frequency = Counter(term for document in documents for term in document)
    idf = {term: math.log(1 + (count - frequency[term] + 0.5) / (frequency[term] + 0.5))
           for term in set(query)}
    scores = []
    for found, length in zip(documents, lengths):
        norm = k1 * (1 - b + b * length / average)
        scores.append(sum(idf[t] * found[t] * (k1 + 1) / (found[t] + norm) for t in query if t in found))
    return scores


# -- kinds of answers ----------------------------------------------------------------------------

_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december"
           "|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_TIME_UNITS = (r"seconds?|minutes?|hours?|days?|nights?|weeks?|fortnights?|months?|years?|decades?"
               r"|centuries|century|millennium|millennia|generations?|lifetimes?|seasons?")
_LENGTH_UNITS = (r"km|kilomet(?:re|er)s?|met(?:re|er)s?|cm|centimet(?:re|er)s?|mm|millimet(?:re|er)s?"
                 r"|miles?|feet|foot|ft|inch(?:es)?|yards?|nautical miles?|light[- ]years?|m")
_CARDINALS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen"
              "|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy"
              "|eighty|ninety|hundred|thousand|million|billion|trillion|dozen|dozens|hundreds"
              "|thousands|millions|billions|half|quarter|third|several|couple")
_NUMBER = rf"(?:\d+(?:[.,]\d+)*|(?:{_CARDINALS})(?:[- ](?:{_CARDINALS}))*)"

_YEAR = re.compile(r"\b(?:1\d{3}|20\d{2})s?\b|\b\d{1,4}\s*(?:BCE|BC|CE|AD)\b|\b(?:AD|CE)\s*\d{1,4}\b")
_TIME = re.compile(
    rf"\b(?:{_MONTHS}|{_DAYS})\b"
    r"|\b(?:spring|summer|autumn|fall|winter|dawn|dusk|sunrise|sunset|noon|midnight|midday|morning"
    r"|afternoon|evening|night|nightfall|daytime|night-time|weekend|holiday|harvest|tide)s?\b"
    r"|\b(?:century|centuries|decade|decades|millennium|era|epoch|age|period|ages|reign|dynasty"
    r"|childhood|youth|lifetime)\b"
    r"|\b(?:new|full|half) moon\b"
    r"|\b(?:ago|later|earlier|afterwards|afterward|previously|formerly|recently|soon|then|today|now"
    r"|nowadays|currently|yesterday|tomorrow|once|eventually|initially|annually|yearly|daily"
    r"|weekly|nightly|seasonally|meanwhile|since|until|till|before|after|during|while|whenever"
    r"|when|early|late)\b"
    r"|\b(?:toward|towards|by|at|near|from|to|in) the (?:end|start|beginning|middle|close|time|height"
    r"|turn|outbreak|dawn|eve)\b"
    r"|\b(?:in|during|throughout|through|of)\s+(?:the\s+)?(?:\w+\s+){0,3}(?:war|wars|revolution"
    r"|occupation|invasion|siege|depression|crisis|renaissance|reformation)\b",
    re.IGNORECASE)
_DURATION = re.compile(
    rf"\b{_NUMBER}(?:\s+or\s+{_NUMBER})?(?:[- ]\w+)?\s*[- ](?:{_TIME_UNITS})\b"
    rf"|\b(?:a|an|one|few|several|many|some)\s+(?:few\s+)?(?:{_TIME_UNITS})\b"
    r"|\b(?:overnight|all (?:day|night|year|winter|summer)|(?:for|over) (?:years|decades|centuries"
    r"|months|weeks|days|hours|ages|life))\b",
    re.IGNORECASE)
_LENGTH = re.compile(rf"\b{_NUMBER}\s*[- ]?(?:{_LENGTH_UNITS})\b", re.IGNORECASE)
_QUANTITY = re.compile(
    rf"\b{_NUMBER}\b|\d|%|\b(?:percent|per cent|dozen|half|most|majority|minority|all|none|few"
    r"|several|many|numerous|countless|handful|plenty|lots?|bulk)\b",
    re.IGNORECASE)
_COUNT = re.compile(rf"\b{_NUMBER}\b|\b(?:few|several|many|numerous|countless|handful|dozens|hundreds"
                    r"|thousands|millions|billions|no|none|single|sole|only one|pair|twice)\b",
                    re.IGNORECASE)
_ORDINAL = re.compile(r"\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth"
                      r"|\d+(?:st|nd|rd|th))\b", re.IGNORECASE)
_AGE = re.compile(rf"\b{_NUMBER}[- ]years?[- ]old\b|\baged? (?:of )?{_NUMBER}\b|\bat (?:the age of )?{_NUMBER}\b",
                  re.IGNORECASE)
_MONEY = re.compile(r"[$£€¥]\s*\d|\b\d[\d,.]*\s*(?:dollars?|pounds?|euros?|yen|roubles?|rubles?|francs?"
                    r"|marks?|cents?|pence|shillings?|guineas?|crowns?|lire|pesos?|rupees?|yuan)\b"
                    r"|\b(?:dollars?|pounds?|euros?|roubles?|rubles?|francs?|pence|shillings?|guineas?)\b"
                    r"|\b(?:free|costly|cheap|expensive|price|priced|cost|costs|paid|fee|fees|revenue"
                    r"|budget|worth)\b\s+(?:\w+\s+){0,3}\d", re.IGNORECASE)
_FREQUENCY = re.compile(
    r"\b(?:every|each|per|once|twice|thrice|times|daily|weekly|monthly|yearly|annually|hourly"
    r"|always|usually|often|rarely|seldom|never|sometimes|occasionally|frequently|regularly|a year"
    r"|a day|a week|a month)\b", re.IGNORECASE)

_PLACE_PREPOSITIONS = ("in|at|near|from|to|on|across|along|into|off|around|between|through|throughout"
                       "|outside|inside|beneath|under|over|within|toward|towards|beyond|past|via"
                       "|against|among|amid|opposite|behind|above|below|north|south|east|west")
_PLACE_NOUNS = re.compile(
    r"\b(?:coast|coasts|shore|shores|river|rivers|sea|seas|ocean|oceans|lake|lakes|island|islands"
    r"|mountain|mountains|hill|hills|valley|valleys|desert|deserts|forest|forests|jungle|city|cities"
    r"|town|towns|village|villages|country|countries|region|regions|province|state|states|continent"
    r"|capital|port|ports|harbou?r|bay|gulf|cave|caves|border|borders|equator|tropics|hemisphere|pole"
    r"|poles|underground|abroad|overseas|inland|north|south|east|west|northern|southern|eastern"
    r"|western|central|area|areas|site|sites|land|lands|field|fields|nest|nests|hive|hives|colony"
    r"|home|house|building|laboratory|lab|factory|university|college|school|church|temple|court"
    r"|palace|castle|fort|fortress|camp|station|street|road|route|routes|world|earth|orbit|space"
    r"|atmosphere|surface|floor|bottom|top|edge|side|interior|heart|centre|center|middle|soil|ground"
    r"|water|waters|reef|reefs|basin|plain|plains|plateau|peninsula|strait|channel|canal|delta"
    r"|grove|groves|park|garden|farm|farms|mine|mines|roost|roosts|cell|cells|nucleus|nuclei"
    r"|body|tissue|tissues|blood|brain|stomach|organ|organs)\b", re.IGNORECASE)
_PERSON_NOUNS = re.compile(
    r"\b(?:people|person|persons|man|men|woman|women|boy|girl|child|children|king|kings|queen"
    r"|queens|emperor|empress|tsar|czar|sultan|pharaoh|pope|prince|princess|ruler|rulers|lord|duke"
    r"|government|governments|state|company|companies|firm|firms|army|navy|team|teams|group|council"
    r"|committee|organi[sz]ation|organi[sz]ations|authority|agency|society|university|institute"
    r"|ministry|minister|president|leader|leaders|founder|founders|crew|family|tribe|monks?|priests?"
    r"|soldiers?|merchants?|traders?|farmers?|workers?|slaves?|settlers?|colonists?|explorers?"
    r"|navigators?|sailors?|pilots?|astronauts?|engineers?|doctors?|nurses?|surgeons?|scholars?"
    r"|students?|teachers?|professors?|researchers?|historians?|writers?|authors?|poets?|artists?"
    r"|builders?|makers?|manufacturers?|inventors?|owners?|partners?|colleagues?|rivals?|assistants?"
    r"|officials?|officers?|judges?|courts?|parliament|congress|senate|\w+ists?|\w+ians?"
    r"|conquistadors?|missionar(?:y|ies)|pilgrims?|bees|queen|drones|forager|foragers|nurse)\b",
    re.IGNORECASE)
_CAUSE = re.compile(
    r"\bbecause\b(?! of (?:this|that|these|those|it)\b)|\bsince\b|\bas a (?:result|consequence)\b"
    r"|\bdue to\b|\bowing to\b|\bthanks to\b|\bcaus(?:e|es|ed|ing)\b|\bled to\b|\blead(?:s|ing)? to\b"
    r"|\bresult(?:s|ed|ing)? (?:in|from)\b|\breasons?\b|\bso that\b|\bso as to\b|\bin order to\b"
    r"|,\s*so\b|\btherefore\b|\bthus\b|\bhence\b|\bfor fear\b|\bto (?:protect|prevent|avoid|save|keep"
    r"|make|allow|help|give|reach|escape|find|get|stop|reduce|increase|move|carry|feed|defend|gain"
    r"|earn|honou?r|mark|show|test|study|improve|speed|link|connect|replace|supply|feed)\b"
    r"|\b(?:allow|allows|allowed|enable|enables|enabled|let|lets|made it|makes it|make it|prevents?"
    r"|prevented|wanted|hoped|aimed|sought|intended|meant to|in hopes?)\b"
    r"|\b(?:comes?|came) from\b|\bnamed (?:after|for)\b|\b(?:takes?|took|gets?|got|earned|earns|gives?"
    r"|gave)\b(?:\s+\w+){0,2}\s+(?:nick)?names?\b|\bfrom the (?:\w+ )?word\b|\bdepends? on\b"
    r"|\brel(?:y|ies|ied) on\b",
    re.IGNORECASE)
_SINCE_TIME = re.compile(rf"\bsince (?:the |about |around |at least )?(?:\d|{_MONTHS}|early|late|middle"
                         r"|start|end|beginning|then|ancient|antiquity|prehistoric)", re.IGNORECASE)


def _names(text: str) -> list[str]:
    """Capitalised words (and acronyms) that name something: at a sentence's start too, unless
    they are ordinary words that open a sentence."""
    found = []
    for match in re.finditer(r"\b([A-Z][\w’'-]*[\w])", text):
        word = match.group(1)
        before = text[: match.start()].rstrip()
        at_start = not before or before[-1] in ".!?:;\"“(["
        if at_start and word.lower() in _OPENERS:
            continue
        if word.lower() in _MONTH_OR_DAY:
            continue
        found.append(word)
    return found


_MONTH_OR_DAY = frozenset(_MONTHS.split("|") + _DAYS.split("|"))
_OPENERS = frozenset("""
a an the this that these those it its they their there here he she his her we our in on at by for
from to with after before during when while since until as if although though because but and or so
yet also however today now then later once long most many some all each every both no not nearly
about around almost over under between among what which who how why where is are was were did do
does can could would will should may might must one two three four five six seven eight nine ten
first second third last early late only even such other another scientists people ideas
you i we he she they
""".split())


def _new_names(answer: str, question: str) -> list[str]:
    asked = {_stem(w.lower()) for w in _names(question)} | set(terms(question))
    return [n for n in _names(answer) if _stem(n.lower()) not in asked]


def _has_count(text: str) -> bool:
    """A count of things: a cardinal number that is not a year, an age or an ordinal."""
    cleaned = _AGE.sub(" ", text)
    cleaned = _YEAR.sub(" ", cleaned)
    cleaned = re.sub(rf"\b\d{{1,2}}\s+(?:{_MONTHS})\b|\b(?:{_MONTHS})\s+\d{{1,2}}\b", " ", cleaned, flags=re.I)
    cleaned = _ORDINAL.sub(" ", cleaned)
    return bool(_COUNT.search(cleaned))


def _counts_the_thing(answer: str, question: str) -> bool:
    """Whether the answer's count is of what "how many X" asks about: a number within a few
    words before X (or X's word family), when the answer names X at all. "How many pickles
    are in a bottle?" is not answered by "at least 5 percent acetic acid"."""
    asked = re.search(r"\bhow many\s+(?:(?:of\s+)?(?:the|its|their|his|her)\s+)?([a-z][\w’'-]*)", question, re.I)
    if not asked:
        return True
    thing = _stem(asked.group(1).lower())
    said = [(m.group(0), _stem(m.group(0).lower())) for m in _WORD.finditer(_AGE.sub(" ", _YEAR.sub(" ", answer)))]
    places = [i for i, (_, stemmed) in enumerate(said) if stemmed == thing]
    if not places:
        return True  # it says the thing otherwise ("a dozen or more drones": drones; "seven zones")
    for index in places:
        before = " ".join(word for word, _ in said[max(0, index - 5): index])
        if re.search(rf"\b{_NUMBER}\b|\b(?:few|several|many|dozens|hundreds|thousands|millions|no)\b",
                     before, re.I) and not _ORDINAL.search(before.split()[-1] if before else ""):
            return True
    return False


def _has_quantity(text: str) -> bool:
    cleaned = _YEAR.sub(" ", _ORDINAL.sub(" ", text))
    return bool(_QUANTITY.search(cleaned))


def _has_time(text: str, question: str = "") -> bool:
    """A time in ``text`` that ``question`` does not already say ("When do spring tides
    happen?": "spring" is no answer; "When did X begin in the nineteenth century?" is not
    answered by "in the nineteenth century")."""
    asked = set(terms(question))
    found = [m.group(0) for pattern in (_YEAR, _TIME, _RELATIVE_TIME) for m in pattern.finditer(text)]
    return any(not set(terms(span)) <= asked or not terms(span) for span in found)


# A date-less time relative to something: "six weeks after the launch", "within two years".
_RELATIVE_TIME = re.compile(rf"\b(?:{_TIME_UNITS})\s+(?:after|before|later|earlier|ago|into|of)\b"
                            rf"|\b(?:after|within|in|for the first)\s+(?:\w+\s+){{0,2}}(?:{_TIME_UNITS})\b",
                            re.IGNORECASE)


def _has_place(text: str, question: str) -> bool:
    asked = set(terms(question))
    if _NAMED_PLACE.search(question) and _new_names(text, question):
        return True  # "Which country grows the most saffron?" "Iran grows..."
    for match in re.finditer(rf"\b(?:{_PLACE_PREPOSITIONS})\s+(?:the\s+|a\s+|an\s+)?(?:\w+\s+){{0,2}}?"
                             r"([A-Z][\w’'-]+)", text):
        word = match.group(1)
        if word.lower() not in _MONTH_OR_DAY and not word[0].isdigit():
            return True
    return any(_stem(match.group(0).lower()) not in asked for match in _PLACE_NOUNS.finditer(text))


# A question asking which named place: its answer names it, wherever in the sentence.
_NAMED_PLACE = re.compile(r"\b(?:which|what)\s+(?:\w+\s+)?(?:country|countries|city|cities|town|towns"
                          r"|region|regions|province|state|states|continent|island|islands|river|sea"
                          r"|ocean|lake|port|capital|nation|nations)\b", re.IGNORECASE)


def _has_person(text: str, question: str) -> bool:
    if _new_names(text, question):
        return True
    if len(_names(text)) > 1 and not re.match(r"\W*(?:and\s+)?whose\b", question, re.I):
        return False  # it names people, all of them the question's: the question says who
    asked = set(terms(question))
    return any(_stem(m.group(0).lower()) not in asked for m in _PERSON_NOUNS.finditer(text))


def _has_cause(text: str) -> bool:
    for match in _CAUSE.finditer(text):
        if match.group(0).lower() == "since" and _SINCE_TIME.match(text, match.start()):
            continue
        return True
    return False


@dataclass(frozen=True)
class Kind:
    """A kind of question: how to tell it (``asks``, a regex on the question), what its answer
    must hold (``fits(answer, question)``), what to tell the model, and why the rule exists."""

    name: str
    asks: re.Pattern
    fits: object
    wanted: str
    reason: str


def _re(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


_WHAT_NOUN = r"(?:which|what)\s+(?:\w+\s+){0,2}?"

# Which kind a question asks for: the first whose ``asks`` matches the start of the question
# (or of its main clause), so that "how long" is a duration before "how" is a manner.
KINDS: tuple[Kind, ...] = (
    Kind("age", _re(r"\bhow old\b|\bat what age\b|\bwhat age\b"),
         lambda a, q: bool(_AGE.search(a) or re.search(rf"\b{_NUMBER}\b", a, re.I)),
         "an age",
         "'how old' is answered by an age; a sentence with only a date or a place does not say it"),
    Kind("duration", _re(r"\bhow long(?: (?:does|did|do|will|would|can|could) (?:it|they|this) take)?\b|\bfor how many (?:years|months|weeks|days|hours|minutes)\b"),
         lambda a, q: bool(_DURATION.search(a) or _LENGTH.search(a)),
         "a length of time (or a length)",
         "'how long' asks for a span (six weeks, 95 minutes, 9,289 km); a year or a date is when,"
         " not how long"),
    Kind("distance", _re(r"\bhow (?:far|deep|high|tall|wide|big|large|heavy|fast|hot|cold|thick|"
                         r"bright|strong|loud|salty)\b"),
         lambda a, q: _has_quantity(a),
         "a measure (a number with its unit)",
         "a question of size or degree is answered by a measure; a sentence that only names the"
         " thing does not say how far, deep or big it is"),
    Kind("frequency", _re(r"\bhow often\b|\bhow frequently\b"),
         lambda a, q: bool(_FREQUENCY.search(a)),
         "how often (every year, twice a day...)",
         "'how often' asks for a frequency"),
    Kind("count", _re(r"\bhow many\b|\bwhat (?:is the )?number of\b|\bwhat percentage\b"),
         lambda a, q: _has_count(a) and _counts_the_thing(a, q),
         "a number of the things it asks about",
         "'how many' is answered by a count; a year, an age or 'the first' is not one, and"
         " neither is a number of something else ('How many pickles?' is not '5 percent')"),
    Kind("money", _re(r"\bhow much (?:money|did\b.*\bcost|does\b.*\bcost|do\b.*\bcost|was\b.*\bworth"
                      r"|is\b.*\bworth|did\b.*\b(?:pay|earn|spend|charge|raise)|does\b.*\b(?:pay|earn"
                      r"|spend|charge|raise))|\bwhat (?:price|cost|sum)\b|\bat what price\b"),
         lambda a, q: bool(_MONEY.search(a)),
         "a sum of money",
         "'how much money' (or what something cost) is answered by a sum; a count of people or"
         " things is not one"),
    Kind("amount", _re(r"\bhow much\b|\bwhat (?:proportion|share|fraction|amount|quantity) of\b"),
         lambda a, q: _has_quantity(a),
         "an amount (a number, a share, a percentage)",
         "'how much' is answered by an amount; saying that something was added is not how much"),
    Kind("time", _re(r"\bwhen\b|\b(?:at )?what time(?: of (?:the )?(?:day|year|night))?\b"
                     r"|\bwhat (?:year|date|day|month|time|century|decade|season|period|era)\b"
                     r"|\bin (?:which|what) (?:year|century|decade|month|season|period|era)\b"
                     r"|\bhow soon\b|\bat what time\b"),
         lambda a, q: _has_time(a, q),
         "a time (a date, a year, or a time phrase like 'at new moon' or 'in late summer')",
         "'when' is answered by a time: a date, a year, a season, 'after the war', 'when the days"
         " grow shorter'; a sentence with none says what happened, not when"),
    Kind("place", _re(r"\bwhere\b|\b(?:in|at|on|to|from) (?:which|what) (?:country|countries|city|cities"
                      r"|town|place|places|region|regions|part|parts|area|areas|continent|state|island"
                      r"|sea|ocean|river|site|building|location)\b|\bwhat (?:country|countries|city|cities"
                      r"|town|place|region|continent|location|island)\b|\bwhich (?:country|countries|city"
                      r"|cities|town|place|region|continent|location|island|part of the world)\b"),
         lambda a, q: _has_place(a, q),
         "a place (a named place, or where: 'on the coast', 'in the hive')",
         "'where' is answered by a place; a sentence that says when or how, without a place, does"
         " not answer it"),
    Kind("person", _re(r"^\W*(?:and |but )?(?:who|whom|whose)\b|\b(?:by|to|for|with|from) whom\b"
                       r"|\bwhich (?:person|people|man|woman|scientist|scientists|inventor|company|"
                       r"companies|organi[sz]ation|organi[sz]ations|group|king|queen|emperor|tsar|ruler|"
                       r"president|team|institution|explorer|navigator|astronomer|physicist|chemist|"
                       r"biologist|engineer|government|country's government|firm|manufacturer|maker|"
                       r"makers|tribe|empire|agency)\b"),
         lambda a, q: _has_person(a, q),
         "who: a person, a group or an organisation, by name or by role",
         "'who' is answered by someone the question does not already name; a sentence about the"
         " thing done, with nobody new in it, does not say who"),
    Kind("cause", _re(r"^\W*why\b|\bwhy (?:did|does|do|is|are|was|were|has|have|had|can|could|would|"
                      r"should|might|must|will)\b|\bfor what (?:reason|purpose)\b|\bwhat (?:is|was|were|are)"
                      r" the (?:reasons?|causes?|purpose|motive)\b|\bwhat (?:caused|causes|motivated|"
                      r"motivates|led|leads|drove|drives|prompted|prompts|triggers|triggered|makes|made)\b"),
         lambda a, q: _has_cause(a),
         "a cause or a purpose (because..., so..., to..., due to...)",
         "'why' is answered by a cause or a purpose; a sentence that only says what happened, or"
         " points back to a cause elsewhere ('because of this'), does not give it"),
)

# "What is X?" asks what X is; "What is known about X?" and "What is special about X?" do not.
_DEFINITION = _re(r"^\W*what (?:is|are|was|were) (?!(?:known|said|thought|believed|meant|used|made|done"
                  r"|needed|required|important|special|unusual|remarkable|notable|different|true|left"
                  r"|new|it|this|that|there|so)\b)(?:an? |the )?(?P<term>[\w’' -]+?)\??$")
# "What is the use of X?", "What is the difference between A and B?": questions of one
# attribute, and what an answer to each must say.
_ATTRIBUTE = _re(r"^\W*what (?:is|are|was|were) the (?P<what>uses?|purposes?|functions?|roles?|jobs?"
                 r"|differences?|order|sequence|reasons?|causes?|effects?|results?|advantages?)"
                 r"\s+(?:of|between|for|in|on)\s+(?P<rest>.*)$")
_PURPOSE = _re(r"\b(?:used? (?:to|for|as|in)|uses?\b|serves?|allows?|lets?|helps?|enables?|so that"
               r"|in order to|purpose|function|role|for \w+ing|to (?!be\b)\w+)\b")
_SEQUENCE = _re(r"\b(?:first|then|next|after|before|finally|later|followed|second|last|begins?"
                r"|ends?|until|once|stages?|steps?)\b")
_CONTRAST = _re(r"\b(?:differs?|different|difference|while|whereas|unlike|but|instead|rather than"
                r"|than|however|compared)\b")
_EFFECT = _re(r"\b(?:so|thus|therefore|causes?|caused|leads? to|led to|results? in|makes?|made|gives?"
              r"|effect|consequence)\b")


def _both_sides(answer: str, rest: str) -> bool:
    sides = re.split(r"\s+and\s+|,\s*", rest.rstrip("?"))
    said = set(terms(answer))
    named = [set(terms(side)) for side in sides if terms(side)]
    return bool(_CONTRAST.search(answer)) and (len(named) < 2 or all(side & said for side in named))


_ATTRIBUTES = {
    "use": (lambda a, r: bool(_PURPOSE.search(a)), ""), "purpose": (lambda a, r: bool(_PURPOSE.search(a)), ""),
    "function": (lambda a, r: bool(_PURPOSE.search(a)), ""), "role": (lambda a, r: bool(_PURPOSE.search(a)), ""),
    "job": (lambda a, r: bool(_PURPOSE.search(a)), ""),
    "difference": (_both_sides, " (how the things named differ)"),
    "order": (lambda a, r: bool(_SEQUENCE.search(a)), ""), "sequence": (lambda a, r: bool(_SEQUENCE.search(a)), ""),
    "reason": (lambda a, r: _has_cause(a), ""), "cause": (lambda a, r: _has_cause(a), ""),
    "effect": (lambda a, r: bool(_EFFECT.search(a)), ""), "result": (lambda a, r: bool(_EFFECT.search(a)), ""),
    "advantage": (lambda a, r: bool(_PURPOSE.search(a) or _CONTRAST.search(a)), ""),
}


# "What is the bacterium that makes lactic acid?" asks which one it is.
_IDENTIFY = _re(r"^\W*what (?:is|are|was|were) the (?P<thing>[a-z][\w’'-]*) (?:that|which|who)\b")
# "What was X called (named, nicknamed)?" asks for a name; the answer must give one.
_ASKS_NAME = _re(r"\b(?:called|named|nicknamed|known as|termed|titled)\s*\??$|\bwhat (?:\w+\s+)?name\b"
                 r"|\bwhat did (?:\w+\s+){1,4}(?:call|name)\b")
_NAMES_IT = _re(r"\b(?:called|named|nicknamed?|known as|termed|titled|names?|dubbed|coined|the word|the term)\b"
                r"|\b(?:is|are|was|were)\s+(?:\w+\s+)?(?:[A-Z]\w+|“|\")")
# "What is the practice known as variolation?" asks what variolation is.
_NAMING_PREFIX = _re(r"^\s*(?:the\s+)?(?:\w+\s+)?(?:known as|called|named|termed)\s+")
_MADE_OF = _re(r"\bmade (?:of|from|with|out of)\b|\bconsists? of\b|\bcomposed of\b|\bproduced from\b")
# "What property of minerals does it measure?" is answered by "hardness", which does not
# say "property": for these nouns, which/what X needs no X in the answer.
_ABSTRACT = frozenset(_stem(w) for w in """
property properties kind kinds type types sort sorts part parts aspect aspects feature features
quality qualities role purpose use uses way ways method methods thing things factor factors step
steps form forms material materials substance substances event events effect effects advantage
advantages problem problems reason reasons change changes process idea ideas element elements
""".split())
_WHICH = _re(r"^\W*(?:in |on |at |to |from |of |for |by |with )?(?:which|what)\s+(?!(?:is|are|was|were|do|does"
             r"|did|has|have|had|can|could|will|would|should|might|must|may)\b)(?P<noun>(?:[a-z’'-]+\s+){0,2}?"
             r"[a-z’'-]+?)(?:\s+(?:of|did|does|do|is|are|was|were|has|have|had|can|could|will|would"
             r"|should|might|must)\b|\s+[a-z]+(?:ed|s)\b)")


def question_parts(question: str) -> list[str]:
    """The questions in a question: ``What is X? How does it work?`` is two, and so is
    ``How did X help, and why did he make Y?``."""
    parts = []
    for piece in question.split("?"):
        parts += [p.strip() + "?" for p in _AND_ASKS.split(piece) if p.strip()]
    return parts or [question]


_AND_ASKS = re.compile(r",?\s+and\s+(?=(?:why|how|when|where|who|which|what)\b)", re.IGNORECASE)


def asked_kind(part: str) -> Kind | None:
    """The kind of answer one question asks for, or None (how something works, what it
    does: any sentence about it may answer). The kind asked first, at the question's start,
    counts: "Where were they working when they solved it?" asks where."""
    opening = _opening(part)
    found = [(match.start(), order, kind) for order, kind in enumerate(KINDS)
             for match in [kind.asks.search(part)] if match and match.start() <= opening]
    return min(found, key=lambda f: f[:2])[2] if found else None


def _opening(part: str) -> int:
    """Where the question's own asking starts at the latest: within its first three words
    ("In which country", "Roughly how many", "At what time"). A wh-word later on belongs to a
    clause inside it ("How do bees tell each other *where* flowers are?" asks how)."""
    starts = [m.start() for m in re.finditer(r"\S+", part)]
    return starts[min(3, len(starts) - 1)] if starts else 0


def kind_problem(question: str, answer: str) -> tuple[str, str] | None:
    """Whether ``answer`` is of the kind each part of ``question`` asks for; a
    ``("answer does not answer", message)`` pair when it is not."""
    for part in question_parts(question):
        kind = asked_kind(part)
        if kind is not None:
            if not kind.fits(answer, part):
                return ("answer does not answer",
                        f"the question asks for {kind.wanted}, and the answer gives none; ask a"
                        " question that this sentence answers")
            if kind.name in _SAID_IN_QUESTION and _SAID_IN_QUESTION[kind.name].search(without_kind_phrase(part)):
                return ("question gives the answer away",
                        f"the question already says {kind.wanted.split(' (')[0]}; ask for it instead of"
                        " saying it")
            if kind.name == "frequency" and _FREQUENCY.search(without_kind_phrase(part)):
                return ("question gives the answer away",
                        "the question already says how often ('every week'); ask how often, not"
                        " whether")
            if kind.name in _BOUND_KINDS and not _bound(kind, answer, part):
                return ("answer does not answer",
                        f"the answer gives {kind.wanted}, but of something else than the question"
                        " asks about; ask about what that part of the sentence says")
            continue
        problem = _named_kind_problem(part, answer)
        if problem:
            return problem
    return None


# A question that already says the time or the span it asks for ("When did tea growing begin
# in the nineteenth century?", "How long ... in a fraction of a second?").
_SAID_IN_QUESTION = {
    "time": re.compile(rf"\b(?:1\d{{3}}|20\d{{2}})s?\b|\b(?:{_MONTHS})\b|\bcentur(?:y|ies)\b|\bdecades?\b",
                       re.IGNORECASE),
}
_SAID_IN_QUESTION["duration"] = _DURATION


# Kinds whose answer is a phrase bound to one clause of the sentence: "Kept in a refrigerator,
# it needs feeding only once a week" says how often it is fed, not how often it is kept.
_BOUND_KINDS = frozenset({"time", "place", "count", "amount", "duration", "frequency", "age",
                          "distance", "money"})
_CLAUSE_BREAK = re.compile(r"[,;:()]|\s(?:and|but|while|whereas)\s", re.IGNORECASE)


def _bound(kind: Kind, answer: str, question: str) -> bool:
    """Whether the kind of answer asked for is said of what the question asks about: false when
    the sentence's first clause is what the question asks about, and the time, place or
    number it asks for is only in a later clause of its own that shares none of the
    question's words ("The lens bends the light of one flame into a narrow beam, and a
    clockwork motor turned it once every twenty seconds" does not say how often the lens
    bends light). A phrase that opens the sentence ("In winter, ...") or hangs on the clause
    before ("..., lying in the Coral Sea") belongs to that clause."""
    asked = set(terms(without_kind_phrase(question))) | set(terms(question))
    clauses: list[str] = []
    for piece in (c.strip() for c in _CLAUSE_BREAK.split(answer)):
        if not piece:
            continue
        if clauses and _HANGS_ON.match(piece):
            clauses[-1] += " " + piece
        else:
            clauses.append(piece)
    holding = [i for i, c in enumerate(clauses) if kind.fits(c, question)]
    if not holding or holding[0] == 0 or len(clauses) == 1:
        return True
    if any(set(terms(clauses[i])) & asked for i in holding):
        return True
    return not set(terms(clauses[0])) & asked


# A piece of a sentence that hangs on the clause before it: a participle, a relative word, a
# preposition ("..., lying in the Coral Sea", "..., which lies between", "..., at a farm").
_HANGS_ON = re.compile(r"^(?:\w+(?:ing|ed)\b|which\b|who\b|whom\b|whose\b|where\b|when\b|in\b|at\b|on\b"
                       r"|near\b|from\b|to\b|of\b|with\b|by\b|for\b|off\b|across\b|along\b|into\b"
                       r"|between\b|around\b|about\b|after\b|before\b|during\b|until\b|since\b"
                       r"|including\b|such as\b|than\b|as\b)", re.IGNORECASE)


def _named_kind_problem(part: str, answer: str) -> tuple[str, str] | None:
    """which/what X → X (or a word of its family) is in the answer; what is X → the answer
    says what X is; yes/no → the answer speaks of what the question asks about."""
    said = set(terms(answer))
    if _MADE_OF.search(part) and not _MADE_OF.search(answer):
        return ("answer does not answer",
                "the question asks what something is made of, and the answer does not say; ask a"
                " question that this sentence answers")
    if _ASKS_NAME.search(part):
        if not _NAMES_IT.search(answer):
            return ("answer does not answer",
                    "the question asks what something is called, and the answer gives no name; ask a"
                    " question that this sentence answers")
        return None
    definition = _DEFINITION.match(part)
    if definition and not _MADE_OF.search(part) and _simple_term(definition.group("term")):
        wanted = terms(_NAMING_PREFIX.sub("", definition.group("term")))
        if wanted and not _defines(answer, wanted):
            return ("answer does not answer",
                    f"the question asks what {definition.group('term').strip()} is, and the answer does"
                    " not say what it is; ask a question that this sentence answers")
        return None
    attribute = _ATTRIBUTE.match(part)
    if attribute:  # "What is the use of X?" wants a use; "the difference between A and B" both
        wanted = attribute.group("what").lower().rstrip("s")
        check, named = _ATTRIBUTES[wanted]
        if not check(answer, attribute.group("rest")):
            return ("answer does not answer",
                    f"the question asks for the {wanted}{named}, and the answer does not give it;"
                    " ask a question that this sentence answers")
        return None
    identify = _IDENTIFY.match(part)
    if identify:  # "What is the bacterium that makes lactic acid?" wants it named
        thing = _stem(identify.group("thing").lower())
        said_words = [_stem(w) for w in words(answer)]
        asked_words = set(terms(part))
        modifier = any(w == thing and i and said_words[i - 1] not in asked_words
                       and said_words[i - 1] not in _SEARCH_STOPWORDS for i, w in enumerate(said_words))
        if not _new_names(answer, part) and not modifier:
            return ("answer does not answer",
                    f"the question asks which {identify.group('thing')} it is, and the answer does not"
                    " name it; ask a question that this sentence answers")
        return None
    which = _WHICH.match(part)
    if which:
        noun = terms(which.group("noun"))
        if noun and noun[-1] not in _ABSTRACT and noun[-1] not in said and not _new_names(answer, part):
            return ("answer does not answer",
                    f"the question asks which {which.group('noun').strip()}, and the answer names"
                    " none; ask a question that this sentence answers")
        return None
    return None


def _simple_term(term: str) -> bool:
    """A term a "What is X?" asks to define: a few words, no preposition or possessive ("What
    is the hardness of a knife on the scale?" asks for a value, "What is carved on it?" for
    a content)."""
    plain = _NAMING_PREFIX.sub("", term)
    said = words(plain)
    return (0 < len(said) <= 5 and not re.search(r"['’]s\b", plain)
            and not set(said) & {"of", "on", "in", "at", "by", "for", "from", "with", "about", "to",
                                 "into", "it", "them", "this", "that", "these", "those"}
            and not re.search(r"\b\w+ed\b", plain))


def _defines(sentence: str, term: list[str]) -> bool:
    """Whether ``sentence`` says what the thing named by ``term`` (its stemmed content words)
    is: the term, then a copula with an article ("A coral reef is a ridge..."), an apposition
    ("X, a ..."), "in which", "means"; or a naming just before it ("called X", "known as X").
    "The Great Barrier Reef is the largest coral reef system" does not define a coral reef."""
    found = [m for m in _WORD.finditer(sentence)
             if re.sub(r"['’]s$", "", m.group(0).lower()) not in _SEARCH_STOPWORDS]
    stems = [_stem(re.sub(r"['’]s$", "", m.group(0).lower())) for m in found]
    size = len(term)
    for index in range(len(stems) - size + 1):
        if stems[index: index + size] != term:
            continue
        after = sentence[found[index + size - 1].end():][:40]
        before = sentence[: found[index].start()][-30:]
        if re.match(r"\s*(?:\w+\s+)?(?:is|are|was|were)\s+(?:(?:also|usually|simply|essentially|basically"
                    r"|generally|often|now|once|still)\s+)?(?:a|an|the|one|any|two|made|called|known|used"
                    r"|defined|what|how|where)\b"
                    r"|\s*,\s*(?:a|an|the|or|in which|which is|meaning|whereby)\b|\s+(?:means?|meant"
                    r"|refers? to|denotes?|in which|whereby)\b|\s*\(", after, re.I):
            return True
        if re.match(r"\s*(?:are|were)\s+(?!not\b|also\b)\w+s\b", after, re.I):  # "Spring tides are tides..."
            return True
        if re.search(r"\b(?:called|known as|termed|named|nicknamed|the word|the term)\s*(?:the\s+)?$",
                     before, re.I):
            return True
    return False


def fits_kinds(question: str, sentence: str) -> bool:
    """Whether ``sentence`` holds an answer of every kind ``question`` asks for."""
    return kind_problem(question, sentence) is None


# -- the question finds its answer -------------------------------------------------------------


def search_problem(question: str, sentence: str, sentences: list[str], *,
                   margin: float = 1.05, reach: float = 0.5) -> tuple[str, str] | None:
    """Whether ``question``, searched among ``sentences`` (the passage's, in order, with
    ``sentence`` among them), finds ``sentence`` first among those of the kind it asks for,
    its score at least ``margin`` times the next one's (within ``margin`` of each other, either
    way, the two answer it as well: ambiguous), and at least ``reach`` times the
    score of any sentence at all (a question that finds another sentence far better, one
    that says no time or place, asks about that sentence's fact: this one only happens to
    hold a date). ``("answer does not answer", ...)`` when another sentence ranks clearly above
    it, ``("ambiguous question", ...)`` when one comes too close; each message names the other
    sentence's words, for the model's next try.

    A sentence that opens by pointing back ("It is called...", "They begin to leave...") is
    searched with the words of the sentence before it, which say what it is about."""
    query = _query(question)
    if not query:
        return None
    asked = set(query)
    # A heading ("# Lighthouses of the Northern Coast") names a topic; it answers nothing.
    pool = list(dict.fromkeys(" ".join(s.split()) for s in sentences
                              if s.strip() and not s.lstrip().startswith("#") and len(s.split()) > 2))
    sentence = " ".join(sentence.split())
    if sentence not in pool:
        pool.append(sentence)
    documents, lengths = [], []
    for index, text in enumerate(pool):
        # "pickers" answers "picked": an agent noun is its verb, for a word the question asks
        counts = Counter(t[:-2] if t.endswith("er") and t[:-2] in asked else t for t in terms(text))
        lengths.append(sum(counts.values()))
        if index and _POINTS_BACK.match(text):  # what "it" is, at half the weight of its own words
            for term in set(terms(pool[index - 1])) - set(counts):
                counts[term] = 0.5
        documents.append(dict(counts))
    scores = bm25(query, documents, lengths=lengths)
    own = scores[pool.index(sentence)]
    if own <= 0:
        return ("answer does not answer", "the question shares no word with its answer; ask about"
                " what the answer says, in its words")
    fitting, other = [], []
    for score, text in zip(scores, pool):
        if text != sentence and score > 0:
            (fitting if fits_kinds(question, text) else other).append((score, text))
    typed = all(asked_kind(part) is not None for part in question_parts(question))
    if other and typed:
        best, rival = max(other, key=lambda r: r[0])
        if own < reach * best:
            return ("answer does not answer",
                    f"the question is about another sentence ({_quote(rival)}), not this one; ask"
                    f" what this sentence says, not about {_words_of(rival, sentence)}")
    if not fitting:
        return None
    best, rival = max(fitting, key=lambda r: r[0])
    if own * margin < best:
        return ("answer does not answer",
                f"the question is answered by another sentence ({_quote(rival)}), not by this one;"
                f" ask what this sentence says, not about {_words_of(rival, sentence)}")
    if own < margin * best:
        return ("ambiguous question",
                f"another sentence answers the question as well ({_quote(rival)}); ask in words of"
                f" this sentence that the other does not have, not about {_words_of(rival, sentence)}")
    return None


def _query(question: str) -> list[str]:
    """What to search for: the question's terms, without the words that only say what kind of
    answer it wants ("at what time of day", "in which country"), its verbs twice. A question's
    verb says which fact it asks about ("When was the Rosetta Stone *found*?"); its subject
    is often what the whole passage is about, in many sentences."""
    kept = []
    for part in question_parts(without_kind_phrase(question)):
        for word in words(part):
            if word in _SEARCH_STOPWORDS or (len(word) < 2 and not word.isdigit()):
                continue
            kept.append(_stem(word))
            if _is_verb(word):
                kept.append(_stem(word))
    return kept


def _is_verb(word: str) -> bool:
    """A word that is (most likely) a verb's past or present participle or past tense: an
    irregular form ("found", "built", "written") or a regular ending ("discovered",
    "leaving")."""
    return word in _LEMMAS and word not in _NOUN_LEMMAS or (
        len(word) > 4 and (word.endswith("ed") or word.endswith("ing"))
        and not word.endswith(("ceed", "ling", "thing", "ring", "red", "eed")))


_NOUN_LEMMAS = frozenset({"life", "lives", "death", "birth", "children", "men", "women", "people", "mice",
                          "geese", "feet", "teeth", "dead"})


# A sentence that opens by pointing back at the one before ("It is...", "They...", "This...").
_POINTS_BACK = _re(r"^\W*(?:it|its|they|their|them|he|his|she|her|this|these|those|such|the latter"
                   r"|the former|both|there)\b")


def _words_of(rival: str, own: str) -> str:
    return ", ".join(_distinct_words(rival, own)[:6]) or "what it says"


def _distinct_words(rival: str, own: str) -> list[str]:
    mine = set(terms(own))
    return list(dict.fromkeys(w for w in words(rival)
                              if w not in _SEARCH_STOPWORDS and _stem(w) not in mine))


def _quote(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1].rstrip() + "…")


# -- what a sentence can answer --------------------------------------------------------------------

_DEFINES_AT_START = _re(r"^\W*(?:an?\s+|the\s+)?[\w’'-]+(?:\s+[\w’'-]+){0,3}\s+(?P<verb>is|are|was|were)"
                        r"\s+(?:an?|the|one)\b")


def opening(sentence: str) -> str:
    """The question word(s) a question that ``sentence`` answers is best asked with: what the
    sentence can answer, most telling first (what something is, why, when, how often, how
    long, how far, how many, how much, who, where), else "What". A small model asked to start
    its question so writes one of the kind the sentence answers."""
    definition = _DEFINES_AT_START.match(sentence)
    if definition:
        return "What " + definition.group("verb").lower()
    checks = (
        ("Why", lambda s: bool(_CAUSE.search(s)) and _has_cause(s)),
        ("When", lambda s: bool(_YEAR.search(s) or re.search(rf"\b(?:{_MONTHS})\b|\bcentur(?:y|ies)\b"
                                                           r"|\b(?:spring|summer|autumn|winter)\b"
                                                           r"|\b(?:dawn|dusk|night|morning|evening)\b", s, re.I))),
        ("How often", lambda s: bool(re.search(r"\b(?:every|each|once|twice|times a|a day|a year"
                                               r"|a week|daily|yearly)\b", s, re.I))),
        ("How long", lambda s: bool(_DURATION.search(s))),
        (_length_words(sentence), lambda s: bool(_LENGTH.search(s))),
        ("How many", _has_count),
        ("How much", _has_quantity),
        ("Who", lambda s: bool(_PERSON_NOUNS.search(s)) or any(len(n) > 2 for n in _names(s)[1:])),
        ("Where", lambda s: bool(_AT_PLACE.search(s))),
    )
    for asking, fits in checks:
        if fits(sentence):
            return asking
    return "What"


# A place said as one: a preposition of place, then a named place or a place noun.
_AT_PLACE = re.compile(rf"\b(?:in|at|on|near|from|to|across|along|into|off|above|below|beside|behind"
                       r"|under|over|around|throughout)\s+(?:the\s+|a\s+|an\s+)?(?:\w+\s+){0,2}?"
                       rf"(?:[A-Z][\w’'-]+|{_PLACE_NOUNS.pattern.replace(chr(92) + 'b', '')})\b")


def _length_words(sentence: str) -> str:
    for adjective in ("tall", "high", "deep", "wide", "long", "thick"):
        if re.search(rf"\b{adjective}\b", sentence, re.I):
            return f"How {adjective}"
    return "How far"


def without_kind_phrase(question: str) -> str:
    """The question without the words that only say what kind of answer it wants ("how long
    does it take", "at what time of day", "in which country")."""
    kept = []
    for part in question_parts(question):
        kind = asked_kind(part)
        kept.append(kind.asks.sub(" ", part, count=1) if kind is not None else part)
    return " ".join(kept)
