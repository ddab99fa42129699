"""In-context learning: a mapping that only the prompt shows.

Every sequence draws a fresh random mapping from keys to values, shows
``n_examples`` of its pairs as ``key value key value ...`` and ends with one
of the shown keys, the query; the answer is the value it was paired with.
Keys and values have their own token ids. A model cannot store the answer in
its weights, because the next sequence pairs the keys differently: it can
only read it from the prompt. Chance is 1 / ``n_values``.

The (key, value) pairs are split in two: a pair is either a training pair or
a held-out pair (:meth:`MappingTask.split_of`), and a sequence of one split
uses only that split's pairs. No association a held-out prompt shows ever
occurs in training, so accuracy on held-out prompts measures reading, not
remembering.

>>> import torch
>>> task = MappingTask(n_keys=8, n_values=8)
>>> ids, answers = task.sample(
...     2, n_examples=3, generator=torch.Generator().manual_seed(0)
... )
>>> ids.shape, answers.shape
(torch.Size([2, 7]), torch.Size([2]))
>>> bool((ids[:, 0::2] < 8).all() and (ids[:, 1::2] >= 8).all())
True
"""

from dataclasses import dataclass

import torch

from minigpt.common import check_positive_int

__all__ = ["MappingTask", "SPLITS"]

SPLITS = ("train", "held-out")


@dataclass(frozen=True)
class MappingTask:
    """Keys 0 .. n_keys - 1 and values n_keys .. n_keys + n_values - 1.

    ``held_out_every``: one (key, value) pair in that many is held out, the
    pairs chosen by a fixed rule (:meth:`split_of`) so that every key keeps
    training pairs and held-out pairs alike.
    """

    n_keys: int = 32
    n_values: int = 32
    held_out_every: int = 4

    def __post_init__(self):
        for name in ("n_keys", "n_values", "held_out_every"):
            check_positive_int(f"MappingTask.{name}", getattr(self, name))
        if not 2 <= self.held_out_every <= self.n_values:
            raise ValueError(
                "MappingTask.held_out_every must be between 2 and n_values="
                f"{self.n_values} (one pair in that many is held out, and "
                f"every key needs both kinds), got {self.held_out_every}"
            )

    @property
    def vocab_size(self) -> int:
        return self.n_keys + self.n_values

    def split_of(self, key: int, value: int) -> str:
        """ "train" or "held-out" for the pair (key id, value id)."""
        v = value - self.n_keys
        held_out = (key + v) % self.held_out_every == 0
        return SPLITS[1] if held_out else SPLITS[0]

    def _values_for(self, split: str) -> list[torch.Tensor]:
        """Per key, the value ids it may be paired with in ``split``."""
        return [
            torch.tensor(
                [
                    self.n_keys + v
                    for v in range(self.n_values)
                    if self.split_of(k, self.n_keys + v) == split
                ]
            )
            for k in range(self.n_keys)
        ]

    def sample(
        self,
        batch_size: int,
        n_examples: int,
        split: str = "train",
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts (B, 2 n_examples + 1) and their answers (B,).

        Each prompt shows ``n_examples`` distinct keys, each with a value of
        ``split`` (different keys may share a value), then repeats one of
        them, chosen uniformly, as the query.
        """
        check_positive_int("batch_size", batch_size)
        check_positive_int("n_examples", n_examples)
        if n_examples > self.n_keys:
            raise ValueError(
                f"n_examples={n_examples} needs as many distinct keys, but "
                f"the task has n_keys={self.n_keys}"
            )
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        allowed = self._values_for(split)
        ids = torch.empty(batch_size, 2 * n_examples + 1, dtype=torch.long)
        answers = torch.empty(batch_size, dtype=torch.long)
        for row in range(batch_size):
            keys = torch.randperm(self.n_keys, generator=generator)
            keys = keys[:n_examples]
            values = torch.stack(
                [
                    allowed[k][
                        torch.randint(
                            len(allowed[k]), (), generator=generator
                        )
                    ]
                    for k in keys.tolist()
                ]
            )
            query = int(torch.randint(n_examples, (), generator=generator))
            ids[row, 0:-1:2], ids[row, 1:-1:2] = keys, values
            ids[row, -1] = keys[query]
            answers[row] = values[query]
        return ids, answers
