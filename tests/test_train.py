"""minigpt.train: config checks, schedule, optimizer groups, full-split
evaluation, the loop itself.

Every model here is tiny, so the file runs in seconds on two cores.
"""

import math
import warnings

import pytest
import torch

from minigpt import train as train_module
from minigpt.data import load_text, train_val_split
from minigpt.model import GPT, GPTConfig
from minigpt.tokenizer import CharTokenizer
from minigpt.train import (
    BatchSource,
    TokenStream,
    TrainConfig,
    evaluate,
    loss_by_position,
    lr_at,
    make_optimizer,
    train,
)

QUIET = dict(progress=False, device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def tiny_model(vocab_size=16, block_size=8, dropout=0.0, seed=0) -> GPT:
    torch.manual_seed(seed)
    return GPT(
        GPTConfig(
            vocab_size=vocab_size,
            block_size=block_size,
            n_layer=1,
            n_head=2,
            n_embd=16,
            dropout=dropout,
        )
    )


def toy_data(n=400, vocab_size=16):
    ids = torch.randint(
        vocab_size, (n,), generator=torch.Generator().manual_seed(1)
    )
    return ids[: n * 3 // 4], ids[n * 3 // 4 :]


# --- configuration ----------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            dict(max_iters=0),
            "max_iters must be a positive int.*zero iterations",
        ),
        (dict(batch_size=0), "batch_size must be a positive int"),
        (dict(device="tpu"), "unknown device 'tpu'"),
        (dict(dtype="float8"), "unknown dtype 'float8'"),
        (dict(learning_rate=0.0), "learning_rate must be > 0"),
        (dict(min_lr=1.0), r"min_lr must lie in \[0, learning_rate"),
        (dict(beta2=1.0), r"beta2 must lie in \[0, 1\)"),
        (dict(warmup_iters=-1), "warmup_iters must be an int >= 0"),
        (
            dict(block_size=0),
            "block_size must be a positive int, got 0; "
            "or None for the model's block_size",
        ),
        (
            dict(block_size=True),
            "block_size must be a positive int, got True",
        ),
        (
            dict(lr_decay_iters=0),
            "lr_decay_iters must be a positive int, got 0; "
            "or None for max_iters",
        ),
    ],
)
def test_config_rejects_values_that_cannot_work(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_config_round_trips_through_a_dict_and_rejects_unknown_keys():
    config = TrainConfig(max_iters=7, learning_rate=3e-3)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(
        ValueError, match=r"unknown TrainConfig field\(s\) \['lr'\]"
    ):
        TrainConfig.from_dict({"lr": 1e-3})


def test_bad_data_fails_before_training_starts():
    model = tiny_model(block_size=8)
    train_ids, val_ids = toy_data()
    with pytest.raises(
        ValueError,
        match="block_size=8 needs at least 9 training tokens, got 5",
    ):
        train(
            model, (train_ids[:5], val_ids), TrainConfig(max_iters=1, **QUIET)
        )
    with pytest.raises(
        ValueError,
        match=r"batch_size=30 .* larger than the 12 distinct training items "
        r"of TokenStream\(20 training tokens, 100 validation tokens, "
        r"windows of 8\)",
    ):
        train(
            model,
            (train_ids[:20], val_ids),
            TrainConfig(max_iters=1, batch_size=30, **QUIET),
        )
    with pytest.raises(
        ValueError, match="block_size=16 exceeds the model's context of 8"
    ):
        train(
            model,
            (train_ids, val_ids),
            TrainConfig(max_iters=1, block_size=16, **QUIET),
        )
    with pytest.raises(
        ValueError, match="train data must be a 1-D LongTensor"
    ):
        train(
            model,
            (train_ids.float(), val_ids),
            TrainConfig(max_iters=1, **QUIET),
        )
    with pytest.raises(
        ValueError,
        match=r"data must be a pair \(train_ids, val_ids\) .* "
        r"or a BatchSource, got Tensor",
    ):
        train(model, train_ids, TrainConfig(max_iters=1, **QUIET))


def test_unavailable_device_names_the_fix():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(
        ValueError, match="CUDA is not available here; use device='cpu'"
    ):
        train(
            tiny_model(),
            toy_data(),
            TrainConfig(max_iters=1, device="cuda", progress=False),
        )


# --- schedule and optimizer -------------------------------------------------


def test_learning_rate_warms_up_linearly_then_follows_a_half_cosine():
    c = TrainConfig(
        learning_rate=1.0, min_lr=0.1, warmup_iters=4, max_iters=104
    )
    assert [lr_at(t, c) for t in range(4)] == pytest.approx(
        [0.2, 0.4, 0.6, 0.8]
    )
    assert lr_at(4, c) == pytest.approx(1.0)  # r = 0: the peak
    # r = 1/2: cos = 0, halfway
    assert lr_at(54, c) == pytest.approx(0.1 + 0.9 * 0.5)
    # r >= 1: min_lr
    assert lr_at(104, c) == pytest.approx(0.1) == lr_at(500, c)
    lrs = [lr_at(t, c) for t in range(4, 105)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_weight_decay_applies_to_matrices_only_and_tied_weights_once():
    model = tiny_model()
    decay, no_decay = make_optimizer(
        model, TrainConfig(weight_decay=0.1)
    ).param_groups
    # named_parameters lists the tied matrix once
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert sorted(names[id(p)] for p in decay["params"]) == sorted(
        n for n, p in model.named_parameters() if p.dim() >= 2
    )
    assert all(
        names[id(p)].endswith(
            ("bias", "ln_1.weight", "ln_2.weight", "ln_f.weight")
        )
        for p in no_decay["params"]
    )
    assert len(decay["params"]) + len(no_decay["params"]) == len(
        list(model.parameters())
    )


def test_the_fused_update_is_adamws():
    """make_optimizer's fused kernel against PyTorch's loop-over-tensors AdamW
    with the same groups."""
    # same weights; float64: no rounding noise
    model, reference = (
        tiny_model().double(),
        tiny_model().double(),
    )
    config = TrainConfig(weight_decay=0.1, learning_rate=1e-2)
    fast = make_optimizer(model, config)
    assert fast.defaults["fused"] is True
    twin = {
        id(p): q for p, q in zip(model.parameters(), reference.parameters())
    }
    slow = torch.optim.AdamW(
        [
            {
                "params": [twin[id(p)] for p in g["params"]],
                "weight_decay": g["weight_decay"],
            }
            for g in fast.param_groups
        ],
        lr=1e-2,
        betas=(config.beta1, config.beta2),
        foreach=False,
    )
    ids = toy_data()[0]
    x, y = ids[:32].view(4, 8), ids[1:33].view(4, 8)
    for net, optimizer in ((model, fast), (reference, slow)):
        for _ in range(5):
            optimizer.zero_grad()
            net(x, y)[1].backward()
            optimizer.step()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    assert (
        model.transformer.wte.weight - tiny_model().transformer.wte.weight
    ).abs().max() > 1e-3  # it moved


def test_the_optimizer_receives_gradients_clipped_to_grad_clip(monkeypatch):
    """The norm of all gradients together, as each AdamW step sees it, with
    and without clipping."""
    norms = []
    real_make_optimizer = train_module.make_optimizer

    def recording(model, config):
        optimizer = real_make_optimizer(model, config)
        step = optimizer.step

        def step_and_record(*args, **kwargs):
            grads = [
                p.grad.flatten()
                for p in model.parameters()
                if p.grad is not None
            ]
            norms.append(torch.cat(grads).norm().item())
            return step(*args, **kwargs)

        optimizer.step = step_and_record
        return optimizer

    monkeypatch.setattr(train_module, "make_optimizer", recording)
    common = dict(max_iters=3, batch_size=4, eval_interval=0, **QUIET)
    train(tiny_model(), toy_data(), TrainConfig(grad_clip=0.0, **common))
    raw = norms[:]
    norms.clear()
    train(tiny_model(), toy_data(), TrainConfig(grad_clip=0.01, **common))
    # unclipped: the loss's own gradient
    assert len(raw) == len(norms) == 3 and min(raw) > 0.1
    # clipped: scaled down to grad_clip
    assert norms == pytest.approx([0.01] * 3, rel=1e-4)


# --- evaluation -------------------------------------------------------------


def test_evaluate_is_the_mean_loss_over_every_token_of_the_split():
    model = tiny_model(block_size=8).eval()
    # 26 targets: 3 windows of 8, tail 2
    ids = torch.randint(16, (27,), generator=torch.Generator().manual_seed(2))
    # independent reference: sum the per-token losses window by window
    total = 0.0
    for start in range(0, 26, 8):
        x, y = (
            ids[start : min(start + 8, 26)],
            ids[start + 1 : min(start + 9, 27)],
        )
        logits, _ = model(x[None])
        total += torch.nn.functional.cross_entropy(
            logits[0], y, reduction="sum"
        ).item()
    expected = total / 26
    assert evaluate(model, ids, block_size=8, batch_size=2) == pytest.approx(
        expected, rel=1e-6
    )
    assert evaluate(model, ids, block_size=8, batch_size=64) == pytest.approx(
        expected, rel=1e-6
    )


def test_evaluate_is_deterministic_and_restores_training_mode():
    model = tiny_model(dropout=0.5).train()
    ids = toy_data()[1]
    # no dropout, no random windows
    assert evaluate(model, ids, 8) == evaluate(model, ids, 8)
    assert model.training
    with pytest.raises(ValueError, match="at least 2 token ids"):
        evaluate(model, ids[:1], 8)


@pytest.mark.parametrize("bad", [0, -2, 8.0, True])
def test_evaluate_rejects_sizes_that_are_not_positive_ints(bad):
    model, ids = tiny_model(), toy_data()[1]
    with pytest.raises(
        ValueError, match=f"block_size must be a positive int, got {bad!r}"
    ):
        evaluate(model, ids, bad)
    with pytest.raises(
        ValueError, match=f"batch_size must be a positive int, got {bad!r}"
    ):
        evaluate(model, ids, 8, bad)


def test_loss_by_position_averages_each_position_over_the_windows():
    model = tiny_model(block_size=8, dropout=0.5).train()
    # 3 whole windows of 6 (19 ids), the 4 ids after them left out
    ids = torch.randint(16, (23,), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        model.eval()
        windows = [
            torch.nn.functional.cross_entropy(
                model(ids[s : s + 6][None])[0][0],
                ids[s + 1 : s + 7],
                reduction="none",
            )
            for s in (0, 6, 12)
        ]
        model.train()
    expected = torch.stack(windows).mean(0)
    result = loss_by_position(model, ids, 6, batch_size=2)
    assert result.shape == (6,)
    torch.testing.assert_close(result, expected)
    # the mean over positions is evaluate's loss on the same windows
    assert result.mean().item() == pytest.approx(
        evaluate(model, ids[:19], 6), rel=1e-6
    )
    assert model.training  # dropout was off inside, and is on again


def test_loss_by_position_rejects_bad_input():
    model, ids = tiny_model(block_size=8), toy_data()[1]
    with pytest.raises(ValueError, match="at least length \\+ 1 = 9"):
        loss_by_position(model, ids[:8], 8)
    with pytest.raises(ValueError, match="length must be a positive int"):
        loss_by_position(model, ids, 0)
    with pytest.raises(ValueError, match="block_size is 8"):
        loss_by_position(model, ids, 9)  # the model's own context check


def test_evaluate_restores_training_mode_when_the_model_raises():
    model = tiny_model(vocab_size=16).train()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        # id 99: the model refuses it mid-evaluation
        evaluate(model, torch.tensor([1, 2, 99, 3]), 8)
    assert model.training


# --- batch sources ----------------------------------------------------------


def test_token_stream_samples_training_windows_and_evaluates_all_val_ids():
    train_ids, val_ids = toy_data()
    stream = TokenStream(train_ids, val_ids, block_size=8)
    assert (
        isinstance(stream, BatchSource)
        and len(stream) == train_ids.numel() - 8
    )
    x, y = stream.sample(5, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 8)
    # each row is some window of train_ids, the targets one token later
    for row_x, row_y in zip(x, y):
        starts = [
            s
            for s in range(len(stream))
            if torch.equal(train_ids[s : s + 8], row_x)
        ]
        assert any(
            torch.equal(train_ids[s + 1 : s + 9], row_y) for s in starts
        )
    model = tiny_model()
    assert stream.evaluate(model, 64) == evaluate(model, val_ids, 8, 64)


def test_a_pair_of_token_ids_trains_exactly_as_its_token_stream():
    config = TrainConfig(
        max_iters=4, batch_size=4, eval_interval=2, seed=3, **QUIET
    )
    a, b = tiny_model(dropout=0.1), tiny_model(dropout=0.1)
    assert train(a, toy_data(), config) == train(
        b, TokenStream(*toy_data(), block_size=8), config
    )
    for (name, pa), pb in zip(
        a.state_dict().items(), b.state_dict().values()
    ):
        assert torch.equal(pa, pb), name


class Copying:
    """A batch source written from the protocol alone: learn to copy a fixed
    pattern of 8 ids."""

    pattern = torch.arange(8) % 5

    def __len__(self):
        return 1

    def sample(self, batch_size, generator):
        rows = self.pattern.repeat(batch_size, 1)
        return rows, rows

    def evaluate(self, model, batch_size):
        with torch.no_grad():
            return model(self.pattern[None], self.pattern[None])[1].item()

    def fingerprint(self):
        return {"pattern": self.pattern.tolist()}


def test_train_takes_any_batch_source():
    history = train(
        tiny_model(),
        Copying(),
        TrainConfig(
            max_iters=30,
            batch_size=1,
            learning_rate=1e-2,
            warmup_iters=0,
            eval_interval=0,
            **QUIET,
        ),
    )
    assert history["val_step"] == [30]
    # it learned to copy
    assert history["val_loss"][-1] < 0.5 * history["train_loss"][0]


def test_a_validation_split_shorter_than_one_block_warns():
    train_ids, val_ids = toy_data()
    config = TrainConfig(max_iters=1, batch_size=4, **QUIET)
    with pytest.warns(
        UserWarning,
        match=r"validation split has 6 tokens, fewer than one block of "
        r"block_size \+ 1 = 9",
    ):
        train(tiny_model(), (train_ids, val_ids[:6]), config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # one full block: no warning
        train(tiny_model(), (train_ids, val_ids[:9]), config)


def test_the_progress_bar_shows_when_its_validation_loss_was_measured(
    monkeypatch,
):
    """With max_iters < eval_interval the only validations are at steps 0 and
    the end; the bar says so."""
    shown = []

    class Bar:
        def update(self, n):
            pass

        def set_postfix(self, numbers):
            shown.append(numbers)

        def close(self):
            pass

    monkeypatch.setattr(
        train_module, "_progress", lambda start, config, enabled: Bar()
    )
    history = train(
        tiny_model(),
        toy_data(),
        TrainConfig(
            max_iters=20,
            batch_size=4,
            eval_interval=250,
            progress=True,
            device="cpu",
        ),
    )
    assert history["val_step"] == [0, 20]
    first, last = history["val_loss"]
    assert [s["val"] for s in shown] == [
        f"{first:.3f} (step 0)",
        f"{last:.3f} (step 20)",
    ]
    assert shown[-1]["loss"] == f"{history['train_loss'][-1]:.3f}"


# --- the loop ---------------------------------------------------------------


def test_history_records_every_step_and_each_validation():
    history = train(
        tiny_model(),
        toy_data(),
        TrainConfig(max_iters=5, batch_size=4, eval_interval=2, **QUIET),
    )
    assert history["step"] == [1, 2, 3, 4, 5]
    assert history["val_step"] == [0, 2, 4, 5]
    assert len(history["train_loss"]) == len(history["lr"]) == 5
    assert all(
        math.isfinite(v) for v in history["train_loss"] + history["val_loss"]
    )


def test_a_seeded_run_repeats_exactly():
    config = TrainConfig(
        max_iters=4, batch_size=4, eval_interval=2, seed=3, **QUIET
    )
    first = train(tiny_model(dropout=0.1), toy_data(), config)
    second = train(tiny_model(dropout=0.1), toy_data(), config)
    assert first == second


def test_gradient_accumulation_equals_one_batch_of_the_summed_size():
    """Two micro-batches of 4 draw the same 8 windows as one batch of 8, so
    the steps agree."""
    a, b = tiny_model(), tiny_model()
    common = dict(max_iters=3, eval_interval=0, **QUIET)
    ha = train(
        a, toy_data(), TrainConfig(batch_size=4, grad_accum_steps=2, **common)
    )
    hb = train(b, toy_data(), TrainConfig(batch_size=8, **common))
    assert ha["train_loss"] == pytest.approx(hb["train_loss"], abs=1e-6)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=1e-6, rtol=1e-5, msg=name)


def gradients_the_optimizer_receives(
    config: TrainConfig,
) -> list[torch.Tensor]:
    """Train a tiny model with ``config``; the gradient (all parameters,
    flattened) at each optimizer step."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    seen = []

    def record(optimizer, args, kwargs):
        grads = [
            p.grad.flatten()
            for group in optimizer.param_groups
            for p in group["params"]
        ]
        seen.append(torch.cat(grads).clone())

    # runs inside train(), before each AdamW step
    handle = register_optimizer_step_pre_hook(record)
    try:
        train(tiny_model(), toy_data(), config)
    finally:
        handle.remove()
    return seen


def test_the_optimizer_receives_the_gradient_clipped_to_grad_clip():
    """Compared with the same run unclipped: g * min(1, c / |g|) at step 0,
    every norm <= c, none above."""
    common = dict(max_iters=3, batch_size=4, eval_interval=0, **QUIET)
    raw = gradients_the_optimizer_receives(
        TrainConfig(grad_clip=0.0, **common)
    )
    # below the first step's norm, so clipping must act
    c = 0.5 * raw[0].norm().item()
    clipped = gradients_the_optimizer_receives(
        TrainConfig(grad_clip=c, **common)
    )
    assert len(raw) == len(clipped) == 3
    # same weights, same batch at step 0
    torch.testing.assert_close(clipped[0], raw[0] * (c / raw[0].norm()))
    assert all(g.norm() <= c * (1 + 1e-5) for g in clipped)
    assert raw[0].norm() > 1.9 * c  # without grad_clip the norm is untouched


def test_callback_sees_every_step_and_can_stop_training():
    seen = []

    def stop_at_three(step, model, history):
        seen.append((step, len(history["train_loss"])))
        return step == 3

    history = train(
        tiny_model(),
        toy_data(),
        TrainConfig(max_iters=10, batch_size=4, **QUIET),
        callback=stop_at_three,
    )
    assert seen == [(1, 1), (2, 2), (3, 3)]
    assert history["step"] == [1, 2, 3]


def test_a_tiny_model_learns_shakespeare_beyond_what_no_training_gives():
    """A regression test for the model and the loop together: 1 nat below
    uniform guessing."""
    text = load_text("tinyshakespeare")[:60_000]
    tokenizer = CharTokenizer.from_text(text)
    train_ids, val_ids = train_val_split(torch.tensor(tokenizer.encode(text)))
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            vocab_size=tokenizer.vocab_size,
            block_size=32,
            n_layer=1,
            n_head=2,
            n_embd=32,
        )
    )
    history = train(
        model,
        (train_ids, val_ids),
        TrainConfig(
            max_iters=150,
            batch_size=16,
            learning_rate=1e-2,
            min_lr=1e-3,
            warmup_iters=5,
            eval_interval=150,
            **QUIET,
        ),
    )
    uniform = math.log(tokenizer.vocab_size)
    # untrained: close to uniform
    assert history["val_loss"][0] == pytest.approx(uniform, abs=0.1)
    assert history["val_loss"][-1] <= uniform - 1.0, history["val_loss"]


def test_bfloat16_autocast_tracks_float32():
    """The autocast path (the default on CUDA) exercised on the CPU: same
    trajectory, bf16 rounding."""
    common = dict(max_iters=3, batch_size=4, eval_interval=0, **QUIET)
    full = train(
        tiny_model(), toy_data(), TrainConfig(dtype="float32", **common)
    )
    half = train(
        tiny_model(), toy_data(), TrainConfig(dtype="bfloat16", **common)
    )
    assert half["train_loss"] != full["train_loss"]  # bf16 really was used
    assert half["train_loss"] == pytest.approx(full["train_loss"], abs=0.05)
