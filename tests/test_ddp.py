"""Data-parallel training under torchrun: 2 CPU processes (gloo) equal 1
process with the doubled batch.

The test launches ``torchrun --nproc-per-node 2 -m minigpt train`` exactly as
a reader would, so it covers the CLI under torchrun too. Each process takes
its half of one global batch of 2 x 4 windows and DDP averages the two
gradients, which is the gradient of the mean loss over all 8 windows: the
weights must match a single process trained with ``batch_size=8``, up to float
rounding.

Marked ``distributed``: it starts three extra Python processes (a few
seconds).
"""

import os
import subprocess
import sys

import pytest
import torch

import minigpt
from minigpt import checkpoint
from minigpt.data import train_val_split
from minigpt.model import GPT
from minigpt.tokenizer import CharTokenizer
from minigpt.train import TrainConfig, train

pytestmark = pytest.mark.distributed

TEXT = "Before we proceed any further, hear me speak.\nSpeak, speak.\n" * 40
MODEL = [
    "--block-size",
    "16",
    "--n-layer",
    "1",
    "--n-head",
    "2",
    "--n-embd",
    "16",
]
STEPS = 4


def test_two_cpu_processes_match_one_process_with_the_doubled_batch(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "minigpt",
        "train",
        "--text-file",
        str(corpus),
        "--preset",
        "tiny",
        *MODEL,
        "--batch-size",
        "4",
        "--max-iters",
        str(STEPS),
        "--eval-interval",
        "2",
        "--lr",
        "1e-2",
        "--device",
        "cpu",
        "--no-progress",
        "--out-dir",
        str(tmp_path / "ddp"),
    ]
    run = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ddp_model, tokenizer, state = checkpoint.load(tmp_path / "ddp")
    assert state["train_config"]["batch_size"] == 4 and state["step"] == STEPS

    # the same run in this process, one process with batch 8 (as the CLI
    # builds it)
    data = train_val_split(
        torch.tensor(CharTokenizer.from_text(TEXT).encode(TEXT)), 0.1
    )
    config = TrainConfig.from_dict(
        {**state["train_config"], "batch_size": 8, "out_dir": None}
    )
    minigpt.set_seed(config.seed)
    single = GPT(ddp_model.config)
    history = train(single, data, config)

    assert state["history"]["train_loss"] == pytest.approx(
        history["train_loss"], abs=1e-5
    )
    assert state["history"]["val_loss"] == pytest.approx(
        history["val_loss"], abs=1e-5
    )
    for (name, a), b in zip(
        single.state_dict().items(), ddp_model.state_dict().values()
    ):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)
