"""What attention heads do: scores that name a head's pattern, and ablation.

A head is named by where it looks. Two patterns matter for in-context
learning (Olsson et al. 2022):

- a **previous-token head** puts its weight on the position just before the
  query (:func:`previous_token_scores`);
- an **induction head**, reading ``... A B ... A``, attends to the ``B`` that
  followed the earlier ``A``, so that it can copy it. On a sequence of random
  tokens repeated twice (:func:`repeated_random_tokens`) the right position is
  known for every query of the second copy (:func:`induction_scores`).

:func:`ablate_heads` switches chosen heads off inside a ``with`` block, by
replacing their outputs with zeros or with their mean, and restores the model
afterwards: what a head contributes is what is lost without it.

Each score is :func:`attention_to` with its own (query, key) pairs; the
scores take the attention maps of
:meth:`minigpt.model.GPT.attention_maps`: one tensor (B, n_head, T, T) per
layer, row i the weights of query i.

>>> import torch
>>> idx = repeated_random_tokens(
...     50, 4, 2, generator=torch.Generator().manual_seed(0)
... )
>>> idx.shape, torch.equal(idx[:, :4], idx[:, 4:])
(torch.Size([2, 8]), True)
"""

import itertools
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import torch
from torch import nn

from minigpt.common import check_positive_int, shape_or_type
from minigpt.model import eval_mode

__all__ = [
    "repeated_random_tokens",
    "attention_to",
    "previous_token_scores",
    "induction_scores",
    "mean_head_outputs",
    "ablate_heads",
    "ablation_effects",
]

ABLATIONS = ("zero", "mean")


def repeated_random_tokens(
    vocab_size: int,
    length: int,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``batch_size`` rows of ``length`` random ids, each repeated twice.

    Returns (batch_size, 2 * length). The first copy cannot be predicted; in
    the second, every token can be copied from the first: the test bed of
    induction heads.
    """
    for name, value in (
        ("vocab_size", vocab_size),
        ("length", length),
        ("batch_size", batch_size),
    ):
        check_positive_int(name, value)
    first = torch.randint(
        vocab_size, (batch_size, length), generator=generator
    )
    return torch.cat((first, first), dim=1)


def _stack(maps) -> torch.Tensor:
    """The maps of every layer as one tensor (L, B, H, T, T), checked."""
    if isinstance(maps, torch.Tensor):
        maps = [maps]
    maps = list(maps)
    if not maps or any(
        not isinstance(m, torch.Tensor)
        or m.dim() != 4
        or m.shape[-1] != m.shape[-2]
        or m.shape != maps[0].shape
        for m in maps
    ):
        got = [shape_or_type(m) for m in maps]
        raise ValueError(
            "attention maps must be one tensor (B, n_head, T, T) per layer, "
            f"all of one shape, got {got}; pass model.attention_maps(idx)"
        )
    return torch.stack(maps)


def attention_to(maps, queries, keys) -> torch.Tensor:
    """Mean weight queries put on chosen keys: (n_layer, n_head).

    ``queries`` and ``keys`` are positions of the same shape: (n,) pairs
    shared by every sequence, or (B, n) pairs per sequence. Head h of layer l
    scores the weight query ``queries[..., j]`` puts on key ``keys[..., j]``,
    averaged over the pairs and the batch: 1 for a head that always looks
    exactly there. Every pattern below is this function with other pairs.
    """
    stacked = _stack(maps)
    B, T = stacked.shape[1], stacked.shape[-1]
    queries, keys = torch.as_tensor(queries), torch.as_tensor(keys)
    if (
        queries.shape != keys.shape
        or queries.dim() not in (1, 2)
        or (queries.dim() == 2 and queries.shape[0] != B)
        or queries.numel() == 0
    ):
        raise ValueError(
            "queries and keys must be position tensors of one shape, (n,) "
            f"or (B={B}, n), got {tuple(queries.shape)} and "
            f"{tuple(keys.shape)}"
        )
    if queries.dim() == 1:
        queries, keys = queries.expand(B, -1), keys.expand(B, -1)
    if not (
        (0 <= keys).all() and (keys <= queries).all() and (queries < T).all()
    ):
        raise ValueError(
            f"positions must satisfy 0 <= key <= query < T={T} (a causal "
            f"head cannot look ahead), got queries {queries.tolist()} and "
            f"keys {keys.tolist()}"
        )
    rows = torch.arange(B)[:, None]
    # (L, B, H, T, T) -> (L, B, n, H): the weight of each pair
    picked = stacked.permute(0, 1, 3, 4, 2)[:, rows, queries, keys]
    return picked.mean(dim=(1, 2))


def previous_token_scores(maps) -> torch.Tensor:
    """Mean weight each head puts on the previous position: (n_layer, n_head).

    Averaged over the queries 1 .. T-1 of every sequence. 1 for a head that
    always looks one step back.
    """
    T = _stack(maps).shape[-1]
    i = torch.arange(1, T)
    return attention_to(maps, i, i - 1)


def induction_scores(maps, length: int) -> torch.Tensor:
    """Mean weight on the induction target: (n_layer, n_head).

    ``maps`` of sequences made of ``length`` tokens repeated twice
    (:func:`repeated_random_tokens`). Query t of the second copy (t =
    length .. 2 length - 1) holds the token first seen at t - length; the
    token after it, at t - length + 1, is what an induction head attends to.
    1 for a head that always does.
    """
    T = _stack(maps).shape[-1]
    check_positive_int("length", length)
    if T != 2 * length:
        raise ValueError(
            f"induction_scores needs maps of 2 * length = {2 * length} "
            f"positions (a sequence of {length} tokens repeated), got {T}"
        )
    t = torch.arange(length, 2 * length)
    return attention_to(maps, t, t - length + 1)


def _attention_layers(model: nn.Module) -> list[nn.Module]:
    """The attention layer of every block of a GPT."""
    return [block.attn for block in model.transformer.h]


@torch.no_grad()
def mean_head_outputs(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """Every head's output averaged over ``idx``: (n_layer, n_embd).

    Row l is the input of layer l's output projection ``c_proj``, the heads'
    outputs side by side (head h in columns h*d .. (h+1)*d - 1), averaged
    over the batch and the positions: what :func:`ablate_heads` puts in place
    of a head with ``mode="mean"``.
    """
    layers = _attention_layers(model)
    means = [None] * len(layers)

    def recorder(index):
        def hook(module, args):
            means[index] = args[0].mean(dim=(0, 1))

        return hook

    handles = [
        layer.c_proj.register_forward_pre_hook(recorder(i))
        for i, layer in enumerate(layers)
    ]
    try:
        with eval_mode(model):
            model(idx)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(means)


def _check_heads(heads, n_layer: int, n_head: int) -> list[tuple[int, int]]:
    heads = list(heads)
    for item in heads:
        if (
            not isinstance(item, tuple)
            or len(item) != 2
            or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in item
            )
            or not (0 <= item[0] < n_layer and 0 <= item[1] < n_head)
        ):
            raise ValueError(
                f"heads must be (layer, head) pairs with layer in "
                f"0..{n_layer - 1} and head in 0..{n_head - 1}, got {item!r}"
            )
    return heads


@contextmanager
def ablate_heads(
    model: nn.Module,
    heads: Iterable[tuple[int, int]],
    mode: str = "zero",
    means: torch.Tensor | None = None,
):
    """Inside the ``with`` block, ``model`` runs without the given heads.

    ``heads``: (layer, head) pairs. Each head's output, the input of its
    layer's ``c_proj`` in the head's columns, is replaced by zeros
    (``mode="zero"``) or by its mean from :func:`mean_head_outputs`
    (``mode="mean"``, pass ``means``). The weights are not touched; the hooks
    that do it are removed when the block ends, even on an error. With no
    heads, nothing changes.
    """
    layers = _attention_layers(model)
    n_head = layers[0].n_head
    heads = _check_heads(heads, len(layers), n_head)
    if mode not in ABLATIONS:
        raise ValueError(
            f"mode must be one of {ABLATIONS}, got {mode!r}: 'zero' removes "
            "a head's output, 'mean' replaces it by its average"
        )
    if mode == "mean":
        expected = (len(layers), layers[0].n_embd)
        if not isinstance(means, torch.Tensor) or means.shape != expected:
            raise ValueError(
                f"mode='mean' needs means of shape {expected} from "
                f"mean_head_outputs(model, idx), got {shape_or_type(means)}"
            )
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def replacer(index, ablated):
        d = layers[index].head_dim

        def hook(module, args):
            y = args[0].clone()
            for head in ablated:
                columns = slice(head * d, (head + 1) * d)
                y[..., columns] = (
                    0 if mode == "zero" else means[index, columns]
                )
            return (y,)

        return hook

    handles = [
        layers[i].c_proj.register_forward_pre_hook(replacer(i, ablated))
        for i, ablated in by_layer.items()
    ]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


def ablation_effects(
    model: nn.Module,
    metric: Callable[[nn.Module], float],
    mode: str = "zero",
    means: torch.Tensor | None = None,
) -> torch.Tensor:
    """``metric(model)`` with each head ablated alone: (n_layer, n_head).

    Entry (l, h) is the metric while head h of layer l is switched off by
    :func:`ablate_heads` (``mode`` and ``means`` as there); compare it with
    ``metric(model)`` to see what each head is worth.
    """
    layers = _attention_layers(model)
    effects = torch.empty(len(layers), layers[0].n_head)
    for layer, head in itertools.product(*map(range, effects.shape)):
        with ablate_heads(model, [(layer, head)], mode, means):
            effects[layer, head] = metric(model)
    return effects
