"""The GPT: a decoder-only Transformer whose weights map onto GPT-2's.

One to one, parameter by parameter. The data flow::

    idx (B, T)                    token ids
      -> wte(idx) + wpe(0..T-1)   token + position embeddings (B, T, C)
      -> n_layer x Block          attention and MLP, each in a residual branch
      -> ln_f -> lm_head          logits (B, T, vocab_size)

Both embeddings are learned, and ``lm_head`` shares its weight with ``wte``,
as in GPT-2. Two placements of LayerNorm are offered (``GPTConfig.norm``)::

    "pre"  (GPT-2, the default)    x = x + attn(ln_1(x))
                                   x = x + mlp(ln_2(x))
    "post" (the 2017 Transformer)  x = ln_1(x + attn(x))
                                   x = ln_2(x + mlp(x))

The final ``ln_f`` is kept in both, so the two differ only inside the blocks.
Submodule names follow GPT-2 (``transformer.h[i].attn.c_attn`` ...), so
:mod:`minigpt.hf` converts weights by name, transposing only HF's ``Conv1D``.

Today's open models (Llama and its descendants) change five things, each an
option of :class:`GPTConfig` that is off by default, so the GPT-2 layout
computes exactly what it always did; :meth:`GPTConfig.llama` turns them all
on::

    positions="rotary"    no wpe table: q and k are rotated by their
                          positions (minigpt.attention.RotaryEmbedding)
    norm_layer="rmsnorm"  RMSNorm instead of LayerNorm (no mean, no bias)
    mlp="swiglu"          SwiGLU instead of the GELU MLP
    n_kv_head=...         grouped-query attention (fewer key/value heads)
    bias=False, tie_embeddings=False
"""

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from minigpt.attention import KVCache, MultiHeadAttention
from minigpt.common import (
    check_positive_int,
    config_from_dict,
    shape_or_type,
)
from minigpt.sampling import check_settings, sample_next

__all__ = [
    "GPTConfig",
    "RMSNorm",
    "MLP",
    "swiglu_hidden_size",
    "SwiGLU",
    "Block",
    "GPT",
    "token_loss",
    "eval_mode",
    "without_residual",
]

NORMS = ("pre", "post")
GELUS = ("tanh", "exact")
POSITIONS = ("learned", "rotary")
NORM_LAYERS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu")


def _check_choice(name: str, value, choices: tuple, meaning: str) -> None:
    if value not in choices:
        raise ValueError(
            f"GPTConfig.{name} must be one of {choices} ({meaning}), got "
            f"{value!r}"
        )


@dataclass
class GPTConfig:
    """The sizes of a GPT, checked when constructed.

    A bad value fails here, not deep in a matmul.

    vocab_size: number of token ids; block_size: the longest context
    (positions 0..block_size-1); n_layer blocks of n_head heads; n_embd: the
    residual width C (a multiple of n_head); dropout: probability in [0, 1);
    bias: biases in Linear and LayerNorm (GPT-2: True); norm: "pre" (GPT-2) or
    "post" (the 2017 Transformer); gelu: the MLP's activation, "tanh" (GPT-2's
    approximation) or "exact" (the erf form that nanoGPT and BERT use). The
    two differ by less than 1e-3; PyTorch's CPU kernel for the exact one is
    the faster (the Performance appendix measures by how much).

    The options of today's models, all off by default (see the module
    docstring and :meth:`GPTConfig.llama`): positions: "learned" (GPT-2's
    ``wpe`` table) or "rotary" (RoPE, base ``rope_theta``); norm_layer:
    "layernorm" or "rmsnorm", both with epsilon ``norm_eps``; mlp: "gelu"
    or "swiglu";
    intermediate_size: the MLP's hidden width (None: 4 n_embd for GELU,
    :func:`swiglu_hidden_size` for SwiGLU); n_kv_head: key/value heads of
    grouped-query attention (None: n_head, multi-head; 1: multi-query);
    tie_embeddings: ``lm_head`` shares the weight of ``wte`` (GPT-2) or has
    its own (Llama).
    """

    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    bias: bool = True
    norm: str = "pre"
    gelu: str = "tanh"
    positions: str = "learned"
    rope_theta: float = 10000.0
    norm_layer: str = "layernorm"
    norm_eps: float = 1e-5
    mlp: str = "gelu"
    intermediate_size: int | None = None
    n_kv_head: int | None = None
    tie_embeddings: bool = True

    def __post_init__(self):
        for name in (
            "vocab_size",
            "block_size",
            "n_layer",
            "n_head",
            "n_embd",
        ):
            check_positive_int(f"GPTConfig.{name}", getattr(self, name))
        if self.n_embd % self.n_head:
            raise ValueError(
                f"GPTConfig.n_embd={self.n_embd} must be divisible by "
                f"n_head={self.n_head} "
                f"(each head gets n_embd // n_head dimensions); e.g. n_embd="
                f"{self.n_head * max(1, round(self.n_embd / self.n_head))}"
            )
        if (
            not isinstance(self.dropout, (int, float))
            or isinstance(self.dropout, bool)
            or not 0 <= self.dropout < 1
        ):
            raise ValueError(
                "GPTConfig.dropout must be a probability in [0, 1), got "
                f"{self.dropout!r}"
            )
        if not isinstance(self.bias, bool):
            raise ValueError(
                f"GPTConfig.bias must be True or False, got {self.bias!r}"
            )
        if self.norm not in NORMS:
            raise ValueError(
                "GPTConfig.norm must be 'pre' (GPT-2) or 'post' (2017 "
                f"Transformer), got {self.norm!r}"
            )
        if self.gelu not in GELUS:
            raise ValueError(
                "GPTConfig.gelu must be 'tanh' (GPT-2) or 'exact' (erf, "
                f"nanoGPT), got {self.gelu!r}"
            )
        self._check_modern_options()

    def _check_modern_options(self) -> None:
        _check_choice("positions", self.positions, POSITIONS, "GPT-2 or RoPE")
        _check_choice(
            "norm_layer", self.norm_layer, NORM_LAYERS, "GPT-2 or Llama"
        )
        _check_choice("mlp", self.mlp, MLPS, "GPT-2 or Llama")
        for name in ("rope_theta", "norm_eps"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not value > 0
            ):
                raise ValueError(
                    f"GPTConfig.{name} must be a number > 0, got {value!r}"
                    "; e.g. rope_theta=10000.0, norm_eps=1e-5"
                )
        if self.intermediate_size is not None:
            check_positive_int(
                "GPTConfig.intermediate_size", self.intermediate_size
            )
        if self.n_kv_head is not None:
            check_positive_int("GPTConfig.n_kv_head", self.n_kv_head)
            if self.n_head % self.n_kv_head:
                divisors = [
                    h
                    for h in range(1, self.n_head + 1)
                    if self.n_head % h == 0
                ]
                raise ValueError(
                    f"GPTConfig.n_head={self.n_head} must be divisible by "
                    f"n_kv_head={self.n_kv_head} (each key/value head "
                    "serves a group of query heads); choose n_kv_head from "
                    f"{divisors}"
                )
        head_dim = self.n_embd // self.n_head
        if self.positions == "rotary" and head_dim % 2:
            raise ValueError(
                "positions='rotary' rotates pairs of components, so the "
                f"head size n_embd // n_head must be even, got "
                f"{self.n_embd} // {self.n_head} = {head_dim}; e.g. n_embd="
                f"{2 * self.n_head * max(1, round(head_dim / 2))}"
            )
        if not isinstance(self.tie_embeddings, bool):
            raise ValueError(
                "GPTConfig.tie_embeddings must be True or False, got "
                f"{self.tie_embeddings!r}"
            )

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        """The config from :meth:`to_dict`'s output.

        Unknown keys are an error, not ignored.
        """
        return config_from_dict(cls, d)

    @classmethod
    def gpt2(cls) -> "GPTConfig":
        """GPT-2 small (124M parameters).

        12 layers, 12 heads, width 768, context 1024, 50257 tokens.
        """
        return cls(
            vocab_size=50257,
            block_size=1024,
            n_layer=12,
            n_head=12,
            n_embd=768,
        )

    @classmethod
    def llama(
        cls,
        vocab_size: int,
        block_size: int,
        n_layer: int,
        n_head: int,
        n_embd: int,
        n_kv_head: int | None = None,
        intermediate_size: int | None = None,
        rope_theta: float = 10000.0,
        norm_eps: float = 1e-5,
        tie_embeddings: bool = False,
        dropout: float = 0.0,
    ) -> "GPTConfig":
        """The Llama layout in one call.

        Rotary positions, RMSNorm (pre-norm), a SwiGLU MLP, no biases and,
        unless ``tie_embeddings``, an output matrix of its own; ``n_kv_head``
        for grouped-query attention. :func:`minigpt.hf.to_hf` turns such a
        model into a ``transformers.LlamaForCausalLM``.
        """
        return cls(
            vocab_size=vocab_size,
            block_size=block_size,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            dropout=dropout,
            bias=False,
            positions="rotary",
            rope_theta=rope_theta,
            norm_layer="rmsnorm",
            norm_eps=norm_eps,
            mlp="swiglu",
            intermediate_size=intermediate_size,
            n_kv_head=n_kv_head,
            tie_embeddings=tie_embeddings,
        )


@contextmanager
def eval_mode(model: nn.Module):
    """Run the ``with`` body with ``model`` in eval mode (no dropout).

    Its previous mode comes back afterwards, even when the body raises, so an
    error in evaluation cannot leave a model that was training with its
    dropout switched off.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


class RMSNorm(nn.Module):
    """Root-mean-square normalisation (Zhang & Sennrich 2019), Llama's norm.

    ``y = x / sqrt(mean(x^2) + eps) * weight`` over the last dimension:
    LayerNorm without subtracting the mean and without a bias. Half
    precision inputs are normalised in float32 and cast back before the
    weight multiplies them, as Hugging Face's Llama does. The division is
    PyTorch's ``F.rms_norm``: the same numbers as the formula written out
    (tested), in fewer operations, which matters when generating one token
    at a time.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.to(torch.promote_types(x.dtype, torch.float32))
        normed = F.rms_norm(x32, (x.size(-1),), eps=self.eps)
        return self.weight * normed.to(x.dtype)


def _layer_norm(config: GPTConfig) -> nn.Module:
    """The norm of ``config.norm_layer``: LayerNorm (GPT-2) or RMSNorm."""
    if config.norm_layer == "rmsnorm":
        return RMSNorm(config.n_embd, eps=config.norm_eps)
    return nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)


class MLP(nn.Module):
    """The position-wise feed-forward network: C -> 4C -> GELU -> C.

    GELU(x) = x Phi(x), Phi the standard normal CDF; GPT-2 uses the tanh
    approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
    ``config.gelu="exact"`` the erf form.

    The same weights act on every position separately: (B, T, C) -> (B, T, C).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        hidden = config.intermediate_size or 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.gelu = nn.GELU(
            approximate="tanh" if config.gelu == "tanh" else "none"
        )
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


def swiglu_hidden_size(
    n_embd: int, multiple_of: int = 256, ffn_dim_multiplier: float = 1.0
) -> int:
    """The hidden width of Llama's SwiGLU MLP for residual width n_embd.

    SwiGLU has three matrices instead of two, so Llama shrinks 4 n_embd by
    2/3 to keep the parameter count, optionally scales it by
    ``ffn_dim_multiplier``, then rounds up to a multiple of ``multiple_of``,
    as Meta's code does: ``h = int(2 * 4 n_embd / 3)``, ``h =
    int(ffn_dim_multiplier * h)``, rounded up. E.g. 4096 -> 11008 (Llama 7B,
    Llama 2 7B); Llama 3 8B's ``ffn_dim_multiplier=1.3, multiple_of=1024``
    give 14336. Small widths round up a lot (64 -> 256), so pass
    ``GPTConfig(intermediate_size=...)`` to choose the width yourself.
    """
    check_positive_int("n_embd", n_embd)
    check_positive_int("multiple_of", multiple_of)
    if (
        isinstance(ffn_dim_multiplier, bool)
        or not isinstance(ffn_dim_multiplier, (int, float))
        or not ffn_dim_multiplier > 0
    ):
        raise ValueError(
            "ffn_dim_multiplier must be a number > 0, got "
            f"{ffn_dim_multiplier!r}; Llama 3 uses 1.3, 1.0 leaves 8C/3"
        )
    hidden = int(2 * 4 * n_embd / 3)
    hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


class SwiGLU(nn.Module):
    """Llama's feed-forward network (Shazeer 2020): a gated SiLU.

    ``c_proj(silu(c_gate(x)) * c_fc(x))``, silu(z) = z sigmoid(z): the
    "up" projection ``c_fc`` is multiplied elementwise by a gate computed
    from x. Hidden width ``config.intermediate_size`` or
    :func:`swiglu_hidden_size`. Hugging Face's names: gate_proj = c_gate,
    up_proj = c_fc, down_proj = c_proj.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        hidden = config.intermediate_size or swiglu_hidden_size(config.n_embd)
        self.c_gate = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gated = F.silu(self.c_gate(x)) * self.c_fc(x)
        return self.dropout(self.c_proj(gated))


class Block(nn.Module):
    """One Transformer block: multi-head attention, then the MLP.

    Each of the two sits in a residual branch:

    - ``norm="pre"``: x + attn(ln_1(x)), then + mlp(ln_2(.)).
    - ``norm="post"``: ln_1(x + attn(x)), then ln_2(. + mlp(.)), the 2017
      paper's formula and BERT's layer.

    The attention is causal (a decoder, GPT) unless ``causal=False`` (an
    encoder, BERT: every position sees every other).
    """

    def __init__(self, config: GPTConfig, causal: bool = True):
        super().__init__()
        self.norm = config.norm
        self.ln_1 = _layer_norm(config)
        self.attn = MultiHeadAttention(
            config.n_embd,
            config.n_head,
            bias=config.bias,
            dropout=config.dropout,
            causal=causal,
            n_kv_head=config.n_kv_head,
            rope_theta=(
                config.rope_theta if config.positions == "rotary" else None
            ),
        )
        self.ln_2 = _layer_norm(config)
        self.mlp = SwiGLU(config) if config.mlp == "swiglu" else MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        cache: KVCache | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T, C) -> (B, T, C).

        With ``cache``, x holds only the new positions; ``padding_mask``
        (B, T), True for real tokens, keeps attention off the padding.
        """
        if self.norm == "pre":
            x = x + self.attn(self.ln_1(x), cache, padding_mask)
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x, cache, padding_mask))
        return self.ln_2(x + self.mlp(x))

    def attention_weights(
        self, x: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The attention weights (B, n_head, T, T) this block computes."""
        return self.attn.attention_weights(
            self.ln_1(x) if self.norm == "pre" else x, padding_mask
        )


def without_residual(
    block: Block, args: tuple, output: torch.Tensor
) -> torch.Tensor:
    """A forward hook: ``block`` without its two residual additions.

    ``block.register_forward_hook(without_residual)`` replaces the block's
    output by mlp(ln_2(attn(ln_1(x)))) (pre-LN) or ln_2(mlp(ln_1(attn(x))))
    (post-LN), computed from the same input x (B, T, C) and weights. An
    ablation, not a model: the Transformer chapter measures with it what the
    residual stream does for the gradients. The block's own output is computed
    and then dropped, so gradients flow only through the hook's.
    """
    x, cache = args[0], (args[1] if len(args) > 1 else None)
    if block.norm == "pre":
        return block.mlp(block.ln_2(block.attn(block.ln_1(x), cache)))
    return block.ln_2(block.mlp(block.ln_1(block.attn(x, cache))))


def token_loss(
    logits: torch.Tensor, targets: torch.Tensor, idx: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (B, T, V) against ``targets`` (B, T).

    ``targets`` must have the shape of the input ids ``idx`` and hold token
    ids or -1, which is ignored (a position with nothing to predict). The
    loss of :class:`GPT` and of :class:`minigpt.encoder.Encoder`.
    """
    if not isinstance(targets, torch.Tensor) or targets.shape != idx.shape:
        raise ValueError(
            f"targets must have the shape of idx {tuple(idx.shape)}, got "
            f"{shape_or_type(targets)}"
        )
    vocab_size = logits.size(-1)
    if not torch.compiler.is_compiling() and (
        targets.min().item() < -1 or targets.max().item() >= vocab_size
    ):
        raise ValueError(
            f"targets must hold token ids 0..{vocab_size - 1} or -1 "
            f"(ignored), got values from {targets.min().item()} to "
            f"{targets.max().item()}"
        )
    return F.cross_entropy(
        logits.reshape(-1, vocab_size), targets.reshape(-1), ignore_index=-1
    )


class GPT(nn.Module):
    """A GPT-2-layout language model.

    See the module docstring for the data flow.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(
                f"GPT needs a GPTConfig, got {type(config).__name__}; "
                "e.g. GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, "
                "n_head=4, n_embd=128))"
            )
        self.config = config
        modules = dict(wte=nn.Embedding(config.vocab_size, config.n_embd))
        if config.positions == "learned":  # rotary: in the attention
            modules["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        self.transformer = nn.ModuleDict(
            dict(
                **modules,
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
                ln_f=_layer_norm(config),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:  # one matrix embeds and un-embeds
            self.lm_head.weight = self.transformer.wte.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases.

        The two projections that write into the residual stream (attn.c_proj,
        mlp.c_proj) are scaled by 1/sqrt(2 n_layer), so the residual's
        variance does not grow with depth.
        """
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for block in self.transformer.h:
            nn.init.normal_(
                block.attn.c_proj.weight, mean=0.0, std=residual_std
            )
            nn.init.normal_(
                block.mlp.c_proj.weight, mean=0.0, std=residual_std
            )

    def num_params(self, non_embedding: bool = False) -> int:
        """The number of parameters, the tied head counted once.

        ``non_embedding=True`` leaves out the token and position embedding
        matrices (the count scaling laws use, Kaplan et al. 2020); an untied
        ``lm_head`` is counted.
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wte.weight.numel()
            if "wpe" in self.transformer:
                n -= self.transformer.wpe.weight.numel()
        return n

    def _check_idx(self, idx: torch.Tensor, name: str = "idx") -> None:
        if (
            not isinstance(idx, torch.Tensor)
            or idx.dim() != 2
            or idx.dtype != torch.long
        ):
            what = (
                f"{tuple(idx.shape)} {idx.dtype}"
                if isinstance(idx, torch.Tensor)
                else type(idx).__name__
            )
            raise ValueError(
                f"{name} must be a LongTensor of shape (B, T), got {what}; "
                "for one sequence use torch.tensor([ids])"
            )
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(
                f"{name} has {T} positions but block_size is "
                f"{self.config.block_size}; "
                f"pass at most the last {self.config.block_size} tokens, "
                "e.g. "
                f"{name}[:, -{self.config.block_size}:]"
            )
        if T == 0:
            raise ValueError(
                f"{name} is empty (T=0); pass at least one token"
            )
        if torch.compiler.is_compiling():
            # .item() would split the compiled graph in two; a bad id still
            # fails in the embedding
            return
        low, high = idx.min().item(), idx.max().item()
        if low < 0 or high >= self.config.vocab_size:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name} contains token id {bad}, outside the vocabulary "
                f"0..{self.config.vocab_size - 1}; "
                "encode with the tokenizer this model was built for"
            )

    def _embed(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token embeddings plus, for learned positions, position ones.

        The tokens sit at positions start .. start + T - 1. With rotary
        positions nothing is added here: each attention layer rotates its
        q and k instead.
        """
        x = self.transformer.wte(idx)
        if "wpe" not in self.transformer:
            return x
        pos = torch.arange(start, start + idx.size(1), device=idx.device)
        return x + self.transformer.wpe(pos)

    def _hidden(
        self, idx: torch.Tensor, caches: list[KVCache] | None = None
    ) -> torch.Tensor:
        """Embeddings through the blocks and ln_f: (B, T) -> (B, T, C).

        With ``caches`` (one KVCache per layer) the tokens sit at positions
        len(cache) onwards.
        """
        start = len(caches[0]) if caches else 0
        x = self.transformer.drop(self._embed(idx, start))
        for i, block in enumerate(self.transformer.h):
            x = block(x, caches[i] if caches else None)
        return self.transformer.ln_f(x)

    def hidden_states(self, idx: torch.Tensor) -> torch.Tensor:
        """The final hidden states (B, T, C) for ``idx`` (B, T).

        What ``lm_head`` turns into logits. Row t summarises tokens 0..t;
        fine-tuning heads and retrieval read these features.
        """
        self._check_idx(idx)
        return self._hidden(idx)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab_size) and the mean cross-entropy, or None.

        The loss is against ``targets`` (B, T) when given (entries equal to -1
        are ignored), else None.
        """
        logits = self.lm_head(self.hidden_states(idx))
        if targets is None:
            return logits, None
        return logits, token_loss(logits, targets, idx)

    def new_caches(self) -> list[KVCache]:
        """One empty key/value cache per layer, for :meth:`generate`."""
        return [KVCache() for _ in self.transformer.h]

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        stop_token: int | None = None,
    ) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T).

        Returns (B, T + max_new_tokens). ``temperature=0`` is greedy;
        ``top_k``/``top_p`` filter as in :mod:`minigpt.sampling`;
        ``generator`` makes sampling reproducible. The model runs in eval mode
        (no dropout) and its previous mode is restored afterwards.

        With ``use_cache`` the prompt is run once and each new token then
        costs one position: the keys and values of earlier positions are kept
        in a KVCache per layer.

        Context limit: the prompt may hold at most ``block_size`` tokens
        (longer is an error). Once prompt + generated tokens exceed
        ``block_size``, the model sees the last ``block_size`` tokens.
        Positions are absolute (learned, or rotary: keys are cached already
        rotated), so sliding that window moves every token to a new position
        and the cached keys and values no longer apply: the cache is rebuilt
        from the cropped window, one full forward pass per new token from
        then on. Cached and uncached generation
        therefore see the same context and give the same tokens.

        ``stop_token``: a row that has generated this id is finished: its
        later positions repeat the stop token, and generation ends as soon as
        every row is finished, so the result may be shorter than T +
        max_new_tokens. Cut each row at its first stop token.
        """
        self._check_idx(idx, "prompt")
        if (
            not isinstance(max_new_tokens, int)
            or isinstance(max_new_tokens, bool)
            or max_new_tokens < 0
        ):
            raise ValueError(
                f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}"
            )
        if stop_token is not None and not (
            isinstance(stop_token, int)
            and not isinstance(stop_token, bool)
            and 0 <= stop_token < self.config.vocab_size
        ):
            raise ValueError(
                "stop_token must be a token id in "
                f"0..{self.config.vocab_size - 1} or None, "
                f'got {stop_token!r}; e.g. tokenizer.encode("\\n")[0]'
            )
        check_settings(temperature, top_k, top_p, self.config.vocab_size)
        # (B, 1): which rows have generated stop_token
        finished = torch.zeros(
            idx.size(0), 1, dtype=torch.bool, device=idx.device
        )
        block_size = self.config.block_size
        caches = None
        with eval_mode(self):
            for _ in range(max_new_tokens):
                if not use_cache:
                    hidden = self._hidden(idx[:, -block_size:])
                # first step, or the window slides
                elif caches is None or len(caches[0]) >= block_size:
                    caches = self.new_caches()
                    hidden = self._hidden(idx[:, -block_size:], caches)
                else:  # the cache holds every token but the newest
                    hidden = self._hidden(idx[:, -1:], caches)
                logits = self.lm_head(hidden[:, -1, :])
                next_id = sample_next(
                    logits, temperature, top_k, top_p, generator
                )
                if stop_token is not None:
                    next_id = next_id.masked_fill(finished, stop_token)
                    finished |= next_id == stop_token
                idx = torch.cat([idx, next_id], dim=1)
                if stop_token is not None and finished.all():
                    break
        return idx

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """The attention weights of every layer for ``idx`` (B, T).

        A list of n_layer tensors (B, n_head, T, T); row i is how position i
        spreads its attention. Computed in eval mode (no dropout); the
        previous mode is restored.
        """
        self._check_idx(idx)
        x = self._embed(idx)
        maps = []
        with eval_mode(self):
            for block in self.transformer.h:
                maps.append(block.attention_weights(x))
                x = block(x)
        return maps
