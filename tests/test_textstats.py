"""minigpt.textstats: words, sentences, distinct-n, repetition and tf-idf,
checked by hand."""

import math

import pytest
import torch

from minigpt import textstats


def test_words_and_sentences():
    assert textstats.words("Don't PANIC, it's 42!") == [
        "don't",
        "panic",
        "it's",
        "42",
    ]
    assert textstats.sentences("One. Two!  Three? four") == [
        "One.",
        "Two!",
        "Three?",
        "four",
    ]


def test_distinct_n_and_repetition_rate_by_hand():
    assert textstats.distinct_n(["a b a b"], 1) == 2 / 4
    # (a b), (b a), (a b)
    assert textstats.distinct_n(["a b a b", "c"], 2) == 2 / 3
    # (a b c) again at the end
    assert textstats.repetition_rate("a b c a b c", 3) == 1 / 4
    assert textstats.repetition_rate("a b c d e", 2) == 0.0
    with pytest.raises(ValueError, match="no word 3-grams"):
        textstats.distinct_n(["a b"], 3)
    with pytest.raises(ValueError, match="n must be a positive int"):
        textstats.repetition_rate("a b", 0)


def test_tfidf_matches_a_hand_computation():
    docs = ["the cat sat", "the dog sat", "a bird"]
    index = textstats.TfIdf(docs)
    idf = {
        w: math.log(4 / (1 + df)) + 1
        for w, df in {
            "the": 2,
            "cat": 1,
            "sat": 2,
            "dog": 1,
            "a": 1,
            "bird": 1,
        }.items()
    }
    row = torch.tensor(
        [idf[w] if w in ("the", "cat", "sat") else 0.0 for w in sorted(idf)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(index.matrix[0], row / row.norm())
    assert index.search(["cat"], k=1).tolist() == [[0]]
    assert index.search(["dog dog sat"], k=1).tolist() == [[1]]
    assert index.transform(["unknown words"]).abs().sum() == 0
    with pytest.raises(ValueError, match=r"k must be an int in 1\.\.3"):
        index.search(["cat"], k=4)
    with pytest.raises(ValueError, match="at least one document"):
        textstats.TfIdf([])
