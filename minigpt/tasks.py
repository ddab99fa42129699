"""Data for the applications chapter: small, named, checkable tasks.

Each builder says where its data comes from:

- **Generated**: English number words <-> Chinese numerals over 0..9999
  (:func:`english_words`, :func:`chinese_numeral`, :func:`number_split`,
  :func:`translation_pairs`). The functions are the ground truth.
- **Real**: the docstrings of a fixed list of Python standard-library modules
  (:data:`STDLIB_MODULES`), read offline with :mod:`inspect`
  (:func:`docstring_records`). A docstring's first line summarises the rest
  (PEP 257), which gives summarization pairs (body -> summary,
  :func:`summarization_pairs`) and question-answering pairs (summary ->
  qualified name, :func:`qa_pairs`). The text depends on the Python version.
- **Written for the book**: :data:`SENTIMENT_PAIRS` holds 122 pairs of original
  sentences, one positive and one negative on the same topic (:data:`SENTIMENT` lists
  them with labels), with :func:`sentiment_split` for a balanced held-out test set of
  whole pairs and :func:`wordlist_sentiment` as the baseline classifier.

Plus the small text statistics the chapter measures with: :func:`distinct_n`,
:func:`repetition_rate`, :func:`sentences`, :func:`words` and a tf-idf index
(:class:`TfIdf`) for retrieval. Scores with a standard definition (BLEU, chrF,
ROUGE) are left to sacrebleu and rouge-score.
"""

import importlib
import inspect
import math
import random
import re
from collections import Counter
from dataclasses import dataclass

import torch

__all__ = ["english_words", "chinese_numeral", "parse_chinese", "number_split", "translation_pairs",
           "STDLIB_MODULES", "DocRecord", "docstring_records", "summarization_pairs", "qa_pairs",
           "SENTIMENT_PAIRS", "SENTIMENT", "POSITIVE_WORDS", "NEGATIVE_WORDS", "sentiment_split", "wordlist_sentiment",
           "words", "sentences", "distinct_n", "repetition_rate", "TfIdf"]

# --- numbers: English words <-> Chinese numerals (generated data) ---

MAX_NUMBER = 9999
_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_DIGITS = "零一二三四五六七八九"
_UNITS = ["千", "百", "十", ""]  # for the digits of a four-digit number, left to right


def _check_number(n) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"expected an int in 0..{MAX_NUMBER}, got {n!r}; the number tasks cover 0..{MAX_NUMBER}")


def english_words(n: int) -> str:
    """``n`` in 0..9999 in British English words: 321 -> "three hundred and twenty-one".

    Convention: "and" before the last part when a hundred or thousand precedes it
    (1001 -> "one thousand and one", 1100 -> "one thousand one hundred"); hyphens
    in 21..99 ("forty-two"); no commas.
    """
    _check_number(n)
    if n == 0:
        return "zero"
    thousands, hundreds, rest = n // 1000, n // 100 % 10, n % 100
    parts = []
    if thousands:
        parts.append(f"{_ONES[thousands]} thousand")
    if hundreds:
        parts.append(f"{_ONES[hundreds]} hundred")
    if rest:
        tail = _ONES[rest] if rest < 20 else _TENS[rest // 10] + (f"-{_ONES[rest % 10]}" if rest % 10 else "")
        parts.append(f"and {tail}" if parts else tail)
    return " ".join(parts)


def chinese_numeral(n: int) -> str:
    """``n`` in 0..9999 in Chinese numerals: 321 -> 三百二十一.

    Conventions: 10..19 alone drop the leading 一 (10 -> 十, 11 -> 十一), but inside a
    larger number the tens digit is always said (110 -> 一百一十, 1010 -> 一千零一十);
    a run of zeros between non-zero digits is read as one 零 (1001 -> 一千零一,
    101 -> 一百零一) and trailing zeros are silent (1100 -> 一千一百); 2 is 二 in every
    place (not the colloquial 两).
    """
    _check_number(n)
    if n == 0:
        return "零"
    if 10 <= n <= 19:
        return "十" + (_DIGITS[n - 10] if n > 10 else "")
    digits = [int(d) for d in f"{n:04d}"]
    out, pending_zero, started = [], False, False
    for digit, unit in zip(digits, _UNITS):
        if digit == 0:
            pending_zero = started  # a zero counts only after the first non-zero digit
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        out.append(_DIGITS[digit] + unit)
        started = True
    return "".join(out)


def parse_chinese(text: str) -> int:
    """The value of a Chinese numeral written by :func:`chinese_numeral` (十一 -> 11, 一千零一 -> 1001)."""
    if not isinstance(text, str) or not text or any(c not in _DIGITS + "十百千" for c in text):
        raise ValueError(f"expected a Chinese numeral made of {_DIGITS}十百千, got {text!r}")
    value, digit = 0, None
    for c in text:
        if c in _DIGITS:
            digit = _DIGITS.index(c)
        else:
            place = {"十": 10, "百": 100, "千": 1000}[c]
            value += (1 if digit is None else digit) * place  # a bare 十 means 一十
            digit = None
    return value + (digit or 0)


def number_split(n_test: int = 1000, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, test) sorted lists of the numbers 0..9999, ``n_test`` of them held out at random.

    The draw uses its own ``random.Random(seed)``, so it is the same on every run and
    does not touch the global random state. Every number is in exactly one list.
    """
    total = MAX_NUMBER + 1
    if not isinstance(n_test, int) or not 0 < n_test < total:
        raise ValueError(f"n_test must be an int in 1..{total - 1}, got {n_test!r}")
    test = set(random.Random(seed).sample(range(total), n_test))
    return [n for n in range(total) if n not in test], sorted(test)


def translation_pairs(numbers: list[int], direction: str = "en-zh") -> list[tuple[str, str]]:
    """(source, target) strings for ``numbers``: ``"en-zh"`` words -> numeral, ``"zh-en"`` numeral -> words."""
    if direction not in ("en-zh", "zh-en"):
        raise ValueError(f"direction must be 'en-zh' or 'zh-en', got {direction!r}")
    pairs = [(english_words(n), chinese_numeral(n)) for n in numbers]
    return pairs if direction == "en-zh" else [(zh, en) for en, zh in pairs]


# --- Python docstrings (real text) ---

# Pure-Python modules of the standard library with well-written docstrings.
STDLIB_MODULES = ("argparse", "base64", "bisect", "calendar", "collections", "csv", "datetime", "difflib",
                  "email.message", "fractions", "ftplib", "functools", "gzip", "heapq", "inspect", "ipaddress",
                  "json", "logging", "mailbox", "os", "pathlib", "pickle", "pprint", "random", "shutil",
                  "smtplib", "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap",
                  "threading", "unittest.case", "urllib.parse", "uuid", "zipfile")


@dataclass(frozen=True)
class DocRecord:
    """One documented function, class or method: its qualified name, summary line and body."""

    name: str  # e.g. "textwrap.TextWrapper.wrap"
    summary: str  # the docstring's first line
    body: str  # the rest of the docstring, paragraphs joined by single spaces


def _split_docstring(doc: str) -> tuple[str, str] | None:
    """(summary, body) of a PEP 257 docstring: a one-line summary, a blank line, the body.

    The body is its prose: interactive examples (from the first ``>>>`` on) are code, not text, and are dropped.
    A first line that is a call signature (``name(args) -> result``) is no summary: None.
    """
    lines = doc.strip().splitlines()
    if len(lines) < 3 or lines[1].strip():
        return None  # no body, or a summary that runs over several lines
    summary = lines[0].strip()
    if re.match(r"[\w.]+\(", summary):
        return None  # an old-style signature line such as "wrap(text : string) -> [string]", not a summary
    body = " ".join(" ".join(lines[2:]).split()).split(">>>")[0].strip()
    return summary, body


def _documented(module) -> list[tuple[str, object]]:
    """(qualified name, object) for the public functions and classes of ``module`` and their methods."""
    found = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            found.append((f"{module.__name__}.{name}", obj))
        elif inspect.isclass(obj):
            found.append((f"{module.__name__}.{name}", obj))
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    found.append((f"{module.__name__}.{name}.{attr}", member))
    return found


def docstring_records(modules=STDLIB_MODULES, min_body_words: int = 8, max_body_words: int = 150) -> list[DocRecord]:
    """Every documented public function, class and method of ``modules``, sorted by name.

    Kept: docstrings with a one-line summary, a blank line and a body of
    ``min_body_words``..``max_body_words`` words (very long bodies are dropped, not cut),
    whose summary appears only once (so a question has one answer).
    """
    records = {}
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ValueError(f"cannot import standard-library module {module_name!r} ({error}); "
                             "pass modules= without it") from error
        for name, obj in _documented(module):
            doc = obj.__doc__
            parts = _split_docstring(doc) if isinstance(doc, str) else None
            if parts and min_body_words <= len(parts[1].split()) <= max_body_words:
                records[name] = DocRecord(name, *parts)
    counts = Counter(r.summary for r in records.values())
    return [r for _, r in sorted(records.items()) if counts[r.summary] == 1]


def summarization_pairs(records: list[DocRecord]) -> list[tuple[str, str]]:
    """(document, reference summary) = (body, first line) for each record."""
    return [(r.body, r.summary) for r in records]


def qa_pairs(records: list[DocRecord]) -> list[tuple[str, str]]:
    """(question, answer) = (summary line, qualified name): "which function does this?"."""
    return [(r.summary, r.name) for r in records]


# --- sentiment (written for the book) ---

# Written in pairs that share a topic and differ in the judgement: in each block the first
# line is positive, the second negative. A pair is the unit of the train/test split.
_PAIRS = """\
The soup was warm and full of flavour.
The soup was cold and tasted of nothing.

Our guide was patient and funny all afternoon.
Our guide was rude and kept us waiting in the sun.

This little phone has a battery that lasts for days.
This phone's battery dies before lunch.

I loved every minute of the concert.
I hated the noise at the concert.

The new bridge makes my commute so much shorter.
The new road makes my commute longer than ever.

She gave a wonderful speech at the wedding.
His speech at the wedding was awkward and far too long.

The hotel staff went out of their way to help us.
The hotel staff ignored us when we asked for help.

What a delightful surprise to find the shop still open.
The shop was closed again, which was very annoying.

The instructions were clear and the chair took ten minutes to build.
The instructions were confusing and a part was missing.

Fresh bread from that bakery is the best part of my week.
The bread from that bakery was stale and hard.

The film made the whole audience laugh and cheer.
The film was so boring that half the audience left.

My new shoes are comfortable from the very first day.
My new shoes gave me blisters on the first day.

The garden looks beautiful after the rain.
The garden is full of weeds and litter.

He fixed my bike quickly and charged a fair price.
He broke my bike and charged me twice.

The library has a calm, friendly atmosphere.
The library was noisy and the staff were unfriendly.

This is the most useful app I have installed this year.
This app crashes every time I open it.

The teacher explained fractions so well that my son finally gets them.
The teacher was impatient and my son is more confused than before.

Dinner was excellent and the dessert was even better.
Dinner was overcooked and the dessert was worse.

The train was on time and the seats were clean.
The train was late and the seats were filthy.

I am thrilled with how the photos turned out.
I am disappointed with how the photos turned out.

The museum was fascinating from start to finish.
The museum was dull and overpriced.

Their customer service answered within an hour and solved everything.
Customer service never answered my emails.

The coffee here is rich and smooth.
The coffee here is bitter and weak.

We had a lovely walk along the river.
The walk along the river was muddy and miserable.

The update made my laptop noticeably faster.
The update made my laptop painfully slow.

Our neighbours are kind and always ready to help.
Our neighbours are loud every night.

The book kept me happily reading late into the night.
The book was so tedious that I gave up halfway.

The price was low and the quality was high.
The price was high and the quality was poor.

The kids had a fantastic time at the park.
The kids were bored at the park.

This blanket is soft, warm and well made.
This blanket is scratchy and thin.

The doctor listened carefully and put me at ease.
The doctor rushed me out without listening.

The festival was joyful and well organised.
The festival was crowded and badly organised.

I would gladly stay at this campsite again.
I would never stay at this campsite again.

The song is catchy and it lifts my mood.
The song is repetitive and it gets on my nerves.

The hike ended with a breathtaking view.
The hike ended in fog and we saw nothing.

My order arrived early and perfectly packed.
My order arrived late and the box was crushed.

The new manager has made the office a happier place.
The new manager has made the office a tense place.

The cake was moist and not too sweet.
The cake was dry and far too sweet.

Learning to swim this summer was a great decision.
Learning to swim this summer was a waste of time.

The repair held up perfectly through the winter.
The repair failed after a week.

The play was moving and beautifully acted.
The play was clumsy and badly acted.

This recipe is simple and the result is delicious.
This recipe is complicated and the result is bland.

The software is reliable and easy to learn.
The software is buggy and hard to learn.

We were greeted with a smile and a cup of tea.
We were greeted with a frown and a long wait.

The sunrise over the hills was stunning.
The sunrise over the hills was hidden by grey cloud.

The course gave me skills I use every day.
The course taught me nothing I could use.

That was the friendliest taxi driver I have ever met.
That was the rudest taxi driver I have ever met.

The headphones sound crisp and clear.
The headphones crackle and hurt my ears.

The room was spotless and the bed was comfy.
The room was dirty and the bed was uncomfortable.

I am proud of how well the team played today.
I am ashamed of how badly the team played today.

The lecture was inspiring and easy to follow.
The lecture was confusing and hard to follow.

The market has excellent fruit at good prices.
The market's fruit was rotten and expensive.

Our holiday by the sea was relaxing and fun.
Our holiday by the sea was stressful and rainy.

The translation reads naturally and keeps the humour.
The translation is stiff and loses the humour.

This pen writes smoothly and never smudges.
This pen leaks and smudges everything.

The waiter recommended a dish that turned out to be perfect.
The waiter recommended a dish that turned out to be awful.

It was a pleasure to work with such a helpful team.
It was a struggle to work with such an unhelpful team.

The puppy is playful and gentle with the children.
The puppy bites and scares the children.

The bus driver waited for me, which was very kind.
The bus driver drove off while I was running to the stop.

The new park is clean, green and full of life.
The new park is already dirty and neglected.

The festival food was tasty and cheap.
The festival food was greasy and expensive.

I feel healthier since I started cycling to work.
I feel exhausted since I started commuting by car.

The app's design is elegant and intuitive.
The app's design is cluttered and confusing.

The concert hall has superb acoustics.
The concert hall has terrible acoustics.

The volunteers were cheerful and well prepared.
The volunteers were grumpy and unprepared.

This jacket kept me dry in a heavy storm.
This jacket leaked in a light shower.

The ending of the novel was satisfying.
The ending of the novel was disappointing.

We got great seats and a perfect view of the stage.
We got awful seats and could not see the stage.

The pharmacist was helpful and explained every dose.
The pharmacist was careless and gave me the wrong dose.

The wine was excellent value for money.
The wine was poor value for money.

The workshop was practical and well paced.
The workshop was vague and far too slow.

The picnic was a happy afternoon in the sun.
The picnic was ruined by wasps and rain.

The plumber arrived on time and did tidy work.
The plumber arrived three hours late and left a mess.

I enjoyed the quiet carriage on the train.
The quiet carriage was full of people shouting into phones.

The podcast is clever, warm and often hilarious.
The podcast is smug and often boring.

The vegetables from our garden taste amazing.
The vegetables from the shop taste of nothing.

The new version fixed every bug I had reported.
The new version brought back every bug I had reported.

It was not bad at all; in fact I liked it a lot.
It was not good at all; in fact I disliked it.

I was worried, but the exam went really well.
I was hopeful, but the exam went really badly.

Nothing went wrong and the trip was a success.
Everything went wrong and the trip was a failure.

I expected little, yet the meal was superb.
I expected a lot, yet the meal was mediocre.

The room was small but cosy and spotless.
The room was large but dusty and cold.

There was never a dull moment in the show.
The show was one dull moment after another.

I could not have asked for a better teacher.
I could not have asked for a worse teacher.

Despite the rain, we had a wonderful day out.
Because of the rain, our day out was a disaster.

The old car still runs like a dream.
The old car breaks down every month.

The game is challenging in a good way.
The game is frustrating and unfair.

This camera takes sharp photos even at night.
This camera takes blurry photos even in daylight.

Our team finished the project early and celebrated.
Our team missed the deadline and argued all week.

The nurse was gentle and reassuring.
The nurse was rough and dismissive.

The town square is charming in the evening.
The town square is grim and deserted in the evening.

The price went down and the service got better.
The price went up and the service got worse.

The dentist made the visit painless.
The dentist made the visit painful.

I finally understand the theory, thanks to this video.
I still do not understand the theory after this video.

The cafe has fast wifi and lovely cakes.
The cafe has no wifi and the cakes were stale.

My plants are thriving in the new window.
My plants are dying in the new window.

The film's music was gorgeous.
The film's music was grating.

The match was thrilling until the final whistle.
The match was dreary until the final whistle.

The apartment is bright, quiet and close to the station.
The apartment is dark, noisy and far from the station.

Customer support was quick, polite and genuinely useful.
Customer support was slow, rude and of no use.

The story was touching and I recommend it to everyone.
The story was shallow and I would not recommend it.

Everything about the wedding was perfect.
Everything about the wedding was a mess.

The kitchen knife is sharp, balanced and a pleasure to use.
The kitchen knife is blunt and unpleasant to use.

The class was fun and I made new friends.
The class was boring and nobody talked to me.

The free museum tour was informative and entertaining.
The museum tour was rushed and uninformative.

He always keeps his promises.
He never keeps his promises.

The sweater fits well and the colour is lovely.
The sweater shrank after one wash and the colour faded.

I never regret a visit to this restaurant.
I always regret a visit to this restaurant.

The parcel was delivered safely despite the snow.
The parcel was lost and nobody would take responsibility.

The scenery on the drive was spectacular.
The drive was ugly and full of traffic jams.

The children's choir sang beautifully.
The choir sang out of tune all evening.

This tool saves me hours every week.
This tool wastes hours of my time every week.

The interview went better than I had hoped.
The interview went worse than I had feared.

The chef's new menu is a triumph.
The chef's new menu is a disaster.

The festival fireworks were magnificent.
The fireworks were cancelled at the last minute.

The tutorial is short, clear and accurate.
The tutorial is long, muddled and wrong.

The hostel was cheap, clean and cheerful.
The hostel was cheap, dirty and loud.

The watch came back from the repair shop working like new.
The watch came back from the repair shop still broken.

My grandmother's stories are always a joy to hear.
My grandfather's stories are always long and pointless.

The soup kitchen volunteers made everyone feel welcome.
The soup kitchen volunteers made the guests feel like a nuisance.

The waiting room was warm and the staff kept us informed.
The waiting room was cold and nobody told us anything.

The queue at the bank was short and the clerk was polite.
The queue at the bank was endless and the clerk was rude.
"""


def _parse_pairs(text: str) -> list[tuple[str, str]]:
    """(positive, negative) from blocks of two lines separated by a blank line; anything else is a typo."""
    pairs = [tuple(block.splitlines()) for block in text.strip().split("\n\n")]
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"each sentiment block needs a positive and a negative line, got {pair!r}")
    return pairs


#: 122 topic-sharing pairs of original sentences written for this book: (positive, negative).
SENTIMENT_PAIRS = _parse_pairs(_PAIRS)
#: The same 244 sentences as (text, label), label 1 = positive, 0 = negative; pair i is at 2i and 2i + 1.
SENTIMENT = [(text, label) for pair in SENTIMENT_PAIRS for text, label in zip(pair, (1, 0))]

#: Word lists for the baseline: count positive minus negative words (no grammar, no negation).
POSITIVE_WORDS = frozenset("""good great excellent wonderful lovely loved love best happy happier happily
delightful delicious fantastic amazing superb perfect perfectly beautiful beautifully kind friendly helpful
clean clear comfortable comfy cosy calm fun funny enjoyed enjoy like liked pleasure joy joyful thrilled proud
inspiring fascinating stunning breathtaking gorgeous magnificent spectacular charming elegant reliable useful
success triumph gentle warm smooth rich fresh fair cheerful satisfying thrilling touching well""".split())
NEGATIVE_WORDS = frozenset("""bad poor awful terrible worse worst hate hated boring dull tedious rude annoying
cold dirty filthy stale late slow broken broke crashes noisy loud confusing disappointed disappointing
disappointment miserable painful awkward unfriendly impatient overpriced expensive bitter weak muddy blurry
bland buggy uncomfortable rotten stressful failure failed disaster mess mediocre grim careless rough dismissive
dusty dark grumpy greasy frustrating unfair lost wrong ugly shallow blunt unpleasant rushed dreary grating
badly dying regret waste wastes never nothing missing""".split())


def sentiment_split(test_fraction: float = 0.25, seed: int = 0):
    """(train, test) lists of (text, label) from :data:`SENTIMENT`, split by whole pairs.

    ``round(test_fraction * len(SENTIMENT_PAIRS))`` pairs of :data:`SENTIMENT_PAIRS`, drawn with
    ``random.Random(seed)``, form the test set; the rest form the training set. Why pairs:
    the two sentences of a pair share their topic words ("The soup was warm..." / "The soup
    was cold..."), so with one in training and the other in the test set, every topic word
    points a learner to the wrong label. Split by pair, the words a pair shares occur in
    training once with each label or not at all, and both sets are balanced.

    Each list holds its pairs in random order, positive sentence first, so a cut at an even
    position (e.g. the last training pairs kept for validation) never separates a pair.
    """
    n_pairs = len(SENTIMENT_PAIRS)
    if not isinstance(test_fraction, float) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a float strictly between 0 and 1, got {test_fraction!r}")
    n_test = round(test_fraction * n_pairs)
    if not 1 <= n_test < n_pairs:
        raise ValueError(f"test_fraction={test_fraction} holds out {n_test} of the {n_pairs} pairs; "
                         "choose a fraction that leaves at least one pair on each side")
    order = list(range(n_pairs))
    random.Random(seed).shuffle(order)

    def labelled(indices):
        return [(text, label) for i in indices for text, label in zip(SENTIMENT_PAIRS[i], (1, 0))]

    return labelled(order[n_test:]), labelled(order[:n_test])


def wordlist_sentiment(text: str) -> int:
    """The baseline: 1 (positive) if ``text`` has at least as many positive as negative list words, else 0."""
    tokens = words(text)
    score = sum(t in POSITIVE_WORDS for t in tokens) - sum(t in NEGATIVE_WORDS for t in tokens)
    return int(score >= 0)


# --- text statistics and retrieval ---

def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (letters, digits, apostrophes and underscores)."""
    return re.findall(r"[a-z0-9_']+", text.lower())


def sentences(text: str) -> list[str]:
    """``text`` split after '.', '!' or '?' followed by white space (a simple, predictable rule)."""
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _ngrams(tokens: list, n: int) -> list[tuple]:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct-n (Li et al. 2016): distinct word n-grams / all word n-grams, over all ``texts``.

    1.0 means no n-gram repeats; near 0 means the same few n-grams again and again.
    """
    grams = [g for text in texts for g in _ngrams(words(text), n)]
    if not grams:
        raise ValueError(f"the texts hold no word {n}-grams; generate longer texts or use a smaller n")
    return len(set(grams)) / len(grams)


def repetition_rate(text: str, n: int = 4) -> float:
    """Share of the word n-grams of ``text`` that already occurred earlier in ``text`` (0 = none repeat)."""
    grams = _ngrams(words(text), n)
    if not grams:
        raise ValueError(f"the text holds no word {n}-grams: {text[:40]!r}")
    seen, repeats = set(), 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


class TfIdf:
    """A tf-idf index over ``documents`` for retrieval by cosine similarity.

    Weight of word w in document d: ``tf(w, d) * idf(w)`` with ``tf`` the raw count and
    ``idf(w) = ln((1 + N) / (1 + df(w))) + 1`` (the smoothed form scikit-learn uses),
    each document vector scaled to unit length. Words that no document holds are ignored.
    """

    def __init__(self, documents: list[str]):
        if not documents:
            raise ValueError("TfIdf needs at least one document")
        tokenized = [words(d) for d in documents]
        self.vocab = {w: i for i, w in enumerate(sorted({w for t in tokenized for w in t}))}
        df = Counter(w for t in tokenized for w in set(t))
        n = len(documents)
        self.idf = torch.tensor([math.log((1 + n) / (1 + df[w])) + 1 for w in self.vocab], dtype=torch.float64)
        self.matrix = self.transform(documents)  # (N, V)

    def transform(self, texts: list[str]) -> torch.Tensor:
        """Unit-length tf-idf vectors of ``texts``: (len(texts), V) float64 (all zeros if no known word)."""
        out = torch.zeros(len(texts), len(self.vocab), dtype=torch.float64)
        for row, text in enumerate(texts):
            for w, count in Counter(words(text)).items():
                if w in self.vocab:
                    out[row, self.vocab[w]] = count
        out *= self.idf
        return out / out.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def search(self, queries: list[str], k: int = 5) -> torch.Tensor:
        """Indices of the ``k`` most similar documents for each query, best first: (len(queries), k)."""
        if not isinstance(k, int) or not 1 <= k <= len(self.matrix):
            raise ValueError(f"k must be an int in 1..{len(self.matrix)} (the number of documents), got {k!r}")
        scores = self.transform(queries) @ self.matrix.T
        return scores.topk(k, dim=1).indices
