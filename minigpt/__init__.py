"""minigpt: a small, tested GPT in PyTorch.

The companion package of the book *Large Language Models from First
Principles*. One module per concept (see the book's chapter map):

- ``minigpt.data``        corpora, splits and batches
- ``minigpt.tokenizer``   characters and byte-level BPE
- ``minigpt.ngram``       count-based n-gram language models
- ``minigpt.attention``   scaled dot-product, single- and multi-head attention
- ``minigpt.model``       the GPT (GPT-2 compatible)
- ``minigpt.sampling``    greedy, temperature, top-k, top-p
- ``minigpt.encoder``     BERT: the encoder, masked-LM batches
- ``minigpt.train``       the training loop
- ``minigpt.checkpoint``  saving a training run and resuming it
- ``minigpt.zoo``         pre-trained models that train once and are cached
- ``minigpt.finetune``    classification heads, LoRA, prompt -> response rows
- ``minigpt.align``       chat format, reward model, DPO and GRPO
- ``minigpt.hf``          to and from Hugging Face ``transformers``
- ``minigpt.interp``      what heads do: pattern scores, ablating heads
- ``minigpt.tasks``       the book's tasks, one module each
- ``minigpt.textstats``   words, sentences, distinct-n, repetition, tf-idf
- ``minigpt.scaling``     parameters, FLOPs, memory and cost at scale
- ``minigpt.exercises``   a reader's functions checked against reference cases
- ``minigpt.viz``         the figure style, weight heatmaps, smoothed curves
- ``minigpt.timing``      timing functions side by side, interleaved
- ``minigpt.common``      atomic writes, argument checks, a private RNG
- ``minigpt.cli``         ``python -m minigpt train`` and ``sample``
- ``minigpt.env``         ``python -m minigpt env``: versions, device, data
- ``minigpt.__main__``    the command line: ``python -m minigpt COMMAND``

This file holds only what every chapter needs first: the version, seeding and
the choice of device.
"""

import random

import torch

__version__ = "0.1.0"

__all__ = ["__version__", "set_seed", "default_device"]


def set_seed(seed: int) -> torch.Generator:
    """Seed ``random``, NumPy (when installed) and torch, so a run repeats.

    Returns a ``torch.Generator`` seeded the same way, for code that prefers
    an explicit generator to the global one.

    >>> _ = set_seed(0); first = torch.rand(3)
    >>> _ = set_seed(0); torch.equal(torch.rand(3), first)
    True
    >>> torch.equal(torch.rand(3, generator=set_seed(0)), first)
    True
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(
            f"seed must be a non-negative int, got {seed!r}; pass e.g. "
            "set_seed(0)"
        )
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:  # NumPy is optional for minigpt itself
        pass
    else:
        np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def default_device() -> str:
    """The best device: ``"cuda"``, else ``"mps"`` (Apple), else ``"cpu"``."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
