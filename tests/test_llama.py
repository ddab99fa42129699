"""The Llama layout: RoPE, RMSNorm, SwiGLU, grouped-query attention.

Each component against its formula, the whole model against
``transformers.LlamaForCausalLM`` with the same (random) weights, and the
GPT-2 default left as it was.
"""

import pytest
import torch
import torch.nn.functional as F

from minigpt.attention import (
    KVCache,
    MultiHeadAttention,
    RotaryEmbedding,
    fast_to_teaching,
    rotate_half,
)
from minigpt.hf import from_hf, to_hf
from minigpt.model import (
    GPT,
    GPTConfig,
    RMSNorm,
    SwiGLU,
    swiglu_hidden_size,
)

pytest.importorskip("transformers")


def llama_config(**overrides) -> GPTConfig:
    settings = dict(
        vocab_size=61,
        block_size=32,
        n_layer=2,
        n_head=4,
        n_embd=32,
        intermediate_size=48,
        rope_theta=100.0,
    )
    return GPTConfig.llama(**(settings | overrides))


def random_gpt(config: GPTConfig, seed: int = 0) -> GPT:
    """A GPT with every weight random, norm gains included."""
    torch.manual_seed(seed)
    gpt = GPT(config).eval()
    with torch.no_grad():
        for p in gpt.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return gpt


def ids(B=2, T=12, vocab=61, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (B, T), generator=g)


# --- the GPT-2 default is unchanged ------------------------------------


def test_the_default_config_keeps_gpt2s_parameters_and_names():
    config = GPTConfig(
        vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8
    )
    gpt = GPT(config)
    block = [
        "ln_1.weight",
        "ln_1.bias",
        "attn.c_attn.weight",
        "attn.c_attn.bias",
        "attn.c_proj.weight",
        "attn.c_proj.bias",
        "ln_2.weight",
        "ln_2.bias",
        "mlp.c_fc.weight",
        "mlp.c_fc.bias",
        "mlp.c_proj.weight",
        "mlp.c_proj.bias",
    ]
    assert list(gpt.state_dict()) == [
        "transformer.wte.weight",
        "transformer.wpe.weight",
        *(f"transformer.h.0.{name}" for name in block),
        "transformer.ln_f.weight",
        "transformer.ln_f.bias",
        "lm_head.weight",
    ]
    assert gpt.lm_head.weight is gpt.transformer.wte.weight
    assert gpt.transformer.h[0].attn.c_attn.weight.shape == (24, 8)
    assert gpt.transformer.h[0].mlp.c_fc.weight.shape == (32, 8)
    assert isinstance(gpt.transformer.ln_f, torch.nn.LayerNorm)
    assert gpt.transformer.h[0].attn.rope is None


def test_an_old_config_dict_without_the_new_options_loads_as_gpt2():
    config = GPTConfig.gpt2()
    old = {
        k: v
        for k, v in config.to_dict().items()
        if k
        in (
            "vocab_size",
            "block_size",
            "n_layer",
            "n_head",
            "n_embd",
            "dropout",
            "bias",
            "norm",
            "gelu",
        )
    }
    assert GPTConfig.from_dict(old) == config


def test_default_forward_equals_a_hand_written_gpt2_forward():
    """The GPT-2 path written out from its weights, without the options."""
    config = GPTConfig(
        vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8
    )
    torch.manual_seed(0)
    gpt = GPT(config).eval()
    idx = ids(B=2, T=6, vocab=13)
    t = gpt.transformer
    x = t.wte(idx) + t.wpe(torch.arange(6))
    for block in t.h:
        h = block.ln_1(x)
        q, k, v = block.attn.c_attn(h).split(8, dim=2)
        q, k, v = (u.view(2, 6, 2, 4).transpose(1, 2) for u in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + block.attn.c_proj(y.transpose(1, 2).reshape(2, 6, 8))
        h = block.ln_2(x)
        m = F.gelu(block.mlp.c_fc(h), approximate="tanh")
        x = x + block.mlp.c_proj(m)
    expected = t.ln_f(x) @ t.wte.weight.T
    torch.testing.assert_close(gpt(idx)[0], expected)


# --- components ----------------------------------------------------------


def test_rope_at_position_zero_is_the_identity():
    rope = RotaryEmbedding(8)
    x = torch.randn(2, 3, 1, 8)
    torch.testing.assert_close(rope(x), x, rtol=0, atol=0)
    seq = torch.randn(1, 1, 5, 8)
    torch.testing.assert_close(rope(seq)[..., 0, :], seq[..., 0, :])
    assert not torch.allclose(rope(seq)[..., 1, :], seq[..., 1, :])


def test_rope_scores_depend_only_on_the_offset():
    rope = RotaryEmbedding(16, theta=10000.0)
    torch.manual_seed(0)
    q, k = (
        torch.randn(16, dtype=torch.float64),
        torch.randn(16, dtype=torch.float64),
    )

    def score(m: int, n: int) -> torch.Tensor:
        qm = rope(q.view(1, 1, 1, 16), start=m)
        kn = rope(k.view(1, 1, 1, 16), start=n)
        return (qm * kn).sum()

    for offset in (0, 1, 3, 7, 20):
        scores = torch.stack([score(n + offset, n) for n in (0, 5, 11, 40)])
        torch.testing.assert_close(
            scores, scores[0].expand(4), rtol=0, atol=1e-5
        )
    assert not torch.isclose(score(3, 0), score(4, 0))


def test_rope_rotates_halves_by_position_times_frequency():
    """Pair j is (x_j, x_{j + d/2}), rotated by m * theta^(-2j/d)."""
    d, theta, m = 4, 100.0, 3
    x = torch.randn(1, 1, 1, d)
    out = RotaryEmbedding(d, theta)(x, start=m)
    for j in range(d // 2):
        angle = torch.tensor(m * theta ** (-2 * j / d))
        c, s = torch.cos(angle), torch.sin(angle)
        a, b = x[..., j], x[..., j + d // 2]
        torch.testing.assert_close(out[..., j], a * c - b * s)
        torch.testing.assert_close(out[..., j + d // 2], b * c + a * s)
    torch.testing.assert_close(
        rotate_half(torch.tensor([1.0, 2.0, 3.0, 4.0])),
        torch.tensor([-3.0, -4.0, 1.0, 2.0]),
    )


def test_rope_table_gives_the_numbers_computed_afresh():
    """cos/sin come from a table grown on demand: slicing it must give
    exactly what a fresh module computes for the same positions."""
    grown = RotaryEmbedding(8, theta=500.0)
    grown.cos_sin(0, 3)  # a small table first, then one past its end
    for start, T in ((2, 5), (0, 1), (40, 7), (3, 1)):
        fresh = RotaryEmbedding(8, theta=500.0).cos_sin(start, T)
        for ours, theirs in zip(grown.cos_sin(start, T), fresh):
            assert ours.shape == (T, 8) and torch.equal(ours, theirs)
    cos, _ = grown.cos_sin(5, 2, dtype=torch.float64)
    assert cos.dtype == torch.float64


def test_rms_norm_equals_torch_and_the_hand_computation():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    ours = RMSNorm(8, eps=1e-6).double()
    with torch.no_grad():
        ours.weight.copy_(torch.randn(8))
    theirs = torch.nn.RMSNorm(8, eps=1e-6).double()
    theirs.load_state_dict(ours.state_dict())
    by_hand = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(ours(x), by_hand * ours.weight)
    torch.testing.assert_close(ours(x), theirs(x))


def test_swiglu_equals_its_formula_and_llamas_width():
    config = llama_config(intermediate_size=None)
    torch.manual_seed(0)
    mlp = SwiGLU(config)
    assert mlp.c_fc.out_features == swiglu_hidden_size(32) == 256
    # the published widths: Llama 7B / Llama 2 7B, Llama 2 70B, Llama 3 8B
    assert swiglu_hidden_size(4096) == 11008
    assert swiglu_hidden_size(8192, 4096, ffn_dim_multiplier=1.3) == 28672
    assert swiglu_hidden_size(4096, 1024, ffn_dim_multiplier=1.3) == 14336
    for bad in (0, -1.3, True, "1.3"):
        with pytest.raises(ValueError, match="ffn_dim_multiplier must be"):
            swiglu_hidden_size(4096, ffn_dim_multiplier=bad)
    x = torch.randn(2, 3, 32)
    gate, up = x @ mlp.c_gate.weight.T, x @ mlp.c_fc.weight.T
    expected = (gate * torch.sigmoid(gate) * up) @ mlp.c_proj.weight.T
    torch.testing.assert_close(mlp(x), expected)


def test_gqa_with_as_many_kv_heads_as_heads_is_multi_head_attention():
    torch.manual_seed(0)
    plain = MultiHeadAttention(16, 4, bias=False)
    grouped = MultiHeadAttention(16, 4, bias=False, n_kv_head=4)
    grouped.load_state_dict(plain.state_dict())
    x = torch.randn(2, 7, 16)
    torch.testing.assert_close(grouped(x), plain(x), rtol=0, atol=0)


def test_gqa_shares_each_kv_head_among_its_group_and_caches_only_those():
    torch.manual_seed(0)
    grouped = MultiHeadAttention(16, 4, bias=False, n_kv_head=2)
    assert grouped.c_attn.weight.shape == (16 + 2 * 2 * 4, 16)
    # the same layer as multi-head attention with each kv head repeated
    plain = MultiHeadAttention(16, 4, bias=False)
    q, k, v = grouped.c_attn.weight.split([16, 8, 8])
    k, v = (w.view(2, 4, 16).repeat_interleave(2, 0) for w in (k, v))
    with torch.no_grad():
        plain.c_attn.weight.copy_(
            torch.cat([q, k.reshape(16, 16), v.reshape(16, 16)])
        )
        plain.c_proj.weight.copy_(grouped.c_proj.weight)
    x = torch.randn(2, 7, 16)
    torch.testing.assert_close(grouped(x), plain(x))
    cache = KVCache()
    grouped(x, cache)
    assert cache.k.shape == (2, 2, 7, 4)


def test_the_cache_path_applies_the_same_rotations():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4, n_kv_head=2, rope_theta=10.0).eval()
    x = torch.randn(1, 9, 16)
    full = attn(x)
    cache = KVCache()
    parts = [attn(x[:, :5], cache)]
    parts += [attn(x[:, t : t + 1], cache) for t in range(5, 9)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full)


# --- the whole model ------------------------------------------------------


@pytest.mark.parametrize("n_kv_head", [None, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_logits_equal_llama_for_causal_lm(n_kv_head, tie):
    gpt = random_gpt(llama_config(n_kv_head=n_kv_head, tie_embeddings=tie))
    hf = to_hf(gpt)
    assert type(hf).__name__ == "LlamaForCausalLM"
    assert hf.config.num_key_value_heads == (n_kv_head or 4)
    idx = ids()
    with torch.no_grad():
        torch.testing.assert_close(
            gpt(idx)[0], hf(idx).logits, rtol=0, atol=1e-5
        )
    back = from_hf(hf)
    assert back.config == gpt.config
    for (name, a), b in zip(
        gpt.state_dict().items(), back.state_dict().values()
    ):
        assert torch.equal(a, b), name
    assert (gpt.lm_head.weight is gpt.transformer.wte.weight) == tie


@pytest.mark.parametrize("n_kv_head", [None, 2, 1], ids=["mha", "gqa", "mqa"])
def test_cached_greedy_generation_equals_transformers_generate(n_kv_head):
    gpt = random_gpt(llama_config(n_kv_head=n_kv_head))
    hf = to_hf(gpt)
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    prompt = ids(B=2, T=5)
    ours = gpt.generate(prompt, 8, temperature=0)
    uncached = gpt.generate(prompt, 8, temperature=0, use_cache=False)
    theirs = hf.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=8,
        do_sample=False,
    )
    assert torch.equal(ours, uncached)
    assert torch.equal(ours, theirs)


def test_cached_generation_past_block_size_equals_uncached():
    gpt = random_gpt(llama_config(block_size=8, n_kv_head=2))
    prompt = ids(B=1, T=6)
    ours = gpt.generate(prompt, 12, temperature=0)
    assert torch.equal(
        ours, gpt.generate(prompt, 12, temperature=0, use_cache=False)
    )
    assert ours.shape == (1, 18)


def test_llama_layout_has_no_position_table_and_no_biases():
    gpt = GPT(llama_config(n_kv_head=2))
    names = list(gpt.state_dict())
    assert "transformer.wpe.weight" not in names
    assert not [n for n in names if n.endswith(".bias")]
    assert gpt.lm_head.weight is not gpt.transformer.wte.weight
    assert len(gpt.attention_maps(ids(B=1, T=5))) == 2


def test_save_and_load_pretrained_round_trip_a_llama(tmp_path):
    from minigpt.hf import load_pretrained, save_pretrained
    from minigpt.tokenizer import train_bpe

    tokenizer = train_bpe("a small text to learn merges from. " * 20, 270)
    gpt = random_gpt(llama_config(vocab_size=270, n_kv_head=2))
    folder = save_pretrained(gpt, tokenizer, tmp_path / "llama")
    back, _ = load_pretrained(folder)
    assert back.config == gpt.config
    for a, b in zip(gpt.state_dict().values(), back.state_dict().values()):
        assert torch.equal(a, b)


# --- bad input -----------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(n_kv_head=3), r"n_head=4 must be divisible by n_kv_head=3"),
        (dict(n_kv_head=0), r"n_kv_head"),
        (dict(n_embd=12, n_head=4), r"head size n_embd // n_head must be"),
        (dict(rope_theta=0), r"rope_theta must be a number > 0"),
        (dict(norm_eps=-1.0), r"norm_eps must be a number > 0"),
        (dict(intermediate_size=0), r"intermediate_size"),
    ],
)
def test_bad_llama_options_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        llama_config(**overrides)


@pytest.mark.parametrize(
    "field, value",
    [
        ("positions", "sinusoidal"),
        ("norm_layer", "batchnorm"),
        ("mlp", "relu"),
    ],
)
def test_unknown_options_name_the_value_and_the_choices(field, value):
    with pytest.raises(ValueError, match=f"{field} must be one of .*{value}"):
        GPTConfig(
            vocab_size=11,
            block_size=8,
            n_layer=1,
            n_head=2,
            n_embd=8,
            **{field: value},
        )


def test_attention_and_converters_reject_what_they_cannot_do():
    with pytest.raises(ValueError, match="head_dim must be even"):
        RotaryEmbedding(5)
    with pytest.raises(ValueError, match="choose n_kv_head from"):
        MultiHeadAttention(16, 4, n_kv_head=3)
    with pytest.raises(ValueError, match="plain multi-head attention only"):
        fast_to_teaching(MultiHeadAttention(16, 4, n_kv_head=2))
    mixed = GPT(
        GPTConfig(
            vocab_size=11,
            block_size=8,
            n_layer=1,
            n_head=2,
            n_embd=8,
            positions="rotary",
        )
    )
    with pytest.raises(ValueError, match="GPTConfig.llama"):
        to_hf(mixed)
    untied = GPT(
        GPTConfig(
            vocab_size=11,
            block_size=8,
            n_layer=1,
            n_head=2,
            n_embd=8,
            tie_embeddings=False,
        )
    )
    with pytest.raises(ValueError, match="tie_embeddings=False"):
        to_hf(untied)
