"""GPT-2's layout against the Llama layout, one change at a time, 3 seeds.

The chapter "From GPT-2 to today's models" reads its multi-seed numbers from
here. Every run trains zoo preset ``shakespeare-char``'s model (Tiny
Shakespeare characters; block 64, 4 layers, 4 heads, width 128; 2000 steps of
batch 12 with ``TrainConfig``'s default recipe) with one architectural change,
and one seed:

    gpt2      the preset itself: learned positions, LayerNorm, GELU MLP,
              biases, tied head, 4 key/value heads
    rotary    rotary positions (RoPE) instead of the learned table
    rmsnorm   RMSNorm instead of LayerNorm
    swiglu    a SwiGLU MLP instead of GELU
    no-bias   no biases in the Linear and norm layers
    gqa       2 key/value heads shared by the 4 query heads
    mqa       1 key/value head shared by all 4
    llama     all of them at once but GQA: zoo preset shakespeare-char-llama

A change that removes or adds parameters is compensated in the MLP's hidden
width, chosen so that every model has the parameter count of ``gpt2``
(809,856) as nearly as a whole width allows; the row records the count. The
recipe is the one tuned for ``gpt2`` (``benchmarks/sweep_nanogpt.py``), not
re-tuned per layout: the comparison is at equal parameters, steps, data and
recipe. Seed 0 of ``gpt2`` and of ``llama`` are the zoo's models: the same
seed, data, model and recipe.

Each row records the final validation loss on the full validation split (the
last 10 % of the text), the validation curve, the wall time, and, for the
layouts without a position table, the mean loss at each position of
256-character windows of the validation text: a model trained on 64
characters read at 4 times its length.

    python benchmarks/sweep_modern.py --variants gpt2 llama --seeds 0 1 2
    python benchmarks/sweep_modern.py --summary

Each run takes about 2 minutes on one idle core (two runs side by side on a
2-core machine: about 3 minutes each).
"""

import argparse
import itertools
import statistics
import time
from dataclasses import asdict, replace

import torch
from harness import append_row, parse_sweep_args, read_rows

from minigpt import data, scaling, zoo
from minigpt.common import seeded_rng
from minigpt.model import GPT, GPTConfig
from minigpt.train import loss_by_position, train

NAME = "sweep_modern"
GPT2 = zoo.PRESETS["shakespeare-char"]
LLAMA = zoo.PRESETS["shakespeare-char-llama"]
CHANGES = {
    "gpt2": {},
    "rotary": {"positions": "rotary"},
    "rmsnorm": {"norm_layer": "rmsnorm"},
    "swiglu": {"mlp": "swiglu"},
    "no-bias": {"bias": False},
    "gqa": {"n_kv_head": 2},
    "mqa": {"n_kv_head": 1},
}
LONG_WINDOW = 256


def matched_config(change: dict, vocab_size: int) -> GPTConfig:
    """GPT-2's config with ``change``, its MLP width matching GPT-2's size."""
    base = GPT2.gpt_config(vocab_size)
    target = scaling.param_count(base)
    changed = replace(base, **change)
    return min(
        (
            replace(changed, intermediate_size=width)
            for width in range(1, 1025)
        ),
        key=lambda config: abs(scaling.param_count(config) - target),
    )


def variant_config(variant: str, vocab_size: int) -> GPTConfig:
    if variant == "llama":
        return LLAMA.gpt_config(vocab_size)
    return matched_config(CHANGES[variant], vocab_size)


def run(variant: str, seed: int) -> dict:
    """Train ``variant`` from scratch with ``seed``; the result row."""
    text = data.load_text(GPT2.corpus)
    tokenizer = zoo.build_tokenizer(GPT2, text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_ids, val_ids = data.train_val_split(ids, GPT2.val_fraction)
    config = variant_config(variant, tokenizer.vocab_size)
    train_config = replace(GPT2.train_config(), seed=seed)
    start = time.perf_counter()
    with seeded_rng(seed):
        model = GPT(config)
        history = train(model, (train_ids, val_ids), train_config)
    seconds = time.perf_counter() - start
    row = {
        "variant": variant,
        "seed": seed,
        "config": asdict(config),
        "params": model.num_params(),
        "val_loss": history["val_loss"][-1],
        "val_curve": [
            [step, round(loss, 4)]
            for step, loss in zip(history["val_step"], history["val_loss"])
        ],
        "wall_s": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
    }
    if config.positions == "rotary":
        # no weight depends on block_size: the same weights, a longer context
        long = GPT(replace(config, block_size=LONG_WINDOW))
        long.load_state_dict(model.state_dict())
        row["loss_by_position"] = [
            round(loss, 4)
            for loss in loss_by_position(long, val_ids, LONG_WINDOW).tolist()
        ]
    return row


def summary() -> None:
    """Mean and spread of the final loss per variant, best first."""
    groups: dict[str, list[dict]] = {}
    for row in read_rows(NAME):
        groups.setdefault(row["variant"], []).append(row)

    def mean_loss(variant: str) -> float:
        return statistics.mean(r["val_loss"] for r in groups[variant])

    for variant in sorted(groups, key=mean_loss):
        rows = groups[variant]
        losses = [r["val_loss"] for r in rows]
        spread = statistics.stdev(losses) if len(losses) > 1 else float("nan")
        print(
            f"{variant:8} {mean_loss(variant):.4f} ± {spread:.4f} seeds "
            f"{[r['seed'] for r in rows]} params {rows[0]['params']:,}"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[*CHANGES, "llama"],
        choices=[*CHANGES, "llama"],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parse_sweep_args(parser, argv)
    if args.summary:
        return summary()
    for seed, variant in itertools.product(args.seeds, args.variants):
        row = run(variant, seed)
        append_row(NAME, row)
        print(
            f"{variant} seed {seed}: val {row['val_loss']:.4f}, "
            f"{row['params']:,} params, {row['wall_s']:.0f} s",
            flush=True,
        )
    summary()


if __name__ == "__main__":
    main()
