"""The alignment chapter's stages over several seeds, and GRPO for longer.

The chapter "From language model to assistant" trains each stage once; this
sweep repeats them with ``--seeds`` (the seed of every training run and of
every sampling; the pre-trained zoo model is the same) to give their spread,
adds two controls for the instruction tuning (LoRA against full fine-tuning,
and full fine-tuning with Shakespeare mixed back in), and runs GRPO
for ``--rl-steps`` steps instead of the chapter's, recording the test
accuracy of one sample every ``--every`` steps. Every setting is the
chapter's (``RECIPE``, saved with each row; the chapter checks that they
match its own).

Per seed it records, on the chapter's 400 test prompts:

    sft / lora /     greedy % correct (seen and held-out phrasings),
    sft_mixed        trainable parameters, seconds; sft_mixed trains on one
                     window of Shakespeare's training text for every
                     ``MIX`` exchanges
    one_sample       grade shares of one sample (temperature 1) of the SFT
                     model; best_of_n: of the best of 8 by the reward model
    reward_model     % of held-out pairs ordered as the judge orders them
    dpo[beta]        grade shares of one sample, the judge's win rate against
                     the SFT model's sample, KL from the SFT model
    grpo             [(step, % correct of one sample, grade shares)], and
                     its KL from the SFT model at the end
    shakespeare      validation loss (nats per character) of each model

    python benchmarks/sweep_align.py --seeds 0 2 & \\
      python benchmarks/sweep_align.py --seeds 1; wait
    python benchmarks/sweep_align.py --summary

About 11 minutes per seed on one core; ``make sweep-align`` runs it.
"""

import argparse
import copy
import time
from collections import Counter

import torch
from harness import append_row, parse_sweep_args, read_rows

from minigpt import data
from minigpt.align import (
    DPO,
    RewardModel,
    add_chat_tokens,
    best_of_n,
    chat_rows,
    grpo_step,
    preference_rows,
    respond,
    response_rows,
    sample_responses,
    sequence_logprobs,
)
from minigpt.finetune import accuracy, add_lora, fit, trainable_parameters
from minigpt.tasks import instructions
from minigpt.train import TrainConfig, evaluate, make_optimizer
from minigpt.zoo import pretrained

NAME = "sweep_align"
#: The chapter's settings.
RECIPE = {
    "preset": "shakespeare-char",
    "n_test": 400,
    "n_train": 4000,
    "sft": {"steps": 500, "batch": 32, "lr": 2e-3, "min_lr": 1e-4},
    "lora": {"rank": 8, "alpha": 16.0, "lr": 5e-3, "min_lr": 2.5e-4},
    "preference_prompts": 600,
    "group": 4,
    "reward_model": {"steps": 150, "batch": 16, "lr": 3e-4},
    "best_of": 8,
    "dpo": {"betas": [0.1, 0.5], "steps": 100, "batch": 16, "lr": 1e-4},
    "grpo": {"prompts": 16, "group": 8, "lr": 3e-4, "max_new_tokens": 20},
    "mix": 4,
}


def setting(recipe: dict, seed: int, **changes) -> TrainConfig:
    """A fine-tuning TrainConfig: recipe's steps, batch and rates."""
    return TrainConfig(
        max_iters=recipe["steps"],
        batch_size=recipe["batch"],
        learning_rate=recipe["lr"],
        min_lr=recipe.get("min_lr", recipe["lr"] / 10),
        warmup_iters=10,
        eval_interval=0,
        progress=False,
        seed=seed,
        **changes,
    )


class Lab:
    """The chapter's data, models and measurements for one seed."""

    def __init__(self, seed: int, recipe: dict = RECIPE):
        self.seed, self.recipe = seed, recipe
        self.base, self.base_tokenizer, _ = pretrained(
            recipe["preset"], progress=False
        )
        model = copy.deepcopy(self.base)
        self.tokenizer = add_chat_tokens(model, self.base_tokenizer)
        self.fresh = model  # the base model with the chat tokens
        text = data.load_text("tinyshakespeare")
        self.train_ids, self.val_ids = (
            torch.tensor(self.base_tokenizer.encode(part))
            for part in data.train_val_split(text)
        )
        phrases = instructions.corpus_phrases(text)
        self.train_phrases, test_phrases = instructions.phrase_split(
            phrases, recipe["n_test"]
        )
        n = recipe["n_train"]
        self.train_examples = instructions.examples(
            self.train_phrases[:n], seed=1
        )
        self.test_seen = instructions.examples(test_phrases, seed=2)
        self.test_new = instructions.examples(
            test_phrases, (instructions.HELD_OUT_PHRASING,), seed=3
        )

    def generator(self, offset: int) -> torch.Generator:
        return torch.Generator().manual_seed(1000 * self.seed + offset)

    def rows(self, pairs):
        width = self.fresh.config.block_size
        inputs, targets = chat_rows(self.tokenizer, pairs, width)
        extra = width - inputs.size(1)
        return (
            torch.nn.functional.pad(inputs, (0, extra)),
            torch.nn.functional.pad(targets, (0, extra), value=-1),
        )

    def shakespeare_rows(self, n: int):
        """n random windows of the training text, as (inputs, targets)."""
        width = self.fresh.config.block_size
        starts = torch.randint(
            len(self.train_ids) - width, (n,), generator=self.generator(4)
        )
        windows = torch.stack(
            [self.train_ids[s : s + width + 1] for s in starts]
        )
        return windows[:, :-1], windows[:, 1:]

    def instruction_tune(self, lora: bool = False, mix: bool = False):
        model = copy.deepcopy(self.fresh)
        recipe = dict(self.recipe["sft"])
        if lora:
            adapter = self.recipe["lora"]
            add_lora(model, adapter["rank"], adapter["alpha"])
            # the embedding trains too: it holds the chat tokens' rows
            model.transformer.wte.weight.requires_grad_(True)
            recipe.update(lr=adapter["lr"], min_lr=adapter["min_lr"])
        train_set = self.rows(
            instructions.sft_pairs(self.train_examples, seed=4)
        )
        if mix:
            windows = self.shakespeare_rows(
                len(self.train_examples) // self.recipe["mix"]
            )
            train_set = tuple(
                torch.cat(pair) for pair in zip(train_set, windows)
            )
        start = time.perf_counter()
        fit(
            model,
            train_set,
            self.rows(instructions.sft_pairs(self.test_seen, seed=5)),
            setting(recipe, self.seed),
        )
        seconds = time.perf_counter() - start
        return model, trainable_parameters(model), seconds

    def grades(self, model, items=None, sample_seed=None, answers=None):
        items = items or self.test_seen
        if answers is None:
            answers = respond(
                model,
                self.tokenizer,
                [e.prompt for e in items],
                temperature=0.0 if sample_seed is None else 1.0,
                generator=None
                if sample_seed is None
                else self.generator(sample_seed),
            )
        return answers, [
            instructions.grade(e, a) for e, a in zip(items, answers)
        ]

    def preference_pairs(self, sft) -> list[tuple[str, str, str]]:
        group = self.recipe["group"]
        start = self.recipe["n_train"]
        items = instructions.examples(
            self.train_phrases[
                start : start + self.recipe["preference_prompts"]
            ],
            seed=6,
        )
        sampled = respond(
            sft,
            self.tokenizer,
            [e.prompt for e in items for _ in range(group)],
            max_new_tokens=24,
            temperature=1.0,
            generator=self.generator(0),
        )
        triples = []
        for i, e in enumerate(items):
            answers = [
                a
                for a in sampled[i * group : (i + 1) * group]
                if "<|" not in a
            ]
            ranked = sorted(
                answers,
                key=lambda a: instructions.GRADES.index(
                    instructions.grade(e, a)
                ),
            )
            if (
                len(ranked) > 1
                and instructions.prefer(e, ranked[-1], ranked[0]) == 0
            ):
                triples.append((e.prompt, ranked[-1], ranked[0]))
        return triples

    def kl_from(self, model, reference) -> float:
        """KL(model || reference) in nats per answer, from model's samples."""
        prompts = [e.prompt for e in self.test_seen]
        samples = sample_responses(
            model, self.tokenizer, prompts, 24, generator=self.generator(3)
        )
        rows, mask = response_rows(self.tokenizer, prompts, samples)
        with torch.no_grad():
            gap = sequence_logprobs(model, rows, mask) - sequence_logprobs(
                reference, rows, mask
            )
        return gap.mean().item()

    def shakespeare_loss(self, model) -> float:
        return evaluate(model, self.val_ids, model.config.block_size)


def shares(graded: list[str]) -> dict:
    counts = Counter(graded)
    return {g: 100 * counts[g] / len(graded) for g in instructions.GRADES}


def correct(graded: list[str]) -> float:
    return 100 * sum(g != "wrong" for g in graded) / len(graded)


def win_rate(items, answers, baseline) -> float:
    verdicts = Counter(
        instructions.prefer(e, a, b)
        for e, a, b in zip(items, answers, baseline)
    )
    return 100 * verdicts[0] / max(1, verdicts[0] + verdicts[1])


def run(seed: int, rl_steps: int, every: int, recipe: dict = RECIPE) -> dict:
    torch.manual_seed(seed)
    lab = Lab(seed, recipe)
    row = {"seed": seed, "recipe": recipe, "rl_steps": rl_steps}
    start = time.perf_counter()
    sft, n_sft, sft_s = lab.instruction_tune()
    lora, n_lora, lora_s = lab.instruction_tune(lora=True)
    mixed, n_mixed, mixed_s = lab.instruction_tune(mix=True)
    for name, model, n, seconds in (
        ("sft", sft, n_sft, sft_s),
        ("lora", lora, n_lora, lora_s),
        ("sft_mixed", mixed, n_mixed, mixed_s),
    ):
        row[name] = {
            "seen": correct(lab.grades(model)[1]),
            "held_out": correct(lab.grades(model, lab.test_new)[1]),
            "trainable": n,
            "seconds": seconds,
        }
    one, one_grades = lab.grades(sft, sample_seed=1)
    row["one_sample"] = shares(one_grades)

    triples = lab.preference_pairs(sft)
    pairs, mask = preference_rows(
        lab.tokenizer, triples, sft.config.block_size
    )
    n_held = len(pairs) // 5
    labels = torch.zeros(len(pairs), dtype=torch.long)
    reward_model = RewardModel(copy.deepcopy(sft))
    fit(
        reward_model,
        (pairs[n_held:], labels[n_held:]),
        (pairs[:n_held], labels[:n_held]),
        setting(recipe["reward_model"], seed),
    )
    row["pairs"] = len(triples)
    row["reward_model"] = 100 * accuracy(
        reward_model, pairs[:n_held], labels[:n_held]
    )
    best = best_of_n(
        sft,
        reward_model,
        lab.tokenizer,
        [e.prompt for e in lab.test_seen],
        n=recipe["best_of"],
        max_new_tokens=32,
        generator=lab.generator(1),
    )
    row["best_of_n"] = shares(lab.grades(None, answers=best)[1])

    row["dpo"], models = {}, {"sft": sft, "lora": lora, "sft_mixed": mixed}
    for beta in recipe["dpo"]["betas"]:
        policy = copy.deepcopy(sft)
        fit(
            DPO(policy, copy.deepcopy(sft), beta=beta),
            (pairs[n_held:], mask[n_held:]),
            (pairs[:n_held], mask[:n_held]),
            setting(recipe["dpo"], seed),
        )
        answers, graded = lab.grades(policy, sample_seed=1)
        row["dpo"][str(beta)] = {
            **shares(graded),
            "win_rate": win_rate(lab.test_seen, answers, one),
            "kl": lab.kl_from(policy, sft),
        }
        models[f"dpo_{beta}"] = policy

    rl = recipe["grpo"]
    policy = copy.deepcopy(sft)
    reference = copy.deepcopy(sft).requires_grad_(False)
    optimizer = make_optimizer(
        policy,
        TrainConfig(learning_rate=rl["lr"], min_lr=0.0, weight_decay=0.0),
    )
    rl_examples = instructions.examples(
        lab.train_phrases[recipe["n_train"] + recipe["preference_prompts"] :],
        seed=7,
    )
    generator = lab.generator(2)
    curve = [
        {"step": 0, "correct": correct(one_grades), **shares(one_grades)}
    ]
    for step in range(1, rl_steps + 1):
        batch = rl_examples[(step - 1) * rl["prompts"] : step * rl["prompts"]]
        grpo_step(
            policy,
            reference,
            optimizer,
            lab.tokenizer,
            [e.prompt for e in batch],
            lambda i, answer: float(
                instructions.is_correct(batch[i], answer)
            ),
            group_size=rl["group"],
            max_new_tokens=rl["max_new_tokens"],
            generator=generator,
        )
        if step % every == 0:
            graded = lab.grades(policy, sample_seed=1)[1]
            curve.append(
                {"step": step, "correct": correct(graded), **shares(graded)}
            )
    row["grpo"] = {
        "curve": curve,
        "greedy": correct(lab.grades(policy)[1]),
        "kl": lab.kl_from(policy, sft),
    }
    models["grpo"] = policy
    row["shakespeare"] = {
        name: lab.shakespeare_loss(model)
        for name, model in {"base": lab.base, **models}.items()
    }
    row["wall_s"] = time.perf_counter() - start
    return row


def summary() -> None:
    rows = read_rows(NAME)
    for row in rows:
        print(f"seed {row['seed']} ({row['wall_s']:.0f} s)")
        for name in ("sft", "lora", "sft_mixed"):
            d = row[name]
            print(
                f"  {name:10} {d['seen']:.1f}% / held-out "
                f"{d['held_out']:.1f}%, {d['trainable']:,} trained"
            )
        print(f"  reward model {row['reward_model']:.1f}%")
        print(
            f"  one sample {row['one_sample']}, best of n {row['best_of_n']}"
        )
        for beta, d in row["dpo"].items():
            print(f"  DPO beta {beta}: {d}")
        print(
            "  GRPO: "
            + ", ".join(
                f"{p['step']}: {p['correct']:.1f}%"
                for p in row["grpo"]["curve"]
            )
            + f"; KL {row['grpo']['kl']:.2f}"
        )
        print(f"  Shakespeare loss {row['shakespeare']}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--rl-steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    args = parse_sweep_args(parser, argv)
    if args.summary:
        return summary()
    for seed in args.seeds:
        append_row(NAME, run(seed, args.rl_steps, args.every))
    summary()


if __name__ == "__main__":
    main()
