"""minigpt.hf: the same weights give the same logits and the same greedy text as HF's GPT-2."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from minigpt.hf import from_hf, to_hf  # noqa: E402
from minigpt.model import GPT, GPTConfig  # noqa: E402

VOCAB = 101


def hf_config(**overrides):
    sizes = dict(vocab_size=VOCAB, n_positions=32, n_embd=48, n_layer=3, n_head=4,
                 bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    return transformers.GPT2Config(**{**sizes, **overrides})


@pytest.fixture(scope="module")
def hf_model():
    """A random GPT-2 whose every tensor is perturbed, so biases and LayerNorm gains are not 0 and 1."""
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(hf_config()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def prompt(B=2, T=12, seed=1):
    return torch.randint(0, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))


def test_from_hf_gives_the_same_logits(hf_model):
    gpt = from_hf(hf_model)
    idx = prompt()
    with torch.no_grad():
        diff = (gpt(idx)[0] - hf_model(idx).logits).abs().max().item()
    assert diff <= 1e-5


def test_from_hf_gives_the_same_greedy_continuation(hf_model):
    gpt = from_hf(hf_model)
    idx = prompt(B=1, T=6)
    expected = hf_model.generate(idx, max_new_tokens=20, do_sample=False, pad_token_id=VOCAB - 1,
                                 attention_mask=torch.ones_like(idx))
    assert torch.equal(gpt.generate(idx, 20, temperature=0), expected)


def test_from_hf_transposes_conv1d_weights(hf_model):
    gpt = from_hf(hf_model)
    hf_w = hf_model.transformer.h[1].attn.c_attn.weight  # Conv1D: (in, out)
    assert hf_w.shape == (48, 144)
    assert torch.equal(gpt.transformer.h[1].attn.c_attn.weight, hf_w.T)
    assert torch.equal(gpt.transformer.h[1].ln_2.bias, hf_model.transformer.h[1].ln_2.bias)


def test_to_hf_gives_the_same_logits_and_greedy_continuation():
    torch.manual_seed(3)
    gpt = GPT(GPTConfig(vocab_size=VOCAB, block_size=32, n_layer=2, n_head=4, n_embd=48)).eval()
    with torch.no_grad():
        for p in gpt.parameters():
            p.add_(0.05 * torch.randn_like(p))
    hf_model = to_hf(gpt)
    assert isinstance(hf_model, transformers.GPT2LMHeadModel) and not hf_model.training
    assert hf_model.lm_head.weight.data_ptr() == hf_model.transformer.wte.weight.data_ptr()
    idx = prompt()
    with torch.no_grad():
        assert (gpt(idx)[0] - hf_model(idx).logits).abs().max().item() <= 1e-5
    one = idx[:1, :6]
    expected = hf_model.generate(one, max_new_tokens=20, do_sample=False, pad_token_id=VOCAB - 1,
                                 attention_mask=torch.ones_like(one))
    assert torch.equal(gpt.generate(one, 20, temperature=0), expected)


def test_round_trip_keeps_every_tensor(hf_model):
    back = to_hf(from_hf(hf_model)).state_dict()
    original = hf_model.state_dict()
    assert set(back) == set(original)
    assert all(torch.equal(back[name], original[name]) for name in original)


def test_from_hf_loads_a_saved_folder(hf_model, tmp_path):
    hf_model.save_pretrained(tmp_path)
    gpt = from_hf(tmp_path)
    idx = prompt()
    with torch.no_grad():
        assert (gpt(idx)[0] - hf_model(idx).logits).abs().max().item() <= 1e-5
    assert gpt.config == GPTConfig(vocab_size=VOCAB, block_size=32, n_layer=3, n_head=4, n_embd=48)


def test_from_hf_rejects_what_minigpt_cannot_represent():
    with pytest.raises(ValueError, match=r"activation_function='relu', minigpt uses the tanh GELU"):
        from_hf(transformers.GPT2LMHeadModel(hf_config(activation_function="relu")))
    with pytest.raises(ValueError, match=r"n_inner=100, minigpt's MLP is 4 \* n_embd wide"):
        from_hf(transformers.GPT2LMHeadModel(hf_config(n_inner=100)))
    with pytest.raises(FileNotFoundError, match="no folder at /nonexistent"):
        from_hf("/nonexistent")
    with pytest.raises(TypeError, match="from_hf needs a transformers.GPT2LMHeadModel or a folder path, got dict"):
        from_hf({})


@pytest.mark.parametrize("overrides", [dict(norm="post"), dict(bias=False)])
def test_to_hf_rejects_layouts_gpt2_does_not_have(overrides):
    gpt = GPT(GPTConfig(vocab_size=VOCAB, block_size=8, n_layer=1, n_head=2, n_embd=8, **overrides))
    with pytest.raises(ValueError, match=r"Only GPTConfig\(bias=True, norm='pre'\) converts"):
        to_hf(gpt)
