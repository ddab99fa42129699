"""minigpt.ngram against a plain-Python counting reference and hand
computations."""

import math
from collections import Counter

import pytest
import torch

from minigpt.ngram import NGramModel, add_k, nats_to_bits, perplexity


def reference_log_probs(
    train: list[int], test: list[int], n: int, V: int, k: float
) -> list[float]:
    """Count with Counters, the way one would by hand."""
    grams = Counter(
        tuple(train[i : i + n]) for i in range(len(train) - n + 1)
    )
    contexts = Counter()
    for gram, c in grams.items():
        contexts[gram[:-1]] += c
    out = []
    for i in range(n - 1, len(test)):
        context, token = tuple(test[i - n + 1 : i]), test[i]
        total = contexts[context]
        p = (
            (grams[context + (token,)] + k) / (total + k * V)
            if total + k * V > 0
            else 1 / V
        )
        out.append(math.log(p) if p > 0 else -math.inf)
    return out


@pytest.fixture(scope="module")
def ids():
    g = torch.Generator().manual_seed(0)
    # a skewed distribution, so some n-grams repeat and others never occur
    return torch.multinomial(
        torch.tensor([8.0, 4, 2, 1, 1, 0.5]),
        400,
        replacement=True,
        generator=g,
    )


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("k", [0.0, 0.1, 1.0])
def test_log_probs_match_counting_by_hand(ids, n, k):
    train, test = ids[:300], ids[300:]
    # token 6 never occurs
    model = NGramModel(n, vocab_size=7, k=k).fit(train)
    expected = reference_log_probs(train.tolist(), test.tolist(), n, 7, k)
    got = model.log_probs(test).tolist()
    assert len(got) == len(test) - n + 1
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_metrics_are_consistent(ids):
    model = NGramModel(2, 6, k=0.5).fit(ids[:300])
    test = ids[300:]
    lp = model.log_probs(test)
    assert model.log_likelihood(test) == pytest.approx(lp.sum().item())
    assert model.cross_entropy(test) == pytest.approx(-lp.mean().item())
    assert model.bits_per_token(test) == pytest.approx(
        -lp.mean().item() / math.log(2)
    )
    assert model.perplexity(test) == pytest.approx(
        math.exp(-lp.mean().item())
    )
    assert nats_to_bits(math.log(2)) == pytest.approx(1.0) and perplexity(
        math.log(6)
    ) == pytest.approx(6.0)


def test_uniform_model_has_perplexity_vocab_size():
    model = NGramModel(1, 10, k=1.0).fit(torch.arange(10))
    assert model.perplexity(torch.tensor([3, 1, 4, 1, 5])) == pytest.approx(
        10.0
    )


def test_probs_rows_sum_to_one_and_match_hand_counts():
    model = NGramModel(2, 3, k=0.0).fit([0, 1, 0, 1, 0, 2])
    assert model.probs([0]).tolist() == pytest.approx([0, 2 / 3, 1 / 3])
    # never seen as a context: uniform
    assert model.probs([2]).tolist() == pytest.approx([1 / 3] * 3)
    # only the last n - 1 ids count
    assert model.probs([2, 1, 0]).tolist() == model.probs([0]).tolist()
    smoothed = NGramModel(2, 3, k=1.0).fit([0, 1, 0, 1, 0, 2])
    assert smoothed.probs([0]).tolist() == pytest.approx(
        [1 / 6, 3 / 6, 2 / 6]
    )
    assert NGramModel(1, 3, k=0.0).fit([0, 1, 0, 1, 0, 2]).probs(
        []
    ).tolist() == pytest.approx([1 / 2, 1 / 3, 1 / 6])


def test_maximum_likelihood_minimises_training_cross_entropy(ids):
    """k = 0 (counting) gives the lowest cross-entropy on its own training
    data."""
    train = ids[:300]
    losses = [
        NGramModel(2, 6, k=k).fit(train).cross_entropy(train)
        for k in (0.0, 0.01, 0.1, 1.0)
    ]
    assert losses == sorted(losses) and losses[0] < losses[1]


def test_unseen_ngram_with_k_zero_is_infinite(ids):
    model = NGramModel(2, 7, k=0.0).fit(ids)
    assert model.log_probs([0, 6]).item() == -math.inf  # 6 never followed 0
    assert model.cross_entropy(torch.tensor([0, 6])) == math.inf


def test_add_k_by_hand():
    assert add_k(
        torch.tensor([3.0, 1.0, 0.0]), 1.0
    ).tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert add_k(
        torch.tensor([3.0, 1.0, 0.0]), 0.0
    ).tolist() == pytest.approx([0.75, 0.25, 0.0])
    assert add_k(torch.zeros(4), 0.0).tolist() == pytest.approx([0.25] * 4)
    # row by row
    rows = add_k(torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0]]), 0.0)
    assert torch.allclose(
        rows,
        torch.tensor(
            [[0.75, 0.25, 0.0], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64
        ),
    )


def test_sampling_repeats_and_follows_the_counts():
    model = NGramModel(2, 4, k=0.0).fit([0, 1, 2, 3, 0, 1, 2, 3, 0])
    a = model.sample([0], 20, generator=torch.Generator().manual_seed(0))
    b = model.sample([0], 20, generator=torch.Generator().manual_seed(0))
    # deterministic chain: every context has one continuation
    assert a == b == [0, 1, 2, 3] * 5 + [0]


def test_sampling_frequencies_match_probs():
    model = NGramModel(2, 3, k=0.0).fit([0, 1, 0, 1, 0, 2, 0])
    g = torch.Generator().manual_seed(0)
    draws = Counter(
        model.sample([0], 1, generator=g)[-1] for _ in range(3000)
    )
    assert draws[1] / 3000 == pytest.approx(2 / 3, abs=0.03) and draws[0] == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            dict(n=0, vocab_size=5),
            r"n must be a positive int, got 0 \(1 = unigram, 2 = bigram",
        ),
        (dict(n=True, vocab_size=5), "n must be a positive int, got True"),
        (dict(n=2, vocab_size=0), "vocab_size must be a positive int"),
        (dict(n=2, vocab_size=5, k=-1), "k must be a finite number >= 0"),
        (dict(n=5, vocab_size=50_257), "does not fit in 64-bit"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NGramModel(**kwargs)


def test_bad_ids():
    model = NGramModel(3, 5)
    with pytest.raises(
        ValueError, match="token id 5 is outside the vocabulary"
    ):
        model.fit([0, 1, 5])
    with pytest.raises(ValueError, match="needs at least 3 ids here, got 2"):
        model.fit([0, 1])
    with pytest.raises(ValueError, match="1-D sequence of ints"):
        model.fit(torch.zeros(2, 3, dtype=torch.long))
    model.fit([0, 1, 2, 3])
    with pytest.raises(ValueError, match="needs at least 2 ids here, got 1"):
        model.sample([0], 5)
    with pytest.raises(ValueError, match="num_tokens must be an int >= 0"):
        model.sample([0, 1], -1)


def test_add_k_checker_passes_the_reference_and_fails_a_wrong_answer():
    from minigpt.exercises import check_add_k_smoothing

    assert check_add_k_smoothing(add_k, verbose=False)
    # k once, not k * V
    wrong = check_add_k_smoothing(
        lambda c, k: (c + k) / (c.sum() + k), verbose=False
    )
    assert (
        not wrong
        and "by hand: counts [3, 1, 0], k = 1 -> [4/7, 2/7, 1/7]"
        in wrong.failed
    )
