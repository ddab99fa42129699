"""Generation speed: with vs without the KV cache, minigpt vs transformers.

Both comparisons use one randomly initialised GPT (the Shakespeare-char size
of the book, context 256) and greedy decoding, so every contender produces the
same tokens (checked before timing):

1. ``GPT.generate`` with ``use_cache=True`` vs ``use_cache=False``: 256 new
   tokens from a one-token prompt at block_size 256.
2. ``GPT.generate`` vs ``GPT2LMHeadModel.generate`` (its own KV cache) holding
   the same weights (``minigpt.hf.to_hf``): 255 new tokens, the most GPT-2
   allows from a one-token prompt with 256 positions.
3. The same for the Llama layout (``GPTConfig.llama``, 2 key/value heads for
   4 query heads) vs ``LlamaForCausalLM.generate``; the target is minigpt
   >= 1.5x transformers.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_generate.py``
(writes benchmarks/results/bench_generate.json).
"""

import importlib.util
import os

import torch
from harness import compare, row, save

from minigpt.model import GPT, GPTConfig

BLOCK_SIZE = 256
NEW_TOKENS = 256
CONFIG = GPTConfig(
    vocab_size=65, block_size=BLOCK_SIZE, n_layer=4, n_head=4, n_embd=128
)
# the same size in the Llama layout, 2 key/value heads for the 4 query heads
LLAMA_CONFIG = GPTConfig.llama(
    vocab_size=65,
    block_size=BLOCK_SIZE,
    n_layer=4,
    n_head=4,
    n_embd=128,
    n_kv_head=2,
)


def versus_transformers(
    layout: str, model: GPT, prompt: torch.Tensor, repeats: int
) -> dict:
    """``model.generate`` vs transformers' ``generate``, same weights.

    Greedy; as many new tokens as the context allows after ``prompt``.
    """
    from minigpt.hf import to_hf

    hf_model = to_hf(model)
    n = model.config.block_size - prompt.size(1)
    mask = torch.ones_like(prompt)

    def ours():
        return model.generate(prompt, n, temperature=0)

    def theirs():
        return hf_model.generate(
            prompt,
            attention_mask=mask,
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            pad_token_id=model.config.vocab_size - 1,
        )

    assert torch.equal(ours(), theirs()), (
        f"{layout}: minigpt and transformers generate different tokens"
    )
    with torch.no_grad():
        result = compare(
            f"greedy, {n} new tokens, same weights, {layout} layout",
            ours,
            theirs,
            "minigpt generate",
            "transformers generate",
            warmup=1,
            repeats=repeats,
        )
    return row(
        result, new_tokens=n, layout=layout, config=model.config.to_dict()
    )


def main(repeats: int = 5) -> list[dict]:
    torch.manual_seed(0)
    model = GPT(CONFIG).eval()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    rows = []

    def cached():
        return model.generate(prompt, NEW_TOKENS, temperature=0)

    def uncached():
        return model.generate(
            prompt, NEW_TOKENS, temperature=0, use_cache=False
        )

    assert torch.equal(cached(), uncached()), (
        "cached and uncached generation disagree"
    )
    result = compare(
        f"greedy, {NEW_TOKENS} new tokens, block {BLOCK_SIZE}",
        cached,
        uncached,
        "with KV cache",
        "without cache",
        warmup=1,
        repeats=repeats,
    )
    rows.append(row(result, new_tokens=NEW_TOKENS, config=CONFIG.to_dict()))

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if importlib.util.find_spec("transformers") is None:
        print(
            "transformers is not installed: skipping minigpt vs transformers"
        )
    else:
        torch.manual_seed(0)
        llama = GPT(LLAMA_CONFIG).eval()
        for layout, ours in (("GPT-2", model), ("Llama, GQA", llama)):
            rows.append(versus_transformers(layout, ours, prompt, repeats))
    path = save("bench_generate", rows)
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
