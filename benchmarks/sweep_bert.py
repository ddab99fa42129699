"""BERT against GPT at filling in a hidden character, with more training.

The chapter "Encoders: BERT and masked language modelling" reads its
longer-training numbers from here. At the zoo's budget (2000 steps of 12
windows) the encoder spends half its steps on a plateau; this sweep trains
the zoo's two character presets, ``shakespeare-char`` (GPT) and
``shakespeare-char-bert`` (encoder), with their own recipes but ``--steps``
steps (the cosine schedule stretched to them), and every ``--every`` steps
records

    val_loss   the preset's validation loss (next character, or the masked
               characters for the encoder)
    fill_in    the share of hidden characters guessed right: one character
               of a window of the validation text hidden at a time, the
               encoder reading both sides (minigpt.encoder.fill_in), the GPT
               the characters before it

on the chapter's test: the first ``WINDOWS`` windows of 64 characters of
the validation text, positions 1..63 (the GPT needs one character to read).

    python benchmarks/sweep_bert.py --arch gpt &
    python benchmarks/sweep_bert.py --arch encoder; wait
    python benchmarks/sweep_bert.py --summary

8000 steps take about 10 minutes per model on one core;
``make sweep-bert`` runs both side by side.
"""

import argparse
import time
from dataclasses import replace

import torch
from harness import append_row, parse_sweep_args, read_rows

from minigpt import data, zoo
from minigpt.encoder import Encoder, MaskedLMBatches, fill_in
from minigpt.model import GPT, eval_mode
from minigpt.train import train

NAME = "sweep_bert"
PRESETS = {"gpt": "shakespeare-char", "encoder": "shakespeare-char-bert"}
WINDOWS = 96


def fill_in_accuracy(model, windows: torch.Tensor, mask_id) -> float:
    """Share of the hidden characters at positions 1..T-1 guessed right
    (``mask_id``: the encoder's [MASK]; None for a GPT)."""
    if isinstance(model, Encoder):
        guesses = fill_in(model, windows, mask_id)[:, 1:]
    else:
        with torch.no_grad(), eval_mode(model):
            guesses = model(windows)[0][:, :-1].argmax(-1)
    return (guesses == windows[:, 1:]).float().mean().item()


def run(arch: str, steps: int, every: int) -> dict:
    preset = zoo.PRESETS[PRESETS[arch]]
    preset = replace(
        preset,
        train={**preset.train, "max_iters": steps, "eval_interval": every},
        sample_steps=(),  # this loop records no samples
    )
    text = data.load_text(preset.corpus)
    # the characters get the same ids in both: BERT's special tokens come
    # after them
    tokenizer = zoo.build_tokenizer(preset, text)
    ids = torch.tensor(tokenizer.encode(text))
    train_ids, val_ids = data.train_val_split(ids, preset.val_fraction)
    if arch == "encoder":
        tokenizer = tokenizer.with_special_tokens(zoo.BERT_SPECIAL_TOKENS)
    config = preset.model_config(tokenizer.vocab_size)
    T = config.block_size
    windows = val_ids[: WINDOWS * T].view(WINDOWS, T)
    mask_id = tokenizer.special_id("[MASK]") if arch == "encoder" else None
    if arch == "encoder":
        source = MaskedLMBatches(
            train_ids,
            val_ids,
            T,
            mask_id,
            tokenizer.vocab_size,
            tuple(tokenizer.special_id(t) for t in zoo.BERT_SPECIAL_TOKENS),
        )
    else:
        source = (train_ids, val_ids)  # train() streams windows of them
    points = []

    def callback(step, model, history):
        if step % every == 0:
            points.append(
                {
                    "step": step,
                    "val_loss": history["val_loss"][-1],
                    "fill_in": fill_in_accuracy(model, windows, mask_id),
                }
            )

    torch.manual_seed(preset.seed)  # the zoo's initial weights
    model = Encoder(config) if arch == "encoder" else GPT(config)
    start = time.perf_counter()
    train(model, source, preset.train_config(), callback=callback)
    return {
        "arch": arch,
        "preset": preset.name,
        "steps": steps,
        "points": points,
        "wall_s": time.perf_counter() - start,
    }


def summary() -> None:
    for row in read_rows(NAME):
        print(
            f"{row['preset']} ({row['steps']} steps, {row['wall_s']:.0f} s)"
        )
        for p in row["points"]:
            print(
                f"  step {p['step']:5}  val loss {p['val_loss']:.3f}  "
                f"fill-in {100 * p['fill_in']:5.1f}%"
            )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--arch", choices=sorted(PRESETS), default="encoder")
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--every", type=int, default=1000)
    args = parse_sweep_args(parser, argv)
    if args.summary:
        return summary()
    append_row(NAME, run(args.arch, args.steps, args.every))
    summary()


if __name__ == "__main__":
    main()
