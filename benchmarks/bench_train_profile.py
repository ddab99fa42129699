"""Where a training step spends its time, before and after speed-ups.

minigpt before and after its speed-ups, and transformers. One training step
(forward, cross-entropy, backward, AdamW) at the Shakespeare character size
(vocab 65, block 64, batch 12, 4 layers, 4 heads, width 128), in seven
configurations:

- minigpt, GPT-2 layout, AdamW looping over the tensors (PyTorch's default on
  a CPU): before;
- minigpt, GPT-2 layout, fused AdamW (``minigpt.train.make_optimizer``):
  after;
- minigpt, nanoGPT's layout (no biases, exact GELU), fused AdamW;
- transformers' GPT2LMHeadModel with the looping AdamW, and with the fused
  one;
- the Llama layout (``bench_train_step.ARCHITECTURES["llama"]``): minigpt
  and transformers' LlamaForCausalLM with the same weights, fused AdamW.

Two measurements per configuration:

1. ``step_ms``: the median time of a step without the profiler, all seven
   configurations timed in interleaved rounds (one step of each per round,
   :func:`minigpt.timing.time_interleaved`), so that load on the machine hits
   them alike;
2. ``torch.profiler``'s CPU time of each kind of work over ``--steps`` steps
   of each configuration (again in turn, one profiled step at a time), as
   shares of the profiled step: matrix products
   (``aten::mm``/``addmm``/``bmm``), GELU (the fused ``aten::gelu`` kernel and
   its backward; transformers computes its GELU from small operations, which
   land in "other"), attention (the fused kernel, forward and backward),
   LayerNorm, the AdamW update (everything inside ``optimizer.step``), and the
   rest. ``ms`` in the results is each share times ``step_ms``.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_train_profile.py
[--threads N]`` (writes benchmarks/results/bench_train_profile.json; about
half a minute).
"""

import argparse
import os
import statistics

import torch
from bench_train_step import ARCHITECTURES, SIZES, make_step
from harness import save
from torch.profiler import ProfilerActivity, profile

from minigpt.model import GPT, GPTConfig
from minigpt.timing import time_interleaved
from minigpt.train import TrainConfig, make_optimizer

CONFIG, BATCH, _ = SIZES["shakespeare-char"]
# kind of work -> profiler event names whose self CPU time it collects
KINDS = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm"),
    "GELU": ("aten::gelu", "aten::gelu_backward"),
    "attention": (
        "aten::_scaled_dot_product_flash_attention_for_cpu",
        "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
    ),
    "LayerNorm": (
        "aten::native_layer_norm",
        "aten::native_layer_norm_backward",
    ),
}
OPTIMIZER_EVENT = (
    "Optimizer.step#"  # prefix of the event that holds the whole AdamW update
)


def configurations() -> dict:
    """label -> (model, logits function, optimizer, layout, AdamW kind).

    All built from the same seed.
    """
    from minigpt.hf import to_hf

    torch.manual_seed(0)
    ours = GPT(CONFIG).train()
    ours_before = GPT(CONFIG).train()
    ours_before.load_state_dict(ours.state_dict())
    nano = GPT(
        GPTConfig(**{**CONFIG.to_dict(), **ARCHITECTURES["nanogpt"]})
    ).train()
    theirs_loop, theirs_fused = to_hf(ours).train(), to_hf(ours).train()
    llama = GPT(
        GPTConfig(**{**CONFIG.to_dict(), **ARCHITECTURES["llama"]})
    ).train()
    theirs_llama = to_hf(llama).train()
    train_config = TrainConfig(learning_rate=1e-3, weight_decay=0.1)

    def adamw(model, fused):
        return torch.optim.AdamW(
            model.parameters(), lr=1e-3, weight_decay=0.1, fused=fused
        )

    def minigpt_logits(model):
        return lambda idx: model(idx)[0]

    def hf_logits(model):
        return lambda idx: model(input_ids=idx).logits

    return {
        "minigpt, GPT-2 layout, looping AdamW (before)": (
            ours_before,
            minigpt_logits(ours_before),
            adamw(ours_before, False),
            "gpt2",
            "loop",
        ),
        "minigpt, GPT-2 layout, fused AdamW (after)": (
            ours,
            minigpt_logits(ours),
            make_optimizer(ours, train_config),
            "gpt2",
            "fused",
        ),
        "minigpt, nanoGPT layout, fused AdamW": (
            nano,
            minigpt_logits(nano),
            make_optimizer(nano, train_config),
            "nanogpt",
            "fused",
        ),
        "transformers, looping AdamW": (
            theirs_loop,
            hf_logits(theirs_loop),
            adamw(theirs_loop, False),
            "gpt2",
            "loop",
        ),
        "transformers, fused AdamW": (
            theirs_fused,
            hf_logits(theirs_fused),
            adamw(theirs_fused, True),
            "gpt2",
            "fused",
        ),
        "minigpt, Llama layout, fused AdamW": (
            llama,
            minigpt_logits(llama),
            make_optimizer(llama, train_config),
            "llama",
            "fused",
        ),
        "transformers Llama, fused AdamW": (
            theirs_llama,
            hf_logits(theirs_llama),
            adamw(theirs_llama, True),
            "llama",
            "fused",
        ),
    }


def median_seconds(steps: dict, warmup: int, repeats: int) -> dict:
    """Median seconds per call of each step, timed in interleaved rounds."""
    seconds = time_interleaved(steps, repeats=repeats, warmup=warmup)
    return {label: statistics.median(t) for label, t in seconds.items()}


def profile_once(step) -> dict:
    """CPU microseconds of each kind of work in one profiled ``step()``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    spent = {
        kind: sum(e.self_cpu_time_total for e in events if e.key in names)
        for kind, names in KINDS.items()
    }
    spent["AdamW"] = sum(
        e.cpu_time_total for e in events if e.key.startswith(OPTIMIZER_EVENT)
    )
    spent["other"] = sum(e.self_cpu_time_total for e in events) - sum(
        spent.values()
    )
    return spent


def kind_shares(steps: dict, rounds: int) -> dict:
    """label -> each kind of work's share of the profiled time.

    The shares sum to 1. One step of each configuration is profiled in turn,
    ``rounds`` times.
    """
    totals = {
        label: dict.fromkeys([*KINDS, "AdamW", "other"], 0.0)
        for label in steps
    }
    for _ in range(rounds):
        for label, step in steps.items():
            for kind, t in profile_once(step).items():
                totals[label][kind] += t
    return {
        label: {kind: t / sum(spent.values()) for kind, t in spent.items()}
        for label, spent in totals.items()
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (default 0: torch's own choice)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=10,
        help="profiled steps per configuration (default 10)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=20,
        help="timed steps per configuration (default 20)",
    )
    args = parser.parse_args(argv)
    if args.threads < 0 or args.steps < 1 or args.repeats < 1:
        parser.error(
            "need --threads >= 0, --steps >= 1, --repeats >= 1; got "
            f"{args.threads}, "
            f"{args.steps}, {args.repeats}"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()

    x = torch.randint(
        CONFIG.vocab_size,
        (BATCH, CONFIG.block_size),
        generator=torch.Generator().manual_seed(1),
    )
    y = torch.randint(
        CONFIG.vocab_size,
        (BATCH, CONFIG.block_size),
        generator=torch.Generator().manual_seed(2),
    )
    setups = configurations()
    cpu = torch.device("cpu")
    steps = {
        label: make_step(optimizer, logits_of, x, y, cpu, bf16=False)
        for label, (_, logits_of, optimizer, _, _) in setups.items()
    }
    medians = median_seconds(steps, warmup=3, repeats=args.repeats)
    shares_of = kind_shares(steps, args.steps)
    rows = []
    for label, shares in shares_of.items():
        step_ms = medians[label] * 1e3
        rows.append(
            {
                "configuration": label,
                "library": label.split(",")[0],
                "layout": setups[label][3],
                "adamw": setups[label][4],
                "step_ms": step_ms,
                "ms": {
                    kind: share * step_ms for kind, share in shares.items()
                },
                "shares": shares,
            }
        )
        parts = ", ".join(
            f"{kind} {share * step_ms:.1f}" for kind, share in shares.items()
        )
        print(f"{label}: {step_ms:.1f} ms per step ({parts})", flush=True)
    path = save("bench_train_profile", rows)
    print(f"wrote {path} ({torch.get_num_threads()} torch threads)")
    return rows


if __name__ == "__main__":
    main()
