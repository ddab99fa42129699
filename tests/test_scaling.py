"""minigpt.scaling against independent references: the model itself, PyTorch's
saved tensors,
published numbers (GPT-3, GPT-2 small) and hand arithmetic."""

import itertools

import numpy as np
import pytest
import torch

from minigpt.model import GPT, GPTConfig
from minigpt.scaling import (
    ACCELERATORS,
    PowerLawFit,
    activation_bytes,
    energy_kwh,
    fit_power_law,
    forward_flops_per_token,
    gpu_days,
    kv_cache_bytes_per_token,
    param_count,
    training_flops,
    training_flops_for,
    training_memory,
    training_seconds,
)

CONFIGS = [
    GPTConfig(
        vocab_size=vocab,
        block_size=block,
        n_layer=layers,
        n_head=heads,
        n_embd=width,
        bias=bias,
        norm=norm,
    )
    for (vocab, block, layers, heads, width), bias, norm in itertools.product(
        [
            (65, 32, 1, 1, 8),
            (65, 64, 4, 4, 128),
            (500, 16, 3, 2, 24),
            (7, 128, 2, 6, 36),
        ],
        [True, False],
        ["pre", "post"],
    )
]


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_param_count_equals_the_model(config):
    model = GPT(config)
    assert param_count(config) == model.num_params()
    assert param_count(config, non_embedding=True) == model.num_params(
        non_embedding=True
    )
    # and the tied head is counted once: the same as counting unique tensors
    unique = {p.data_ptr(): p.numel() for p in model.parameters()}
    assert param_count(config) == sum(unique.values())


def test_param_count_gpt2_small():
    assert param_count(GPTConfig.gpt2()) == 124_439_808


MODERN = {
    "llama, multi-head": GPTConfig.llama(65, 32, 2, 4, 32),
    "llama, GQA 4/2": GPTConfig.llama(65, 32, 2, 4, 32, n_kv_head=2),
    "llama, MQA, tied": GPTConfig.llama(
        65, 32, 1, 4, 32, n_kv_head=1, tie_embeddings=True
    ),
    "llama, own MLP width": GPTConfig.llama(
        50, 16, 2, 2, 24, intermediate_size=40
    ),
    "gpt-2 with RoPE, RMSNorm, biases": GPTConfig(
        vocab_size=65,
        block_size=32,
        n_layer=2,
        n_head=2,
        n_embd=16,
        positions="rotary",
        norm_layer="rmsnorm",
        n_kv_head=1,
    ),
    "swiglu with biases, untied": GPTConfig(
        vocab_size=30,
        block_size=8,
        n_layer=1,
        n_head=2,
        n_embd=8,
        mlp="swiglu",
        intermediate_size=12,
        tie_embeddings=False,
    ),
}


@pytest.mark.parametrize("config", MODERN.values(), ids=MODERN.keys())
def test_param_count_equals_the_model_in_todays_layouts(config):
    model = GPT(config)
    assert param_count(config) == model.num_params()
    assert param_count(config, non_embedding=True) == model.num_params(
        non_embedding=True
    )


def test_param_count_llama3_8b():
    # Llama 3 8B's published shapes; Hugging Face's count of its checkpoint
    config = GPTConfig.llama(
        128_256, 8192, 32, 32, 4096, n_kv_head=8, intermediate_size=14_336
    )
    assert param_count(config) == 8_030_261_248


def test_kv_cache_bytes_per_token_by_hand():
    # GPT-2 small: 12 layers x (key + value) x 768 numbers x 2 bytes
    assert kv_cache_bytes_per_token(GPTConfig.gpt2()) == 12 * 2 * 768 * 2
    # Llama 3 8B's shapes (32 layers, 32 heads, 8 kv heads, 4096 wide):
    # 32 x 2 x 8 x 128 x 2 bytes = 131,072, a quarter of multi-head's
    llama3 = GPTConfig.llama(128_256, 8192, 32, 32, 4096, n_kv_head=8)
    assert kv_cache_bytes_per_token(llama3) == 131_072
    multi_head = GPTConfig.llama(128_256, 8192, 32, 32, 4096)
    assert kv_cache_bytes_per_token(multi_head) == 4 * 131_072
    assert kv_cache_bytes_per_token(llama3, bytes_per_value=4) == 262_144
    with pytest.raises(ValueError, match="bytes_per_value must be"):
        kv_cache_bytes_per_token(llama3, bytes_per_value=0)


def test_gpt3_training_flops_match_the_paper():
    # Brown et al. 2020, Table D.1: 3.14e23 FLOPs for 175B parameters, 300B
    # tokens
    assert training_flops(175e9, 300e9) == pytest.approx(3.14e23, rel=0.02)
    # the attention term (96 layers, context 2048, width 12288) adds about
    # 1.4%
    with_attention = training_flops(
        175e9, 300e9, n_layer=96, n_ctx=2048, d_model=12288
    )
    assert with_attention == pytest.approx(3.14e23, rel=0.02)
    assert with_attention / training_flops(175e9, 300e9) == pytest.approx(
        1 + 96 * 2048 * 12288 / 175e9, rel=1e-12
    )


def test_flops_by_hand_and_for_a_config():
    assert forward_flops_per_token(1000) == 2000
    assert (
        forward_flops_per_token(1000, n_layer=2, n_ctx=8, d_model=4)
        == 2000 + 2 * 2 * 8 * 4
    )
    config = GPTConfig(
        vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128
    )
    n = GPT(config).num_params(non_embedding=True)
    assert (
        training_flops_for(config, 1e6)
        == 6 * n * 1e6 + 6 * 4 * 64 * 128 * 1e6
    )


def test_matmul_flops_of_a_linear_layer_are_2_per_weight():
    """The 2 N rule checked against PyTorch's own FLOP counter on one Linear
    layer."""
    from torch.utils.flop_counter import FlopCounterMode

    layer = torch.nn.Linear(64, 48, bias=False)
    x = torch.randn(10, 64)
    with FlopCounterMode(display=False) as counter:
        layer(x)
    assert counter.get_total_flops() == 10 * forward_flops_per_token(64 * 48)


def test_training_flops_match_torch_flop_counter_for_a_gpt():
    """Forward + backward of a GPT counted by PyTorch = 6 x (weight-matrix
    parameters) x tokens.

    PyTorch's counter skips the fused attention kernel and LayerNorm; it
    counts the tied output head (C x V), which the non-embedding N leaves out,
    so we add it here.
    """
    from torch.utils.flop_counter import FlopCounterMode

    config = GPTConfig(
        vocab_size=65,
        block_size=64,
        n_layer=2,
        n_head=4,
        n_embd=64,
        bias=False,
    )
    model = GPT(config)
    idx = torch.randint(0, 65, (2, 64))
    with FlopCounterMode(display=False) as counter:
        _, loss = model(idx, idx)
        loss.backward()
    layer_norm_gains = (2 * config.n_layer + 1) * config.n_embd
    matrices = (
        param_count(config, non_embedding=True)
        - layer_norm_gains
        + config.n_embd * config.vocab_size
    )
    assert counter.get_total_flops() == training_flops(matrices, idx.numel())


def test_attention_term_is_half_the_full_square():
    """Q K^T and A V over a full T x T square, counted by PyTorch, are 2x
    Kaplan's causal term."""
    from torch.utils.flop_counter import FlopCounterMode

    T, C, n_head = 32, 48, 4
    q, k, v = (torch.randn(1, n_head, T, C // n_head) for _ in range(3))
    with FlopCounterMode(display=False) as counter:
        (q @ k.transpose(-2, -1)).softmax(-1) @ v
    attention_per_token = (
        forward_flops_per_token(1, n_layer=1, n_ctx=T, d_model=C) - 2
    )
    assert counter.get_total_flops() == 2 * attention_per_token * T


def test_time_cost_energy_by_hand():
    assert training_seconds(1e18, 1e15, utilisation=0.5) == 2000
    assert training_seconds(1e18, 1e15, utilisation=0.5, n_devices=4) == 500
    a100 = ACCELERATORS["A100"]
    assert gpu_days(
        a100.peak_flops * 86400 * 0.4, a100, utilisation=0.4
    ) == pytest.approx(1.0)
    assert energy_kwh(10, 400, pue=1.5) == pytest.approx(6.0)


def test_memory_sixteen_bytes_per_parameter_both_ways():
    for precision in ("fp32", "mixed"):
        m = training_memory(1e9, precision, activations=5.0)
        assert m["weights"] + m["gradients"] + m["optimizer"] == 16e9
        assert m["total"] == 16e9 + 5.0
    assert training_memory(10)["weights"] == 40


def _saved_activation_bytes(model, idx):
    """Bytes of the distinct tensors autograd saves for backward, parameters
    excluded."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = (
            t.untyped_storage().nbytes()
        )
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(idx, idx)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(n for ptr, n in storages.items() if ptr not in params)


@pytest.mark.parametrize(
    "config, batch",
    [
        (
            GPTConfig(
                vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=64
            ),
            8,
        ),
        (
            GPTConfig(
                vocab_size=65,
                block_size=64,
                n_layer=3,
                n_head=4,
                n_embd=128,
                bias=False,
            ),
            4,
        ),
        (
            GPTConfig(
                vocab_size=500, block_size=48, n_layer=1, n_head=3, n_embd=96
            ),
            2,
        ),
        # today's layouts: each option alone, then Llama with GQA and MQA
        (GPTConfig(65, 32, 2, 4, 64, positions="rotary"), 8),
        (GPTConfig(65, 32, 2, 4, 64, norm_layer="rmsnorm"), 8),
        (GPTConfig(65, 32, 2, 4, 64, mlp="swiglu", intermediate_size=170), 8),
        (GPTConfig(65, 32, 2, 4, 64, n_kv_head=1), 8),
        (GPTConfig.llama(65, 32, 2, 4, 64, n_kv_head=2), 8),
        (GPTConfig.llama(500, 48, 3, 4, 96, n_kv_head=1), 4),
    ],
)
def test_activation_bytes_match_what_autograd_saves(config, batch):
    torch.manual_seed(0)
    idx = torch.randint(0, config.vocab_size, (batch, config.block_size))
    measured = _saved_activation_bytes(GPT(config), idx)
    assert activation_bytes(config, batch) == pytest.approx(
        measured, rel=0.05
    )


def test_power_law_fit_recovers_known_parameters():
    n = np.array([1e4, 3e4, 1e5, 3e5, 1e6, 3e6])
    fit = fit_power_law(n, 12.0 * n**-0.3 + 1.5)
    assert (fit.a, fit.alpha, fit.c) == pytest.approx(
        (12.0, 0.3, 1.5), rel=1e-4
    )
    assert fit.rmse < 1e-8
    assert fit(n) == pytest.approx(12.0 * n**-0.3 + 1.5, rel=1e-6)


def test_power_law_without_offset_equals_a_line_in_log_log():
    rng = np.random.default_rng(0)
    n = np.geomspace(1e3, 1e7, 8)
    y = 5.0 * n**-0.076 * np.exp(rng.normal(0, 0.01, n.size))
    fit = fit_power_law(n, y, offset=False)
    slope, intercept = np.polyfit(np.log(n), np.log(y), 1)
    # least squares in L rather than log L: close to, not equal to, the
    # log-log line
    assert fit.alpha == pytest.approx(-slope, abs=2e-3)
    assert fit.a == pytest.approx(np.exp(intercept), rel=0.02)
    assert isinstance(fit, PowerLawFit) and fit.c == 0.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: param_count({"n_embd": 8}), "expected a GPTConfig"),
        (
            lambda: training_flops(-1, 10),
            "n_params must be a finite number > 0, got -1",
        ),
        (lambda: training_flops(1e9, float("nan")), "n_tokens must be"),
        (
            lambda: training_flops(1e9, 1e9, n_layer=-2),
            "n_layer must be a finite number >= 0",
        ),
        (
            lambda: training_seconds(1e18, 1e15, utilisation=40),
            r"write 40% as 0.4",
        ),
        (
            lambda: training_seconds(1e18, 1e15, n_devices=0),
            "n_devices must be a positive int",
        ),
        (lambda: gpu_days(1e18, "A100"), r"ACCELERATORS\['A100'\]"),
        (lambda: energy_kwh(10, 400, pue=0.9), "pue .* >= 1"),
        (lambda: training_memory(1e9, "fp8"), "precision must be one of"),
        (
            lambda: activation_bytes(
                GPTConfig(65, 32, 1, 1, 8), 2, seq_len=64
            ),
            "seq_len=64 exceeds block_size=32",
        ),
        (
            lambda: activation_bytes(GPTConfig(65, 32, 1, 1, 8), 0),
            "batch_size must be a positive int",
        ),
        (
            lambda: fit_power_law([1, 2, 3], [3, 2, 1]),
            "needs at least 4 points",
        ),
        (lambda: fit_power_law([1, 2, 3, 4], [3, 2, 1]), "same length"),
        (lambda: fit_power_law([1, 2, 0, 4], [3, 2, 1, 1]), "finite and > 0"),
        (
            lambda: fit_power_law([1, 1, 2, 2], [3, 2, 1, 1]),
            "distinct values",
        ),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_check_param_count_accepts_the_reference_and_rejects_a_mistake(
    capsys,
):
    from minigpt.exercises import check_param_count

    assert check_param_count(param_count, verbose=False).ok

    def forgot_position_embeddings(config):
        return param_count(config) - config.block_size * config.n_embd

    report = check_param_count(forgot_position_embeddings, verbose=False)
    assert not report.ok and len(report.failed) == 5


@pytest.mark.parametrize(
    "sizes",
    [
        dict(n_layer=1, n_head=2, n_embd=16),
        dict(n_layer=3, n_head=4, n_embd=32, intermediate_size=40),
        dict(n_layer=2, n_head=2, n_embd=8, type_vocab_size=3),
    ],
)
def test_encoder_param_count_equals_the_model_and_transformers(sizes):
    from transformers import BertConfig, BertModel

    from minigpt.encoder import Encoder, EncoderConfig
    from minigpt.scaling import encoder_param_count

    config = EncoderConfig(vocab_size=50, block_size=20, **sizes)
    assert encoder_param_count(config) == Encoder(config).num_params()
    hf = BertModel(
        BertConfig(
            vocab_size=50,
            max_position_embeddings=20,
            num_hidden_layers=config.n_layer,
            num_attention_heads=config.n_head,
            hidden_size=config.n_embd,
            intermediate_size=config.intermediate_size or 4 * config.n_embd,
            type_vocab_size=config.type_vocab_size,
        )
    )
    assert encoder_param_count(config, mlm_head=False) == hf.num_parameters()


def test_bert_base_and_large_have_their_published_sizes():
    from minigpt.encoder import EncoderConfig
    from minigpt.scaling import encoder_param_count

    def bert(n_layer, n_head, n_embd):
        return EncoderConfig(30522, 512, n_layer, n_head, n_embd)

    # bert-base-uncased and bert-large-uncased: "110M" and "340M"
    assert (
        encoder_param_count(bert(12, 12, 768), mlm_head=False) == 109_482_240
    )
    assert (
        encoder_param_count(bert(24, 16, 1024), mlm_head=False) == 335_141_888
    )
    with pytest.raises(TypeError, match="for a GPT use param_count"):
        encoder_param_count(
            GPTConfig(
                vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8
            )
        )
