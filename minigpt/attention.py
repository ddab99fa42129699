"""Attention, from one formula to the layer the GPT uses.

The book's formulas become code line by line, with the same symbols::

    Q = X W_Q,  K = X W_K,  V = X W_V        (SelfAttention)
    A = softmax(Q K^T / sqrt(d_k)), masked   (scaled_dot_product_attention)
    Y = A V
    Y = Concat(Y_1, ..., Y_h) W_O            (TeachingMultiHeadAttention)

Multi-head attention comes in two forms that share one weight layout:

- :class:`TeachingMultiHeadAttention` is the formula as written: a list of
  :class:`SelfAttention` heads, their outputs concatenated, then ``W_O``.
- :class:`MultiHeadAttention` is the fast form the model uses: one fused
  ``c_attn`` projection for Q, K and V of every head, heads as a batch
  dimension, and PyTorch's fused ``F.scaled_dot_product_attention``. Its
  parameter names (``c_attn``, ``c_proj``) are GPT-2's, and it accepts a
  :class:`KVCache` so that generation computes each position's keys and values
  once.

:func:`teaching_to_fast` and :func:`fast_to_teaching` convert between the two;
the tests prove they compute the same function.

Two options of :class:`MultiHeadAttention` give the layout of Llama and most
open models since: rotary position embeddings (:class:`RotaryEmbedding`, the
positions enter as a rotation of q and k instead of a learned vector added to
the input) and grouped-query attention (``n_kv_head`` < ``n_head``: groups of
query heads share one key/value head).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from minigpt.common import check_positive_int, shape_or_type

__all__ = [
    "causal_mask",
    "scaled_dot_product_attention",
    "SelfAttention",
    "TeachingMultiHeadAttention",
    "KVCache",
    "rotate_half",
    "RotaryEmbedding",
    "MultiHeadAttention",
    "teaching_to_fast",
    "fast_to_teaching",
]


def causal_mask(T: int, device=None) -> torch.Tensor:
    """The (T, T) bool mask that lets position i attend to positions j <= i.

    True means "may attend", the convention of
    ``F.scaled_dot_product_attention``:

    >>> causal_mask(3).int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    """
    check_positive_int(
        "T", T, "; causal_mask(T) needs the sequence length, e.g. x.size(1)"
    )
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() < 2:
            shape = shape_or_type(t)
            raise ValueError(
                f"{name} must be a tensor of shape (..., T, d) with at least "
                f"2 dimensions, got {shape}"
            )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            "q and k must have the same last dimension d_k (queries are "
            "compared with keys), "
            f"got q {tuple(q.shape)} and k {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            "k and v must have the same number of positions T_k (one value "
            "per key), "
            f"got k {tuple(k.shape)} and v {tuple(v.shape)}"
        )


def _check_mask(mask: torch.Tensor, scores_shape: torch.Size) -> None:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = (
            mask.dtype
            if isinstance(mask, torch.Tensor)
            else type(mask).__name__
        )
        raise TypeError(
            f"mask must be a bool tensor (True = may attend), got {got}; "
            "build it with causal_mask(T) or convert with mask.bool()"
        )
    try:
        shape = torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        shape = None
    if shape != scores_shape:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the "
            "attention scores' shape "
            f"{tuple(scores_shape)} (..., T_q, T_k); pass a (T_q, T_k) mask "
            "such as causal_mask(T)"
        )


def _check_input(x: torch.Tensor, width: int, width_name: str) -> None:
    if (
        not isinstance(x, torch.Tensor)
        or x.dim() != 3
        or x.shape[-1] != width
    ):
        shape = shape_or_type(x)
        raise ValueError(
            f"x must have shape (B, T, {width_name}={width}), got {shape}; "
            "add a batch dimension with x.unsqueeze(0) if you have one "
            "sequence"
        )


def _check_padding_mask(
    padding_mask: torch.Tensor, x: torch.Tensor, past: int
) -> None:
    B, T = x.shape[:2]
    if past:
        raise ValueError(
            "padding_mask works without a KVCache only; pad on the right "
            "and generate each sequence alone, or pass no padding_mask"
        )
    if (
        not isinstance(padding_mask, torch.Tensor)
        or padding_mask.dtype != torch.bool
        or padding_mask.shape != (B, T)
    ):
        raise ValueError(
            f"padding_mask must be a bool tensor of shape (B, T) = "
            f"{(B, T)}, True for real tokens, got "
            f"{shape_or_type(padding_mask)}"
            + (
                f" {padding_mask.dtype}"
                if isinstance(padding_mask, torch.Tensor)
                else ""
            )
        )
    if not bool(padding_mask.any(dim=1).all()):
        raise ValueError(
            "every sequence needs at least one real token (a row of "
            "padding_mask is all False): a query would have nothing to "
            "attend to"
        )


def _check_kv_heads(n_head: int, n_kv_head: int) -> None:
    check_positive_int("n_kv_head", n_kv_head)
    if n_head % n_kv_head:
        divisors = [h for h in range(1, n_head + 1) if n_head % h == 0]
        raise ValueError(
            f"n_head={n_head} is not divisible by n_kv_head={n_kv_head}: "
            "each key/value head serves n_head // n_kv_head query heads; "
            f"choose n_kv_head from {divisors}"
        )


def _check_heads(n_embd: int, n_head: int) -> None:
    check_positive_int("n_embd", n_embd)
    check_positive_int("n_head", n_head)
    if n_embd % n_head:
        divisors = [h for h in range(1, n_embd + 1) if n_embd % h == 0]
        raise ValueError(
            f"n_embd={n_embd} is not divisible by n_head={n_head}: each head "
            "gets n_embd // n_head "
            f"dimensions; choose n_head from {divisors}"
        )


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention: ``out = A v`` with ``A = softmax(q k^T / sqrt(d_k))``.

    q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v).
    mask: bool, broadcastable to (..., T_q, T_k); True = may attend. Masked
    scores are set to -inf before the softmax, so they get weight exactly 0
    (a row with nothing allowed would be all NaN: every query must see a key).

    Returns ``(out, A)``: out (..., T_q, d_v) and the weights A
    (..., T_q, T_k), whose rows sum to 1. Equal to
    ``F.scaled_dot_product_attention`` (which does not return A) up to
    rounding.
    """
    _check_qkv(q, k, v)
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., T_q, T_k)
    if mask is not None:
        _check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))
    A = torch.softmax(scores, dim=-1)
    return A @ v, A


class SelfAttention(nn.Module):
    """One attention head: ``Y = softmax(Q K^T / sqrt(d_k)) V``.

    Here ``Q = X W_Q``, ``K = X W_K`` and ``V = X W_V``, where ``W_Q``,
    ``W_K`` (d_model -> d_k) and ``W_V`` (d_model -> d_v, d_v = d_k unless
    given) are ``nn.Linear`` layers, so ``X W_Q`` is ``self.W_Q(X)``.

    forward(x (B, T, d_model), mask) -> (y (B, T, d_v), weights (B, T, T)).
    """

    def __init__(
        self,
        d_model: int,
        d_k: int,
        d_v: int | None = None,
        bias: bool = False,
    ):
        super().__init__()
        d_v = d_k if d_v is None else d_v
        for name, value in (("d_model", d_model), ("d_k", d_k), ("d_v", d_v)):
            check_positive_int(name, value)
        self.d_model, self.d_k, self.d_v = d_model, d_k, d_v
        self.W_Q = nn.Linear(d_model, d_k, bias=bias)
        self.W_K = nn.Linear(d_model, d_k, bias=bias)
        self.W_V = nn.Linear(d_model, d_v, bias=bias)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.d_model, "d_model")
        Q, K, V = self.W_Q(x), self.W_K(x), self.W_V(x)
        return scaled_dot_product_attention(Q, K, V, mask)


class TeachingMultiHeadAttention(nn.Module):
    """Multi-head attention as written: ``Y = Concat(Y_1, ..., Y_h) W_O``.

    ``heads[i]`` is a :class:`SelfAttention` of width
    ``d_k = d_model // n_head`` and computes
    ``Y_i = SelfAttention(X W_Q_i, X W_K_i, X W_V_i)``. With ``causal=True``
    every head uses :func:`causal_mask`; an extra ``mask`` is combined with it
    (both must allow a pair).

    forward(x (B, T, d_model), mask=None)
    -> (y (B, T, d_model), weights (B, n_head, T, T)).
    Slow (a Python loop over heads) and clear; :class:`MultiHeadAttention` is
    the same function, fast.
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        bias: bool = True,
        causal: bool = True,
    ):
        super().__init__()
        _check_heads(d_model, n_head)
        self.d_model, self.n_head, self.causal = d_model, n_head, causal
        d_k = d_model // n_head
        self.heads = nn.ModuleList(
            SelfAttention(d_model, d_k, bias=bias) for _ in range(n_head)
        )
        self.W_O = nn.Linear(d_model, d_model, bias=bias)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.d_model, "d_model")
        B, T, _ = x.shape
        if mask is not None:
            _check_mask(mask, torch.Size((B, T, T)))
        if self.causal:
            causal = causal_mask(T, device=x.device)
            mask = causal if mask is None else mask & causal
        outputs = [head(x, mask) for head in self.heads]  # h pairs (Y_i, A_i)
        # Concat(Y_1, ..., Y_h): (B, T, d_model)
        Y = torch.cat([y for y, _ in outputs], dim=-1)
        weights = torch.stack([a for _, a in outputs], dim=1)  # (B, h, T, T)
        return self.W_O(Y), weights


class KVCache:
    """The keys and values an attention layer has computed, for generation.

    Each step appends the new positions' k and v, shape
    (B, n_kv_head, T_new, head_dim), and gets back every position so far,
    (B, n_kv_head, len(cache), head_dim): with grouped-query attention only
    the n_kv_head shared heads are stored, not one per query head. One
    cache per layer; :meth:`reset` before starting a new sequence.
    """

    def __init__(self):
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def __len__(self) -> int:
        """The number of cached positions."""
        return 0 if self.k is None else self.k.shape[2]

    def reset(self) -> None:
        self.k = self.v = None

    def append(
        self, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append new keys and values; return all so far (time is dim 2)."""
        if k.dim() != 4 or k.shape != v.shape:
            raise ValueError(
                "KVCache.append needs k and v of the same shape (B, n_head, "
                "T, head_dim), "
                f"got k {tuple(k.shape)} and v {tuple(v.shape)}"
            )
        if self.k is not None:
            cached, new = self.k.shape, k.shape
            if (cached[0], cached[1], cached[3]) != (new[0], new[1], new[3]):
                raise ValueError(
                    "KVCache holds (B, n_head, T, head_dim) = "
                    f"{tuple(cached)} but got new keys "
                    f"{tuple(new)}: batch, heads and head_dim must match; "
                    "call reset() before "
                    "a new batch or sequence"
                )
            k = torch.cat([self.k, k], dim=2)
            v = torch.cat([self.v, v], dim=2)
        self.k, self.v = k, v
        return k, v


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Split the last dimension in halves (x1, x2) and return (-x2, x1).

    Multiplying by i in the complex plane, when component j of x1 and
    component j of x2 are read as one complex number: the rotation
    :class:`RotaryEmbedding` applies is ``x cos + rotate_half(x) sin``.
    """
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE, Su et al. 2021) for q and k.

    Pair j of a head's d = head_dim components, at position m, is rotated by
    the angle ``m * theta_j`` with ``theta_j = rope_theta ** (-2j / d)``,
    j = 0 .. d/2 - 1. A rotation keeps lengths and the dot product of two
    rotated vectors depends only on the difference of their angles, so
    ``q_m . k_n`` depends on the positions only through m - n: attention
    sees relative positions, and nothing is added to the token embeddings.
    Position 0 is the identity.

    Convention: Hugging Face's Llama ("rotate halves"): pair j is the
    components (j, j + d/2), ``out = x cos + rotate_half(x) sin`` with cos
    and sin of the angles repeated twice along the last dimension. Meta's
    original Llama code pairs neighbours (2j, 2j + 1) ("interleaved") and
    computes the same attention once the rows of W_Q and W_K of every head
    are reordered from (0, 1, 2, ..., d - 1) to (0, 2, 4, ..., d - 2, 1, 3,
    ..., d - 1): evens first, then odds. Hugging Face's conversion script
    does exactly that, so weights in Hugging Face's layout load into minigpt
    unchanged, and Meta's checkpoints need that permutation first.

    The angles are computed in float32 as Hugging Face does, then cos and
    sin are cast to the dtype of q and k. No parameters, no buffers: the
    state dict is that of the model without RoPE minus the position table.
    cos and sin of every position asked for so far are kept in a table
    (a plain attribute, grown by doubling), so that generating a token
    slices it instead of recomputing them in every layer: the same numbers,
    a handful of operations fewer per layer and token.

    forward(x (B, heads, T, d), start=0) -> x rotated to the positions
    start .. start + T - 1 (with a KV cache, ``start`` is the number of
    cached positions).
    """

    def __init__(self, head_dim: int, theta: float = 10000.0):
        super().__init__()
        check_positive_int("head_dim", head_dim)
        if head_dim % 2:
            raise ValueError(
                f"rotary embeddings rotate pairs of components, so head_dim "
                f"must be even, got head_dim={head_dim}; choose n_embd and "
                "n_head so that n_embd // n_head is even"
            )
        if (
            isinstance(theta, bool)
            or not isinstance(theta, (int, float))
            or not theta > 0
        ):
            raise ValueError(
                f"rope_theta must be a number > 0, got {theta!r}; Llama "
                "uses 10000.0 (Llama 3: 500000.0)"
            )
        self.head_dim, self.theta = head_dim, float(theta)
        # (cos, sin) of positions 0 .. n - 1 in float32, built on first use
        self._table: tuple[torch.Tensor, torch.Tensor] | None = None

    def _angles(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin (n, head_dim) of positions 0 .. n - 1, float32."""
        j = torch.arange(0, self.head_dim, 2, device=device).float()
        inv_freq = 1.0 / (self.theta ** (j / self.head_dim))  # theta_j
        pos = torch.arange(n, device=device).float()
        angles = torch.outer(pos, inv_freq)  # (n, d/2)
        angles = torch.cat((angles, angles), dim=-1)  # (n, d): halves
        return angles.cos(), angles.sin()

    def cos_sin(
        self, start: int, T: int, device=None, dtype=torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin (T, head_dim) of positions start .. start + T - 1."""
        device = torch.device("cpu") if device is None else device
        end = start + T
        if (
            self._table is None
            or len(self._table[0]) < end
            or self._table[0].device != torch.device(device)
        ):
            have = 0 if self._table is None else len(self._table[0])
            self._table = self._angles(max(end, 2 * have), device)
        cos, sin = self._table
        return cos[start:end].to(dtype), sin[start:end].to(dtype)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        cos, sin = self.cos_sin(start, x.shape[-2], x.device, x.dtype)
        return x * cos + rotate_half(x) * sin


class MultiHeadAttention(nn.Module):
    """The GPT's fast multi-head attention, with GPT-2's parameter names.

    ``c_attn`` computes ``[Q; K; V]`` for all heads at once (output rows: Q,
    then K, then V; each split into heads of head_dim = n_embd // n_head,
    head 0 first). The heads become a batch dimension and
    ``F.scaled_dot_product_attention`` does the rest; ``c_proj`` is ``W_O``.
    Dropout (``dropout``, training only) is applied to the attention weights
    and to the output, as in GPT-2.

    Two options, both off by default (GPT-2):

    - ``n_kv_head``: grouped-query attention (Ainslie et al. 2023). Q has
      n_head heads, K and V only n_kv_head, so ``c_attn`` maps n_embd to
      n_embd + 2 n_kv_head head_dim; query head i uses key/value head
      i // (n_head // n_kv_head). ``n_kv_head == n_head`` (the default) is
      multi-head attention, ``n_kv_head == 1`` multi-query attention.
    - ``rope_theta``: rotate q and k by their positions with a
      :class:`RotaryEmbedding` of that base (None: no rotation, positions
      come from the model's learned table).

    forward(x (B, T, n_embd), cache=None, padding_mask=None) -> y (B, T,
    n_embd). With a :class:`KVCache` holding P earlier positions, the T new
    queries sit at positions P .. P+T-1 (and are rotated to them) and attend
    to all P cached keys plus the causal part of the new ones; the new keys
    (already rotated) and values are appended to the cache. ``causal=False``
    (an encoder such as BERT) lets every position attend to every other;
    ``padding_mask`` (B, T), True for real tokens and False for padding,
    keeps every query from attending to padding (without a cache only).
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        bias: bool = True,
        dropout: float = 0.0,
        causal: bool = True,
        n_kv_head: int | None = None,
        rope_theta: float | None = None,
    ):
        super().__init__()
        _check_heads(n_embd, n_head)
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        _check_kv_heads(n_head, n_kv_head)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.n_embd, self.n_head, self.head_dim = (
            n_embd,
            n_head,
            n_embd // n_head,
        )
        self.n_kv_head = n_kv_head
        self.dropout, self.causal = dropout, causal
        self.rope = (
            None
            if rope_theta is None
            else RotaryEmbedding(self.head_dim, rope_theta)
        )
        kv_width = n_kv_head * self.head_dim
        self.c_attn = nn.Linear(n_embd, n_embd + 2 * kv_width, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def _heads(
        self, x: torch.Tensor, start: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q (B, n_head, T, hd), k and v (B, n_kv_head, T, hd) from x.

        With RoPE, q and k are rotated to the positions start .. start+T-1.
        """
        _check_input(x, self.n_embd, "n_embd")
        B, T, C = x.shape
        kv_width = self.n_kv_head * self.head_dim
        # the query heads and the key heads side by side, then the values
        qk, v = self.c_attn(x).split([C + kv_width, kv_width], dim=2)
        heads = self.n_head + self.n_kv_head
        qk = qk.view(B, T, heads, self.head_dim).transpose(1, 2)
        if self.rope is not None:  # one rotation for queries and keys
            qk = self.rope(qk, start)
        q, k = qk.split([self.n_head, self.n_kv_head], dim=1)
        v = v.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        return q, k, v

    def _mask(
        self, x: torch.Tensor, past: int, padding_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, bool]:
        """The ``attn_mask`` and ``is_causal`` for T new queries after
        ``past`` cached keys (True = may attend)."""
        T = x.shape[1]
        if padding_mask is None:
            if self.causal and past == 0:
                return None, T > 1
            if self.causal and T > 1:
                # query i is position past + i: it may see keys 0 .. past + i
                mask = torch.ones(
                    T, past + T, dtype=torch.bool, device=x.device
                )
                return mask.tril(diagonal=past), False
            return None, False
        _check_padding_mask(padding_mask, x, past)
        mask = padding_mask[:, None, None, :]  # (B, 1, 1, T): keys
        if self.causal:
            if not bool(padding_mask[:, 0].all()):
                raise ValueError(
                    "a causal model's padding must be on the right "
                    "(padding_mask[:, 0] all True): a left-padded query "
                    "would see only padding"
                )
            mask = mask & causal_mask(T, device=x.device)
        return mask, False

    def forward(
        self,
        x: torch.Tensor,
        cache: KVCache | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        past = 0 if cache is None else len(cache)
        q, k, v = self._heads(x, past)
        B, _, T, _ = q.shape
        mask, is_causal = self._mask(x, past, padding_mask)
        if cache is not None:
            k, v = cache.append(k, v)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
            enable_gqa=self.n_kv_head != self.n_head,
        )
        # Concat(Y_1, ..., Y_h)
        y = y.transpose(1, 2).contiguous().view(B, T, self.n_embd)
        return self.resid_dropout(self.c_proj(y))

    def attention_weights(
        self, x: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The attention weights A (B, n_head, T, T), for plots.

        Computed by the written-out path,
        :func:`scaled_dot_product_attention`, with the mask of
        :meth:`forward`.
        """
        q, k, v = self._heads(x)
        group = self.n_head // self.n_kv_head  # query heads per kv head
        k, v = (t.repeat_interleave(group, dim=1) for t in (k, v))
        mask, is_causal = self._mask(x, 0, padding_mask)
        if is_causal:
            mask = causal_mask(q.shape[2], device=x.device)
        return scaled_dot_product_attention(q, k, v, mask)[1]


def teaching_to_fast(
    teaching: TeachingMultiHeadAttention, dropout: float = 0.0
) -> MultiHeadAttention:
    """A :class:`MultiHeadAttention` that computes what ``teaching`` does.

    Head i's ``W_Q``, ``W_K``, ``W_V`` become rows ``i*d_k:(i+1)*d_k`` of the
    Q, K and V blocks of ``c_attn``; ``W_O`` becomes ``c_proj``.
    """
    bias = teaching.W_O.bias is not None
    fast = MultiHeadAttention(
        teaching.d_model,
        teaching.n_head,
        bias=bias,
        dropout=dropout,
        causal=teaching.causal,
    )
    fast = fast.to(
        device=teaching.W_O.weight.device, dtype=teaching.W_O.weight.dtype
    )
    with torch.no_grad():
        for part, name in enumerate(("W_Q", "W_K", "W_V")):
            layers = [getattr(head, name) for head in teaching.heads]
            rows = slice(
                part * teaching.d_model, (part + 1) * teaching.d_model
            )
            fast.c_attn.weight[rows] = torch.cat(
                [layer.weight for layer in layers]
            )
            if bias:
                fast.c_attn.bias[rows] = torch.cat(
                    [layer.bias for layer in layers]
                )
        fast.c_proj.load_state_dict(teaching.W_O.state_dict())
    return fast


def fast_to_teaching(fast: MultiHeadAttention) -> TeachingMultiHeadAttention:
    """A :class:`TeachingMultiHeadAttention` that computes what ``fast`` does.

    The inverse of :func:`teaching_to_fast`. Only plain multi-head
    attention converts: the teaching form has neither shared key/value
    heads nor rotary positions.
    """
    if fast.n_kv_head != fast.n_head or fast.rope is not None:
        raise ValueError(
            "fast_to_teaching converts plain multi-head attention only, got "
            f"n_kv_head={fast.n_kv_head} (n_head={fast.n_head}) and "
            f"rope={'on' if fast.rope is not None else 'off'}; build the "
            "layer with n_kv_head=None and rope_theta=None"
        )
    bias = fast.c_proj.bias is not None
    teaching = TeachingMultiHeadAttention(
        fast.n_embd, fast.n_head, bias=bias, causal=fast.causal
    )
    teaching = teaching.to(
        device=fast.c_proj.weight.device, dtype=fast.c_proj.weight.dtype
    )
    d = fast.head_dim
    with torch.no_grad():
        for part, name in enumerate(("W_Q", "W_K", "W_V")):
            for i, head in enumerate(teaching.heads):
                rows = slice(
                    part * fast.n_embd + i * d,
                    part * fast.n_embd + (i + 1) * d,
                )
                getattr(head, name).weight.copy_(fast.c_attn.weight[rows])
                if bias:
                    getattr(head, name).bias.copy_(fast.c_attn.bias[rows])
        teaching.W_O.load_state_dict(fast.c_proj.state_dict())
    return teaching
