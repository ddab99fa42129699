"""The training loop: AdamW, warm-up, cosine decay, clipping, validation.

It also accumulates gradients and writes checkpoints. One function does the
work::

    history = train(model, (train_ids, val_ids), TrainConfig(max_iters=2000))

The loop takes its data from a *batch source* (:class:`BatchSource`), the way
minGPT's trainer takes a Dataset: the source draws a training batch with the
loop's seeded ``torch.Generator`` and evaluates a model on its validation
data. Pre-training's source is :class:`TokenStream`, which a pair of 1-D
LongTensors ``(train_ids, val_ids)`` becomes: each batch is ``batch_size``
random windows of ``block_size`` tokens, and :func:`evaluate` measures the
loss on the *whole* validation split in fixed windows, so the curve is
deterministic rather than a random estimate. Fine-tuning's source
(:class:`minigpt.finetune.ExampleSet`) draws labelled examples instead.

Each optimizer step draws ``grad_accum_steps`` batches (the generator is
seeded, so a run repeats exactly), averages their gradients, clips the
gradient norm and takes one AdamW step at the learning rate of :func:`lr_at`;
every ``eval_interval`` steps the source evaluates the model.

The same function runs data-parallel under ``torchrun`` (PyTorch DDP, gloo on
CPU, nccl on CUDA): each of the ``world_size`` processes takes its own slice
of one global batch of ``world_size * batch_size`` windows, so two processes
with ``batch_size=B`` follow the same trajectory as one process with
``2 * B``.

The defaults are the recipe tuned in ``benchmarks/sweep_nanogpt.py`` at
nanoGPT's CPU Shakespeare-character setting.
"""

import hashlib
import math
import os
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Callable, Protocol, runtime_checkable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from minigpt.common import (
    check_positive_int,
    config_from_dict,
    shape_or_type,
)
from minigpt.data import get_batch
from minigpt.model import eval_mode

Callback = Callable[[int, nn.Module, dict], "bool | None"]

__all__ = [
    "TrainConfig",
    "lr_at",
    "make_optimizer",
    "evaluate",
    "loss_by_position",
    "BatchSource",
    "TokenStream",
    "resolve_device",
    "data_fingerprint",
    "train_state",
    "train",
]

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16")


@dataclass
class TrainConfig:
    """Everything that decides a training run, except the model and data.

    ``batch_size`` is per process and per micro-step: one optimizer step sees
    ``batch_size * grad_accum_steps * world_size`` windows of ``block_size``
    tokens. ``eval_interval=0`` and ``checkpoint_interval=0`` mean "only at
    the end" (a checkpoint is written only when ``out_dir`` is set).
    """

    max_iters: int = 2000
    batch_size: int = 12
    block_size: int | None = None  # None: the model's own block_size
    grad_accum_steps: int = 1
    # tuned against nanoGPT's 1e-3: benchmarks/sweep_nanogpt.py,
    # results/sweep_nanogpt.json
    learning_rate: float = 4e-3
    min_lr: float = 4e-4
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # None: max_iters
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1
    grad_clip: float = 1.0  # 0: no clipping
    eval_interval: int = 250
    eval_batch_size: int = 64
    checkpoint_interval: int = 0
    out_dir: str | None = None
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    # auto (bfloat16 autocast on CUDA, else float32) | float32 | bfloat16
    dtype: str = "auto"
    compile: bool = False
    progress: bool = True

    def __post_init__(self):
        for name in (
            "max_iters",
            "batch_size",
            "grad_accum_steps",
            "eval_batch_size",
        ):
            fix = (
                " (zero iterations would train nothing)"
                if name == "max_iters"
                else ""
            )
            check_positive_int(
                f"TrainConfig.{name}", getattr(self, name), fix
            )
        for name in (
            "warmup_iters",
            "eval_interval",
            "checkpoint_interval",
            "seed",
        ):
            value = getattr(self, name)
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or value < 0
            ):
                raise ValueError(
                    f"TrainConfig.{name} must be an int >= 0, got {value!r}"
                )
        for name, default in (
            ("block_size", "the model's block_size"),
            ("lr_decay_iters", "max_iters"),
        ):
            value = getattr(self, name)
            if value is not None:
                check_positive_int(
                    f"TrainConfig.{name}", value, f"; or None for {default}"
                )
        if not self.learning_rate > 0:
            raise ValueError(
                "TrainConfig.learning_rate must be > 0, got "
                f"{self.learning_rate!r}"
            )
        if not 0 <= self.min_lr <= self.learning_rate:
            raise ValueError(
                "TrainConfig.min_lr must lie in [0, "
                f"learning_rate={self.learning_rate}], "
                f"got {self.min_lr!r}"
            )
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(
                    f"TrainConfig.{name} must lie in [0, 1), got "
                    f"{getattr(self, name)!r}"
                )
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError(
                f"TrainConfig.weight_decay and grad_clip must be >= 0, "
                f"got {self.weight_decay!r} and {self.grad_clip!r}"
            )
        if self.device.split(":")[0] not in DEVICES:
            raise ValueError(
                f"unknown device {self.device!r}; use one of "
                f"{', '.join(DEVICES)} (or cuda:N)"
            )
        if self.dtype not in DTYPES:
            raise ValueError(
                f"unknown dtype {self.dtype!r}; use one of "
                f"{', '.join(DTYPES)}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a dict such as ``to_dict()`` wrote.

        Unknown keys are an error, not ignored.
        """
        return config_from_dict(cls, values)


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based).

    Linear warm-up from ``lr/(warmup+1)`` to ``lr`` over ``warmup_iters``
    steps, then a half cosine from ``lr`` down to ``min_lr`` at
    ``lr_decay_iters``, then ``min_lr``:  lr_t = min_lr + (lr - min_lr) * (1 +
    cos(pi * r)) / 2, with r = (t - warmup) / (decay - warmup).
    """
    lr, warmup = config.learning_rate, config.warmup_iters
    decay = config.lr_decay_iters or config.max_iters
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if step >= decay:
        return config.min_lr
    ratio = (step - warmup) / max(1, decay - warmup)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (
        lr - config.min_lr
    )


def make_optimizer(
    model: nn.Module, config: TrainConfig
) -> torch.optim.AdamW:
    """AdamW, with weight decay on matrices (>= 2-D) only.

    That is, on linear and embedding weights. Biases and LayerNorm gains stay
    undecayed: shrinking them towards zero has no regularising meaning. Tied
    parameters are counted once.

    On CPU and CUDA the update is PyTorch's fused kernel (``fused=True``): the
    same arithmetic as the default implementation, which loops in Python over
    the tensors with about ten small operations each; on a small model that
    loop was a sizeable share of a training step
    (``benchmarks/bench_train_profile.py`` measures the share, and the
    Performance appendix shows it).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {
            "params": [p for p in params if p.dim() >= 2],
            "weight_decay": config.weight_decay,
        },
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # None: PyTorch's choice elsewhere
    fused = all(p.device.type in ("cpu", "cuda") for p in params) or None
    return torch.optim.AdamW(
        groups,
        lr=config.learning_rate,
        betas=(config.beta1, config.beta2),
        fused=fused,
    )


@torch.no_grad()
def evaluate(
    model: nn.Module, ids: torch.Tensor, block_size: int, batch_size: int = 64
) -> float:
    """Mean cross-entropy (nats per token) over the whole of ``ids``.

    ``ids`` (N,) is cut into consecutive, non-overlapping windows of
    ``block_size`` inputs; window i predicts ids[i*T + 1 : i*T + T + 1]. The
    last, shorter window covers the remainder, so every token after the first
    is predicted exactly once: the result does not depend on a random draw.
    Each window starts with an empty context, as at the start of generation.
    """
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.numel() < 2:
        got = shape_or_type(ids)
        raise ValueError(
            f"evaluate needs a 1-D tensor of at least 2 token ids, got {got}"
        )
    check_positive_int("block_size", block_size)
    check_positive_int("batch_size", batch_size)
    device = next(model.parameters()).device
    n_full = (ids.numel() - 1) // block_size
    inputs = ids[: n_full * block_size].view(n_full, block_size)
    targets = ids[1 : n_full * block_size + 1].view(n_full, block_size)
    total, count = 0.0, 0
    with eval_mode(model):
        for start in range(0, n_full, batch_size):
            x, y = (
                inputs[start : start + batch_size].to(device),
                targets[start : start + batch_size].to(device),
            )
            total += model(x, y)[1].item() * y.numel()
            count += y.numel()
        tail = ids.numel() - 1 - n_full * block_size
        if tail:
            x, y = (
                ids[-tail - 1 : -1][None].to(device),
                ids[-tail:][None].to(device),
            )
            total += model(x, y)[1].item() * tail
            count += tail
    return total / count


@torch.no_grad()
def loss_by_position(
    model: nn.Module, ids: torch.Tensor, length: int, batch_size: int = 64
) -> torch.Tensor:
    """Mean next-token loss (nats) at each position of windows of ``length``.

    ``ids`` (N,) is cut into consecutive, non-overlapping windows as in
    :func:`evaluate` (the remainder shorter than a window is left out);
    entry t of the result (length,) is the loss of predicting each window's
    token t + 1 from its tokens 0..t, averaged over the windows. Position 0
    sees one token of context, the last position ``length``. The model
    must accept ``length`` tokens: at most its ``block_size``.
    """
    check_positive_int("length", length)
    check_positive_int("batch_size", batch_size)
    n = (ids.numel() - 1) // length if isinstance(ids, torch.Tensor) else 0
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or n < 1:
        raise ValueError(
            f"loss_by_position needs a 1-D tensor of at least length + 1 = "
            f"{length + 1} token ids, got {shape_or_type(ids)}"
        )
    device = next(model.parameters()).device
    inputs = ids[: n * length].view(n, length)
    targets = ids[1 : n * length + 1].view(n, length)
    total = torch.zeros(length, dtype=torch.float64)
    with eval_mode(model):
        for start in range(0, n, batch_size):
            x = inputs[start : start + batch_size].to(device)
            y = targets[start : start + batch_size].to(device)
            logits = model(x)[0]
            losses = F.cross_entropy(
                logits.transpose(1, 2), y, reduction="none"
            )
            total += losses.double().sum(0).cpu()
    return (total / n).float()


@runtime_checkable
class BatchSource(Protocol):
    """What :func:`train` draws its data from.

    - ``len(source)``: the number of distinct training items a batch is
      drawn from (a batch larger than that is refused).
    - ``sample(batch_size, generator)``: a training batch
      ``(inputs, targets)`` on the CPU, drawn with ``generator`` only, so a
      seeded generator repeats it; ``model(inputs, targets)`` must return
      ``(output, mean loss)``.
    - ``evaluate(model, batch_size)``: the mean validation loss, a float that
      depends on no random draw.
    - ``fingerprint()``: a JSON-ready dict naming the data, which a
      checkpoint stores so that a run resumes only on the data it started on.
    """

    def __len__(self) -> int: ...

    def sample(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def evaluate(self, model: nn.Module, batch_size: int) -> float: ...

    def fingerprint(self) -> dict: ...


class TokenStream:
    """Pre-training's batch source: random windows of a token stream.

    It is evaluated on a whole split. ``train_ids`` and ``val_ids`` are 1-D
    LongTensors of token ids. :meth:`sample` draws ``batch_size`` windows of
    ``block_size`` tokens from ``train_ids`` with
    :func:`minigpt.data.get_batch`: inputs and targets
    (batch_size, block_size), the targets shifted by one. :meth:`evaluate` is
    :func:`evaluate` on all of ``val_ids``. A validation split shorter than
    one block is allowed but warned about: its loss then comes from shorter
    contexts than training sees, so it reads higher than a full split's would.
    """

    def __init__(
        self, train_ids: torch.Tensor, val_ids: torch.Tensor, block_size: int
    ):
        for name, ids in (("train", train_ids), ("validation", val_ids)):
            if (
                not isinstance(ids, torch.Tensor)
                or ids.dim() != 1
                or ids.dtype != torch.long
            ):
                raise ValueError(
                    f"{name} data must be a 1-D LongTensor of token ids, got "
                    f"{getattr(ids, 'dtype', type(ids).__name__)} of shape "
                    f"{tuple(getattr(ids, 'shape', ()))}"
                )
        if train_ids.numel() <= block_size:
            raise ValueError(
                f"block_size={block_size} needs at least {block_size + 1} "
                "training tokens, "
                f"got {train_ids.numel()}; use a smaller block_size or more "
                "data"
            )
        if val_ids.numel() < 2:
            raise ValueError(
                "validation data needs at least 2 tokens, got "
                f"{val_ids.numel()}; "
                f"use a larger val_fraction in train_val_split"
            )
        if val_ids.numel() <= block_size:
            warnings.warn(
                f"the validation split has {val_ids.numel()} tokens, fewer "
                "than one block of "
                f"block_size + 1 = {block_size + 1}: its loss comes from "
                "shorter contexts than "
                "training uses; use a larger val_fraction or a smaller "
                "block_size",
                stacklevel=2,
            )
        self.train_ids, self.val_ids, self.block_size = (
            train_ids,
            val_ids,
            block_size,
        )

    def __len__(self) -> int:
        return self.train_ids.numel() - self.block_size

    def __repr__(self) -> str:
        return (
            f"TokenStream({self.train_ids.numel()} training tokens, "
            f"{self.val_ids.numel()} validation tokens, "
            f"windows of {self.block_size})"
        )

    def sample(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return get_batch(
            self.train_ids, self.block_size, batch_size, generator
        )

    def evaluate(self, model: nn.Module, batch_size: int) -> float:
        return evaluate(model, self.val_ids, self.block_size, batch_size)

    def fingerprint(self) -> dict:
        return data_fingerprint(self.train_ids, self.val_ids)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> the best available device.

    A device that is not available fails with the fix.
    """
    if name == "auto":
        from minigpt import default_device

        name = default_device()
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {name!r} requested but CUDA is not available here; use "
            "device='cpu' or 'auto'"
        )
    mps = getattr(torch.backends, "mps", None)
    if kind == "mps" and not (mps is not None and mps.is_available()):
        raise ValueError(
            f"device {name!r} requested but MPS is not available here; use "
            "device='cpu' or 'auto'"
        )
    return torch.device(name)


@dataclass
class _Process:
    """Where this process sits: rank, world size and device.

    World size is 1 outside torchrun.
    """

    rank: int
    world_size: int
    device: torch.device
    # True when train() created the process group and must destroy it
    owns_group: bool

    @classmethod
    def setup(cls, config: TrainConfig) -> "_Process":
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls(0, 1, resolve_device(config.device), False)
        device = resolve_device(config.device)
        if device.type == "cuda":
            device = torch.device(
                "cuda", int(os.environ.get("LOCAL_RANK", "0"))
            )
            torch.cuda.set_device(device)
        owns = not dist.is_initialized()
        if owns:
            dist.init_process_group(
                backend="nccl" if device.type == "cuda" else "gloo"
            )
        return cls(dist.get_rank(), dist.get_world_size(), device, owns)


def _batch_source(model: nn.Module, data, config: TrainConfig) -> BatchSource:
    """``data`` as a :class:`BatchSource`.

    A source is used as it is; a pair ``(train_ids, val_ids)`` becomes a
    :class:`TokenStream` with windows of ``config.block_size`` (None: the
    model's context).
    """
    if isinstance(data, BatchSource):
        return data
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError(
            "data must be a pair (train_ids, val_ids) of 1-D LongTensors or "
            "a BatchSource, got "
            f"{type(data).__name__}; make a pair with "
            "minigpt.data.train_val_split(ids)"
        )
    block_size = config.block_size or model.config.block_size
    if block_size > model.config.block_size:
        raise ValueError(
            f"TrainConfig.block_size={block_size} exceeds the model's "
            "context of "
            f"{model.config.block_size} tokens; use block_size <= "
            f"{model.config.block_size}"
        )
    return TokenStream(*data, block_size)


def _check_batch_size(
    source: BatchSource, config: TrainConfig, world_size: int
) -> None:
    if config.batch_size * world_size > len(source):
        raise ValueError(
            f"batch_size={config.batch_size} (x {world_size} processes) is "
            "larger than the "
            f"{len(source)} distinct training items of {source!r}; "
            f"use a smaller batch_size, or more data"
        )


def _new_history() -> dict:
    """Lists for plotting, per step and per evaluation.

    Per step ``step``, ``lr``, ``train_loss``; per evaluation ``val_step``,
    ``val_loss``.
    """
    return {
        "step": [],
        "lr": [],
        "train_loss": [],
        "val_step": [],
        "val_loss": [],
    }


def data_fingerprint(train_ids: torch.Tensor, val_ids: torch.Tensor) -> dict:
    """Sizes and SHA-256 of the token ids.

    Resuming on other data would not continue the same run.
    """
    digest = hashlib.sha256()
    for ids in (train_ids, val_ids):
        digest.update(ids.cpu().numpy().tobytes())
    return {
        "train_tokens": train_ids.numel(),
        "val_tokens": val_ids.numel(),
        "sha256": digest.hexdigest(),
    }


def train_state(
    step: int,
    config: TrainConfig,
    optimizer,
    generator: torch.Generator,
    history: dict,
    data: dict,
) -> dict:
    """What a checkpoint needs to resume exactly.

    Step, config, optimizer, RNG states, history and data.
    """
    rng = {"batches": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "step": step,
        "train_config": config.to_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": rng,
        "history": history,
        "data": data,
    }


def _restore(
    state: dict, optimizer, generator: torch.Generator, data: dict
) -> tuple[int, dict]:
    if state["data"] != data:
        raise ValueError(
            "resume needs the data the checkpoint was trained on "
            f"({state['data']}), got {data}; "
            f"pass the same corpus, tokenizer and val_fraction"
        )
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["rng"]["batches"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state["step"], {k: list(v) for k, v in state["history"].items()}


def train(
    model: nn.Module,
    data,
    config: TrainConfig | None = None,
    callback: Callback | None = None,
    tokenizer=None,
    resume: dict | None = None,
) -> dict:
    """Train ``model`` in place on ``data`` and return the history.

    ``data`` is a :class:`BatchSource`, or a pair ``(train_ids, val_ids)`` of
    1-D token-id LongTensors, which trains on a :class:`TokenStream` of
    ``config.block_size`` windows.

    ``callback(step, model, history)`` runs after every optimizer step (on
    every process; under DDP it must return the same on every process);
    returning True stops training early. ``resume`` is the
    ``train_state`` of :func:`minigpt.checkpoint.load` (with the model loaded
    from the same checkpoint): training continues from its step exactly as if
    it had never stopped. When ``config.out_dir`` is set, the model (with
    ``tokenizer``) and the train state are saved there every
    ``checkpoint_interval`` steps and at the end (by process 0 only).
    """
    config = config or TrainConfig()
    source = _batch_source(model, data, config)
    proc = _Process.setup(config)
    try:
        _check_batch_size(source, config, proc.world_size)
        return _run(model, source, config, proc, callback, tokenizer, resume)
    finally:
        if proc.owns_group:
            dist.destroy_process_group()


def _run(
    model, source: BatchSource, config, proc, callback, tokenizer, resume
) -> dict:
    model.to(proc.device)
    model.train()
    optimizer = make_optimizer(model, config)
    generator = torch.Generator().manual_seed(config.seed)
    # dropout masks: repeatable, different per process
    torch.manual_seed(config.seed + proc.rank)
    data = source.fingerprint()
    step, history = (
        (0, _new_history())
        if resume is None
        else _restore(resume, optimizer, generator, data)
    )

    ddp = None
    runner = model
    if proc.world_size > 1:
        ddp = runner = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[proc.device.index]
            if proc.device.type == "cuda"
            else None,
        )
    if config.compile:
        runner = torch.compile(runner)
    use_bf16 = config.dtype == "bfloat16" or (
        config.dtype == "auto" and proc.device.type == "cuda"
    )
    autocast = (
        torch.autocast(device_type=proc.device.type, dtype=torch.bfloat16)
        if use_bf16
        else nullcontext()
    )
    is_main = proc.rank == 0

    def validate(at_step: int):
        with autocast:
            loss = source.evaluate(model, config.eval_batch_size)
        history["val_step"].append(at_step)
        history["val_loss"].append(loss)

    def save(at_step: int):
        if is_main and config.out_dir:
            from minigpt import checkpoint

            checkpoint.save(
                config.out_dir,
                model,
                tokenizer,
                train_state(
                    at_step, config, optimizer, generator, history, data
                ),
            )

    if step == 0 and config.eval_interval:
        validate(0)
    bar = _progress(step, config, enabled=config.progress and is_main)
    accum = config.grad_accum_steps
    for step in range(step, config.max_iters):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        loss_sum = torch.zeros((), device=proc.device)
        for micro in range(accum):
            x, y = source.sample(
                config.batch_size * proc.world_size, generator
            )
            rows = slice(
                proc.rank * config.batch_size,
                (proc.rank + 1) * config.batch_size,
            )
            x, y = x[rows].to(proc.device), y[rows].to(proc.device)
            # DDP averages gradients on the last micro-step only
            sync = (
                ddp.no_sync()
                if ddp is not None and micro < accum - 1
                else nullcontext()
            )
            with sync, autocast:
                _, loss = runner(x, y)
            (loss / accum).backward()
            loss_sum += loss.detach().float()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        train_loss = loss_sum / accum
        if proc.world_size > 1:
            dist.all_reduce(train_loss)  # gloo has no AVG: sum, then divide
            train_loss /= proc.world_size
        done = step + 1
        history["step"].append(done)
        history["lr"].append(lr_at(step, config))
        history["train_loss"].append(train_loss.item())
        last = done == config.max_iters
        if (
            config.eval_interval and done % config.eval_interval == 0
        ) or last:
            validate(done)
        if (
            config.checkpoint_interval
            and done % config.checkpoint_interval == 0
        ) or last:
            save(done)
        if bar is not None:
            bar.update(1)
            if done % 10 == 0 or last:
                bar.set_postfix(_progress_numbers(history))
        if callback is not None and callback(done, model, history):
            save(done)
            break
    if bar is not None:
        bar.close()
    return history


def _progress_numbers(history: dict) -> dict:
    """What the progress bar shows.

    The last training loss, and the last validation loss with the step it was
    measured at, which lags the bar between evaluations (and for the whole run
    when ``max_iters < eval_interval``, until the evaluation at the end).
    """
    shown = {"loss": f"{history['train_loss'][-1]:.3f}"}
    if history["val_loss"]:
        shown["val"] = (
            f"{history['val_loss'][-1]:.3f} (step {history['val_step'][-1]})"
        )
    return shown


def _progress(start: int, config: TrainConfig, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=config.max_iters,
        initial=start,
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
