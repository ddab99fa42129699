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

import hashlib
import sys
from dataclasses import asdict, dataclass
from functools import cached_property

import torch
from torch import nn

from minigpt.common import check_positive_int
from minigpt.interp import attention_to
from minigpt.model import eval_mode

__all__ = [
    "MappingTask",
    "MappingBatches",
    "SPLITS",
    "answer_positions",
    "answer_accuracy",
]

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

    @cached_property
    def _allowed(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per split: a table (n_keys, n_values) whose row k starts with the
        value ids key k may take in that split, and their counts (n_keys,)."""
        tables = {}
        for split in SPLITS:
            table = torch.zeros(self.n_keys, self.n_values, dtype=torch.long)
            counts = torch.zeros(self.n_keys, dtype=torch.long)
            for k in range(self.n_keys):
                for v in range(self.n_keys, self.vocab_size):
                    if self.split_of(k, v) == split:
                        table[k, counts[k]] = v
                        counts[k] += 1
            tables[split] = table, counts
        return tables

    def sample_values(
        self,
        keys: torch.Tensor,
        split: str = "train",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """For every key id in ``keys``, a value id of ``split`` drawn
        uniformly among those it may be paired with: the shape of ``keys``."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        table, counts = self._allowed[split]
        choice = torch.rand(keys.shape, generator=generator) * counts[keys]
        return table[keys, choice.long()]

    def sample(
        self,
        batch_size: int,
        n_examples: int,
        split: str = "train",
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts (B, 2 n_examples + 1) and their answers (B,).

        Each prompt shows ``n_examples`` distinct keys, each with a value of
        ``split`` drawn uniformly (different keys may share a value), then
        repeats one of them, chosen uniformly, as the query.
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
        # distinct keys per row: the first n_examples of a random permutation
        keys = torch.rand(batch_size, self.n_keys, generator=generator)
        keys = keys.argsort(dim=1)[:, :n_examples]
        values = self.sample_values(keys, split, generator)
        query = torch.randint(n_examples, (batch_size,), generator=generator)
        rows = torch.arange(batch_size)
        ids = torch.empty(batch_size, 2 * n_examples + 1, dtype=torch.long)
        ids[:, 0:-1:2], ids[:, 1:-1:2] = keys, values
        ids[:, -1] = keys[rows, query]
        return ids, values[rows, query]


def answer_positions(ids: torch.Tensor) -> torch.Tensor:
    """Where each prompt (B, T) shows its answer: (B,) positions.

    The value right after the earlier occurrence of the query ``ids[:, -1]``:
    the position an induction head reading the query attends to.
    """
    keys = ids[:, 0:-1:2]
    matches = keys == ids[:, -1:]
    if not bool((matches.sum(dim=1) == 1).all()):
        raise ValueError(
            "each prompt must show its query key exactly once among its "
            "keys (positions 0, 2, 4, ...); pass prompts from "
            "MappingTask.sample"
        )
    return 2 * matches.float().argmax(dim=1) + 1


@torch.no_grad()
def answer_accuracy(
    model: nn.Module, ids: torch.Tensor, answers: torch.Tensor
) -> float:
    """The fraction of prompts whose last-position argmax is the answer."""
    with eval_mode(model):
        logits, _ = model(ids)
    return (logits[:, -1].argmax(dim=-1) == answers).float().mean().item()


class MappingBatches:
    """In-context prompts as a :class:`minigpt.train.BatchSource`.

    Every training batch draws a number of examples k uniformly from
    1 .. ``max_examples`` and ``batch_size`` training prompts with k
    examples; the target is the answer at the last position, every other
    position -1 (ignored), so the loss is the answer's cross-entropy alone.
    Validation is a fixed set of ``val_size`` held-out prompts with
    ``max_examples`` examples, drawn once with ``val_seed``.
    """

    def __init__(
        self,
        task: MappingTask,
        max_examples: int = 8,
        val_size: int = 512,
        val_seed: int = 1000,
    ):
        check_positive_int("max_examples", max_examples)
        check_positive_int("val_size", val_size)
        self.task, self.max_examples = task, max_examples
        self.val_ids, self.val_answers = task.sample(
            val_size,
            max_examples,
            "held-out",
            torch.Generator().manual_seed(val_seed),
        )

    def __len__(self) -> int:
        # fresh prompts every draw: no finite set to exhaust
        return sys.maxsize

    def __repr__(self) -> str:
        return (
            f"MappingBatches({self.task}, max_examples={self.max_examples})"
        )

    @staticmethod
    def _targets(ids: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        targets = torch.full_like(ids, -1)
        targets[:, -1] = answers
        return targets

    def sample(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k = int(
            torch.randint(1, self.max_examples + 1, (), generator=generator)
        )
        ids, answers = self.task.sample(batch_size, k, "train", generator)
        return ids, self._targets(ids, answers)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batch_size: int) -> float:
        device = next(model.parameters()).device
        targets = self._targets(self.val_ids, self.val_answers)
        total = 0.0
        with eval_mode(model):
            for start in range(0, len(self.val_ids), batch_size):
                rows = slice(start, start + batch_size)
                _, loss = model(
                    self.val_ids[rows].to(device), targets[rows].to(device)
                )
                total += loss.item() * len(self.val_ids[rows])
        return total / len(self.val_ids)

    def probe(self, model: nn.Module) -> dict:
        """What the model does on the validation prompts, JSON-ready.

        - ``accuracy``: held-out answers right (:func:`answer_accuracy`);
        - ``answer_attention``: per head, (n_layer, n_head) nested lists, the
          weight the query puts on the answer (:func:`answer_positions`),
          the induction pattern of this task;
        - ``previous_token``: per head, the weight each value puts on the key
          just before it.
        """
        maps = model.attention_maps(self.val_ids)
        last = self.val_ids.shape[1] - 1
        values = torch.arange(1, last, 2)
        return {
            "accuracy": answer_accuracy(
                model, self.val_ids, self.val_answers
            ),
            "answer_attention": attention_to(
                maps,
                torch.full((len(self.val_ids), 1), last),
                answer_positions(self.val_ids)[:, None],
            ).tolist(),
            "previous_token": attention_to(maps, values, values - 1).tolist(),
        }

    def fingerprint(self) -> dict:
        """The task, ``max_examples`` and a SHA-256 of the validation set."""
        digest = hashlib.sha256(self.val_ids.numpy().tobytes())
        digest.update(self.val_answers.numpy().tobytes())
        return {
            "task": asdict(self.task),
            "max_examples": self.max_examples,
            "val_sha256": digest.hexdigest(),
        }
