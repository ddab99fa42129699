"""The word-order task: is this line of text real, or its words shuffled?

Lines come from a corpus (:func:`corpus_lines`), normalised so that capitals
and punctuation give nothing away; each line is paired with a copy whose words
are shuffled (:func:`shuffle_words`, :func:`word_order_examples`), and the
lines are split so that no line is in two splits (:func:`split_lines`).
Telling the two apart takes knowledge of word order, which a pre-trained model
has and a bag of words has not.

>>> texts, labels = word_order_examples(["to be or not to be"], seed=0)
>>> texts[0], labels.tolist()
('to be or not to be', [1, 0])
>>> sorted(texts[1].split()) == sorted(texts[0].split())
True
"""

import random
import re

import torch

__all__ = [
    "shuffle_words",
    "corpus_lines",
    "split_lines",
    "word_order_examples",
]


def shuffle_words(line: str, rng: random.Random) -> str:
    """The words of ``line`` shuffled into an order unlike the original.

    Words are split on whitespace.
    """
    words = line.split()
    if len(set(words)) < 2:
        raise ValueError(
            f"cannot shuffle {line!r}: it needs at least two different words"
        )
    shuffled = words[:]
    while shuffled == words:
        rng.shuffle(shuffled)
    return " ".join(shuffled)


def corpus_lines(text: str, min_words: int = 4) -> list[str]:
    """Distinct normalised lines of ``text`` with >= ``min_words`` words.

    In order of appearance. Normalised: lower case, punctuation removed
    (apostrophes inside words kept), single spaces. Speaker names (lines
    ending in ':') are left out. The normalisation removes give-aways that
    need no knowledge of word order: verse lines start with a capital and
    usually end with a comma or a full stop, so a shuffle would betray itself
    by where they land.
    """
    seen, lines = set(), []
    for raw in text.splitlines():
        if raw.rstrip().endswith(":"):
            continue
        words = [
            w.strip("'")
            for w in re.sub(r"[^a-z' ]", " ", raw.lower()).split()
        ]
        line = " ".join(w for w in words if w)
        if (
            len(line.split()) >= min_words
            and len(set(line.split())) >= 2
            and line not in seen
        ):
            seen.add(line)
            lines.append(line)
    return lines


def split_lines(
    lines: list[str], n_test: int, n_val: int, seed: int = 0
) -> tuple[list, list, list]:
    """Shuffle ``lines`` and cut them into (train, val, test).

    ``n_test`` and ``n_val`` lines for test and val, the rest for train.
    """
    if n_test + n_val >= len(lines):
        raise ValueError(
            f"n_test={n_test} + n_val={n_val} leaves no training lines out "
            f"of {len(lines)}"
        )
    order = lines[:]
    random.Random(seed).shuffle(order)
    return (
        order[n_test + n_val :],
        order[n_test : n_test + n_val],
        order[:n_test],
    )


def word_order_examples(
    lines: list[str], seed: int = 0
) -> tuple[list[str], torch.Tensor]:
    """Two examples per line: real (label 1) and words shuffled (label 0).

    Returns (texts, labels) with real and shuffled alternating, so any
    even-sized prefix is exactly balanced.
    """
    rng = random.Random(seed)
    texts, labels = [], []
    for line in lines:
        texts += [line, shuffle_words(line, rng)]
        labels += [1, 0]
    return texts, torch.tensor(labels, dtype=torch.long)
