r"""The ``train`` and ``sample`` commands of ``python -m minigpt``.

For example::

    python -m minigpt train --preset shakespeare-char --out-dir runs/char
    python -m minigpt train --out-dir runs/char --resume --max-iters 4000
    torchrun --nproc-per-node 2 -m minigpt train \
        --preset shakespeare-char --out-dir runs/ddp
    python -m minigpt sample --checkpoint runs/char --prompt "ROMEO:"

Settings are layered: TrainConfig's defaults, then the preset, then the flags
you pass. The presets are the zoo's (:data:`minigpt.zoo.PRESETS`: corpus,
tokenizer, BPE vocabulary, model, training run, validation fraction, seed;
the GPTs trained on a corpus: not ``incontext-mapping``, which trains on a
task, nor the encoders), so
``--preset shakespeare-bpe`` with no other flag trains the zoo's BPE model's
recipe; ``tiny`` trains in seconds. ``--resume`` continues the checkpoint in
``--out-dir`` with its own model, tokenizer and settings (flags may change
``--max-iters`` and the evaluation and checkpoint intervals).
"""

import argparse
import os
from dataclasses import fields, replace

from minigpt.train import TrainConfig
from minigpt.zoo import PRESETS as ZOO_PRESETS
from minigpt.zoo import Preset

__all__ = [
    "PRESETS",
    "add_train_arguments",
    "add_sample_arguments",
    "chosen_preset",
    "run_train",
    "run_sample",
]

#: The zoo's corpus presets, and ``tiny``: a model that trains in seconds.
PRESETS = {
    **{
        name: p
        for name, p in ZOO_PRESETS.items()
        if p.task is None and p.architecture == "gpt"
    },
    "tiny": Preset(
        name="tiny",
        description="a model that trains in seconds: for trying the command "
        "and for tests",
        tokenizer="char",
        model={
            "block_size": 32,
            "n_layer": 2,
            "n_head": 2,
            "n_embd": 32,
            "dropout": 0.0,
        },
        train={"batch_size": 16, "max_iters": 200, "eval_interval": 50},
    ),
}

MODEL_FLAGS = {
    "block_size": (int, "context length in tokens"),
    "n_layer": (int, "number of Transformer blocks"),
    "n_head": (int, "attention heads per block"),
    "n_embd": (int, "width of the residual stream"),
    "dropout": (float, "dropout probability"),
    "bias": (
        lambda text: _yes_no(text, "--bias"),
        "biases in Linear and LayerNorm: yes (GPT-2) or no (nanoGPT)",
    ),
    "gelu": (str, "the MLP's GELU: tanh (GPT-2) or exact (nanoGPT)"),
}

TRAIN_HELP = {
    "max_iters": "optimizer steps in all",
    "batch_size": "sequences per step and process",
    "grad_accum_steps": "micro-batches averaged per optimizer step",
    "learning_rate": "peak learning rate",
    "min_lr": "learning rate at the end of the cosine decay",
    "warmup_iters": "steps of linear warm-up",
    "lr_decay_iters": (
        "step where the cosine reaches min_lr (default: max_iters)"
    ),
    "beta1": "AdamW beta1",
    "beta2": "AdamW beta2",
    "weight_decay": "AdamW weight decay on matrices",
    "grad_clip": "clip the gradient norm to this (0: off)",
    "eval_interval": (
        "steps between validations on the full validation split (0: end only)"
    ),
    "eval_batch_size": "windows per forward pass during validation",
    "checkpoint_interval": "steps between checkpoints (0: end only)",
    "seed": "seed of the batch sampler and dropout",
    "device": "auto, cpu, cuda, cuda:N or mps",
    "dtype": "auto (bfloat16 autocast on CUDA), float32 or bfloat16",
}
RESUME_OVERRIDES = (
    "max_iters",
    "eval_interval",
    "checkpoint_interval",
    "progress",
    "device",
)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    source = data.add_mutually_exclusive_group()
    source.add_argument(
        "--corpus",
        help="corpus name for minigpt.data.load_text (default: the preset's)",
    )
    source.add_argument(
        "--text-file",
        help="train on this UTF-8 text file instead of a named corpus",
    )
    data.add_argument(
        "--tokenizer",
        choices=("char", "bpe"),
        help="characters, or byte-level BPE (default: the preset's)",
    )
    data.add_argument(
        "--vocab-size",
        type=int,
        help="BPE vocabulary size (default: the preset's)",
    )
    data.add_argument(
        "--val-fraction",
        type=float,
        help="last fraction held out (default: the preset's)",
    )
    model = parser.add_argument_group(
        "model (GPT-2 layout unless --bias no / --gelu exact)"
    )
    model.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="shakespeare-char",
        help="the zoo's recipe to start from: data, model and training "
        "(default: %(default)s)",
    )
    for name, (kind, text) in MODEL_FLAGS.items():
        model.add_argument(
            "--" + name.replace("_", "-"), type=kind, help=text
        )
    run = parser.add_argument_group(
        "training (defaults: TrainConfig, then the preset)"
    )
    for f in fields(TrainConfig):
        if f.name in TRAIN_HELP:
            kind = {"learning_rate": float, "min_lr": float}.get(
                f.name
            ) or type(f.default)
            kind = int if f.name == "lr_decay_iters" else kind
            flag = (
                "--lr"
                if f.name == "learning_rate"
                else "--" + f.name.replace("_", "-")
            )
            run.add_argument(
                flag,
                dest=f.name,
                type=kind,
                help=f"{TRAIN_HELP[f.name]} (default: {f.default})",
            )
    run.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the model",
    )
    run.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="no progress bar",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--out-dir",
        required=True,
        help="checkpoint folder (written atomically)",
    )
    out.add_argument(
        "--resume",
        action="store_true",
        help="continue the checkpoint in --out-dir exactly",
    )


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="a folder written by `python -m minigpt train`",
    )
    parser.add_argument(
        "--prompt", default="\n", help="text to continue (default: a newline)"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=200,
        help="tokens to generate (default: %(default)s)",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="softmax temperature (default: %(default)s)",
    )
    parser.add_argument(
        "--top-k", type=int, help="sample only from the k most likely tokens"
    )
    parser.add_argument(
        "--top-p",
        type=float,
        help="sample only from the smallest set with probability >= p",
    )
    parser.add_argument(
        "--num-samples",
        type=int,
        default=1,
        help="independent samples (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="sampling seed (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda or mps (default: %(default)s)",
    )


def _yes_no(text: str, flag: str) -> bool:
    answers = {"yes": True, "true": True, "no": False, "false": False}
    if text.lower() not in answers:
        raise argparse.ArgumentTypeError(
            f"{flag} takes yes or no, got {text!r}"
        )
    return answers[text.lower()]


def _flags(args, names) -> dict:
    return {
        n: getattr(args, n)
        for n in names
        if getattr(args, n, None) is not None
    }


def chosen_preset(args) -> Preset:
    """The ``--preset`` preset with the data and model flags applied.

    Checked like any Preset.
    """
    preset = PRESETS[args.preset]
    kind = args.tokenizer or preset.tokenizer
    vocab_size = (
        args.vocab_size if args.vocab_size is not None else preset.vocab_size
    )
    if kind == "bpe" and vocab_size is None:
        raise ValueError(
            f"--tokenizer bpe needs --vocab-size: the preset {preset.name!r} "
            "is a character model "
            "(or start from --preset shakespeare-bpe)"
        )
    return replace(
        preset,
        tokenizer=kind,
        vocab_size=vocab_size if kind == "bpe" else args.vocab_size,
        corpus=args.corpus or preset.corpus,
        val_fraction=preset.val_fraction
        if args.val_fraction is None
        else args.val_fraction,
        model={**preset.model, **_flags(args, MODEL_FLAGS)},
    )


def _encode_corpus(args, preset: Preset, tokenizer=None):
    """The corpus as token ids, encoded with ``tokenizer`` if given.

    Otherwise with the preset's tokenizer, trained here.
    """
    import torch

    from minigpt.data import load_text, train_val_split
    from minigpt.zoo import build_tokenizer

    if args.text_file:
        with open(args.text_file, encoding="utf-8") as f:
            text = f.read()
    else:
        text = load_text(preset.corpus)
    if tokenizer is None:
        tokenizer = build_tokenizer(preset, text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    return tokenizer, train_val_split(ids, preset.val_fraction)


def run_train(args) -> int:
    """Train as ``args`` say.

    A setting that cannot work exits with its message, not a traceback.
    """
    try:
        return _train(args)
    except ValueError as err:  # includes CheckpointError
        raise SystemExit(f"minigpt train: error: {err}") from err


def _train(args) -> int:
    import minigpt
    from minigpt import checkpoint
    from minigpt.model import GPT
    from minigpt.train import train

    train_flags = _flags(args, [f.name for f in fields(TrainConfig)])
    train_flags["out_dir"] = args.out_dir
    if args.resume:
        model, tokenizer, state = checkpoint.load(args.out_dir)
        if state is None:
            raise SystemExit(
                f"{args.out_dir} holds no train state to resume; train it "
                "with `minigpt train`"
            )
        asked = _flags(args, MODEL_FLAGS)
        differ = {
            k: v for k, v in asked.items() if getattr(model.config, k) != v
        }
        if differ:
            raise SystemExit(
                f"--resume keeps the checkpoint's model; it has "
                f"{ {k: getattr(model.config, k) for k in differ} }, you "
                f"asked for {differ}"
            )
        ignored = sorted(
            set(train_flags) - set(RESUME_OVERRIDES) - {"out_dir"}
        )
        if ignored:
            raise SystemExit(
                f"--resume continues with the checkpoint's settings; only "
                f"{', '.join(RESUME_OVERRIDES)} may change, not "
                f"{', '.join(ignored)}"
            )
        config = TrainConfig.from_dict(
            {**state["train_config"], **train_flags}
        )
        tokenizer, data = _encode_corpus(args, chosen_preset(args), tokenizer)
    else:
        preset = chosen_preset(args)
        tokenizer, data = _encode_corpus(args, preset)
        config = TrainConfig(
            **{**preset.train, "seed": preset.seed, **train_flags}
        )
        minigpt.set_seed(config.seed)  # the initial weights repeat too
        model, state = GPT(preset.gpt_config(tokenizer.vocab_size)), None
    history = train(model, data, config, tokenizer=tokenizer, resume=state)
    if int(os.environ.get("RANK", "0")) == 0:
        final = (
            f"{history['val_loss'][-1]:.4f}" if history["val_loss"] else "n/a"
        )
        print(
            f"step {history['step'][-1] if history['step'] else 0}: "
            f"validation loss {final} "
            f"(full split); checkpoint in {args.out_dir}"
        )
    return 0


def run_sample(args) -> int:
    """Print samples as ``args`` say.

    Bad input exits with its message, not a traceback.
    """
    try:
        return _sample(args)
    except ValueError as err:
        raise SystemExit(f"minigpt sample: error: {err}") from err


def _sample(args) -> int:
    import torch

    from minigpt import checkpoint

    model, tokenizer, _ = checkpoint.load(args.checkpoint, device=args.device)
    if tokenizer is None:
        raise SystemExit(
            f"{args.checkpoint} has no tokenizer saved, so text cannot be "
            "encoded; "
            f"save it with checkpoint.save(path, model, tokenizer)"
        )
    model.eval()
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    prompt = torch.tensor(
        [tokenizer.encode(args.prompt)], dtype=torch.long, device=args.device
    )
    for i in range(args.num_samples):
        out = model.generate(
            prompt,
            args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            generator=generator,
        )
        if args.num_samples > 1:
            print(f"--- sample {i + 1} ---")
        print(tokenizer.decode(out[0].tolist()))
    return 0
