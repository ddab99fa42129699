"""From next-token logits to a token: greedy, temperature, top-k, top-p.

A language model gives, at each step, a vector of logits ``z`` over the
vocabulary. Decoding chooses one token from it. Every rule here works on the
last dimension, so ``logits`` may be ``(vocab,)`` or ``(B, vocab)``:

- **greedy**: the most probable token, ``argmax z``.
- **temperature** ``tau``: sample from ``softmax(z / tau)``; ``tau < 1``
  sharpens the distribution, ``tau > 1`` flattens it, ``tau -> 0`` becomes
  greedy.
- **top-k**: keep the ``k`` largest logits, renormalise, sample.
- **top-p** (nucleus, Holtzman et al. 2020): keep the smallest set of most
  probable tokens whose total probability reaches ``p``, renormalise, sample.

Worked example with probabilities ``[0.5, 0.3, 0.15, 0.05]``: top-k with
``k=2`` keeps ``[0.5, 0.3]`` -> ``[0.625, 0.375, 0, 0]``; top-p with ``p=0.7``
keeps the same two tokens (0.5 < 0.7 <= 0.5 + 0.3); ``p=0.9`` also keeps the
third.

Filtering (temperature, then top-k, then top-p) is the same order Hugging Face
``generate`` uses, so the same settings give the same distribution.
"""

import torch
import torch.nn.functional as F

__all__ = [
    "greedy",
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "next_token_probs",
    "sample_next",
    "check_settings",
]


def check_settings(
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    vocab_size: int | None = None,
) -> None:
    """Check the decoding settings; a ``ValueError`` names a bad value.

    ``temperature >= 0`` (0 = greedy); ``top_k`` None or an int in
    1..vocab_size; ``top_p`` None or a number in (0, 1].
    """
    if (
        not isinstance(temperature, (int, float))
        or isinstance(temperature, bool)
        or not temperature >= 0
    ):
        raise ValueError(
            f"temperature must be a number >= 0, got {temperature!r}; "
            "0 means greedy, 1 samples the model's distribution unchanged"
        )
    if top_k is not None:
        upper = vocab_size if vocab_size is not None else float("inf")
        if (
            not isinstance(top_k, int)
            or isinstance(top_k, bool)
            or not 1 <= top_k <= upper
        ):
            raise ValueError(
                f"top_k must be an int in 1..{vocab_size} (the vocabulary "
                f"size), got {top_k!r}; "
                "pass top_k=None to keep every token"
            )
    if top_p is not None:
        if (
            not isinstance(top_p, (int, float))
            or isinstance(top_p, bool)
            or not 0 < top_p <= 1
        ):
            raise ValueError(
                f"top_p must be a number in (0, 1], got {top_p!r}; "
                "pass top_p=None (or 1.0) to keep every token"
            )


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The index of the largest logit along the last dimension.

    Shape ``logits.shape[:-1] + (1,)``.
    """
    return logits.argmax(dim=-1, keepdim=True)


def apply_temperature(
    logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``logits / temperature``, for ``temperature`` > 0.

    Use :func:`greedy` for 0.
    """
    if temperature == 0:
        raise ValueError(
            "temperature=0 cannot divide the logits; use greedy() (or "
            "temperature=0 in "
            "sample_next / generate) for argmax decoding"
        )
    check_settings(temperature)
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits (last dim); set the others to ``-inf``.

    Ties at the k-th value are all kept, so a few more than ``k`` may survive.
    """
    check_settings(top_k=k, vocab_size=logits.size(-1))
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the fewest most probable tokens whose probability reaches ``p``.

    The most probable token is always kept. Others are set to ``-inf``. A set
    that reaches ``p`` exactly is enough: of four equal logits, ``p=0.5``
    keeps two.

    >>> top_p_filter(torch.zeros(4), 0.5)
    tensor([0., 0., -inf, -inf])
    """
    check_settings(top_p=p)
    # ties: lower ids first
    sorted_logits, order = torch.sort(
        logits, dim=-1, descending=True, stable=True
    )
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    # a token is dropped when the more probable tokens before it already reach
    # p: their total is the running sum one place to the left (cumulative -
    # prob would round 1/3 + 1/3 below p = 2/3)
    before = torch.cat(
        [torch.zeros_like(cumulative[..., :1]), cumulative[..., :-1]], dim=-1
    )
    drop_sorted = before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_token_probs(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """The distribution a sampler draws from.

    Temperature, then top-k, then top-p, then softmax. ``temperature=0`` gives
    the one-hot distribution of the greedy choice.
    """
    check_settings(temperature, top_k, top_p, logits.size(-1))
    if temperature == 0:
        return F.one_hot(greedy(logits).squeeze(-1), logits.size(-1)).to(
            logits.dtype
        )
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return logits.softmax(dim=-1)


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token id per row of ``logits`` (B, vocab) -> (B, 1).

    ``temperature=0`` is greedy (no randomness, ``generator`` unused);
    otherwise a draw with ``torch.multinomial`` from :func:`next_token_probs`,
    reproducible with ``generator``.
    """
    if logits.dim() != 2:
        raise ValueError(
            f"logits must have shape (B, vocab), got {tuple(logits.shape)}; "
            "for one distribution use logits[None]"
        )
    check_settings(temperature, top_k, top_p, logits.size(-1))
    if temperature == 0:
        return greedy(logits)
    probs = next_token_probs(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, num_samples=1, generator=generator)
