"""The sentiment task: sentences written for this book, in topic pairs.

The data lives in ``minigpt/tasks/data/`` and ships with the package:
``sentiment_pairs.txt`` holds blocks of two lines separated by a blank line,
the first line positive and the second negative, on the same topic ("The soup
was warm..." / "The soup was cold..."); ``positive_words.txt`` and
``negative_words.txt`` are the baseline's word lists.

- :data:`SENTIMENT_PAIRS`: the 122 pairs as (positive, negative);
  :data:`SENTIMENT` the same 244 sentences as (text, label).
- :func:`sentiment_split`: a balanced held-out test set of whole pairs.
- :func:`wordlist_sentiment`: the baseline classifier, counting list words.

>>> len(SENTIMENT_PAIRS), SENTIMENT[0]
(122, ('The soup was warm and full of flavour.', 1))
"""

import random

from minigpt.tasks import read_data
from minigpt.textstats import words

__all__ = [
    "SENTIMENT_PAIRS",
    "SENTIMENT",
    "POSITIVE_WORDS",
    "NEGATIVE_WORDS",
    "sentiment_split",
    "wordlist_sentiment",
]


def _parse_pairs(text: str) -> list[tuple[str, str]]:
    """(positive, negative) from blocks of two lines.

    Blocks are separated by a blank line; anything else is a typo.
    """
    pairs = [
        tuple(block.splitlines()) for block in text.strip().split("\n\n")
    ]
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(
                "each sentiment block needs a positive and a negative line, "
                f"got {pair!r}"
            )
    return pairs


#: 122 topic-sharing pairs of original sentences written for this book:
#: (positive, negative).
SENTIMENT_PAIRS = _parse_pairs(read_data("sentiment_pairs.txt"))
#: The same 244 sentences as (text, label), label 1 = positive, 0 = negative;
#: pair i is at 2i and 2i + 1.
SENTIMENT = [
    (text, label)
    for pair in SENTIMENT_PAIRS
    for text, label in zip(pair, (1, 0))
]

#: Word lists for the baseline: count positive minus negative words (no
#: grammar, no negation).
POSITIVE_WORDS = frozenset(read_data("positive_words.txt").split())
NEGATIVE_WORDS = frozenset(read_data("negative_words.txt").split())


def sentiment_split(test_fraction: float = 0.25, seed: int = 0):
    """(train, test) lists of (text, label), split by whole pairs.

    ``round(test_fraction * len(SENTIMENT_PAIRS))`` pairs of
    :data:`SENTIMENT_PAIRS`, drawn with ``random.Random(seed)``, form the test
    set; the rest form the training set. Why pairs: the two sentences of a
    pair share their topic words ("The soup was warm..." / "The soup was
    cold..."), so with one in training and the other in the test set, every
    topic word points a learner to the wrong label. Split by pair, the words a
    pair shares occur in training once with each label or not at all, and both
    sets are balanced.

    Each list holds its pairs in random order, positive sentence first, so a
    cut at an even position (e.g. the last training pairs kept for validation)
    never separates a pair.
    """
    n_pairs = len(SENTIMENT_PAIRS)
    if not isinstance(test_fraction, float) or not 0 < test_fraction < 1:
        raise ValueError(
            "test_fraction must be a float strictly between 0 and 1, got "
            f"{test_fraction!r}"
        )
    n_test = round(test_fraction * n_pairs)
    if not 1 <= n_test < n_pairs:
        raise ValueError(
            f"test_fraction={test_fraction} holds out {n_test} of the "
            f"{n_pairs} pairs; "
            "choose a fraction that leaves at least one pair on each side"
        )
    order = list(range(n_pairs))
    random.Random(seed).shuffle(order)

    def labelled(indices):
        return [
            (text, label)
            for i in indices
            for text, label in zip(SENTIMENT_PAIRS[i], (1, 0))
        ]

    return labelled(order[n_test:]), labelled(order[:n_test])


def wordlist_sentiment(text: str) -> int:
    """The word-list baseline: 1 (positive) or 0 (negative).

    1 when ``text`` has at least as many positive as negative list words.
    """
    tokens = words(text)
    score = sum(t in POSITIVE_WORDS for t in tokens) - sum(
        t in NEGATIVE_WORDS for t in tokens
    )
    return int(score >= 0)
