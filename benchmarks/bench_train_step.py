"""Training speed: one step of minigpt's GPT vs transformers' GPT2LMHeadModel.

A training step is forward, cross-entropy, backward and one AdamW update. Each
side uses its library's default optimizer: minigpt's ``make_optimizer`` and,
for transformers, PyTorch's fused AdamW, which transformers' ``Trainer`` uses
by default with PyTorch >= 2.8 (``optim="adamw_torch_fused"``). Both compute
the loss the same way (``F.cross_entropy`` on the logits), then the two steps
run interleaved (``harness.compare``).

Three architectures of minigpt, each against transformers' model of the
same size:

- ``gpt2``: GPT-2's own layout (biases, tanh GELU), the book's default. Both
  models hold the same weights (``minigpt.hf.to_hf``) and their first losses
  are checked equal, so the ratio measures the implementations alone;
- ``llama``: the Llama layout (``GPTConfig.llama``: rotary positions,
  RMSNorm, SwiGLU, no biases, untied head) against transformers'
  ``LlamaForCausalLM`` holding the same weights (first losses checked
  equal); the target is minigpt >= 1.3x transformers at the Shakespeare
  size;
- ``nanogpt``: the layout nanoGPT trains by default (no biases, exact GELU),
  which trained about 1.5x as fast as transformers when the book was planned.
  Different models, so only their first losses are checked to be close to
  ln(vocab_size), the loss of an untrained model. In this layout two more
  pairs run: minigpt against the same model written the way nanoGPT writes it
  (``nanogpt_model.py``, same weights, losses checked equal), and that model
  against transformers, which measures the 1.5x again today.

Two sizes:

- ``shakespeare-char``: vocab 65, block 64, batch 12, 4 layers, 4 heads, width
  128 (nanoGPT's CPU Shakespeare run; the target is minigpt >= 1.3x
  transformers);
- ``bpe-6x384``: vocab 2048, block 256, batch 2, 6 layers, 6 heads, width 384
  (a BPE-sized model, batch kept small so the script runs in about a minute).

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_train_step.py
[--threads N]`` (writes benchmarks/results/bench_train_step.json). By default
torch keeps its own thread count (2 on a 2-core machine); on a machine shared
with other jobs, ``--threads 1`` is steadier. The thread count is printed and
recorded in the JSON. ``--device cuda`` times the same steps on a GPU (add
``--bf16`` for bf16 autocast and ``--compile`` for ``torch.compile`` on both
models); results go to bench_train_step_cuda[_bf16][_compile].json with the
GPU's name.
"""

import argparse
import math
import os
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from harness import compare, row, save
from nanogpt_model import NanoGPT

from minigpt.model import GPT, GPTConfig
from minigpt.train import TrainConfig, make_optimizer

# name -> (model config, batch size, repeats)
SIZES = {
    "shakespeare-char": (
        GPTConfig(
            vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128
        ),
        12,
        50,
    ),
    "bpe-6x384": (
        GPTConfig(
            vocab_size=2048, block_size=256, n_layer=6, n_head=6, n_embd=384
        ),
        2,
        16,
    ),
}
# name -> the GPTConfig fields that differ from GPT-2's layout
ARCHITECTURES = {
    "gpt2": {},
    "nanogpt": {"bias": False, "gelu": "exact"},
    # GPTConfig.llama: SwiGLU width swiglu_hidden_size(n_embd), untied head
    "llama": {
        "bias": False,
        "positions": "rotary",
        "norm_layer": "rmsnorm",
        "mlp": "swiglu",
        "tie_embeddings": False,
    },
}


def make_step(optimizer, logits_of, x, y, device, bf16: bool):
    """A function running one training step on (x, y).

    ``logits_of`` then ``optimizer``; it returns the loss tensor.
    """
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        if bf16
        else nullcontext
    )
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        with autocast():
            logits = logits_of(x)
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1)
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync()  # on a GPU, time the work, not the launch
        return loss

    return step


def bench(
    name: str,
    architecture: str,
    config: GPTConfig,
    batch: int,
    repeats: int,
    device: torch.device,
    bf16: bool,
    compiled: bool,
) -> list[dict]:
    """The rows for one size and one minigpt layout.

    minigpt vs transformers; in nanoGPT's layout also minigpt vs nanoGPT's way
    and nanoGPT's way vs transformers.
    """
    from minigpt.hf import to_hf

    torch.manual_seed(0)
    gpt2_layout = GPT(config)
    ours = (
        gpt2_layout
        if architecture == "gpt2"
        else GPT(
            GPTConfig(**{**config.to_dict(), **ARCHITECTURES[architecture]})
        )
    )
    # transformers' model of the same layout: LlamaForCausalLM with minigpt's
    # weights for the Llama layout, else GPT2LMHeadModel with GPT-2's. to_hf
    # returns eval mode; dropout is 0 either way
    theirs = to_hf(ours if architecture == "llama" else gpt2_layout)
    theirs = theirs.to(device).train()
    ours = ours.to(device).train()
    x = torch.randint(
        config.vocab_size, (batch, config.block_size), device=device
    )
    y = torch.randint(
        config.vocab_size, (batch, config.block_size), device=device
    )
    contenders = {
        "minigpt": (ours, lambda idx: ours(idx)[0]),
        "transformers": (theirs, lambda idx: theirs(input_ids=idx).logits),
    }
    pairs = [("minigpt", "transformers")]
    if architecture == "nanogpt":
        reference = NanoGPT(
            config.vocab_size,
            config.block_size,
            config.n_layer,
            config.n_head,
            config.n_embd,
        )
        # same weights: the same loss
        reference.load_state_dict(ours.state_dict())
        reference = reference.to(device).train()
        contenders["nanoGPT's way"] = (reference, reference)
        pairs += [
            ("minigpt", "nanoGPT's way"),
            ("nanoGPT's way", "transformers"),
        ]
    steps, first_losses = {}, {}
    for who, (model, logits_of) in contenders.items():
        if compiled:
            logits_of = torch.compile(logits_of)
        optimizer = (
            make_optimizer(
                model, TrainConfig(learning_rate=1e-3, weight_decay=0.1)
            )
            if who == "minigpt"
            else torch.optim.AdamW(
                model.parameters(), lr=1e-3, weight_decay=0.1, fused=True
            )
        )
        steps[who] = make_step(optimizer, logits_of, x, y, device, bf16)
        first_losses[who] = steps[who]().item()

    tolerance = 2e-2 if bf16 else 1e-4
    # holds minigpt's weights
    twin = "nanoGPT's way" if architecture == "nanogpt" else "transformers"
    assert abs(first_losses["minigpt"] - first_losses[twin]) < tolerance, (
        f"losses differ: minigpt {first_losses['minigpt']} vs {twin} "
        f"{first_losses[twin]}"
    )
    for who, loss in first_losses.items():  # untrained: about ln(vocab_size)
        assert abs(loss - math.log(config.vocab_size)) < 0.5, (
            f"untrained loss of {who} {loss}, expected about ln V"
        )
    warmup = 5 if compiled else 3
    tokens = batch * config.block_size
    rows = []
    for a, b in pairs:
        result = compare(
            f"train step, {name}, {architecture} layout, {a} vs {b}",
            steps[a],
            steps[b],
            a,
            b,
            warmup=warmup,
            repeats=repeats,
        )
        rows.append(
            row(
                result,
                size=name,
                architecture=architecture,
                device=str(device),
                bf16=bf16,
                compiled=compiled,
                batch_size=batch,
                tokens_per_step=tokens,
                a_tokens_per_s=tokens / result.a_median_s,
                b_tokens_per_s=tokens / result.b_median_s,
                config=ours.config.to_dict(),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (default 0: torch's own choice)",
    )
    parser.add_argument(
        "--device", default="cpu", help="cpu (default) or cuda"
    )
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile both models"
    )
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    device = torch.device(args.device)

    rows = [
        r
        for name, (config, batch, repeats) in SIZES.items()
        for architecture in ARCHITECTURES
        for r in bench(
            name,
            architecture,
            config,
            batch,
            repeats,
            device,
            args.bf16,
            args.compile,
        )
    ]
    script = "bench_train_step"
    if device.type == "cuda":
        script += "_cuda" + "_bf16" * args.bf16 + "_compile" * args.compile
        for r in rows:
            r["gpu"] = torch.cuda.get_device_name(device)
    path = save(script, rows)
    print(f"wrote {path} ({torch.get_num_threads()} torch threads)")
    return rows


if __name__ == "__main__":
    main()
