"""minigpt.checkpoint: round trips, exact resume, atomic writes, no
unpickling, clear errors."""

import json
import pickle

import pytest
import torch

from minigpt import checkpoint
from minigpt.checkpoint import CheckpointError
from minigpt.model import GPT, GPTConfig
from minigpt.tokenizer import CharTokenizer
from minigpt.train import TrainConfig, train

TEXT = "to be, or not to be: that is the question. " * 20


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def tiny(dropout=0.0, n_embd=16) -> GPT:
    torch.manual_seed(0)
    return GPT(
        GPTConfig(
            vocab_size=CharTokenizer.from_text(TEXT).vocab_size,
            block_size=8,
            n_layer=1,
            n_head=2,
            n_embd=n_embd,
            dropout=dropout,
        )
    )


def data():
    ids = torch.tensor(CharTokenizer.from_text(TEXT).encode(TEXT))
    return ids[:700], ids[700:]


def test_model_and_tokenizer_round_trip(tmp_path):
    model, tokenizer = tiny(), CharTokenizer.from_text(TEXT)
    checkpoint.save(tmp_path / "ck", model, tokenizer)
    loaded, loaded_tok, state = checkpoint.load(tmp_path / "ck")
    assert state is None
    assert loaded.config == model.config
    # still tied after loading
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    for (name, a), b in zip(
        model.state_dict().items(), loaded.state_dict().values()
    ):
        assert torch.equal(a, b), name
    assert loaded_tok.encode("question") == tokenizer.encode("question")
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]


def test_loading_leaves_the_callers_random_state_alone(tmp_path):
    """A loaded model is built and then overwritten.

    Its throwaway initialisation must not draw from the global generator, or
    code after a load would differ from code after training.
    """
    checkpoint.save(tmp_path / "ck", tiny())
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    checkpoint.load(tmp_path / "ck")
    assert torch.equal(torch.rand(3), expected)


def test_train_state_round_trips_tensors_tuples_and_int_keys(tmp_path):
    state = {
        "step": 3,
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "m": torch.ones(2, 2)}},
            "param_groups": [{"betas": (0.9, 0.99), "params": [0, 1]}],
        },
        "rng": {"batches": torch.Generator().manual_seed(1).get_state()},
        "history": {"loss": [1.5, None]},
    }
    checkpoint.save(tmp_path / "ck", tiny(), train_state=state)
    _, _, loaded = checkpoint.load(tmp_path / "ck")
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.99)
    assert list(loaded["optimizer"]["state"]) == [0]
    assert torch.equal(loaded["optimizer"]["state"][0]["m"], torch.ones(2, 2))
    assert torch.equal(loaded["rng"]["batches"], state["rng"]["batches"])
    assert loaded["history"] == state["history"] and loaded["step"] == 3


def test_resumed_training_continues_exactly_as_an_uninterrupted_run(tmp_path):
    """Stop at step 3 of 6, save, load, resume: losses and weights equal the
    uninterrupted run's, bit for bit.

    Dropout is on, so this also checks that the random state is restored, not
    re-seeded.
    """
    config = TrainConfig(
        max_iters=6,
        batch_size=4,
        eval_interval=2,
        progress=False,
        device="cpu",
    )
    whole = tiny(dropout=0.2)
    full = train(whole, data(), config)

    first = tiny(dropout=0.2)
    train(
        first,
        data(),
        TrainConfig(**{**config.to_dict(), "out_dir": str(tmp_path / "ck")}),
        callback=lambda step, model, history: step == 3,
    )
    model, _, state = checkpoint.load(tmp_path / "ck")
    assert state["step"] == 3
    resumed = train(
        model,
        data(),
        TrainConfig.from_dict(state["train_config"]),
        resume=state,
    )

    assert resumed["train_loss"] == full["train_loss"]
    assert (
        resumed["val_step"] == full["val_step"]
        and resumed["val_loss"] == full["val_loss"]
    )
    for (name, a), b in zip(
        whole.state_dict().items(), model.state_dict().values()
    ):
        assert torch.equal(a, b), name

    _, _, state = checkpoint.load(tmp_path / "ck")
    other = (data()[0].flip(0), data()[1])
    with pytest.raises(
        ValueError,
        match="resume needs the data the checkpoint was trained on",
    ):
        train(
            tiny(dropout=0.2),
            other,
            TrainConfig.from_dict(state["train_config"]),
            resume=state,
        )


def test_loading_never_unpickles(tmp_path, monkeypatch):
    model = tiny()
    train(
        model,
        data(),
        TrainConfig(
            max_iters=1,
            batch_size=2,
            progress=False,
            device="cpu",
            out_dir=str(tmp_path / "ck"),
        ),
    )

    def refuse(*args, **kwargs):
        raise AssertionError("checkpoint loading must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    _, _, state = checkpoint.load(tmp_path / "ck")
    assert state["step"] == 1


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path):
    class BrokenTokenizer:
        def save(self, path):
            raise OSError("disk full")

    checkpoint.save(tmp_path / "ck", tiny(), CharTokenizer.from_text(TEXT))
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(tmp_path / "ck", tiny(n_embd=32), BrokenTokenizer())
    model, tokenizer, _ = checkpoint.load(tmp_path / "ck")
    assert model.config.n_embd == 16 and tokenizer is not None


def test_refuses_to_replace_a_folder_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(
        CheckpointError,
        match="is not a minigpt checkpoint; refusing to replace it",
    ):
        checkpoint.save(tmp_path, tiny())
    assert (tmp_path / "notes.txt").read_text() == "precious"


def test_truncated_files_fail_with_a_clear_message(tmp_path):
    model = tiny()
    train(
        model,
        data(),
        TrainConfig(
            max_iters=1,
            batch_size=2,
            progress=False,
            device="cpu",
            out_dir=str(tmp_path / "ck"),
        ),
    )
    for name in (
        "model.safetensors",
        "train_state.safetensors",
        "train_state.json",
        "config.json",
    ):
        path = tmp_path / "ck" / name
        original = path.read_bytes()
        path.write_bytes(original[: len(original) // 2])
        with pytest.raises(
            CheckpointError, match=f"{name}.*(truncated|corrupt)"
        ):
            checkpoint.load(tmp_path / "ck")
        path.write_bytes(original)


def test_missing_or_foreign_checkpoints_are_named(tmp_path):
    with pytest.raises(
        CheckpointError, match="no checkpoint at .*config.json is missing"
    ):
        checkpoint.load(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps({"format": "something-else"})
    )
    with pytest.raises(
        CheckpointError, match="is not a minigpt-checkpoint version 1 file"
    ):
        checkpoint.load(tmp_path)


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    checkpoint.save(tmp_path / "ck", tiny(n_embd=16))
    with pytest.raises(
        CheckpointError,
        match="another model configuration "
        ".*n_embd: checkpoint 16 vs model 32",
    ):
        checkpoint.load_into(tiny(n_embd=32), tmp_path / "ck")
    # config.json edited to disagree with the weights it describes
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    meta["model_config"]["n_embd"] = 32
    (tmp_path / "ck" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(
        CheckpointError,
        match="does not match the model configuration in config.json",
    ):
        checkpoint.load(tmp_path / "ck")


def test_a_checkpoint_from_before_the_llama_options_still_loads(tmp_path):
    checkpoint.save(tmp_path / "ck", tiny())
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    new = ("positions", "rope_theta", "norm_layer", "norm_eps", "mlp")
    new += ("intermediate_size", "n_kv_head", "tie_embeddings")
    for key in new:
        del meta["model_config"][key]
    (tmp_path / "ck" / "config.json").write_text(json.dumps(meta))
    checkpoint.load_into(tiny(), tmp_path / "ck")
    model, _, _ = checkpoint.load(tmp_path / "ck")
    assert model.config == tiny().config


def test_a_llama_layout_checkpoint_round_trips(tmp_path):
    torch.manual_seed(0)
    model = GPT(
        GPTConfig.llama(
            vocab_size=11,
            block_size=8,
            n_layer=1,
            n_head=4,
            n_embd=16,
            n_kv_head=2,
            intermediate_size=24,
        )
    )
    checkpoint.save(tmp_path / "ck", model)
    back, _, _ = checkpoint.load(tmp_path / "ck")
    assert back.config == model.config
    for (name, a), b in zip(
        model.state_dict().items(), back.state_dict().values()
    ):
        assert torch.equal(a, b), name


def tiny_encoder(n_embd=16):
    from minigpt.encoder import Encoder, EncoderConfig

    torch.manual_seed(0)
    return Encoder(
        EncoderConfig(
            vocab_size=CharTokenizer.from_text(TEXT).vocab_size + 4,
            block_size=8,
            n_layer=1,
            n_head=2,
            n_embd=n_embd,
        )
    )


def test_an_encoder_and_its_special_tokens_round_trip(tmp_path):
    from minigpt.encoder import Encoder

    encoder = tiny_encoder()
    tokenizer = CharTokenizer.from_text(TEXT).with_special_tokens(
        ["[CLS]", "[SEP]", "[MASK]", "[PAD]"]
    )
    checkpoint.save(tmp_path / "ck", encoder, tokenizer)
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert meta["model_kind"] == "encoder"
    back, back_tok, _ = checkpoint.load(tmp_path / "ck")
    assert isinstance(back, Encoder) and back.config == encoder.config
    for (name, a), b in zip(
        encoder.state_dict().items(), back.state_dict().values()
    ):
        assert torch.equal(a, b), name
    assert back_tok.special_id("[MASK]") == tokenizer.special_id("[MASK]")
    checkpoint.load_into(tiny_encoder(), tmp_path / "ck")
    with pytest.raises(CheckpointError, match="of kind 'encoder', not 'gpt'"):
        checkpoint.load_into(tiny(), tmp_path / "ck")
    with pytest.raises(CheckpointError, match="n_embd: checkpoint 16 vs"):
        checkpoint.load_into(tiny_encoder(n_embd=32), tmp_path / "ck")
    with pytest.raises(TypeError, match="holds a minigpt GPT or Encoder"):
        checkpoint.save(tmp_path / "other", torch.nn.Linear(2, 2))
