"""The speed reference: a GPT written the way nanoGPT's ``model.py`` is.

For timing only.

nanoGPT (github.com/karpathy/nanoGPT) trains its Shakespeare character model
with no biases, the exact (erf) GELU, PyTorch's fused
``scaled_dot_product_attention`` with ``is_causal=True`` and a tied
embedding/unembedding matrix; measured on the book's machine when the book was
planned, it trained about 1.5x as fast as transformers' GPT-2. This file holds
the same computation in as few lines as it takes, with no input checks, no
dropout modules and no cache, so that ``bench_train_step.py`` can time minigpt
against "nanoGPT's way" in the same process. Its parameters carry minigpt's
names, so a minigpt model in nanoGPT's layout (``GPTConfig(bias=False,
gelu="exact")``) loads into it with ``load_state_dict`` and the two must give
the same loss: the benchmark checks that before it times anything.

Written for this project (nanoGPT's own code is not copied); shapes: idx (B,
T) -> logits (B, T, V).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class SelfAttention(nn.Module):
    """Causal multi-head self-attention: (B, T, C) -> (B, T, C)."""

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        # q, k, v: (B, nh, T, hs)
        q, k, v = (
            z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            for z in self.c_attn(x).split(C, dim=2)
        )
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    """C -> 4C -> exact GELU -> C, at every position."""

    def __init__(self, n_embd: int):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=False)
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    """Pre-LayerNorm block: x + attn(ln_1(x)), then + mlp(ln_2(.))."""

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=False)
        self.attn = SelfAttention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd, bias=False)
        self.mlp = MLP(n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NanoGPT(nn.Module):
    """Embeddings, ``n_layer`` blocks, a final LayerNorm, the tied head.

    Token and position embeddings, as in GPT-2.
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int,
        n_head: int,
        n_embd: int,
    ):
        super().__init__()
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(vocab_size, n_embd),
                wpe=nn.Embedding(block_size, n_embd),
                h=nn.ModuleList(
                    Block(n_embd, n_head) for _ in range(n_layer)
                ),
                ln_f=nn.LayerNorm(n_embd, bias=False),
            )
        )
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.size(1), device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))
