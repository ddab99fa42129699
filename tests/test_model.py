"""minigpt.model: shapes, loss, causality, caching, parameter count,
initialisation, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from minigpt.model import (
    GPT,
    MLP,
    Block,
    GPTConfig,
    eval_mode,
    without_residual,
)

SMALL = dict(vocab_size=37, block_size=16, n_layer=2, n_head=4, n_embd=32)


def small_gpt(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**SMALL, **overrides})).eval()


def random_ids(
    B: int, T: int, seed: int = 0, vocab: int = SMALL["vocab_size"]
) -> torch.Tensor:
    return torch.randint(
        0, vocab, (B, T), generator=torch.Generator().manual_seed(seed)
    )


def closed_form_params(
    vocab_size, block_size, n_layer, n_embd, bias=True, **_
) -> int:
    """12 C^2 weights per block (attention 4 C^2, MLP 8 C^2) plus biases and
    LayerNorms."""
    C = n_embd
    # biases 3C + C + 4C + C; LayerNorm 2 x (C + C)
    per_block = 12 * C * C + (13 * C if bias else 2 * C)
    final_ln = 2 * C if bias else C
    return vocab_size * C + block_size * C + n_layer * per_block + final_ln


# --- configuration ----------------------------------------------------------


def test_config_round_trips_through_dict():
    config = GPTConfig(
        **SMALL, dropout=0.1, bias=False, norm="post", gelu="exact"
    )
    assert GPTConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(n_embd=30), r"n_embd=30 must be divisible by n_head=4"),
        (dict(vocab_size=0), r"vocab_size must be a positive int, got 0"),
        (dict(n_layer=2.0), r"n_layer must be a positive int, got 2.0"),
        (
            dict(block_size=True),
            r"block_size must be a positive int, got True",
        ),
        (
            dict(dropout=1.0),
            r"dropout must be a probability in \[0, 1\), got 1.0",
        ),
        (
            dict(norm="sandwich"),
            r"norm must be 'pre' \(GPT-2\) or 'post'.*got 'sandwich'",
        ),
        (dict(bias="yes"), r"bias must be True or False, got 'yes'"),
        (
            dict(gelu="none"),
            r"gelu must be 'tanh' \(GPT-2\) or 'exact' \(erf, nanoGPT\), got "
            r"'none'",
        ),
    ],
)
def test_invalid_config_raises_clear_error(overrides, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**{**SMALL, **overrides})


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(
        ValueError, match=r"unknown GPTConfig field\(s\) \['n_ctx'\]"
    ):
        GPTConfig.from_dict({**SMALL, "n_ctx": 8})


def test_gpt_needs_a_config():
    with pytest.raises(TypeError, match="GPT needs a GPTConfig, got dict"):
        GPT(SMALL)


# --- forward ----------------------------------------------------------------


def test_forward_shapes_and_loss_matches_cross_entropy():
    model = small_gpt()
    idx, targets = random_ids(3, 10, seed=1), random_ids(3, 10, seed=2)
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 10, SMALL["vocab_size"])
    assert model(idx)[1] is None
    expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    assert torch.allclose(loss, expected)
    # an untrained model is close to uniform: loss near log(vocab)
    assert abs(loss.item() - math.log(SMALL["vocab_size"])) < 0.2


def test_targets_minus_one_are_ignored():
    model = small_gpt()
    idx, targets = random_ids(2, 8, seed=1), random_ids(2, 8, seed=2)
    masked = targets.clone()
    masked[:, :5] = -1
    logits, loss = model(idx, masked)
    expected = F.cross_entropy(
        logits[:, 5:].flatten(0, 1), targets[:, 5:].flatten()
    )
    assert torch.allclose(loss, expected)


def test_loss_backpropagates_to_every_parameter():
    model = small_gpt().train()
    _, loss = model(random_ids(2, 8), random_ids(2, 8, seed=1))
    loss.backward()
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0
        for p in model.parameters()
    )


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_position_t_does_not_see_later_tokens(norm):
    model = small_gpt(norm=norm)
    idx = random_ids(1, 12)
    changed = idx.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % SMALL["vocab_size"]
    a, b = model(idx)[0], model(changed)[0]
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:], atol=1e-3)


def test_pre_and_post_blocks_follow_their_formulas():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 32)
    for norm in ("pre", "post"):
        block = Block(GPTConfig(**{**SMALL, "norm": norm})).eval()

        def attn(h):
            return block.attn(h)

        if norm == "pre":
            h = x + attn(block.ln_1(x))
            expected = h + block.mlp(block.ln_2(h))
        else:  # Y1 = LayerNorm(X + MHA(X)), Y2 = LayerNorm(Y1 + FFN(Y1))
            y1 = block.ln_1(x + attn(x))
            expected = block.ln_2(y1 + block.mlp(y1))
        assert torch.allclose(block(x), expected, atol=1e-6)


def test_without_residual_drops_both_residual_additions_and_unhooks():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 32)
    for norm in ("pre", "post"):
        block = Block(GPTConfig(**{**SMALL, "norm": norm})).eval()
        with_residual = block(x)
        handle = block.register_forward_hook(without_residual)
        if norm == "pre":
            expected = block.mlp(block.ln_2(block.attn(block.ln_1(x))))
        else:
            expected = block.ln_2(block.mlp(block.ln_1(block.attn(x))))
        assert torch.allclose(block(x), expected, atol=1e-6)
        assert not torch.allclose(block(x), with_residual, atol=1e-2)
        handle.remove()
        assert torch.equal(block(x), with_residual)


def test_mlp_is_gpt2_feed_forward_with_tanh_gelu():
    torch.manual_seed(0)
    mlp = MLP(GPTConfig(**SMALL))
    x = torch.randn(2, 3, 32)
    h = x @ mlp.c_fc.weight.T + mlp.c_fc.bias
    gelu_tanh = (
        0.5
        * h
        * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    )
    expected = gelu_tanh @ mlp.c_proj.weight.T + mlp.c_proj.bias
    assert mlp.c_fc.weight.shape == (128, 32)
    assert torch.allclose(mlp(x), expected, atol=1e-6)


def test_mlp_with_the_exact_gelu_uses_the_normal_cdf():
    torch.manual_seed(0)
    mlp = MLP(GPTConfig(**SMALL, gelu="exact", bias=False)).double()
    x = 3 * torch.randn(2, 3, 32, dtype=torch.float64)
    h = x @ mlp.c_fc.weight.T
    gelu_exact = h * 0.5 * (1 + torch.erf(h / math.sqrt(2)))  # x Phi(x)
    assert torch.allclose(
        mlp(x), gelu_exact @ mlp.c_proj.weight.T, atol=1e-12
    )
    tanh_mlp = MLP(GPTConfig(**SMALL, bias=False)).double()
    tanh_mlp.load_state_dict(mlp.state_dict())
    difference = (mlp(x) - tanh_mlp(x)).abs().max().item()
    assert 0 < difference  # the two activations differ ...
    grid = torch.linspace(-10, 10, 200_001, dtype=torch.float64)
    gap = (F.gelu(grid) - F.gelu(grid, approximate="tanh")).abs().max().item()
    # ... by less than 1e-3 anywhere, as GPTConfig's docstring says
    assert 1e-4 < gap < 1e-3


def test_head_is_tied_to_token_embedding():
    model = small_gpt()
    assert model.lm_head.weight is model.transformer.wte.weight


def test_submodule_names_mirror_gpt2():
    names = set(small_gpt().state_dict())
    for suffix in (
        "ln_1.weight",
        "ln_1.bias",
        "attn.c_attn.weight",
        "attn.c_attn.bias",
        "attn.c_proj.weight",
        "attn.c_proj.bias",
        "ln_2.weight",
        "mlp.c_fc.weight",
        "mlp.c_fc.bias",
        "mlp.c_proj.weight",
    ):
        assert f"transformer.h.1.{suffix}" in names
    assert {
        "transformer.wte.weight",
        "transformer.wpe.weight",
        "transformer.ln_f.weight",
        "lm_head.weight",
    } <= names


# --- initialisation and size ------------------------------------------------


def test_gpt2_initialisation_scales_residual_projections():
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            vocab_size=500, block_size=64, n_layer=8, n_head=4, n_embd=128
        )
    )
    residual_std = 0.02 / math.sqrt(2 * 8)
    c_proj = torch.cat(
        [
            torch.cat(
                [
                    b.attn.c_proj.weight.flatten(),
                    b.mlp.c_proj.weight.flatten(),
                ]
            )
            for b in model.transformer.h
        ]
    )
    c_fc = torch.cat(
        [b.mlp.c_fc.weight.flatten() for b in model.transformer.h]
    )
    assert abs(c_proj.std().item() - residual_std) < 0.05 * residual_std
    assert abs(c_fc.std().item() - 0.02) < 0.05 * 0.02
    assert abs(model.transformer.wte.weight.std().item() - 0.02) < 0.05 * 0.02
    assert all(
        b.attn.c_attn.bias.abs().max() == 0 for b in model.transformer.h
    )
    assert all(
        torch.equal(b.ln_1.weight, torch.ones(128))
        for b in model.transformer.h
    )


@pytest.mark.parametrize(
    "overrides", [{}, dict(bias=False), dict(n_layer=3, n_embd=48, n_head=6)]
)
def test_num_params_matches_closed_form(overrides):
    config = {**SMALL, **overrides}
    model = GPT(GPTConfig(**config))
    assert model.num_params() == closed_form_params(**config)
    C = config["n_embd"]
    embeddings = config["vocab_size"] * C + config["block_size"] * C
    assert (
        model.num_params(non_embedding=True)
        == closed_form_params(**config) - embeddings
    )


def test_gpt2_small_has_124m_parameters():
    config = GPTConfig.gpt2()
    assert closed_form_params(**config.to_dict()) == 124_439_808
    with torch.device("meta"):  # the count without allocating half a gigabyte
        assert GPT(config).num_params() == 124_439_808


# --- bad input --------------------------------------------------------------


@pytest.mark.parametrize(
    "idx, match",
    [
        (
            torch.zeros(1, 17, dtype=torch.long),
            r"idx has 17 positions but block_size is 16.*idx\[:, -16:\]",
        ),
        (
            torch.tensor([[1, 2, 37]]),
            r"token id 37, outside the vocabulary 0..36",
        ),
        (
            torch.tensor([[1, -2, 3]]),
            r"token id -2, outside the vocabulary 0..36",
        ),
        (
            torch.tensor([1, 2, 3]),
            r"idx must be a LongTensor of shape \(B, T\), got \(3,\)",
        ),
        (
            torch.tensor([[1.0, 2.0]]),
            r"idx must be a LongTensor of shape \(B, T\), got \(1, 2\) "
            r"torch.float32",
        ),
        (torch.zeros(1, 0, dtype=torch.long), r"idx is empty"),
    ],
)
def test_forward_rejects_bad_input(idx, match):
    with pytest.raises(ValueError, match=match):
        small_gpt()(idx)
    with pytest.raises(ValueError, match=match):
        small_gpt().hidden_states(idx)


def test_hidden_states_are_what_the_head_reads():
    model, idx = small_gpt(), random_ids(2, 5)
    hidden = model.hidden_states(idx)
    assert hidden.shape == (2, 5, SMALL["n_embd"])
    # independent of lm_head: logits are the hidden states times the token
    # embedding matrix
    assert torch.allclose(
        hidden @ model.transformer.wte.weight.T, model(idx)[0], atol=1e-6
    )
    # the last step is LayerNorm: each row has mean ~0 before the gain
    ln_f = model.transformer.ln_f
    assert torch.allclose(
        (hidden - ln_f.bias).mean(-1), torch.zeros(2, 5), atol=1e-5
    )


def test_forward_rejects_bad_targets():
    model, idx = small_gpt(), random_ids(2, 4)
    with pytest.raises(
        ValueError,
        match=r"targets must have the shape of idx \(2, 4\), got \(2, 3\)",
    ):
        model(idx, idx[:, :3])
    with pytest.raises(
        ValueError, match=r"targets must hold token ids 0..36 or -1"
    ):
        model(idx, torch.full((2, 4), 37))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            dict(max_new_tokens=-1),
            r"max_new_tokens must be an int >= 0, got -1",
        ),
        (
            dict(max_new_tokens=3, temperature=-1.0),
            r"temperature must be a number >= 0",
        ),
        (dict(max_new_tokens=3, top_k=38), r"top_k must be an int in 1..37"),
        (
            dict(max_new_tokens=3, top_p=2.0),
            r"top_p must be a number in \(0, 1\]",
        ),
    ],
)
def test_generate_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_gpt().generate(random_ids(1, 3), **kwargs)


def test_generate_rejects_prompt_longer_than_block_size():
    with pytest.raises(
        ValueError, match=r"prompt has 20 positions but block_size is 16"
    ):
        small_gpt().generate(random_ids(1, 20), 5)


# --- generation -------------------------------------------------------------


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_cached_and_uncached_greedy_generation_agree(norm):
    model = small_gpt(norm=norm)
    prompt = random_ids(2, 5)
    # 5 + 30 tokens: the window slides past block_size = 16, so the cache is
    # rebuilt too
    cached = model.generate(prompt, 30, temperature=0)
    uncached = model.generate(prompt, 30, temperature=0, use_cache=False)
    assert cached.shape == (2, 35)
    assert torch.equal(cached[:, :5], prompt)
    assert torch.equal(cached, uncached)


def test_cached_and_uncached_seeded_sampling_agree():
    model = small_gpt()
    prompt = random_ids(3, 4)
    runs = [
        model.generate(
            prompt,
            25,
            temperature=1.0,
            top_k=20,
            top_p=0.95,
            use_cache=use_cache,
            generator=torch.Generator().manual_seed(7),
        )
        for use_cache in (True, False)
    ]
    assert torch.equal(*runs)
    other_seed = model.generate(
        prompt,
        25,
        top_k=20,
        top_p=0.95,
        generator=torch.Generator().manual_seed(8),
    )
    assert not torch.equal(runs[0], other_seed)


def test_greedy_generation_is_argmax_of_forward_on_the_window():
    model = small_gpt()
    out = model.generate(random_ids(1, 3), 20, temperature=0)
    block = SMALL["block_size"]
    for t in range(3, out.size(1)):
        context = out[:, max(0, t - block) : t]
        assert out[0, t] == model(context)[0][0, -1].argmax()


def test_generate_restores_training_mode_and_keeps_no_graph():
    model = small_gpt(dropout=0.2).train()
    out = model.generate(random_ids(1, 3), 4, temperature=0)
    assert model.training and not out.requires_grad
    # in eval mode inside generate, dropout is off: two runs agree
    assert torch.equal(
        out, model.generate(random_ids(1, 3), 4, temperature=0)
    )


def test_zero_new_tokens_returns_the_prompt():
    prompt = random_ids(2, 3)
    assert torch.equal(small_gpt().generate(prompt, 0), prompt)


def test_attention_maps_are_causal_distributions():
    model = small_gpt()
    maps = model.attention_maps(random_ids(2, 9))
    assert len(maps) == SMALL["n_layer"]
    for weights in maps:
        assert weights.shape == (2, SMALL["n_head"], 9, 9)
        assert torch.allclose(
            weights.sum(-1), torch.ones(2, SMALL["n_head"], 9), atol=1e-6
        )
        assert weights.triu(diagonal=1).abs().max() == 0


def test_attention_maps_ignore_dropout_and_keep_the_mode():
    model = small_gpt(dropout=0.5).train()
    idx = random_ids(1, 6)
    first, second = model.attention_maps(idx), model.attention_maps(idx)
    assert model.training
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_attention_maps_reproduce_the_block_output():
    # the weights of layer 0 applied to its values give the layer's attention
    # output
    model = small_gpt()
    idx = random_ids(1, 6)
    attn = model.transformer.h[0].attn
    x = model.transformer.wte(idx) + model.transformer.wpe(torch.arange(6))
    h = model.transformer.h[0].ln_1(x)
    v = attn.c_attn(h).split(32, dim=2)[2].view(1, 6, 4, 8).transpose(1, 2)
    y = (model.attention_maps(idx)[0] @ v).transpose(1, 2).reshape(1, 6, 32)
    assert torch.allclose(attn.c_proj(y), attn(h), atol=1e-5)


def test_forward_compiles_without_graph_breaks():
    """The whole forward (with loss) is one torch.compile graph.

    The token-id checks read values back with .item(), which would split the
    graph; under compilation they are skipped.
    """
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    )
    idx, targets = torch.randint(11, (2, 8)), torch.randint(11, (2, 8))
    # fullgraph: a graph break is an error
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    torch.testing.assert_close(
        compiled(idx, targets)[1], model(idx, targets)[1]
    )
    torch._dynamo.reset()


def test_eval_mode_turns_dropout_off_and_restores_the_mode_after_errors():
    model = small_gpt(dropout=0.5).train()
    x = random_ids(2, 6)
    with eval_mode(model):
        # no dropout: repeatable
        assert not model.training and torch.equal(model(x)[0], model(x)[0])
    assert model.training
    with pytest.raises(RuntimeError, match="inside"):
        with eval_mode(model):
            raise RuntimeError("inside")
    assert model.training
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training  # a model that was in eval mode stays there


def test_generate_stops_once_every_row_has_produced_the_stop_token():
    model = small_gpt()
    prompt = random_ids(3, 4, seed=5)
    # greedy: the reference without a stop token
    full = model.generate(prompt, 12, temperature=0.0)
    stop = int(full[0, 6])  # the token row 0 produces third
    stopped = model.generate(prompt, 12, temperature=0.0, stop_token=stop)
    new, reference = stopped[:, 4:], full[:, 4:]
    for row, ref in zip(new.tolist(), reference.tolist()):
        # up to its first stop token a row is the unstopped text, then only
        # stop tokens
        if stop in row:
            cut = row.index(stop) + 1
            assert row[:cut] == ref[:cut] and set(row[cut:]) <= {stop}
        else:
            assert row == ref[: len(row)]
    ends = [
        ref.index(stop) + 1 if stop in ref else 12
        for ref in reference.tolist()
    ]
    # it ran until the last row finished, no further
    assert new.size(1) == max(ends)
    alone = model.generate(prompt[:1], 12, temperature=0.0, stop_token=stop)
    # one row: it ends at its first stop token
    assert alone.tolist() == [full[0, : 4 + ends[0]].tolist()]


def test_stop_token_generation_agrees_cached_and_uncached_and_is_checked():
    model = small_gpt()
    prompt = random_ids(4, 5, seed=6)
    runs = [
        model.generate(
            prompt,
            30,
            temperature=1.0,
            generator=torch.Generator().manual_seed(1),
            stop_token=3,
            use_cache=cache,
        )
        for cache in (True, False)
    ]
    assert torch.equal(runs[0], runs[1])
    with pytest.raises(
        ValueError,
        match=r"stop_token must be a token id in 0..36 or None, got 37",
    ):
        model.generate(prompt, 3, stop_token=37)
