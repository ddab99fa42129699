"""minigpt.sampling on distributions whose answers are known by hand."""

import math

import pytest
import torch

from minigpt.sampling import (
    apply_temperature,
    check_settings,
    greedy,
    next_token_probs,
    sample_next,
    top_k_filter,
    top_p_filter,
)

PROBS = torch.tensor([0.5, 0.3, 0.15, 0.05])
LOGITS = PROBS.log()


def test_greedy_picks_argmax_per_row():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    assert greedy(logits).tolist() == [[1], [0]]


def test_temperature_one_is_the_model_distribution():
    assert torch.allclose(
        next_token_probs(LOGITS, temperature=1.0), PROBS, atol=1e-6
    )


def test_temperature_matches_power_formula():
    # softmax(log p / tau) = p^(1/tau) / sum p^(1/tau)
    for tau in (0.5, 2.0):
        expected = PROBS ** (1 / tau) / (PROBS ** (1 / tau)).sum()
        assert torch.allclose(
            next_token_probs(LOGITS, temperature=tau), expected, atol=1e-6
        )


def test_temperature_zero_is_one_hot_greedy():
    assert next_token_probs(LOGITS, temperature=0).tolist() == [
        1.0,
        0.0,
        0.0,
        0.0,
    ]


def test_top_k_keeps_k_largest_and_renormalises():
    probs = next_token_probs(LOGITS, top_k=2)
    assert torch.allclose(
        probs, torch.tensor([0.625, 0.375, 0.0, 0.0]), atol=1e-6
    )
    assert torch.equal(top_k_filter(LOGITS, 4), LOGITS)


def test_top_k_keeps_ties():
    logits = torch.tensor([1.0, 2.0, 2.0, 0.0])
    assert torch.isfinite(top_k_filter(logits, 2)).tolist() == [
        False,
        True,
        True,
        False,
    ]


def test_top_p_keeps_smallest_nucleus():
    # 0.5 < 0.7 <= 0.8: two tokens; 0.8 < 0.9 <= 0.95: three tokens; p=1 keeps
    # all
    assert torch.isfinite(top_p_filter(LOGITS, 0.7)).tolist() == [
        True,
        True,
        False,
        False,
    ]
    assert torch.isfinite(top_p_filter(LOGITS, 0.9)).tolist() == [
        True,
        True,
        True,
        False,
    ]
    assert torch.isfinite(top_p_filter(LOGITS, 1.0)).all()
    # the most probable token survives even a tiny p
    assert torch.isfinite(top_p_filter(LOGITS, 1e-6)).tolist() == [
        True,
        False,
        False,
        False,
    ]


@pytest.mark.parametrize("n", range(1, 17))
def test_top_p_keeps_k_of_n_equal_tokens_at_p_k_over_n(n):
    """The boundary: k equal tokens reach p = k/n exactly, and that is enough.

    The smallest set that reaches p is kept (by hand). Subtracting each
    probability from the running sum instead rounds 1/3 + 1/3 below 2/3.
    """
    for k in range(1, n + 1):
        kept = torch.isfinite(top_p_filter(torch.zeros(n), k / n))
        # ties keep the lower ids
        assert kept.tolist() == [True] * k + [False] * (n - k), (
            k,
            n,
        )


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_top_p_boundary_matches_hugging_face(n):
    """transformers' TopPLogitsWarper keeps 2 of 4 equal tokens at p = 0.5.

    Its 1 - p rounds for other n (it keeps 2 of 6 at p = 1/6), so the
    comparison uses n where 1 - k/n is exact.
    """
    transformers = pytest.importorskip("transformers")
    for k in range(1, n + 1):
        warped = transformers.TopPLogitsWarper(k / n)(None, torch.zeros(1, n))
        assert (
            torch.isfinite(warped).sum()
            == torch.isfinite(top_p_filter(torch.zeros(1, n), k / n)).sum()
            == k
        )


def test_top_p_works_on_unsorted_batched_rows():
    logits = torch.stack([LOGITS.flip(0), LOGITS[[2, 0, 3, 1]]])
    kept = torch.isfinite(top_p_filter(logits, 0.7)).tolist()
    assert kept == [[False, False, True, True], [False, True, False, True]]


def test_filters_compose_in_order():
    # temperature first, then top-k, then top-p
    probs = next_token_probs(LOGITS, temperature=0.5, top_k=3, top_p=0.6)
    # [0.690, 0.248, 0.062]
    sharpened = PROBS[:3] ** 2 / (PROBS[:3] ** 2).sum()
    assert sharpened[0] > 0.6  # so top-p keeps only the first token
    assert probs.tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "temperature, top_k, top_p",
    [(0.7, None, None), (1.0, 5, None), (1.3, None, 0.9), (0.8, 20, 0.75)],
)
def test_matches_hugging_face_logits_warpers(temperature, top_k, top_p):
    transformers = pytest.importorskip("transformers")
    logits = (
        torch.randn(4, 64, generator=torch.Generator().manual_seed(0)) * 2
    )
    warped = transformers.TemperatureLogitsWarper(temperature)(
        None, logits.clone()
    )
    if top_k is not None:
        warped = transformers.TopKLogitsWarper(top_k)(None, warped)
    if top_p is not None:
        warped = transformers.TopPLogitsWarper(top_p)(None, warped)
    expected = warped.softmax(-1)
    assert torch.allclose(
        next_token_probs(logits, temperature, top_k, top_p),
        expected,
        atol=1e-6,
    )


def test_sampling_frequencies_match_distribution():
    g = torch.Generator().manual_seed(0)
    draws = sample_next(LOGITS.expand(20000, 4), generator=g).squeeze(1)
    freq = torch.bincount(draws, minlength=4).float() / draws.numel()
    # four standard errors of a proportion near 0.5 with n = 20000
    assert torch.allclose(freq, PROBS, atol=4 * math.sqrt(0.25 / 20000))


def test_sampling_is_reproducible_with_a_generator():
    logits = torch.randn(8, 50)
    a = sample_next(
        logits, top_k=10, generator=torch.Generator().manual_seed(3)
    )
    b = sample_next(
        logits, top_k=10, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(a, b) and a.shape == (8, 1)


def test_sample_never_picks_filtered_tokens():
    g = torch.Generator().manual_seed(1)
    draws = sample_next(LOGITS.expand(2000, 4), top_p=0.7, generator=g)
    assert set(draws.flatten().tolist()) == {0, 1}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            dict(temperature=-0.5),
            "temperature must be a number >= 0, got -0.5",
        ),
        (dict(temperature="hot"), "temperature must be a number >= 0"),
        (dict(top_k=0), r"top_k must be an int in 1\.\.4 .*got 0"),
        (dict(top_k=5), r"top_k must be an int in 1\.\.4 .*got 5"),
        (dict(top_k=2.0), "top_k must be an int"),
        (dict(top_p=0.0), r"top_p must be a number in \(0, 1\], got 0.0"),
        (dict(top_p=1.5), r"top_p must be a number in \(0, 1\], got 1.5"),
        (
            dict(temperature=0, top_k=9),
            "top_k must be an int",
        ),  # checked even when greedy ignores it
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_next(LOGITS[None], **kwargs)
    with pytest.raises(ValueError, match=match):
        check_settings(vocab_size=4, **kwargs)


def test_bad_shapes_and_zero_temperature_division():
    with pytest.raises(
        ValueError, match=r"logits must have shape \(B, vocab\), got \(4,\)"
    ):
        sample_next(LOGITS)
    with pytest.raises(
        ValueError, match="temperature=0 cannot divide the logits"
    ):
        apply_temperature(LOGITS, 0)
