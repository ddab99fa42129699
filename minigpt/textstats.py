"""Text statistics: words, sentences, n-gram diversity, tf-idf retrieval.

The applications chapter measures generated text with :func:`distinct_n` and
:func:`repetition_rate`, splits documents with :func:`sentences` and retrieves
them with a tf-idf index (:class:`TfIdf`); every one of them reads words
through :func:`words`. Scores with a standard definition (BLEU, chrF, ROUGE)
are left to sacrebleu and rouge-score.
"""

import math
import re
from collections import Counter

import torch

from minigpt.common import check_positive_int

__all__ = [
    "words",
    "sentences",
    "ngrams",
    "distinct_n",
    "repetition_rate",
    "TfIdf",
]


def words(text: str) -> list[str]:
    """Lower-cased words of ``text``.

    A word is letters, digits, apostrophes and underscores.

    >>> words("Don't PANIC, it's 42!")
    ["don't", 'panic', "it's", '42']
    """
    return re.findall(r"[a-z0-9_']+", text.lower())


def sentences(text: str) -> list[str]:
    """``text`` split after '.', '!' or '?' followed by white space.

    A simple, predictable rule.

    >>> sentences("One. Two!  Three? four")
    ['One.', 'Two!', 'Three?', 'four']
    """
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def ngrams(tokens: list, n: int) -> list[tuple]:
    """The ``n``-grams of ``tokens`` in order, overlapping.

    >>> ngrams(["a", "b", "c"], 2)
    [('a', 'b'), ('b', 'c')]
    """
    check_positive_int("n", n)
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct word n-grams / all word n-grams over ``texts``.

    A variant of distinct-n: Li et al. (2016) divide the distinct n-grams by
    the number of generated tokens; this variant divides by the number of
    n-grams, so it lies in (0, 1]. 1.0 means no n-gram repeats; near 0 means
    the same few n-grams again and again.

    Of the four bigrams below, (the cat) comes twice:

    >>> distinct_n(["the cat saw the cat"], 2)
    0.75
    """
    grams = [g for text in texts for g in ngrams(words(text), n)]
    if not grams:
        raise ValueError(
            f"the texts hold no word {n}-grams; generate longer texts or use "
            "a smaller n"
        )
    return len(set(grams)) / len(grams)


def repetition_rate(text: str, n: int = 4) -> float:
    """Share of the word n-grams of ``text`` already seen earlier in it.

    0 means no n-gram repeats. Of the four trigrams below, the last, (a b c),
    is a repeat:

    >>> repetition_rate("a b c a b c", 3)
    0.25
    """
    grams = ngrams(words(text), n)
    if not grams:
        raise ValueError(f"the text holds no word {n}-grams: {text[:40]!r}")
    seen, repeats = set(), 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


class TfIdf:
    """A tf-idf index over ``documents`` for retrieval by cosine similarity.

    Weight of word w in document d: ``tf(w, d) * idf(w)`` with ``tf`` the raw
    count and ``idf(w) = ln((1 + N) / (1 + df(w))) + 1`` (the smoothed form
    scikit-learn uses), each document vector scaled to unit length. Words that
    no document holds are ignored.
    """

    def __init__(self, documents: list[str]):
        if not documents:
            raise ValueError("TfIdf needs at least one document")
        tokenized = [words(d) for d in documents]
        self.vocab = {
            w: i
            for i, w in enumerate(sorted({w for t in tokenized for w in t}))
        }
        df = Counter(w for t in tokenized for w in set(t))
        n = len(documents)
        self.idf = torch.tensor(
            [math.log((1 + n) / (1 + df[w])) + 1 for w in self.vocab],
            dtype=torch.float64,
        )
        self.matrix = self.transform(documents)  # (N, V)

    def transform(self, texts: list[str]) -> torch.Tensor:
        """Unit tf-idf vectors of ``texts``: (len(texts), V) float64.

        A text with no known word gets all zeros.
        """
        out = torch.zeros(len(texts), len(self.vocab), dtype=torch.float64)
        for row, text in enumerate(texts):
            for w, count in Counter(words(text)).items():
                if w in self.vocab:
                    out[row, self.vocab[w]] = count
        out *= self.idf
        return out / out.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def search(self, queries: list[str], k: int = 5) -> torch.Tensor:
        """Indices of the ``k`` most similar documents for each query.

        Best first: (len(queries), k).
        """
        if not isinstance(k, int) or not 1 <= k <= len(self.matrix):
            raise ValueError(
                f"k must be an int in 1..{len(self.matrix)} (the number of "
                f"documents), got {k!r}"
            )
        scores = self.transform(queries) @ self.matrix.T
        return scores.topk(k, dim=1).indices
