"""In-context learning over seeds: when it appears, and which heads do it.

The chapter "In-context learning" reads its multi-seed numbers from here.
Every run trains zoo preset ``incontext-mapping`` (prompts ``key value ...
key`` of :mod:`minigpt.tasks.incontext`, a mapping new in every prompt; 2
layers, 4 heads, width 64; 4000 steps of batch 64) with one seed; seed 0 is
the zoo's model. The zoo records, before training and every 100 steps, the
held-out accuracy and two scores per head (``MappingBatches.probe``):

    answer_attention  the weight the query puts on the value that followed
                      the same key earlier: the induction pattern
    previous_token    the weight each value puts on its key, one step back

Each row keeps those probes, the validation curve, and for the trained
model: held-out accuracy for 1 .. 8 examples in the prompt; accuracy with
each head mean-ablated alone (its output replaced by its average over
training prompts); and with groups of heads ablated together: the induction
heads (layer-1 heads whose answer attention is at least 0.5), the
previous-token heads (layer-0 heads whose previous-token score is at least
0.5), every other head, and all induction heads but the strongest.

    python benchmarks/sweep_incontext.py --seeds 0 1 2 3
    python benchmarks/sweep_incontext.py --summary

A run takes 55 to 85 s on one core (two runs side by side on a 2-core
machine); ``make sweep-incontext`` runs the 8 seeds in about 5 minutes.
"""

import argparse
import statistics
from dataclasses import replace

import torch
from harness import append_row, parse_sweep_args, read_rows

from minigpt import zoo
from minigpt.interp import ablate_heads, ablation_effects, mean_head_outputs
from minigpt.tasks.incontext import answer_accuracy

NAME = "sweep_incontext"
PRESET = zoo.PRESETS["incontext-mapping"]
PROMPTS = 512  # per accuracy measurement
THRESHOLD = 0.5  # a score at least this names a head's role


def onset(probes: list[dict], value) -> int | None:
    """The first probed step at which ``value(probe)`` has covered half of
    its rise, from its value before training to its value at the end (None:
    it never rose by 0.5). Each curve starts and ends at its own level, so a
    fixed threshold would favour the curve that starts highest."""
    start, end = value(probes[0]), value(probes[-1])
    if end - start < THRESHOLD:
        return None
    halfway = start + (end - start) / 2
    return next(p["step"] for p in probes if value(p) >= halfway)


def transition_steps(probes: list[dict]) -> dict:
    """When accuracy, the induction pattern (layer 1's strongest head) and
    the previous-token pattern (layer 0's) rose (:func:`onset`)."""
    return {
        "accuracy": onset(probes, lambda p: p["accuracy"]),
        "induction_head": onset(
            probes, lambda p: max(p["answer_attention"][-1])
        ),
        "previous_token_head": onset(
            probes, lambda p: max(p["previous_token"][0])
        ),
    }


def head_groups(probe: dict) -> dict[str, list[tuple[int, int]]]:
    """The trained model's heads by role, from its last probe."""
    induction = [
        (1, h)
        for h, score in enumerate(probe["answer_attention"][1])
        if score >= THRESHOLD
    ]
    previous = [
        (0, h)
        for h, score in enumerate(probe["previous_token"][0])
        if score >= THRESHOLD
    ]
    n_head = len(probe["answer_attention"][0])
    others = [
        (layer, h)
        for layer in (0, 1)
        for h in range(n_head)
        if (layer, h) not in induction + previous
    ]
    strongest = max(
        induction,
        key=lambda lh: probe["answer_attention"][1][lh[1]],
        default=None,
    )
    return {
        "induction": induction,
        "previous_token": previous,
        "others": others,
        "induction_but_strongest": [
            lh for lh in induction if lh != strongest
        ],
    }


def run(seed: int) -> dict:
    """Train (or load) the preset with ``seed``; the result row."""
    preset = replace(PRESET, seed=seed)
    model, _, history = zoo.pretrained(preset, progress=False)
    source = preset.batch_source()
    task = source.task
    by_k = {}
    for k in range(1, source.max_examples + 1):
        generator = torch.Generator().manual_seed(2000 + k)
        ids, answers = task.sample(PROMPTS, k, "held-out", generator)
        by_k[k] = answer_accuracy(model, ids, answers)
    train_ids, _ = task.sample(
        PROMPTS,
        source.max_examples,
        "train",
        torch.Generator().manual_seed(7),
    )
    means = mean_head_outputs(model, train_ids)

    def accuracy(m):
        return answer_accuracy(m, source.val_ids, source.val_answers)

    groups = head_groups(history["probes"][-1])
    ablated = {}
    for name, heads in groups.items():
        with ablate_heads(model, heads, "mean", means):
            ablated[name] = accuracy(model)
    return {
        "seed": seed,
        "wall_s": round(history["train_seconds"], 1),
        "torch_threads": history["torch_threads"],
        "probes": history["probes"],
        "val_curve": [
            [step, round(loss, 4)]
            for step, loss in zip(history["val_step"], history["val_loss"])
        ],
        "transition": transition_steps(history["probes"]),
        "accuracy_by_k": by_k,
        "accuracy": accuracy(model),
        "single_head_ablation": ablation_effects(
            model, accuracy, "mean", means
        ).tolist(),
        "groups": groups,
        "group_ablation": ablated,
    }


def summary() -> None:
    """Per seed: when the ability appeared, and what ablation does."""
    rows = sorted(read_rows(NAME), key=lambda r: r["seed"])
    for row in rows:
        ablated = row["group_ablation"]
        print(
            f"seed {row['seed']}: accuracy {row['accuracy']:.3f}, "
            f"transition {row['transition']}, induction heads "
            f"{len(row['groups']['induction'])}, ablated: "
            + ", ".join(f"{k} {v:.3f}" for k, v in ablated.items())
        )
    steps = [
        r["transition"]["accuracy"]
        for r in rows
        if r["transition"]["accuracy"] is not None
    ]
    if steps:
        print(
            f"{len(steps)} of {len(rows)} seeds learned the task; accuracy "
            f"rose at step {statistics.mean(steps):.0f} on average (from "
            f"{min(steps)} to {max(steps)})"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parse_sweep_args(parser, argv)
    if args.summary:
        return summary()
    for seed in args.seeds:
        row = run(seed)
        append_row(NAME, row)
        print(
            f"seed {seed}: accuracy {row['accuracy']:.3f}, transition "
            f"{row['transition']}, {row['wall_s']:.0f} s",
            flush=True,
        )
    summary()


if __name__ == "__main__":
    main()
