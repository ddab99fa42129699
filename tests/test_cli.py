"""``python -m minigpt train`` and ``sample``: help, a tiny run, exact resume,
sampling, refusals."""

import pytest

from minigpt import checkpoint
from minigpt.__main__ import main

TINY = [
    "--preset",
    "tiny",
    "--block-size",
    "16",
    "--n-layer",
    "1",
    "--n-embd",
    "16",
    "--batch-size",
    "4",
    "--eval-interval",
    "5",
    "--device",
    "cpu",
    "--no-progress",
]


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(
        "First Citizen:\nBefore we proceed any further, hear me "
        "speak.\n\nAll:\nSpeak, speak.\n" * 30
    )
    return str(path)


@pytest.mark.parametrize(
    "command, expected",
    [
        (
            "train",
            [
                "--out-dir",
                "--resume",
                "--preset",
                "--text-file",
                "--lr",
                "torchrun",
            ],
        ),
        ("sample", ["--checkpoint", "--prompt", "--temperature", "--top-k"]),
    ],
)
def test_help_lists_the_options(command, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in expected), out


def test_train_resume_and_sample(tmp_path, corpus, capsys):
    # train to 10, resume to 15, and compare with a run that went to 15 in one
    # go (the cosine's length defaults to max_iters, so both fix it with
    # --lr-decay-iters 15)
    out, decay = str(tmp_path / "run"), ["--lr-decay-iters", "15"]
    assert (
        main(
            [
                "train",
                "--text-file",
                corpus,
                *TINY,
                *decay,
                "--max-iters",
                "10",
                "--out-dir",
                out,
            ]
        )
        == 0
    )
    _, _, state = checkpoint.load(out)
    assert state["step"] == 10 and state["train_config"]["max_iters"] == 10
    assert (
        main(
            [
                "train",
                "--text-file",
                corpus,
                "--out-dir",
                out,
                "--resume",
                "--max-iters",
                "15",
            ]
        )
        == 0
    )
    whole = str(tmp_path / "whole")
    main(
        [
            "train",
            "--text-file",
            corpus,
            *TINY,
            *decay,
            "--max-iters",
            "15",
            "--out-dir",
            whole,
        ]
    )
    _, _, resumed = checkpoint.load(out)
    _, _, straight = checkpoint.load(whole)
    assert resumed["step"] == 15
    assert (
        resumed["history"]["train_loss"] == straight["history"]["train_loss"]
    )
    assert "step 15: validation loss" in capsys.readouterr().out

    assert (
        main(
            [
                "sample",
                "--checkpoint",
                out,
                "--prompt",
                "All:",
                "--max-new-tokens",
                "20",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    first = capsys.readouterr().out
    assert first.startswith("All:") and len(first.rstrip("\n")) >= len("All:")
    main(
        [
            "sample",
            "--checkpoint",
            out,
            "--prompt",
            "All:",
            "--max-new-tokens",
            "20",
            "--seed",
            "1",
        ]
    )
    assert capsys.readouterr().out == first  # a seeded sample repeats


def test_resume_refuses_to_change_the_model_or_the_recipe(tmp_path, corpus):
    out = str(tmp_path / "run")
    main(
        [
            "train",
            "--text-file",
            corpus,
            *TINY,
            "--max-iters",
            "2",
            "--out-dir",
            out,
        ]
    )
    with pytest.raises(
        SystemExit, match="only max_iters, .* may change, not learning_rate"
    ):
        main(
            [
                "train",
                "--text-file",
                corpus,
                "--out-dir",
                out,
                "--resume",
                "--lr",
                "0.1",
            ]
        )
    with pytest.raises(
        SystemExit,
        match=r"--resume keeps the checkpoint's model; "
        r"it has \{'n_embd': 16\}",
    ):
        main(
            [
                "train",
                "--text-file",
                corpus,
                "--out-dir",
                out,
                "--resume",
                "--n-embd",
                "32",
            ]
        )


def test_sample_needs_a_saved_tokenizer(tmp_path):
    from minigpt.model import GPT, GPTConfig

    checkpoint.save(
        tmp_path / "ck",
        GPT(
            GPTConfig(
                vocab_size=8, block_size=4, n_layer=1, n_head=1, n_embd=4
            )
        ),
    )
    with pytest.raises(SystemExit, match="has no tokenizer saved"):
        main(["sample", "--checkpoint", str(tmp_path / "ck")])


def test_nanogpt_layout_from_the_command_line(tmp_path, corpus):
    out = str(tmp_path / "nano")
    assert (
        main(
            [
                "train",
                "--text-file",
                corpus,
                *TINY,
                "--max-iters",
                "2",
                "--bias",
                "no",
                "--gelu",
                "exact",
                "--out-dir",
                out,
            ]
        )
        == 0
    )
    model, _, _ = checkpoint.load(out)
    assert model.config.bias is False and model.config.gelu == "exact"
    assert not any(
        name.endswith(".bias") for name, _ in model.named_parameters()
    )


def test_bias_takes_yes_or_no(tmp_path, corpus, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "train",
                "--text-file",
                corpus,
                *TINY,
                "--bias",
                "maybe",
                "--out-dir",
                str(tmp_path / "r"),
            ]
        )
    assert "--bias takes yes or no, got 'maybe'" in capsys.readouterr().err


def test_bad_settings_fail_before_training(tmp_path, corpus):
    with pytest.raises(
        SystemExit,
        match="error: TrainConfig.max_iters must be a positive int",
    ):
        main(
            [
                "train",
                "--text-file",
                corpus,
                *TINY,
                "--max-iters",
                "0",
                "--out-dir",
                str(tmp_path / "r"),
            ]
        )
    with pytest.raises(SystemExit, match="error: unknown device 'gpu'"):
        main(
            [
                "train",
                "--text-file",
                corpus,
                *TINY,
                "--device",
                "gpu",
                "--out-dir",
                str(tmp_path / "r"),
            ]
        )
    # argparse: exit code 2 and the choices listed
    with pytest.raises(SystemExit):
        main(["train", "--preset", "huge", "--out-dir", str(tmp_path / "r")])
    with pytest.raises(
        SystemExit, match="error: GPTConfig.gelu must be 'tanh'"
    ):
        main(
            [
                "train",
                "--text-file",
                corpus,
                *TINY,
                "--gelu",
                "none",
                "--out-dir",
                str(tmp_path / "r"),
            ]
        )


def train_args(*flags):
    from minigpt.__main__ import build_parser

    return build_parser().parse_args(["train", *flags, "--out-dir", "unused"])


def test_the_presets_are_the_zoos():
    from minigpt import cli, zoo

    corpus_presets = {
        name: preset
        for name, preset in zoo.PRESETS.items()
        if preset.task is None and preset.architecture == "gpt"
    }
    assert set(cli.PRESETS) == {*corpus_presets, "tiny"}
    assert "incontext-mapping" not in cli.PRESETS  # a task, not a corpus
    assert "shakespeare-char-bert" not in cli.PRESETS  # not a GPT
    assert all(cli.PRESETS[name] is p for name, p in corpus_presets.items())
    # no flag: exactly the zoo's recipe, BPE vocabulary included
    for name, preset in corpus_presets.items():
        assert cli.chosen_preset(train_args("--preset", name)) == preset
    assert (
        cli.chosen_preset(
            train_args("--preset", "shakespeare-bpe")
        ).vocab_size
        == 1024
    )


def test_flags_override_the_preset():
    from minigpt.cli import chosen_preset

    chosen = chosen_preset(
        train_args(
            "--preset",
            "shakespeare-bpe",
            "--vocab-size",
            "300",
            "--val-fraction",
            "0.2",
            "--n-layer",
            "2",
            "--corpus",
            "pydocs",
        )
    )
    assert (chosen.vocab_size, chosen.val_fraction, chosen.corpus) == (
        300,
        0.2,
        "pydocs",
    )
    # the rest stays the preset's
    assert chosen.model["n_layer"] == 2 and chosen.model["n_embd"] == 128
    to_char = chosen_preset(
        train_args("--preset", "shakespeare-bpe", "--tokenizer", "char")
    )
    assert (to_char.tokenizer, to_char.vocab_size) == ("char", None)
    to_bpe = chosen_preset(
        train_args(
            "--preset", "tiny", "--tokenizer", "bpe", "--vocab-size", "300"
        )
    )
    assert (to_bpe.tokenizer, to_bpe.vocab_size) == ("bpe", 300)


def test_a_bpe_run_from_a_character_preset_asks_for_a_vocabulary(
    tmp_path, corpus
):
    with pytest.raises(
        SystemExit,
        match="--tokenizer bpe needs --vocab-size: "
        "the preset 'tiny' is a character",
    ):
        main(
            [
                "train",
                "--text-file",
                corpus,
                *TINY,
                "--tokenizer",
                "bpe",
                "--out-dir",
                str(tmp_path / "r"),
            ]
        )
    with pytest.raises(SystemExit, match="vocab_size=300 is for BPE"):
        main(
            [
                "train",
                "--text-file",
                corpus,
                *TINY,
                "--vocab-size",
                "300",
                "--out-dir",
                str(tmp_path / "r"),
            ]
        )
