"""Count-based n-gram language models with add-k smoothing.

An n-gram model predicts the next token from the ``n - 1`` tokens before it,
with the probability estimated by counting how often each continuation
followed that context in the training ids:

    P(b | context) = (count(context, b) + k) / (count(context) + k * V)

where ``V`` is the vocabulary size and ``k >= 0`` the pseudo-count added to
every continuation (``k = 0`` is the maximum-likelihood estimate; ``k = 1`` is
Laplace smoothing). An unseen context gets the uniform distribution ``1 / V``.

Counting is vectorised: each n-gram is written as one integer in base ``V``
(``ids[i] * V**(n-1) + ... + ids[i+n-1]``), and ``torch.unique`` counts them.

Evaluation uses the positions that have a full context: for ids of length
``N`` the model scores the ``N - n + 1`` tokens ``ids[n-1:]``.
"""

import math

import torch

from minigpt.common import check_positive_int

__all__ = [
    "add_k",
    "nats_to_bits",
    "perplexity",
    "NGramModel",
]


def add_k(counts: torch.Tensor, k: float) -> torch.Tensor:
    """Add-k smoothing: counts of each continuation -> probabilities.

    ``counts`` has shape (V,) or (contexts, V); each row becomes a
    distribution.

    >>> counts = torch.tensor([3.0, 1.0, 0.0])
    >>> add_k(counts, k=1.0).tolist()  # (3+1)/7, (1+1)/7, (0+1)/7
    [0.5714285714285714, 0.2857142857142857, 0.14285714285714285]
    """
    counts = counts.to(torch.float64) + k
    total = counts.sum(-1, keepdim=True)
    # no evidence and k = 0 (0 / 0): uniform
    return torch.where(
        total > 0,
        counts / total,
        torch.tensor(1.0 / counts.shape[-1], dtype=torch.float64),
    )


def nats_to_bits(nats: float) -> float:
    """Convert a log-loss from nats (ln) to bits (log2): divide by ln 2."""
    return nats / math.log(2)


def perplexity(cross_entropy_nats: float) -> float:
    """``exp(cross-entropy)``, the perplexity.

    The number of equally likely choices that would be as uncertain.
    """
    return math.exp(cross_entropy_nats)


class NGramModel:
    """An n-gram model over token ids ``0 .. vocab_size - 1``.

    >>> ids = torch.tensor([0, 1, 0, 1, 0, 2])
    >>> model = NGramModel(2, vocab_size=3, k=0.0).fit(ids)
    >>> model.probs([0]).tolist()  # after 0 came 1, 1, 2
    [0.0, 0.6666666666666666, 0.3333333333333333]
    """

    def __init__(self, n: int, vocab_size: int, k: float = 1.0):
        check_positive_int("n", n, " (1 = unigram, 2 = bigram, ...)")
        check_positive_int("vocab_size", vocab_size)
        if not (isinstance(k, (int, float)) and k >= 0 and math.isfinite(k)):
            raise ValueError(
                "k must be a finite number >= 0 (0 = maximum likelihood, 1 "
                f"= Laplace), got {k!r}"
            )
        if vocab_size**n >= 2**63:
            raise ValueError(
                f"vocab_size**n = {vocab_size}**{n} does not fit in 64-bit "
                "n-gram codes: "
                "use a smaller n or a smaller vocabulary"
            )
        self.n, self.vocab_size, self.k = n, vocab_size, float(k)
        # sorted codes of the n-grams seen
        self.codes = torch.empty(0, dtype=torch.long)
        # how often each was seen
        self.counts = torch.empty(0, dtype=torch.long)
        self.context_codes = torch.empty(0, dtype=torch.long)
        self.context_counts = torch.empty(0, dtype=torch.long)

    def _check_ids(self, ids, min_len: int) -> torch.Tensor:
        if not isinstance(ids, torch.Tensor):
            ids = torch.tensor(
                list(ids), dtype=torch.long if len(ids) == 0 else None
            )
        if ids.dim() != 1 or ids.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                "ids must be a 1-D sequence of ints, got shape "
                f"{tuple(ids.shape)} {ids.dtype}"
            )
        if len(ids) < min_len:
            raise ValueError(
                f"a {self.n}-gram model needs at least {min_len} ids here, "
                f"got {len(ids)}"
            )
        if len(ids) and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0].item()
            raise ValueError(
                f"token id {bad} is outside the vocabulary "
                f"(0..{self.vocab_size - 1}): "
                "was vocab_size set from the same tokenizer?"
            )
        return ids.long()

    def _codes(self, ids: torch.Tensor) -> torch.Tensor:
        """One base-V integer per n-gram: shape (N - n + 1,)."""
        windows = ids.unfold(0, self.n, 1)  # (N - n + 1, n)
        powers = self.vocab_size ** torch.arange(self.n - 1, -1, -1)  # (n,)
        return (windows * powers).sum(1)

    def fit(self, ids) -> "NGramModel":
        """Count every n-gram of ``ids`` (a list or 1-D tensor).

        Returns the model itself.
        """
        ids = self._check_ids(ids, self.n)
        self.codes, self.counts = torch.unique(
            self._codes(ids), return_counts=True
        )
        # a context's count is the number of n-grams that start with it
        prefixes = self.codes // self.vocab_size
        self.context_codes = torch.unique(prefixes)
        self.context_counts = torch.zeros_like(self.context_codes).index_add_(
            0, torch.searchsorted(self.context_codes, prefixes), self.counts
        )
        return self

    @staticmethod
    def _lookup(
        sorted_codes: torch.Tensor,
        counts: torch.Tensor,
        queries: torch.Tensor,
    ) -> torch.Tensor:
        """counts[j] where sorted_codes[j] == query, else 0."""
        if len(sorted_codes) == 0:
            return torch.zeros_like(queries)
        j = torch.searchsorted(sorted_codes, queries).clamp(
            max=len(sorted_codes) - 1
        )
        return torch.where(sorted_codes[j] == queries, counts[j], 0)

    def log_probs(self, ids) -> torch.Tensor:
        """ln P(ids[t] | the n - 1 ids before it) for t = n-1 .. N-1.

        Shape (N - n + 1,), float64.
        """
        ids = self._check_ids(ids, self.n)
        codes = self._codes(ids)
        count = self._lookup(self.codes, self.counts, codes).double()
        total = self._lookup(
            self.context_codes, self.context_counts, codes // self.vocab_size
        ).double()
        k, V = self.k, self.vocab_size
        prob = torch.where(
            total + k * V > 0, (count + k) / (total + k * V), 1.0 / V
        )
        return prob.log()

    def log_likelihood(self, ids) -> float:
        """The sum of the log-probabilities of the scored tokens, in nats."""
        return self.log_probs(ids).sum().item()

    def cross_entropy(self, ids) -> float:
        """The mean negative log-probability per scored token, in nats."""
        return -self.log_probs(ids).mean().item()

    def bits_per_token(self, ids) -> float:
        """Cross-entropy in bits.

        For a character tokenizer this is bits per character.
        """
        return nats_to_bits(self.cross_entropy(ids))

    def perplexity(self, ids) -> float:
        """``exp(cross_entropy)``."""
        return perplexity(self.cross_entropy(ids))

    def probs(self, context) -> torch.Tensor:
        """The next-token distribution after ``context``: (V,).

        Only the last n - 1 ids of ``context`` count.
        """
        context = self._check_ids(context, self.n - 1)
        code = 0
        for t in context[len(context) - (self.n - 1) :].tolist():
            code = code * self.vocab_size + t
        start = code * self.vocab_size
        lo, hi = torch.searchsorted(
            self.codes, torch.tensor([start, start + self.vocab_size])
        ).tolist()
        counts = torch.zeros(self.vocab_size, dtype=torch.float64)
        counts[self.codes[lo:hi] - start] = self.counts[lo:hi].double()
        return add_k(counts, self.k)

    def sample(
        self,
        context,
        num_tokens: int,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """``context`` plus ``num_tokens`` ids drawn from :meth:`probs`.

        The ids are drawn one at a time.
        """
        ids = self._check_ids(context, self.n - 1).tolist()
        if (
            isinstance(num_tokens, bool)
            or not isinstance(num_tokens, int)
            or num_tokens < 0
        ):
            raise ValueError(
                f"num_tokens must be an int >= 0, got {num_tokens!r}"
            )
        for _ in range(num_tokens):
            ids.append(
                torch.multinomial(
                    self.probs(ids), 1, generator=generator
                ).item()
            )
        return ids
