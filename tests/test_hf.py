"""minigpt.hf: the same weights give the same logits and the same greedy text
as HF's GPT-2."""

import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

# minigpt.hf imports transformers only when a function is called
from minigpt.hf import CONV1D_SUFFIXES, from_hf, to_hf
from minigpt.model import GPT, GPTConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

VOCAB = 101


def hf_config(**overrides):
    sizes = dict(
        vocab_size=VOCAB,
        n_positions=32,
        n_embd=48,
        n_layer=3,
        n_head=4,
        bos_token_id=VOCAB - 1,
        eos_token_id=VOCAB - 1,
    )
    return transformers.GPT2Config(**{**sizes, **overrides})


@pytest.fixture(scope="module")
def hf_model():
    """A random GPT-2 whose every tensor is perturbed, so biases and LayerNorm
    gains are not 0 and 1."""
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(hf_config()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def prompt(B=2, T=12, seed=1):
    return torch.randint(
        0, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed)
    )


def test_from_hf_gives_the_same_logits(hf_model):
    gpt = from_hf(hf_model)
    idx = prompt()
    with torch.no_grad():
        diff = (gpt(idx)[0] - hf_model(idx).logits).abs().max().item()
    assert diff <= 1e-5


def test_from_hf_gives_the_same_greedy_continuation(hf_model):
    gpt = from_hf(hf_model)
    idx = prompt(B=1, T=6)
    expected = hf_model.generate(
        idx,
        max_new_tokens=20,
        do_sample=False,
        pad_token_id=VOCAB - 1,
        attention_mask=torch.ones_like(idx),
    )
    assert torch.equal(gpt.generate(idx, 20, temperature=0), expected)


def test_from_hf_leaves_the_callers_random_state_alone(hf_model):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    from_hf(hf_model)
    assert torch.equal(torch.rand(3), expected)


def test_from_hf_transposes_conv1d_weights(hf_model):
    gpt = from_hf(hf_model)
    hf_w = hf_model.transformer.h[1].attn.c_attn.weight  # Conv1D: (in, out)
    assert hf_w.shape == (48, 144)
    assert torch.equal(gpt.transformer.h[1].attn.c_attn.weight, hf_w.T)
    assert torch.equal(
        gpt.transformer.h[1].ln_2.bias, hf_model.transformer.h[1].ln_2.bias
    )


@pytest.mark.parametrize(
    "overrides, activation",
    [
        ({}, "gelu_new"),
        (dict(gelu="exact"), "gelu"),
        (dict(bias=False, gelu="exact"), "gelu"),
    ],
)
def test_to_hf_gives_the_same_logits_and_greedy_continuation(
    overrides, activation
):
    torch.manual_seed(3)
    gpt = GPT(
        GPTConfig(
            vocab_size=VOCAB,
            block_size=32,
            n_layer=2,
            n_head=4,
            n_embd=48,
            **overrides,
        )
    ).eval()
    with torch.no_grad():
        for p in gpt.parameters():
            # large pre-activations: the two GELUs differ visibly
            p.mul_(4).add_(0.05 * torch.randn_like(p))
    hf_model = to_hf(gpt)
    assert (
        isinstance(hf_model, transformers.GPT2LMHeadModel)
        and not hf_model.training
    )
    assert hf_model.config.activation_function == activation
    if not gpt.config.bias:  # no biases in minigpt: every HF bias is zero
        biases = [
            t
            for name, t in hf_model.state_dict().items()
            if name.endswith(".bias")
        ]
        # 2 x (4 Linear, 2 LN), ln_f
        assert len(biases) == 2 * 6 + 1 and all(not t.any() for t in biases)
    assert (
        hf_model.lm_head.weight.data_ptr()
        == hf_model.transformer.wte.weight.data_ptr()
    )
    idx = prompt()
    with torch.no_grad():
        assert (gpt(idx)[0] - hf_model(idx).logits).abs().max().item() <= 1e-5
    one = idx[:1, :6]
    expected = hf_model.generate(
        one,
        max_new_tokens=20,
        do_sample=False,
        pad_token_id=VOCAB - 1,
        attention_mask=torch.ones_like(one),
    )
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
    assert gpt.config == GPTConfig(
        vocab_size=VOCAB, block_size=32, n_layer=3, n_head=4, n_embd=48
    )


def test_from_hf_rejects_what_minigpt_cannot_represent():
    with pytest.raises(
        ValueError,
        match=r"activation_function='relu', minigpt has the tanh GELU",
    ):
        from_hf(
            transformers.GPT2LMHeadModel(
                hf_config(activation_function="relu")
            )
        )
    with pytest.raises(
        ValueError, match=r"n_inner=100, minigpt's MLP is 4 \* n_embd wide"
    ):
        from_hf(transformers.GPT2LMHeadModel(hf_config(n_inner=100)))
    with pytest.raises(FileNotFoundError, match="no folder at /nonexistent"):
        from_hf("/nonexistent")
    with pytest.raises(
        TypeError,
        match="from_hf needs a transformers.GPT2LMHeadModel, "
        "LlamaForCausalLM, BertForMaskedLM, BertModel or a folder path, "
        "got dict",
    ):
        from_hf({})


def test_to_hf_rejects_post_ln_blocks():
    gpt = GPT(
        GPTConfig(
            vocab_size=VOCAB,
            block_size=8,
            n_layer=1,
            n_head=2,
            n_embd=8,
            norm="post",
        )
    )
    with pytest.raises(
        ValueError,
        match=r"norm='post'. Only GPTConfig\(norm='pre'\) converts",
    ):
        to_hf(gpt)


def test_from_hf_maps_the_exact_gelu_and_the_tanh_one():
    torch.manual_seed(0)
    for activation, gelu in (
        ("gelu", "exact"),
        ("gelu_new", "tanh"),
        ("gelu_pytorch_tanh", "tanh"),
    ):
        hf = transformers.GPT2LMHeadModel(
            hf_config(activation_function=activation)
        ).eval()
        with torch.no_grad():
            for p in hf.parameters():
                p.mul_(4).add_(0.05 * torch.randn_like(p))
        gpt = from_hf(hf)
        assert gpt.config.gelu == gelu
        with torch.no_grad():
            assert (
                gpt(prompt())[0] - hf(prompt()).logits
            ).abs().max().item() <= 1e-5


# --- GPT-2 small: the full architecture, random weights (no download) ---


def test_from_hf_handles_the_full_gpt2_small_architecture():
    torch.manual_seed(0)
    hf_small = transformers.GPT2LMHeadModel(
        transformers.GPT2Config()
    ).eval()  # the defaults are GPT-2 small
    gpt = from_hf(hf_small)
    assert gpt.config == GPTConfig(
        vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768
    )
    assert (
        gpt.num_params()
        == sum(p.numel() for p in hf_small.parameters())
        == 124_439_808
    )
    hf_shapes = {
        name: tuple(t.shape) for name, t in hf_small.state_dict().items()
    }
    for name, tensor in gpt.state_dict().items():
        expected = (
            hf_shapes[name][::-1]
            if name.endswith(CONV1D_SUFFIXES)
            else hf_shapes[name]
        )
        assert tuple(tensor.shape) == expected, name
    idx = torch.randint(
        0, 50257, (1, 8), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        assert (gpt(idx)[0] - hf_small(idx).logits).abs().max().item() <= 1e-5
    expected = hf_small.generate(
        idx,
        max_new_tokens=3,
        do_sample=False,
        pad_token_id=50256,
        attention_mask=torch.ones_like(idx),
    )
    assert torch.equal(gpt.generate(idx, 3, temperature=0), expected)


# --- save_pretrained: a folder transformers loads, model and tokenizer ---

# Text the tokenizer never saw: Chinese, emoji, accents, runs of spaces,
# newlines, the end-of-text token.
UNSEEN = (
    "Once upon a time 你好，世界！🤖🎉 naïve café"
    "\n\n   spaced\tout<|endoftext|>THE END"
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small GPT with a BPE tokenizer, saved with save_pretrained: (gpt,
    tokenizer, folder)."""
    from minigpt.hf import save_pretrained
    from minigpt.tokenizer import train_bpe

    tokenizer = train_bpe(
        "To be, or not to be, that is the question. " * 20
        + "Once upon a time there was",
        300,
    )
    torch.manual_seed(5)
    gpt = GPT(
        GPTConfig(
            vocab_size=tokenizer.vocab_size,
            block_size=32,
            n_layer=2,
            n_head=4,
            n_embd=48,
        )
    ).eval()
    with torch.no_grad():
        for p in gpt.parameters():
            p.add_(0.05 * torch.randn_like(p))
    folder = tmp_path_factory.mktemp("hf") / "tiny-gpt"
    return gpt, tokenizer, save_pretrained(gpt, tokenizer, folder)


def test_save_pretrained_writes_a_hub_style_folder(saved):
    gpt, tokenizer, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    # the temporary folder is gone
    assert not [p for p in folder.parent.iterdir() if ".tmp" in p.name]
    config = transformers.AutoConfig.from_pretrained(folder)
    assert (
        (config.model_type, config.bos_token_id, config.eos_token_id)
        == ("gpt2", 0, 0)
        == ("gpt2", tokenizer.eot_id, tokenizer.eot_id)
    )
    generation = transformers.GenerationConfig.from_pretrained(folder)
    assert (generation.eos_token_id, generation.pad_token_id) == (
        tokenizer.eot_id,
        tokenizer.eot_id,
    )


@pytest.mark.parametrize(
    "cls", ["AutoTokenizer", "GPT2TokenizerFast", "PreTrainedTokenizerFast"]
)
def test_saved_tokenizer_loads_in_transformers_and_encodes_identically(
    saved, cls
):
    _, tokenizer, folder = saved
    hf_tok = getattr(transformers, cls).from_pretrained(folder)
    assert (hf_tok.eos_token, hf_tok.bos_token) == (
        "<|endoftext|>",
        "<|endoftext|>",
    )
    assert hf_tok.eos_token_id == hf_tok.bos_token_id == tokenizer.eot_id
    assert hf_tok.model_max_length == 32
    ids = tokenizer.encode(UNSEEN)
    # no BOS prepended, the special token kept whole
    assert hf_tok.encode(UNSEEN) == ids
    assert ids.count(tokenizer.eot_id) == 1
    assert hf_tok.decode(ids) == tokenizer.decode(ids) == UNSEEN
    assert hf_tok.encode(
        "Once upon a time", return_tensors="pt"
    ).tolist() == [tokenizer.encode("Once upon a time")]


def test_saved_model_gives_the_same_logits_and_greedy_text_in_transformers(
    saved,
):
    gpt, tokenizer, folder = saved
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(folder)
    input_ids = hf_tok.encode("Once upon a time", return_tensors="pt")
    with torch.no_grad():
        assert (
            gpt(input_ids)[0] - hf_model(input_ids).logits
        ).abs().max().item() <= 1e-5
    # the chapter's workflow, without the attention mask or pad id a user
    # would not pass
    hf_out = hf_model.generate(input_ids, max_new_tokens=20, do_sample=False)
    ours = gpt.generate(input_ids, 20, temperature=0)
    # HF stops at end-of-text; compare up to it
    if tokenizer.eot_id in ours[0, input_ids.size(1) :]:
        ours = ours[:, : hf_out.size(1)]
    assert torch.equal(hf_out, ours)
    assert hf_tok.decode(hf_out[0]) == tokenizer.decode(ours[0])


def test_the_sources_greedy_call_with_five_sequences_fails_and_the_fixes_work(
    saved,
):
    _, _, folder = saved
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(folder)
    input_ids = transformers.AutoTokenizer.from_pretrained(folder).encode(
        "Once upon", return_tensors="pt"
    )
    with pytest.raises(ValueError, match="num_return_sequences"):
        hf_model.generate(input_ids, max_length=12, num_return_sequences=5)
    torch.manual_seed(0)
    sampled = hf_model.generate(
        input_ids, max_length=12, num_return_sequences=5, do_sample=True
    )
    beams = hf_model.generate(
        input_ids, max_length=12, num_return_sequences=5, num_beams=5
    )
    assert sampled.shape[0] == beams.shape[0] == 5
    # beam search returns 5 different beams
    assert len({tuple(row) for row in beams.tolist()}) == 5


def test_pipeline_on_the_saved_folder_writes_minigpts_greedy_text(saved):
    gpt, tokenizer, folder = saved
    generator = transformers.pipeline("text-generation", model=str(folder))
    text = generator("Once upon a time", max_new_tokens=10, do_sample=False)[
        0
    ]["generated_text"]
    prompt = torch.tensor([tokenizer.encode("Once upon a time")])
    assert text == tokenizer.decode(
        gpt.generate(prompt, 10, temperature=0)[0]
    )


def test_load_pretrained_round_trip_is_exact(saved):
    from minigpt.hf import load_pretrained

    gpt, tokenizer, folder = saved
    gpt_back, tokenizer_back = load_pretrained(folder)
    assert gpt_back.config == gpt.config
    back = gpt_back.state_dict()
    assert all(
        torch.equal(back[name], t) for name, t in gpt.state_dict().items()
    )
    assert tokenizer_back.eot_id == tokenizer.eot_id
    assert tokenizer_back.encode(UNSEEN) == tokenizer.encode(UNSEEN)
    assert tokenizer_back.decode(tokenizer.encode(UNSEEN)) == UNSEEN


def folder_bytes(folder):
    """{file name: bytes} of every file in ``folder``."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def siblings(folder):
    """Other names beside ``folder``: temporary folders left behind."""
    return sorted(p.name for p in folder.parent.iterdir() if p != folder)


def test_save_pretrained_replaces_a_folder_it_wrote(saved, tmp_path):
    from minigpt.hf import load_pretrained, save_pretrained

    gpt, tokenizer, _ = saved
    folder = save_pretrained(gpt, tokenizer, tmp_path / "gpt")
    other = GPT(gpt.config).eval()  # new random weights
    save_pretrained(other, tokenizer, folder)
    back, _ = load_pretrained(folder)
    assert torch.equal(back.lm_head.weight, other.lm_head.weight)
    assert siblings(folder) == []


def test_save_pretrained_refuses_to_replace_a_folder_with_other_files(
    saved, tmp_path
):
    from minigpt.hf import save_pretrained

    gpt, tokenizer, _ = saved
    folder = tmp_path / "gpt"
    folder.mkdir()
    (folder / "README.md").write_text("my notes")
    (folder / "config.json").write_text("stale")
    before = folder_bytes(folder)
    with pytest.raises(
        FileExistsError,
        match=r"holds files save_pretrained does not write \(README\.md\); "
        "replacing the folder would delete them: move them out or choose a "
        "new folder",
    ):
        save_pretrained(gpt, tokenizer, folder)
    assert folder_bytes(folder) == before
    assert siblings(folder) == []


@pytest.mark.parametrize("existing", [True, False], ids=["replace", "new"])
def test_an_interrupted_save_pretrained_leaves_no_half_written_folder(
    saved, tmp_path, monkeypatch, existing
):
    from minigpt.hf import save_pretrained

    gpt, tokenizer, _ = saved
    folder = tmp_path / "gpt"
    if existing:
        save_pretrained(gpt, tokenizer, folder)
    before = folder_bytes(folder) if existing else None
    written = []

    def disk_full(self, save_directory, *args, **kwargs):
        written.extend(sorted(p.name for p in Path(save_directory).iterdir()))
        raise OSError("disk full")

    # the tokenizer is written after the model: fail between the two
    monkeypatch.setattr(
        transformers.GPT2TokenizerFast, "save_pretrained", disk_full
    )
    other = GPT(gpt.config).eval()
    with pytest.raises(OSError, match="disk full"):
        save_pretrained(other, tokenizer, folder)
    assert "model.safetensors" in written  # it did fail midway
    if existing:
        assert folder_bytes(folder) == before
    else:
        assert not folder.exists()
    assert siblings(folder) == []


def test_save_pretrained_keeps_the_old_folder_when_moving_in_fails(
    saved, tmp_path, monkeypatch
):
    from minigpt.hf import save_pretrained

    gpt, tokenizer, _ = saved
    folder = save_pretrained(gpt, tokenizer, tmp_path / "gpt")
    before = folder_bytes(folder)
    real_replace, calls = os.replace, []

    def fail_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # whatever the second move is, it fails
            raise OSError("no space left")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    # another size, so that every file differs, config.json included
    smaller = GPT(replace(gpt.config, n_layer=1)).eval()
    with pytest.raises(OSError, match="no space left"):
        save_pretrained(smaller, tokenizer, folder)
    assert folder_bytes(folder) == before
    assert siblings(folder) == []


def test_save_and_load_pretrained_reject_bad_input(saved, tmp_path):
    from minigpt.hf import load_pretrained, save_pretrained, to_hf_tokenizer
    from minigpt.tokenizer import CharTokenizer

    gpt, tokenizer, _ = saved
    chars = CharTokenizer.from_text("abc")
    with pytest.raises(
        TypeError,
        match="only a byte-level BPE tokenizer .* got CharTokenizer; "
        "train one with train_bpe",
    ):
        to_hf_tokenizer(chars)
    with pytest.raises(TypeError, match="got CharTokenizer"):
        save_pretrained(gpt, chars, tmp_path / "never")
    assert not (tmp_path / "never").exists()
    small = GPT(
        GPTConfig(
            vocab_size=tokenizer.vocab_size - 1,
            block_size=8,
            n_layer=1,
            n_head=2,
            n_embd=8,
        )
    )
    with pytest.raises(
        ValueError,
        match=f"the tokenizer has {tokenizer.vocab_size} tokens "
        f"but the model only {tokenizer.vocab_size - 1} embeddings",
    ):
        save_pretrained(small, tokenizer, tmp_path / "never")
    (tmp_path / "file").write_text("x")
    with pytest.raises(
        FileExistsError, match="is a file; save_pretrained writes a folder"
    ):
        save_pretrained(gpt, tokenizer, tmp_path / "file")
    with pytest.raises(
        ValueError,
        match=r"eot_id must be a token id in "
        rf"0\.\.{gpt.config.vocab_size - 1}, got 300: pass tokenizer.eot_id",
    ):
        to_hf(gpt, eot_id=300)
    with pytest.raises(
        FileNotFoundError,
        match="no tokenizer.json in .*for weights alone use from_hf",
    ):
        load_pretrained(tmp_path)


def test_sequence_logprob_checker_rejects_an_off_by_one_answer():
    from minigpt.exercises import check_sequence_logprob

    def answer(model, ids, prompt_len):
        with torch.no_grad():
            logits, _ = model(ids[:, :-1])
        logp = torch.log_softmax(logits, dim=-1)[0]
        targets = ids[0, 1:]
        return (
            logp[torch.arange(len(targets)), targets][prompt_len - 1 :]
            .sum()
            .item()
        )

    # also scores the last prompt token
    def off_by_one(model, ids, prompt_len):
        return (
            answer(model, ids, max(prompt_len - 1, 1))
            if prompt_len > 1
            else answer(model, ids, 1) - 1.0
        )

    assert check_sequence_logprob(answer, verbose=False).ok
    report = check_sequence_logprob(off_by_one, verbose=False)
    assert not report.ok and len(report.failed) == 4
