"""minigpt.finetune: classifier on the last real token, freezing, LoRA, fit()
through train(), prompt rows."""

import pytest
import torch
import torch.nn.functional as F

from minigpt import checkpoint
from minigpt.encoder import Encoder, EncoderConfig, segment_ids
from minigpt.finetune import (
    PAD,
    EncoderClassifier,
    ExampleSet,
    GPTClassifier,
    LinearClassifier,
    LoRALinear,
    accuracy,
    add_lora,
    classification_loss,
    fit,
    freeze,
    last_positions,
    merge_lora,
    pad_rows,
    pool,
    predict,
    prompt_response_rows,
    token_logprobs,
    trainable_parameters,
    unmerge_lora,
)
from minigpt.hf import to_hf
from minigpt.model import GPT, GPTConfig
from minigpt.tokenizer import CharTokenizer
from minigpt.train import BatchSource, TrainConfig, train


def tiny_gpt(seed=0, **kw):
    torch.manual_seed(seed)
    return GPT(
        GPTConfig(
            **(
                {
                    "vocab_size": 20,
                    "block_size": 16,
                    "n_layer": 2,
                    "n_head": 2,
                    "n_embd": 16,
                }
                | kw
            )
        )
    )


def tiny_classifier(seed=0):
    return GPTClassifier(tiny_gpt(seed), n_classes=3)


def quiet(**kw):
    return TrainConfig(
        **(
            {
                "max_iters": 3,
                "batch_size": 4,
                "warmup_iters": 0,
                "eval_interval": 0,
                "progress": False,
                "device": "cpu",
            }
            | kw
        )
    )


# --- padding and the last real token ---


def test_pad_rows_and_last_positions():
    rows = pad_rows([[1, 2, 3], [4], [5, 6]])
    assert rows.tolist() == [[1, 2, 3], [4, PAD, PAD], [5, 6, PAD]]
    assert last_positions(rows).tolist() == [2, 0, 1]


def test_padded_batch_equals_each_text_alone():
    clf = tiny_classifier().eval()
    texts = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]]
    batch, _ = clf(pad_rows(texts))
    for i, t in enumerate(texts):
        alone, _ = clf(torch.tensor([t]))
        torch.testing.assert_close(batch[i], alone[0], atol=1e-5, rtol=1e-5)


def test_features_are_the_gpt_hidden_state_at_the_last_token():
    gpt = tiny_gpt().eval()
    clf = GPTClassifier(gpt, 2)
    idx = torch.tensor([[3, 1, 4, 1, 5]])
    # same prefix: last real token at position 2
    feats = clf.features(pad_rows([[3, 1, 4]]))
    logits_from_features = gpt.lm_head(feats)
    torch.testing.assert_close(
        logits_from_features[0], gpt(idx)[0][0, 2], atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize(
    "rows, match",
    [
        (torch.tensor([[PAD, 1, 2]]), "right padding"),
        (torch.tensor([[1, PAD, 2]]), "right padding"),
        (torch.tensor([[PAD, PAD]]), "only padding"),
    ],
)
def test_bad_padding_fails(rows, match):
    with pytest.raises(ValueError, match=match):
        last_positions(rows)


def test_pad_rows_refuses_to_cut():
    with pytest.raises(ValueError, match="block_size is 2"):
        pad_rows([[1, 2, 3]], block_size=2)
    with pytest.raises(ValueError, match="non-empty"):
        pad_rows([[1], []])


# --- labels ---


def test_loss_is_cross_entropy_and_bad_label_fails():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 2])
    torch.testing.assert_close(
        classification_loss(logits, labels), F.cross_entropy(logits, labels)
    )
    with pytest.raises(
        ValueError, match=r"label 3 is outside the 3 classes 0\.\.2"
    ):
        classification_loss(logits, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"label -1 is outside"):
        classification_loss(logits, torch.tensor([-1, 0]))


def test_fit_rejects_a_label_outside_the_classes_before_training():
    clf = tiny_classifier()
    x = pad_rows([[1, 2], [3, 4, 5], [6], [7, 8]])
    with pytest.raises(ValueError, match=r"label 5 is outside the 3 classes"):
        fit(
            clf,
            (x, torch.tensor([0, 1, 5, 2])),
            (x, torch.tensor([0, 1, 2, 2])),
            quiet(),
        )


def test_classifier_needs_two_classes():
    with pytest.raises(ValueError, match="n_classes must be an int >= 2"):
        GPTClassifier(tiny_gpt(), 1)


# --- freezing ---


@pytest.mark.parametrize("trainable", ["head", 1, "all"])
def test_frozen_parameters_do_not_change_in_a_step(trainable):
    clf = tiny_classifier()
    n = freeze(clf, trainable)
    before = {name: p.detach().clone() for name, p in clf.named_parameters()}
    x = pad_rows([[1, 2, 3], [4, 5], [6, 7, 8, 9], [10, 11]])
    y = torch.tensor([0, 1, 2, 1])
    fit(clf, (x, y), (x, y), quiet(max_iters=1, learning_rate=1e-2))
    changed = {
        name
        for name, p in clf.named_parameters()
        if not torch.equal(p, before[name])
    }
    trainable_names = {
        name for name, p in clf.named_parameters() if p.requires_grad
    }
    assert changed == trainable_names
    assert n == sum(
        p.numel()
        for name, p in clf.named_parameters()
        if name in trainable_names
    )
    if trainable == "head":
        assert trainable_names == {"head.weight", "head.bias"}
    elif trainable == 1:
        assert all(
            name.startswith(
                ("head", "body.transformer.h.1", "body.transformer.ln_f")
            )
            for name in trainable_names
        )
    else:
        assert (
            n
            == trainable_parameters(clf)
            == sum(p.numel() for p in clf.parameters())
        )


def test_freeze_rejects_bad_choice():
    with pytest.raises(
        ValueError,
        match="'head', 'all' or a number of last blocks 0..2, got 3",
    ):
        freeze(tiny_classifier(), 3)


# --- LoRA ---


def test_lora_with_zero_B_equals_the_base_model():
    base = tiny_gpt().eval()
    adapted = tiny_gpt().eval()
    names = add_lora(adapted, rank=2)
    # c_attn, attn.c_proj, c_fc, mlp.c_proj per block
    assert len(names) == 2 * 4
    idx = torch.randint(
        0, 20, (2, 10), generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(adapted(idx)[0], base(idx)[0], atol=0, rtol=0)


def test_lora_layer_is_base_plus_low_rank_product():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    lora = LoRALinear(base, rank=2, alpha=4.0)
    torch.nn.init.normal_(lora.B)
    x = torch.randn(3, 6)
    expected = x @ (base.weight + 2.0 * lora.B @ lora.A).T + base.bias
    torch.testing.assert_close(lora(x), expected, atol=1e-5, rtol=1e-5)


def test_lora_merged_equals_unmerged_and_unmerge_restores_weights():
    model = tiny_gpt().eval()
    add_lora(model, rank=2)
    for name, p in model.named_parameters():
        if name.endswith(".B"):
            torch.nn.init.normal_(p, std=0.5)
    original = {n: p.clone() for n, p in model.state_dict().items()}
    idx = torch.randint(
        0, 20, (2, 10), generator=torch.Generator().manual_seed(1)
    )
    unmerged = model(idx)[0]
    merge_lora(model)
    merged = model(idx)[0]
    # the update does something
    assert not torch.allclose(unmerged, tiny_gpt().eval()(idx)[0], atol=1e-3)
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-5)
    merge_lora(model)  # merging twice adds nothing
    torch.testing.assert_close(model(idx)[0], unmerged, atol=1e-5, rtol=1e-5)
    unmerge_lora(model)
    for n, p in model.state_dict().items():
        torch.testing.assert_close(p, original[n], atol=1e-6, rtol=0)


def test_lora_trains_only_adapters_and_head():
    clf = tiny_classifier()
    add_lora(clf.body, rank=2)
    C, L = 16, 2
    # r * (in + out) per adapted layer
    per_block = 2 * ((C + 3 * C) + (C + C) + (C + 4 * C) + (4 * C + C))
    assert trainable_parameters(clf) == L * per_block + (C * 3 + 3)
    before = {n: p.detach().clone() for n, p in clf.named_parameters()}
    x = pad_rows([[1, 2, 3], [4, 5], [6, 7, 8, 9], [10, 11]])
    y = torch.tensor([0, 1, 2, 1])
    fit(clf, (x, y), (x, y), quiet(max_iters=2, learning_rate=1e-2))
    changed = {
        n for n, p in clf.named_parameters() if not torch.equal(p, before[n])
    }
    assert changed and all(
        n.endswith((".A", ".B")) or n.startswith("head") for n in changed
    )
    assert any(n.endswith(".B") for n in changed)


def test_add_lora_bad_input():
    with pytest.raises(ValueError, match="rank must be an int in 1..16"):
        add_lora(tiny_gpt(), rank=0)
    with pytest.raises(ValueError, match="nothing to adapt"):
        add_lora(tiny_gpt(), targets=("no_such_layer",))


# --- fit through minigpt.train ---


def test_fit_learns_a_separable_task_and_repeats_exactly():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(64, 8, generator=g)
    labels = (feats[:, 0] > 0).long()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        probe = LinearClassifier(8, 2)
        history = fit(
            probe,
            (feats[:48], labels[:48]),
            (feats[48:], labels[48:]),
            quiet(
                max_iters=60,
                batch_size=16,
                learning_rate=0.1,
                weight_decay=0.0,
            ),
        )
        runs.append(
            (history["train_loss"], accuracy(probe, feats[48:], labels[48:]))
        )
    assert runs[0] == runs[1]
    assert runs[0][0][-1] < runs[0][0][0] and runs[0][1] >= 0.9
    # validated once, at the end, on all 16 examples
    assert len(history["val_loss"]) == 1


def test_fit_val_loss_is_the_mean_over_all_validation_examples():
    torch.manual_seed(0)
    probe = LinearClassifier(4, 2)
    x, y = torch.randn(10, 4), torch.tensor([0, 1] * 5)
    history = fit(
        probe,
        (x, y),
        (x, y),
        quiet(max_iters=1, learning_rate=1e-9, min_lr=0.0),
    )
    with torch.no_grad():
        assert history["val_loss"][-1] == pytest.approx(
            classification_loss(probe(x)[0], y).item(), abs=1e-6
        )


def test_fit_batch_larger_than_the_data_fails():
    with pytest.raises(
        ValueError,
        match=r"batch_size=8 \(x 1 processes\) is larger than the 4 "
        r"distinct training items of "
        r"ExampleSet\(4 training examples, 2 validation examples\)",
    ):
        fit(
            LinearClassifier(2, 2),
            (torch.randn(4, 2), torch.zeros(4, dtype=torch.long)),
            (torch.randn(2, 2), torch.zeros(2, dtype=torch.long)),
            quiet(batch_size=8),
        )


def test_example_set_draws_with_the_generator_and_evaluates_every_example():
    x, y = torch.randn(10, 4), torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1, 1])
    examples = ExampleSet((x[:7], y[:7]), (x[7:], y[7:]))
    assert isinstance(examples, BatchSource) and len(examples) == 7
    # uniform, with replacement
    rows = torch.randint(7, (5,), generator=torch.Generator().manual_seed(4))
    batch_x, batch_y = examples.sample(5, torch.Generator().manual_seed(4))
    assert torch.equal(batch_x, x[rows]) and torch.equal(batch_y, y[rows])
    torch.manual_seed(0)
    probe = LinearClassifier(4, 2)
    everything = ExampleSet((x, y), (x, y))
    with torch.no_grad():
        expected = F.cross_entropy(probe(x)[0], y).item()
    # batches 3, 3, 3, 1
    assert everything.evaluate(probe, batch_size=3) == pytest.approx(
        expected, abs=1e-6
    )
    with pytest.raises(
        ValueError,
        match="the validation inputs and targets must hold the same number",
    ):
        ExampleSet((x, y), (x[:3], y[:2]))


def test_predict_restores_training_mode_when_the_model_raises():
    clf = tiny_classifier().train()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        predict(clf, torch.tensor([[1, 2, 99]]))
    assert clf.training


def test_training_on_examples_resumes_exactly(tmp_path):
    """Stop at step 3 of 6, save, load, resume: the same losses and weights as
    the uninterrupted run.

    Dropout is on, so the random state must come back as well as the generator
    that draws the examples.
    """
    g = torch.Generator().manual_seed(0)
    x = torch.randint(20, (40, 16), generator=g)
    y = torch.randint(20, (40, 16), generator=g)
    y[:, :5] = -1  # a prompt whose targets do not count

    def examples():
        return ExampleSet((x[:30], y[:30]), (x[30:], y[30:]))

    config = TrainConfig(
        max_iters=6,
        batch_size=4,
        eval_interval=2,
        progress=False,
        device="cpu",
    )
    whole = tiny_gpt(dropout=0.2)
    full = train(whole, examples(), config)
    train(
        tiny_gpt(dropout=0.2),
        examples(),
        TrainConfig(**{**config.to_dict(), "out_dir": str(tmp_path / "ck")}),
        callback=lambda step, model, history: step == 3,
    )
    model, _, state = checkpoint.load(tmp_path / "ck")
    resumed = train(model, examples(), config, resume=state)
    assert resumed == full
    for (name, a), b in zip(
        whole.state_dict().items(), model.state_dict().values()
    ):
        assert torch.equal(a, b), name
    with pytest.raises(
        ValueError,
        match="resume needs the data the checkpoint was trained on",
    ):
        train(
            tiny_gpt(dropout=0.2),
            ExampleSet((x[:30].flip(0), y[:30]), (x[30:], y[30:])),
            config,
            resume=state,
        )


# --- instruction rows ---


def test_prompt_response_rows_mask_the_prompt():
    tok = CharTokenizer.from_text("abcdef:\n ")
    x, y = prompt_response_rows(
        tok, [("ab:", "cd\n"), ("a:", "e\n")], block_size=16
    )
    enc = tok.encode
    assert x[0].tolist() == enc("ab:cd")
    assert y[0].tolist() == [-1, -1] + enc("cd\n")
    assert x[1].tolist() == enc("a:e") + [0, 0]
    assert y[1].tolist() == [-1] + enc("e\n") + [-1, -1]
    gpt = GPT(
        GPTConfig(
            vocab_size=tok.vocab_size,
            block_size=16,
            n_layer=1,
            n_head=1,
            n_embd=8,
        )
    )
    logits, loss = gpt(x, y)
    keep = y != -1
    torch.testing.assert_close(loss, F.cross_entropy(logits[keep], y[keep]))
    with pytest.raises(ValueError, match="more than block_size"):
        prompt_response_rows(tok, [("abcdef", "abcdef")], block_size=8)


def test_fit_splits_of_different_widths_fail():
    clf = tiny_classifier()
    with pytest.raises(
        ValueError, match="pad all texts in one pad_rows call"
    ):
        fit(
            clf,
            (pad_rows([[1, 2, 3]] * 4), torch.zeros(4, dtype=torch.long)),
            (pad_rows([[1, 2]]), torch.zeros(1, dtype=torch.long)),
            quiet(),
        )


def test_exercise_checker_accepts_the_answer_and_rejects_a_wrong_one():
    from minigpt.exercises import check_last_positions

    assert check_last_positions(
        lambda rows: (rows != PAD).sum(1) - 1, verbose=False
    )
    # 0 is a real token
    assert not check_last_positions(
        lambda rows: (rows > 0).sum(1) - 1, verbose=False
    )


# --- pooling and scoring padded rows ---


def test_pool_reads_the_last_real_token_or_the_mean_over_real_tokens():
    rows = pad_rows([[1, 2, 3], [4], [5, 6]])
    hidden = torch.randn(3, 3, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(
        pool(hidden, rows, "last"),
        torch.stack([hidden[0, 2], hidden[1, 0], hidden[2, 1]]),
    )
    expected = torch.stack(
        [hidden[0, :3].mean(0), hidden[1, :1].mean(0), hidden[2, :2].mean(0)]
    )
    torch.testing.assert_close(pool(hidden, rows, "mean"), expected)
    with pytest.raises(ValueError, match="how must be one of"):
        pool(hidden, rows, "max")
    with pytest.raises(ValueError, match=r"must match idx \(B, T\)"):
        pool(hidden[:, :2], rows)


def test_token_logprobs_of_padded_rows_equal_each_text_scored_alone():
    gpt = tiny_gpt()
    texts = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]]
    scores = token_logprobs(gpt, pad_rows(texts))
    assert scores.shape == (3, 4)
    # reference: the model's own cross-entropy, one text at a time
    for row, text in zip(scores, texts):
        ids = torch.tensor([text])
        _, loss = gpt(ids[:, :-1], ids[:, 1:])
        assert row[: len(text) - 1].sum().item() == pytest.approx(
            -loss.item() * (len(text) - 1), abs=1e-5
        )
        assert (row[len(text) - 1 :] == 0).all()  # padding scores nothing
    # it is differentiable: usable as a training objective
    scores.sum().backward()
    assert gpt.transformer.wte.weight.grad is not None
    with pytest.raises(ValueError, match="right padding"):
        token_logprobs(gpt, torch.tensor([[PAD, 1, 2]]))


def test_encoder_classifier_equals_bert_for_sequence_classification():
    """Same weights, right-padded pairs: the logits of transformers'
    BertForSequenceClassification, segments and padding included."""
    from transformers import BertForSequenceClassification

    config = EncoderConfig(
        vocab_size=20, block_size=12, n_layer=2, n_head=2, n_embd=8
    )
    torch.manual_seed(0)
    encoder = Encoder(config)
    classifier = EncoderClassifier(encoder, n_classes=3, sep_id=19).eval()
    with torch.no_grad():
        for p in classifier.parameters():
            p.normal_(0.0, 0.5)
    base = to_hf(encoder, base=True)
    base.config.num_labels = 3
    theirs = BertForSequenceClassification(base.config).eval()
    theirs.bert.load_state_dict(base.state_dict())
    theirs.classifier.load_state_dict(classifier.head.state_dict())
    rows = pad_rows(
        [[18, 3, 4, 19, 5, 19], [18, 6, 19, 7, 8, 9, 19], [18, 2, 19]]
    )
    real = rows != PAD
    expected = theirs(
        input_ids=rows.masked_fill(~real, 0),
        token_type_ids=segment_ids(rows, 19),
        attention_mask=real.long(),
    ).logits
    torch.testing.assert_close(
        classifier(rows)[0], expected, atol=1e-5, rtol=1e-5
    )
    # a row alone gets the logits it gets in the padded batch
    torch.testing.assert_close(
        classifier(rows[2:, :3])[0], expected[2:], atol=1e-5, rtol=1e-5
    )


def test_encoder_classifier_refuses_a_gpt_and_one_class():
    with pytest.raises(TypeError, match="GPTClassifier"):
        EncoderClassifier(tiny_gpt(), n_classes=2)
    encoder = Encoder(
        EncoderConfig(
            vocab_size=8, block_size=4, n_layer=1, n_head=1, n_embd=4
        )
    )
    with pytest.raises(ValueError, match="n_classes"):
        EncoderClassifier(encoder, n_classes=1)
