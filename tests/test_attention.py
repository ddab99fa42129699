"""minigpt.attention against independent references.

PyTorch's fused attention, torch.nn.MultiheadAttention, gradcheck, and
properties (causality, equivariance).
"""

import pytest
import torch
import torch.nn.functional as F

from minigpt.attention import (
    KVCache,
    MultiHeadAttention,
    SelfAttention,
    TeachingMultiHeadAttention,
    causal_mask,
    fast_to_teaching,
    scaled_dot_product_attention,
    teaching_to_fast,
)

TIGHT = dict(atol=1e-12, rtol=1e-10)  # float64


def qkv(B=2, h=3, T_q=5, T_k=5, d_k=4, d_v=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, h, T_q, d_k, generator=g, dtype=torch.float64),
        torch.randn(B, h, T_k, d_k, generator=g, dtype=torch.float64),
        torch.randn(B, h, T_k, d_v, generator=g, dtype=torch.float64),
    )


def fast_mha(n_embd=12, n_head=3, causal=True, bias=True, seed=0):
    torch.manual_seed(seed)
    return (
        MultiHeadAttention(n_embd, n_head, bias=bias, causal=causal)
        .double()
        .eval()
    )


def x_input(B=2, T=7, C=12, seed=1):
    return torch.randn(
        B,
        T,
        C,
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64,
    )


# --- causal_mask and scaled_dot_product_attention ---------------------------


def test_causal_mask_is_lower_triangular():
    assert causal_mask(3).tolist() == [
        [True, False, False],
        [True, True, False],
        [True, True, True],
    ]
    assert causal_mask(1).dtype == torch.bool


@pytest.mark.parametrize("T", [0, -1, 2.0, True])
def test_causal_mask_rejects_bad_length(T):
    with pytest.raises(
        ValueError,
        match=rf"T must be a positive int, got {T!r}; "
        r"causal_mask\(T\) needs the sequence length",
    ):
        causal_mask(T)


def test_sdpa_equals_torch_without_mask():
    q, k, v = qkv(T_q=4, T_k=6)
    out, A = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v), **TIGHT
    )
    torch.testing.assert_close(
        A.sum(-1), torch.ones(2, 3, 4, dtype=torch.float64), **TIGHT
    )


def test_sdpa_equals_torch_with_causal_mask():
    q, k, v = qkv()
    out, A = scaled_dot_product_attention(q, k, v, causal_mask(5))
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v, is_causal=True), **TIGHT
    )
    assert (A[..., ~causal_mask(5)] == 0).all()


def test_sdpa_equals_torch_with_arbitrary_mask():
    q, k, v = qkv(T_q=4, T_k=6)
    mask = (
        torch.rand(2, 1, 4, 6, generator=torch.Generator().manual_seed(3))
        > 0.4
    )
    mask[..., 0] = True  # every query sees at least one key
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TIGHT
    )


def test_sdpa_weights_by_hand():
    # one query equally similar to two keys -> weights 1/2, 1/2; output the
    # mean of the values
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    v = torch.tensor([[2.0], [4.0]])
    out, A = scaled_dot_product_attention(q, k, v)
    assert A.tolist() == [[0.5, 0.5]] and out.tolist() == [[3.0]]


def test_sdpa_gradcheck():
    q, k, v = (
        t.requires_grad_() for t in qkv(B=1, h=2, T_q=3, T_k=3, d_k=2, d_v=2)
    )
    assert torch.autograd.gradcheck(
        lambda q, k, v: scaled_dot_product_attention(q, k, v, causal_mask(3)),
        (q, k, v),
    )


def test_sdpa_rejects_mismatched_shapes():
    q, k, v = qkv(d_k=4)
    with pytest.raises(
        ValueError,
        match=r"same last dimension d_k.*"
        r"q \(2, 3, 5, 4\) and k \(2, 3, 5, 3\)",
    ):
        scaled_dot_product_attention(q, k[..., :3], v)
    with pytest.raises(
        ValueError, match=r"same number of positions T_k.*v \(2, 3, 4, 6\)"
    ):
        scaled_dot_product_attention(q, k, v[..., :4, :])
    with pytest.raises(
        ValueError,
        match=r"q must be a tensor of shape \(\.\.\., T, d\).*got \(4,\)",
    ):
        scaled_dot_product_attention(torch.zeros(4), k, v)


def test_sdpa_rejects_bad_masks():
    q, k, v = qkv()
    with pytest.raises(
        ValueError,
        match=r"mask of shape \(4, 4\) does not broadcast.*\(2, 3, 5, 5\)",
    ):
        scaled_dot_product_attention(q, k, v, causal_mask(4))
    with pytest.raises(
        TypeError,
        match="mask must be a bool tensor.*got torch.float32.*mask.bool",
    ):
        scaled_dot_product_attention(q, k, v, causal_mask(5).float())


# --- single head ------------------------------------------------------------


def test_self_attention_is_the_formula():
    torch.manual_seed(0)
    head = SelfAttention(d_model=8, d_k=4, d_v=5).double()
    x = x_input(C=8)
    y, A = head(x, causal_mask(7))
    Q, K, V = (
        x @ head.W_Q.weight.T,
        x @ head.W_K.weight.T,
        x @ head.W_V.weight.T,
    )
    expected = (
        torch.softmax(
            (Q @ K.transpose(1, 2) / 2.0).masked_fill(
                ~causal_mask(7), float("-inf")
            ),
            -1,
        )
        @ V
    )
    assert y.shape == (2, 7, 5) and A.shape == (2, 7, 7)
    torch.testing.assert_close(y, expected, **TIGHT)


def test_self_attention_rejects_bad_input():
    with pytest.raises(ValueError, match="d_k must be a positive int, got 0"):
        SelfAttention(8, 0)
    with pytest.raises(
        ValueError,
        match=r"x must have shape \(B, T, d_model=8\), got \(7, 8\)"
        r".*unsqueeze",
    ):
        SelfAttention(8, 4)(torch.zeros(7, 8))


# --- multi-head: the two forms and PyTorch's --------------------------------


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_teaching_form_equals_fast_form(causal, bias):
    fast = fast_mha(causal=causal, bias=bias)
    teaching = fast_to_teaching(fast)
    x = x_input()
    y_teach, A_teach = teaching(x)
    torch.testing.assert_close(fast(x), y_teach, **TIGHT)
    torch.testing.assert_close(fast.attention_weights(x), A_teach, **TIGHT)
    # and back again: the round trip gives the same parameters
    back = teaching_to_fast(teaching)
    for (name, p), (_, p_back) in zip(
        fast.state_dict().items(), back.state_dict().items()
    ):
        assert torch.equal(p, p_back), name


def test_teaching_to_fast_from_random_teaching_weights():
    torch.manual_seed(3)
    teaching = TeachingMultiHeadAttention(12, 4).double()
    x = x_input()
    torch.testing.assert_close(
        teaching_to_fast(teaching)(x), teaching(x)[0], **TIGHT
    )


def torch_twin(fast):
    """torch.nn.MultiheadAttention with the weights of ``fast``."""
    torch_mha = torch.nn.MultiheadAttention(
        12, 3, batch_first=True, dtype=torch.float64
    ).eval()
    # nn.MultiheadAttention's in_proj rows are also [Q; K; V]
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(fast.c_attn.weight)
        torch_mha.in_proj_bias.copy_(fast.c_attn.bias)
        torch_mha.out_proj.weight.copy_(fast.c_proj.weight)
        torch_mha.out_proj.bias.copy_(fast.c_proj.bias)
    return torch_mha


@pytest.mark.parametrize("causal", [True, False])
def test_fast_form_equals_torch_multihead_attention(causal):
    fast = fast_mha(causal=causal)
    torch_mha = torch_twin(fast)
    x = x_input()
    # PyTorch's bool attn_mask: True = blocked
    blocked = ~causal_mask(7) if causal else None
    expected, weights = torch_mha(
        x, x, x, attn_mask=blocked, average_attn_weights=False
    )
    torch.testing.assert_close(fast(x), expected, **TIGHT)
    torch.testing.assert_close(fast.attention_weights(x), weights, **TIGHT)


def right_padding(B=2, T=7):
    """Sequence 0 unpadded; sequence 1 padded in its last three positions."""
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, T - 3 :] = False
    return mask


@pytest.mark.parametrize("causal", [True, False])
def test_padding_mask_equals_torch_key_padding_mask(causal):
    fast = fast_mha(causal=causal)
    torch_mha = torch_twin(fast)
    x, padding = x_input(), right_padding()
    # PyTorch's bool masks: True = blocked
    expected, weights = torch_mha(
        x,
        x,
        x,
        key_padding_mask=~padding,
        attn_mask=~causal_mask(7) if causal else None,
        average_attn_weights=False,
    )
    torch.testing.assert_close(
        fast(x, padding_mask=padding), expected, **TIGHT
    )
    torch.testing.assert_close(
        fast.attention_weights(x, padding), weights, **TIGHT
    )
    # no weight on padding, and sequence 0 (no padding) is unchanged
    assert (weights[1, :, :, 4:] == 0).all()
    torch.testing.assert_close(fast(x, padding_mask=padding)[0], fast(x)[0])


def test_bad_padding_masks_are_refused():
    fast, x = fast_mha(causal=False), x_input()
    padding = right_padding()
    for bad, message in (
        (padding[:, :5], "padding_mask must be a bool tensor of shape"),
        (padding.long(), "padding_mask must be a bool tensor of shape"),
        (torch.zeros_like(padding), "at least one real token"),
    ):
        with pytest.raises(ValueError, match=message):
            fast(x, padding_mask=bad)
    left = padding.flip(1)  # padding first: a causal query would see none
    fast_mha(causal=False)(x, padding_mask=left)  # fine without causality
    with pytest.raises(ValueError, match="padding must be on the right"):
        fast_mha(causal=True)(x, padding_mask=left)
    cache = KVCache()
    fast_mha(causal=True)(x, cache)
    with pytest.raises(ValueError, match="without a KVCache only"):
        fast_mha(causal=True)(x[:, :1], cache, padding_mask=padding[:, :1])


def test_teaching_form_combines_an_extra_mask_with_the_causal_one():
    fast = fast_mha()
    teaching = fast_to_teaching(fast)
    x = x_input()
    keep = torch.ones(2, 7, 7, dtype=torch.bool)
    keep[1, :, 2] = False  # sequence 1: no position may attend to position 2
    y, A = teaching(x, keep)
    assert (A[1, :, :, 2] == 0).all() and (A[0, :, 3:, 2] > 0).all()
    # reference: PyTorch's fused attention with the combined mask, heads as a
    # batch dimension
    q, k, v = fast._heads(x)
    allowed = (keep & causal_mask(7)).unsqueeze(1)  # (B, 1, T, T)
    ref = (
        F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        .transpose(1, 2)
        .reshape(2, 7, 12)
    )
    torch.testing.assert_close(y, fast.c_proj(ref), **TIGHT)


def test_multihead_gradcheck():
    fast = fast_mha(n_embd=4, n_head=2)
    x = x_input(B=1, T=3, C=4).requires_grad_()
    assert torch.autograd.gradcheck(fast, (x,))


def test_causality_future_perturbation_leaves_past_unchanged():
    fast = fast_mha()
    x = x_input()
    t = 3
    x2 = x.clone()
    x2[:, t + 1 :] += torch.randn_like(x2[:, t + 1 :])
    y, y2 = fast(x), fast(x2)
    torch.testing.assert_close(y[:, : t + 1], y2[:, : t + 1], **TIGHT)
    # the perturbation did reach later outputs
    assert not torch.allclose(y[:, t + 1 :], y2[:, t + 1 :])


@pytest.mark.parametrize("form", ["fast", "teaching"])
def test_without_positions_attention_is_permutation_equivariant(form):
    fast = fast_mha(causal=False)
    module = fast if form == "fast" else fast_to_teaching(fast)
    x = x_input()
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))

    def out(x):
        return module(x) if form == "fast" else module(x)[0]

    torch.testing.assert_close(out(x[:, perm]), out(x)[:, perm], **TIGHT)


@pytest.mark.parametrize(
    "make",
    [MultiHeadAttention, TeachingMultiHeadAttention],
    ids=["fast", "teaching"],
)
@pytest.mark.parametrize(
    "n_embd, n_head, name, bad",
    [(0, 2, "n_embd", 0), (8, 0, "n_head", 0), (8, True, "n_head", True)],
)
def test_multihead_rejects_sizes_that_are_not_positive_ints(
    make, n_embd, n_head, name, bad
):
    with pytest.raises(
        ValueError, match=f"{name} must be a positive int, got {bad!r}"
    ):
        make(n_embd, n_head)


@pytest.mark.parametrize(
    "args, name",
    [((0, 4), "d_model"), ((8, 4, -1), "d_v"), ((8, 2.0), "d_k")],
)
def test_self_attention_rejects_sizes_that_are_not_positive_ints(args, name):
    with pytest.raises(ValueError, match=f"{name} must be a positive int"):
        SelfAttention(*args)


def test_multihead_rejects_bad_input():
    with pytest.raises(
        ValueError,
        match=r"n_embd=10 is not divisible by n_head=3.*\[1, 2, 5, 10\]",
    ):
        MultiHeadAttention(10, 3)
    with pytest.raises(
        ValueError, match=r"n_embd=10 is not divisible by n_head=4"
    ):
        TeachingMultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="dropout must be in"):
        MultiHeadAttention(8, 2, dropout=1.0)
    with pytest.raises(
        ValueError,
        match=r"x must have shape \(B, T, n_embd=12\), got \(2, 7, 8\)",
    ):
        fast_mha()(torch.zeros(2, 7, 8, dtype=torch.float64))
    teaching = fast_to_teaching(fast_mha())
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        teaching(x_input(), causal_mask(7).double())
    with pytest.raises(
        ValueError,
        match=r"mask of shape \(6, 6\) does not broadcast.*\(2, 7, 7\)",
    ):
        teaching(x_input(), causal_mask(6))


def test_dropout_only_in_training():
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3, dropout=0.5).double()
    x = x_input()
    mha.eval()
    torch.testing.assert_close(mha(x), mha(x), **TIGHT)
    mha.train()
    assert not torch.allclose(mha(x), mha(x))


# --- the key/value cache ----------------------------------------------------


def test_cache_one_token_at_a_time_equals_all_at_once():
    fast = fast_mha()
    x = x_input()
    cache = KVCache()
    steps = [fast(x[:, t : t + 1], cache=cache) for t in range(7)]
    assert len(cache) == 7
    torch.testing.assert_close(torch.cat(steps, dim=1), fast(x), **TIGHT)


def test_cache_in_chunks_uses_offset_causal_mask():
    fast = fast_mha()
    x = x_input(T=9)
    cache = KVCache()
    chunks = [
        fast(x[:, a:b], cache=cache)
        for a, b in [(0, 4), (4, 7), (7, 8), (8, 9)]
    ]
    torch.testing.assert_close(torch.cat(chunks, dim=1), fast(x), **TIGHT)


def test_cache_reset_and_errors():
    cache = KVCache()
    k = torch.zeros(2, 3, 4, 5)
    all_k, _ = cache.append(k, k)
    assert len(cache) == 4 and all_k.shape == (2, 3, 4, 5)
    assert cache.append(k[:, :, :1], k[:, :, :1])[0].shape == (2, 3, 5, 5)
    with pytest.raises(
        ValueError,
        match=r"KVCache holds .* \(2, 3, 5, 5\) but got new keys "
        r"\(1, 3, 1, 5\).*reset",
    ):
        cache.append(k[:1, :, :1], k[:1, :, :1])
    with pytest.raises(
        ValueError, match=r"same shape \(B, n_head, T, head_dim\)"
    ):
        cache.append(k, k[..., :2])
    cache.reset()
    assert len(cache) == 0


# --- the reader's checker ---------------------------------------------------


def test_check_attention_passes_the_reference_and_catches_a_missing_scale(
    capsys,
):
    from minigpt.exercises import check_attention

    assert check_attention(scaled_dot_product_attention)

    def unscaled(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, -1) @ v, torch.softmax(scores, -1)

    report = check_attention(unscaled, verbose=False)
    assert not report and "scaled by sqrt(d_k): d_k = 64" in report.failed
    assert "7/7 cases passed" in capsys.readouterr().out
