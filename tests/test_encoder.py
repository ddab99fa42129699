"""minigpt.encoder: BERT's layer from minigpt's block, equal to Hugging
Face's BertForMaskedLM and BertModel with the same weights; masked-LM
batches by BERT's recipe."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from minigpt.encoder import (
    Encoder,
    EncoderConfig,
    MaskedLMBatches,
    bert_inputs,
    fill_in,
    mask_tokens,
    segment_ids,
)
from minigpt.hf import from_hf, to_hf
from minigpt.model import GPT, GPTConfig
from minigpt.tokenizer import CharTokenizer
from minigpt.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py

CONFIG = EncoderConfig(
    vocab_size=40,
    block_size=16,
    n_layer=2,
    n_head=2,
    n_embd=8,
    intermediate_size=12,
)


def random_encoder(seed=0, config=CONFIG) -> Encoder:
    """An encoder with large random weights, so that every path matters."""
    torch.manual_seed(seed)
    encoder = Encoder(config).eval()
    with torch.no_grad():
        for p in encoder.parameters():
            p.normal_(0.0, 0.5)
    return encoder


def batch(seed=1):
    """Ids, two segments, and right padding of different lengths."""
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(40, (3, 10), generator=generator)
    segments = torch.zeros(3, 10, dtype=torch.long)
    segments[:, 5:] = 1
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[1, 7:] = False
    mask[2, 4:] = False
    return idx, segments, mask


def test_logits_equal_hugging_face_bert_for_masked_lm():
    encoder = random_encoder()
    hf = to_hf(encoder)
    assert type(hf).__name__ == "BertForMaskedLM"
    idx, segments, mask = batch()
    ours = encoder(idx, token_type_ids=segments, padding_mask=mask)[0]
    theirs = hf(
        input_ids=idx, token_type_ids=segments, attention_mask=mask.long()
    ).logits
    # every position, padded ones included: both mask keys only
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_hidden_states_and_pooled_output_equal_bert_model():
    encoder = random_encoder()
    hf = to_hf(encoder, base=True)
    assert type(hf).__name__ == "BertModel"
    idx, segments, mask = batch()
    out = hf(
        input_ids=idx, token_type_ids=segments, attention_mask=mask.long()
    )
    torch.testing.assert_close(
        encoder.hidden_states(idx, segments, mask),
        out.last_hidden_state,
        atol=1e-5,
        rtol=1e-5,
    )
    torch.testing.assert_close(
        encoder.pooled(idx, segments, mask),
        out.pooler_output,
        atol=1e-5,
        rtol=1e-5,
    )


def test_from_hf_reads_a_model_built_by_transformers(tmp_path):
    from transformers import BertConfig, BertForMaskedLM, BertModel

    torch.manual_seed(3)
    config = BertConfig(
        vocab_size=40,
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=12,
        max_position_embeddings=16,
        initializer_range=0.5,
    )
    idx, segments, mask = batch()
    for cls in (BertForMaskedLM, BertModel):
        hf = cls(config).eval()
        hf.save_pretrained(tmp_path / cls.__name__)
        for source in (hf, tmp_path / cls.__name__):
            encoder = from_hf(source)
            assert isinstance(encoder, Encoder) and not encoder.training
            out = hf(
                input_ids=idx,
                token_type_ids=segments,
                attention_mask=mask.long(),
            )
            if cls is BertForMaskedLM:
                ours, theirs = (
                    encoder(idx, token_type_ids=segments, padding_mask=mask)[
                        0
                    ],
                    out.logits,
                )
            else:
                ours = encoder.pooled(idx, segments, mask)
                theirs = out.pooler_output
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_round_trip_keeps_every_weight():
    encoder = random_encoder()
    back = from_hf(to_hf(encoder))
    for name, tensor in encoder.state_dict().items():
        if not name.startswith("pooler"):  # BertForMaskedLM has none
            assert torch.equal(back.state_dict()[name], tensor), name
    back = from_hf(to_hf(encoder, base=True))
    for name, tensor in encoder.state_dict().items():
        if not name.startswith("mlm"):  # BertModel has no masked-LM head
            assert torch.equal(back.state_dict()[name], tensor), name


def test_an_unsupported_bert_config_is_refused():
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=40,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=12,
        hidden_act="relu",
    )
    with pytest.raises(ValueError, match="hidden_act='relu'.*erf GELU"):
        from_hf(BertModel(config))


def test_the_encoder_sees_both_directions_and_the_decoder_one():
    encoder = random_encoder()
    torch.manual_seed(0)
    decoder = GPT(
        GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=8)
    ).eval()
    idx = torch.randint(
        40, (1, 8), generator=torch.Generator().manual_seed(2)
    )
    later = idx.clone()
    later[0, 6] = (later[0, 6] + 1) % 40  # change a later token
    with torch.no_grad():
        before, after = encoder(idx)[0], encoder(later)[0]
        assert not torch.allclose(before[0, 2], after[0, 2])
        gpt_before, gpt_after = decoder(idx)[0], decoder(later)[0]
    torch.testing.assert_close(gpt_before[0, :6], gpt_after[0, :6])


def test_padding_is_irrelevant_to_the_real_tokens():
    encoder = random_encoder()
    idx, segments, mask = batch()
    other = idx.clone()
    other[~mask] = (other[~mask] + 7) % 40  # different padding ids
    with torch.no_grad():
        ours = encoder(idx, token_type_ids=segments, padding_mask=mask)[0]
        changed = encoder(other, token_type_ids=segments, padding_mask=mask)[
            0
        ]
        alone = encoder(idx[2:, :4], token_type_ids=segments[2:, :4])[0]
    torch.testing.assert_close(ours[mask], changed[mask])
    # a padded sequence reads as the same sequence without its padding
    torch.testing.assert_close(ours[2, :4], alone[0], atol=1e-5, rtol=1e-5)
    unmasked = encoder(idx, token_type_ids=segments)[0]
    assert not torch.allclose(unmasked[2, :4], ours[2, :4])


def test_the_loss_is_the_cross_entropy_of_the_masked_positions():
    encoder = random_encoder().train()
    idx, segments, mask = batch()
    targets = torch.full_like(idx, -1)
    targets[0, 3], targets[1, 0] = 5, 9
    logits, loss = encoder(idx, targets, segments, mask)
    log_probs = logits.log_softmax(-1)
    expected = -(log_probs[0, 3, 5] + log_probs[1, 0, 9]) / 2
    torch.testing.assert_close(loss, expected)
    loss.backward()
    without_grad = [
        n for n, p in encoder.named_parameters() if p.grad is None
    ]
    # the pooler serves classification, not the masked-LM loss
    assert without_grad == ["pooler.weight", "pooler.bias"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e, i, s, m: e(i[:, :0]), "shape \\(B, T\\) with T >= 1"),
        (
            lambda e, i, s, m: e(torch.zeros(1, 17, dtype=torch.long)),
            "17 positions but the encoder has 16",
        ),
        (lambda e, i, s, m: e(i + 40), "must lie in 0..39"),
        (
            lambda e, i, s, m: e(i, token_type_ids=s + 1),
            "token_type_ids holds",
        ),
        (
            lambda e, i, s, m: e(i, token_type_ids=s[:, :5]),
            "token_type_ids must",
        ),
        (
            lambda e, i, s, m: e(i, padding_mask=m[:, :5]),
            "padding_mask must be",
        ),
        (
            lambda e, i, s, m: e(i, padding_mask=m.long()),
            "padding_mask must be",
        ),
        (
            lambda e, i, s, m: e(i, padding_mask=torch.zeros_like(m)),
            "at least one real token",
        ),
        (
            lambda e, i, s, m: e(i, i[:, :3]),
            "targets must have the shape",
        ),
    ],
)
def test_bad_inputs_are_refused(call, message):
    encoder = random_encoder()
    idx, segments, mask = batch()
    with pytest.raises(ValueError, match=message):
        call(encoder, idx, segments, mask)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="divisible by n_head"):
        EncoderConfig(
            vocab_size=10, block_size=8, n_layer=1, n_head=3, n_embd=8
        )
    with pytest.raises(
        ValueError, match="type_vocab_size must be a positive"
    ):
        EncoderConfig(
            vocab_size=10,
            block_size=8,
            n_layer=1,
            n_head=2,
            n_embd=8,
            type_vocab_size=0,
        )
    with pytest.raises(TypeError, match="needs an EncoderConfig"):
        Encoder(
            GPTConfig(
                vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8
            )
        )


MASK, CLS, SEP, PAD = 1, 2, 3, 0


def masked_batch(seed=0, B=200, T=64):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 1000, (B, T), generator=generator)
    ids[:, 0], ids[:, 30] = CLS, SEP
    padding = torch.ones(B, T, dtype=torch.bool)
    padding[:, 50:] = False
    ids[~padding] = PAD
    inputs, targets = mask_tokens(
        ids,
        MASK,
        1000,
        torch.Generator().manual_seed(seed),
        special_ids=(CLS, SEP, PAD),
        padding_mask=padding,
    )
    return ids, inputs, targets, padding


def test_mask_tokens_follows_berts_rates():
    ids, inputs, targets, padding = masked_batch()
    chosen = targets != -1
    candidates = padding & (ids != CLS) & (ids != SEP)
    n = candidates.sum().item()  # 200 x 48 = 9600 tokens
    # binomial: 15 % of 9600 with a standard deviation of 35 tokens
    assert abs(chosen.sum().item() / n - 0.15) < 0.012
    assert torch.equal(targets[chosen], ids[chosen])
    assert not (chosen & ~candidates).any()  # specials and padding never
    masked = chosen & (inputs == MASK)
    unchanged = chosen & (inputs == ids)
    swapped = chosen & ~masked & ~unchanged
    for part, share in ((masked, 0.8), (unchanged, 0.1), (swapped, 0.1)):
        # about 1440 chosen tokens: 0.03 is over 3 standard deviations
        assert abs(part.sum().item() / chosen.sum().item() - share) < 0.03
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_mask_tokens_is_deterministic_with_a_generator():
    first, second = masked_batch(seed=4), masked_batch(seed=4)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[2], masked_batch(seed=5)[2])


def test_mask_tokens_refuses_bad_settings():
    ids = torch.randint(4, 30, (2, 8))
    with pytest.raises(ValueError, match="mask_id=30 is not a token id"):
        mask_tokens(ids, 30, 30)
    with pytest.raises(ValueError, match="rate must lie in"):
        mask_tokens(ids, 1, 30, rate=1.5)
    with pytest.raises(ValueError, match="padding_mask must be a bool"):
        mask_tokens(ids, 1, 30, padding_mask=torch.ones(2, 8))
    with pytest.raises(ValueError, match="ids must be a LongTensor"):
        mask_tokens(ids[0], 1, 30)


def stream(n=2000, seed=0):
    """A text with structure: a repeated 10-token pattern, ids 4..13."""
    ids = torch.arange(4, 14).repeat(n // 10)
    return ids[: int(0.9 * n)], ids[int(0.9 * n) :]


def test_masked_lm_batches_sample_masked_windows():
    train_ids, val_ids = stream()
    source = MaskedLMBatches(train_ids, val_ids, 16, MASK, 14, (CLS, SEP))
    generator = torch.Generator().manual_seed(0)
    inputs, targets = source.sample(64, generator)
    assert inputs.shape == targets.shape == (64, 16)
    chosen = targets != -1
    assert 0.1 < chosen.float().mean() < 0.2
    # a target is the token the window held: the pattern continues
    originals = torch.where(chosen, targets, inputs)
    assert ((originals[:, 1:] - 4) == (originals[:, :-1] - 4 + 1) % 10).all()
    again = source.sample(64, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], targets)


def test_masked_lm_batches_evaluate_every_masked_validation_token():
    train_ids, val_ids = stream()
    source = MaskedLMBatches(train_ids, val_ids, 16, MASK, 14)
    assert source.val_inputs.shape == (200 // 16, 16)
    encoder = random_encoder(config=replace(CONFIG, vocab_size=14))
    logits, _ = encoder(source.val_inputs)
    chosen = source.val_targets != -1
    expected = F.cross_entropy(logits[chosen], source.val_targets[chosen])
    # batches of 5, 5 and 2 windows, each weighted by its masked tokens
    assert source.evaluate(encoder, 5) == pytest.approx(expected.item())
    assert source.fingerprint()["masking"]["mask_id"] == MASK


def test_an_encoder_learns_to_fill_in_masks_through_train():
    # runs of 40 equal tokens: a masked token is its unmasked neighbours'
    runs = torch.randint(
        4, 14, (100,), generator=torch.Generator().manual_seed(0)
    )
    ids = runs.repeat_interleave(40)
    source = MaskedLMBatches(ids[:3600], ids[3600:], 16, MASK, 14)
    torch.manual_seed(0)
    encoder = Encoder(
        EncoderConfig(
            vocab_size=14, block_size=16, n_layer=1, n_head=2, n_embd=32
        )
    )
    before = source.evaluate(encoder, 64)
    history = train(
        encoder,
        source,
        TrainConfig(
            max_iters=200,
            batch_size=16,
            learning_rate=1e-2,
            min_lr=1e-3,
            warmup_iters=10,
            weight_decay=0.0,
            eval_interval=0,
            device="cpu",
            progress=False,
        ),
    )
    # from a uniform guess over 14 ids (2.6 nats) to well under 1
    assert before > 2.5 and history["val_loss"][-1] < 1.0


def test_masked_lm_batches_refuse_bad_settings():
    train_ids, val_ids = stream()
    with (
        pytest.warns(UserWarning, match="fewer than one block"),
        pytest.raises(ValueError, match="fewer than one window"),
    ):
        MaskedLMBatches(train_ids, val_ids[:10], 16, MASK, 14)
    with pytest.raises(ValueError, match="mask_id=14 is not a token id"):
        MaskedLMBatches(train_ids, val_ids, 16, 14, 14)


def test_bert_inputs_frame_one_text_or_a_pair():
    tokenizer = CharTokenizer.from_text("abc ").with_special_tokens(
        ["[CLS]", "[SEP]"]
    )
    cls_id, sep_id = (
        tokenizer.special_id("[CLS]"),
        tokenizer.special_id("[SEP]"),
    )
    a, b = tokenizer.encode("ab"), tokenizer.encode("c a")
    assert bert_inputs(tokenizer, "ab") == [cls_id, *a, sep_id]
    pair = bert_inputs(tokenizer, "ab", "c a")
    assert pair == [cls_id, *a, sep_id, *b, sep_id]
    # the first segment runs to its [SEP], the second after it
    assert segment_ids(torch.tensor([pair]), sep_id).tolist() == [
        [0] * (len(a) + 2) + [1] * (len(b) + 1)
    ]
    with pytest.raises(ValueError, match=r"no special token '\[CLS\]'"):
        bert_inputs(CharTokenizer.from_text("abc"), "ab")


def test_segment_ids_by_hand_and_without_a_separator():
    idx = torch.tensor([[7, 1, 9, 2, 3, 9, -1], [7, 1, 2, 3, 4, 5, 6]])
    assert segment_ids(idx, sep_id=9).tolist() == [
        [0, 0, 0, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ]
    with pytest.raises(ValueError, match="LongTensor"):
        segment_ids(torch.tensor([1, 9]), sep_id=9)


def test_fill_in_hides_one_position_at_a_time():
    encoder = random_encoder()
    idx, _, _ = batch()
    guesses = fill_in(encoder, idx, mask_id=39)
    assert guesses.shape == idx.shape and encoder.training is False
    for p in (0, 4, 9):
        hidden = idx.clone()
        hidden[:, p] = 39
        expected = encoder(hidden)[0][:, p].argmax(-1)
        assert torch.equal(guesses[:, p], expected)
    # the guess at p does not see the token at p
    changed = idx.clone()
    changed[:, 4] = (changed[:, 4] + 1) % 40
    assert torch.equal(fill_in(encoder, changed, 39)[:, 4], guesses[:, 4])
    with pytest.raises(ValueError, match="mask_id=40"):
        fill_in(encoder, idx, mask_id=40)
