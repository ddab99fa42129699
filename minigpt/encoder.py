"""BERT: a Transformer encoder that fills in masked tokens.

A decoder (:class:`minigpt.model.GPT`) reads left to right and predicts the
next token; an **encoder** reads the whole sequence at once, every position
attending to every other, and is trained to recover tokens hidden behind a
``[MASK]`` (Devlin et al. 2019). Its layer is the 2017 Transformer's,
post-LN: Y1 = LayerNorm(X + MultiHead(X)), Y2 = LayerNorm(Y1 + FFN(Y1)), which
is minigpt's :class:`~minigpt.model.Block` with ``norm="post"`` and
``causal=False``: the encoder reuses it, and the attention, MLP and norms
inside it.

Data flow, (B, T) token ids to (B, T, vocab_size) logits::

    idx, token_type_ids -> wte + wpe + wtt -> ln_emb -> drop
                        -> n_layer x Block(post-LN, not causal)    (B, T, C)
                        -> mlm_dense -> GELU -> mlm_ln -> wte^T + mlm_bias

``token_type_ids`` (0 or 1: the first or second segment of a sentence pair)
add a learned segment vector; ``padding_mask`` (B, T), True for real tokens,
keeps attention off padding, since an encoder batches sentences of different
lengths. :meth:`Encoder.pooled` is BERT's sentence vector: tanh of a linear
map of position 0, the ``[CLS]`` token. :func:`mask_tokens` makes
masked-language-model batches, and :class:`MaskedLMBatches` feeds them from a
token stream to :func:`minigpt.train.train`.

>>> config = EncoderConfig(vocab_size=30, block_size=16, n_layer=1,
...                        n_head=2, n_embd=8)
>>> encoder = Encoder(config).eval()
>>> idx = torch.tensor([[2, 5, 7, 3, 0, 0]])
>>> mask = torch.tensor([[True, True, True, True, False, False]])
>>> encoder(idx, padding_mask=mask)[0].shape
torch.Size([1, 6, 30])
"""

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from minigpt.common import (
    check_positive_int,
    config_from_dict,
    shape_or_type,
)
from minigpt.model import Block, GPTConfig, eval_mode, token_loss
from minigpt.train import TokenStream, data_fingerprint

__all__ = [
    "EncoderConfig",
    "Encoder",
    "bert_inputs",
    "segment_ids",
    "fill_in",
    "mask_tokens",
    "MaskedLMBatches",
]


@dataclass(frozen=True)
class EncoderConfig:
    """The sizes of a BERT-style encoder, checked when constructed.

    vocab_size, block_size (the most positions), n_layer, n_head, n_embd
    (C) as in :class:`~minigpt.model.GPTConfig`; intermediate_size: the
    MLP's hidden width (None: 4C); type_vocab_size: segment ids (BERT: 2);
    dropout; norm_eps: LayerNorm's epsilon (BERT: 1e-12). The blocks are
    post-LN with biases and the exact (erf) GELU, as BERT's.
    """

    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    intermediate_size: int | None = None
    type_vocab_size: int = 2
    dropout: float = 0.0
    norm_eps: float = 1e-12

    def __post_init__(self):
        check_positive_int(
            "EncoderConfig.type_vocab_size", self.type_vocab_size
        )
        self.block_config()  # checks the fields the blocks share

    def block_config(self) -> GPTConfig:
        """The :class:`~minigpt.model.GPTConfig` of the encoder's blocks."""
        return GPTConfig(
            vocab_size=self.vocab_size,
            block_size=self.block_size,
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            dropout=self.dropout,
            bias=True,
            norm="post",
            gelu="exact",
            norm_eps=self.norm_eps,
            intermediate_size=self.intermediate_size,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "EncoderConfig":
        """Build from a dict such as ``to_dict()`` wrote; unknown keys are an
        error."""
        return config_from_dict(cls, values)


class Encoder(nn.Module):
    """A BERT-layout encoder with its masked-LM head and pooler.

    See the module docstring for the data flow. The masked-LM head's output
    matrix is the token embedding ``wte`` (tied, as in BERT).
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        if not isinstance(config, EncoderConfig):
            raise TypeError(
                f"Encoder needs an EncoderConfig, got {type(config).__name__}"
            )
        self.config = config
        C, eps = config.n_embd, config.norm_eps
        self.wte = nn.Embedding(config.vocab_size, C)
        self.wpe = nn.Embedding(config.block_size, C)
        self.wtt = nn.Embedding(config.type_vocab_size, C)
        self.ln_emb = nn.LayerNorm(C, eps=eps)
        self.drop = nn.Dropout(config.dropout)
        block_config = config.block_config()
        self.h = nn.ModuleList(
            Block(block_config, causal=False) for _ in range(config.n_layer)
        )
        self.mlm_dense = nn.Linear(C, C)
        self.mlm_ln = nn.LayerNorm(C, eps=eps)
        self.mlm_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.pooler = nn.Linear(C, C)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """BERT's initialisation: N(0, 0.02) weights, zero biases, unit
        LayerNorm gains."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.mlm_bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _check(self, idx, token_type_ids) -> None:
        if (
            not isinstance(idx, torch.Tensor)
            or idx.dim() != 2
            or idx.dtype != torch.long
            or idx.shape[1] == 0
        ):
            raise ValueError(
                "idx must be a LongTensor of shape (B, T) with T >= 1, got "
                f"{shape_or_type(idx)}; for one sequence use "
                "torch.tensor([ids])"
            )
        T, config = idx.shape[1], self.config
        if T > config.block_size:
            raise ValueError(
                f"idx has {T} positions but the encoder has "
                f"{config.block_size} (block_size); truncate to "
                f"{config.block_size} tokens or split the text"
            )
        for name, ids, size in (
            ("idx", idx, config.vocab_size),
            ("token_type_ids", token_type_ids, config.type_vocab_size),
        ):
            if ids is None:
                continue
            if not isinstance(ids, torch.Tensor) or ids.shape != idx.shape:
                raise ValueError(
                    f"{name} must have the shape of idx {tuple(idx.shape)}, "
                    f"got {shape_or_type(ids)}"
                )
            if ids.min().item() < 0 or ids.max().item() >= size:
                raise ValueError(
                    f"{name} holds values from {ids.min().item()} to "
                    f"{ids.max().item()}; they must lie in 0..{size - 1}"
                )

    def hidden_states(
        self,
        idx: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The last block's output (B, T, C), every position in context.

        ``token_type_ids`` default to segment 0; ``padding_mask`` (B, T,
        bool) to no padding.
        """
        self._check(idx, token_type_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(idx)
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos) + self.wtt(token_type_ids)
        x = self.drop(self.ln_emb(x))
        for block in self.h:
            x = block(x, padding_mask=padding_mask)
        return x

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Masked-LM logits (B, T, vocab_size), and the loss or None.

        The loss is the mean cross-entropy over the positions whose
        ``targets`` (B, T) are not -1: the masked ones. ``(idx, targets)``
        first, as :class:`~minigpt.model.GPT`'s, so that
        :func:`minigpt.train.train` trains either.
        """
        h = self.hidden_states(idx, token_type_ids, padding_mask)
        h = self.mlm_ln(F.gelu(self.mlm_dense(h)))
        logits = F.linear(h, self.wte.weight, self.mlm_bias)
        if targets is None:
            return logits, None
        return logits, token_loss(logits, targets, idx)

    def pooled(
        self,
        idx: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """BERT's sentence vector (B, C): tanh(pooler(h[:, 0])), [CLS]'s."""
        h = self.hidden_states(idx, token_type_ids, padding_mask)
        return torch.tanh(self.pooler(h[:, 0]))


def bert_inputs(tokenizer, first: str, second: str | None = None) -> list:
    """Token ids of one text or a pair, framed as BERT reads them.

    ``[CLS] first [SEP]``, or ``[CLS] first [SEP] second [SEP]`` for a pair.
    The tokenizer needs the special tokens ``[CLS]`` and ``[SEP]`` (see
    ``with_special_tokens``); the texts are encoded as ordinary text.
    """
    cls_id, sep_id = (
        tokenizer.special_id("[CLS]"),
        tokenizer.special_id("[SEP]"),
    )
    ids = [cls_id, *tokenizer.encode(first), sep_id]
    if second is not None:
        ids += [*tokenizer.encode(second), sep_id]
    return ids


def segment_ids(idx: torch.Tensor, sep_id: int) -> torch.Tensor:
    """BERT's token_type_ids of framed rows: (B, T) -> (B, T).

    0 up to and including the first ``sep_id`` (``[CLS] first [SEP]``), 1
    after it (``second [SEP]`` and any padding).

    >>> segment_ids(torch.tensor([[5, 1, 9, 2, 9, -1]]), sep_id=9)
    tensor([[0, 0, 0, 1, 1, 1]])
    """
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        raise ValueError(
            f"idx must be a LongTensor (B, T), got {shape_or_type(idx)}"
        )
    is_sep = (idx == sep_id).long()
    # separators strictly before each position
    return ((is_sep.cumsum(dim=1) - is_sep) > 0).long()


@torch.no_grad()
def fill_in(
    encoder: Encoder, windows: torch.Tensor, mask_id: int
) -> torch.Tensor:
    """The encoder's guess for every token of ``windows``, hidden alone.

    (N, T) -> (N, T): entry [n, p] is the argmax of the masked-LM logits at
    position p of row n with that one token replaced by ``mask_id`` and the
    rest of the row shown: the fill-in-the-blank test, one forward pass per
    position.
    """
    if not 0 <= mask_id < encoder.config.vocab_size:
        raise ValueError(
            f"mask_id={mask_id} is not a token id of the encoder's "
            f"vocabulary 0..{encoder.config.vocab_size - 1}"
        )
    guesses = torch.empty_like(windows)
    with eval_mode(encoder):
        for p in range(windows.size(1)):
            hidden = windows.clone()
            hidden[:, p] = mask_id
            guesses[:, p] = encoder(hidden)[0][:, p].argmax(-1)
    return guesses


def mask_tokens(
    ids: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator | None = None,
    rate: float = 0.15,
    special_ids: tuple[int, ...] = (),
    padding_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A masked-LM batch: ``(inputs, targets)``, both (B, T).

    Each token that is neither special (``special_ids``, such as [CLS],
    [SEP]) nor padding (False in ``padding_mask``) is chosen with
    probability ``rate``. A chosen token becomes ``mask_id`` 80 % of the
    time, a uniformly random id 10 % and stays itself 10 % (BERT's recipe:
    the model cannot tell which tokens to predict from the input alone); its
    target is the original id. Every other target is -1 (ignored by the
    loss). Deterministic with ``generator``.
    """
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        raise ValueError(
            f"ids must be a LongTensor (B, T), got {shape_or_type(ids)}"
        )
    check_positive_int("vocab_size", vocab_size)
    if not 0 <= mask_id < vocab_size:
        raise ValueError(
            f"mask_id={mask_id} is not a token id of the vocabulary "
            f"0..{vocab_size - 1}; add a [MASK] token to the tokenizer"
        )
    if not 0 < rate < 1:
        raise ValueError(f"rate must lie in (0, 1), got {rate!r}")
    if padding_mask is not None and (
        not isinstance(padding_mask, torch.Tensor)
        or padding_mask.shape != ids.shape
        or padding_mask.dtype != torch.bool
    ):
        raise ValueError(
            f"padding_mask must be a bool tensor of shape {tuple(ids.shape)}"
            f", got {shape_or_type(padding_mask)}"
        )
    candidates = ~torch.isin(ids, torch.tensor(special_ids, dtype=ids.dtype))
    if padding_mask is not None:
        candidates &= padding_mask
    draw = torch.rand(ids.shape, generator=generator)
    chosen = candidates & (draw < rate)
    # one more draw splits the chosen tokens 80 / 10 / 10
    kind = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(
        vocab_size, ids.shape, generator=generator, dtype=ids.dtype
    )
    inputs = ids.clone()
    inputs[chosen & (kind < 0.8)] = mask_id
    swapped = chosen & (kind >= 0.8) & (kind < 0.9)
    inputs[swapped] = random_ids[swapped]
    targets = torch.where(chosen, ids, torch.full_like(ids, -1))
    return inputs, targets


class MaskedLMBatches:
    """Masked-LM batches of a token stream, a
    :class:`minigpt.train.BatchSource` for :func:`minigpt.train.train`.

    :meth:`sample` draws ``batch_size`` windows of ``block_size`` tokens from
    ``train_ids`` (as pre-training does) and masks them with
    :func:`mask_tokens`, both with the loop's generator: inputs and targets
    (batch_size, block_size). Validation cuts ``val_ids`` into consecutive
    windows, masks them once with a generator seeded with ``val_seed``, and
    :meth:`evaluate` is the mean cross-entropy over all their masked tokens.
    """

    def __init__(
        self,
        train_ids: torch.Tensor,
        val_ids: torch.Tensor,
        block_size: int,
        mask_id: int,
        vocab_size: int,
        special_ids: tuple[int, ...] = (),
        rate: float = 0.15,
        val_seed: int = 0,
    ):
        self.stream = TokenStream(train_ids, val_ids, block_size)
        self.mask = dict(
            mask_id=mask_id,
            vocab_size=vocab_size,
            rate=rate,
            special_ids=tuple(special_ids),
        )
        n = val_ids.numel() // block_size
        if n == 0:
            raise ValueError(
                f"the validation split has {val_ids.numel()} tokens, fewer "
                f"than one window of block_size={block_size}; use a larger "
                "val_fraction or a smaller block_size"
            )
        windows = val_ids[: n * block_size].view(n, block_size)
        generator = torch.Generator().manual_seed(val_seed)
        self.val_inputs, self.val_targets = mask_tokens(
            windows, generator=generator, **self.mask
        )
        if not (self.val_targets != -1).any():
            raise ValueError(
                "masking chose no validation token: use more validation "
                "text or a larger rate"
            )

    def __len__(self) -> int:
        return len(self.stream)

    def __repr__(self) -> str:
        return f"MaskedLMBatches({self.stream}, {self.mask})"

    def sample(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        windows, _ = self.stream.sample(batch_size, generator)
        return mask_tokens(windows, generator=generator, **self.mask)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batch_size: int) -> float:
        device = next(model.parameters()).device
        total, count = 0.0, 0
        with eval_mode(model):
            for start in range(0, len(self.val_inputs), batch_size):
                rows = slice(start, start + batch_size)
                targets = self.val_targets[rows]
                n = int((targets != -1).sum())
                if n:
                    _, loss = model(
                        self.val_inputs[rows].to(device), targets.to(device)
                    )
                    total, count = total + loss.item() * n, count + n
        return total / count

    def fingerprint(self) -> dict:
        """The token stream's sizes and SHA-256, and the masking."""
        return {
            **data_fingerprint(self.stream.train_ids, self.stream.val_ids),
            "masking": {
                **self.mask,
                "special_ids": list(self.mask["special_ids"]),
            },
        }
