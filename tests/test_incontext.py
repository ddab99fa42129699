"""minigpt.tasks.incontext: prompts whose answer only the prompt holds."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minigpt.model import GPT, GPTConfig
from minigpt.tasks.incontext import (
    MappingBatches,
    MappingTask,
    answer_accuracy,
    answer_positions,
)
from minigpt.train import TrainConfig, train


def draw(task, split="train", n_examples=5, batch_size=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return task.sample(batch_size, n_examples, split, generator)


@pytest.mark.parametrize("split", ["train", "held-out"])
def test_the_answer_is_the_value_the_prompt_pairs_with_the_query(split):
    task = MappingTask(n_keys=10, n_values=12)
    ids, answers = draw(task, split)
    assert ids.shape == (64, 11) and answers.shape == (64,)
    for row, answer in zip(ids.tolist(), answers.tolist()):
        keys, values, query = row[0:-1:2], row[1:-1:2], row[-1]
        assert len(set(keys)) == len(keys) and query in keys
        assert all(k < 10 for k in keys) and all(10 <= v < 22 for v in values)
        assert answer == values[keys.index(query)]
        assert {task.split_of(k, v) for k, v in zip(keys, values)} == {split}


def test_held_out_pairs_never_occur_in_training_prompts():
    task = MappingTask(n_keys=8, n_values=8, held_out_every=4)
    pairs = {
        split: {
            (k, v)
            for row in draw(task, split, batch_size=400)[0].tolist()
            for k, v in zip(row[0:-1:2], row[1:-1:2])
        }
        for split in ("train", "held-out")
    }
    assert pairs["train"] and pairs["held-out"]
    assert not pairs["train"] & pairs["held-out"]
    # one pair in four is held out, and every key has both kinds
    assert len(pairs["held-out"]) == 8 * 8 // 4
    assert {k for k, _ in pairs["held-out"]} == set(range(8))


def test_sampling_is_reproducible_and_the_query_position_varies():
    task = MappingTask()
    first, second = draw(task, seed=3), draw(task, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    ids, _ = first
    positions = {row[:-1:2].index(row[-1]) for row in ids.tolist()}
    assert len(positions) == 5  # every example is queried somewhere


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="n_keys must be a positive int"):
        MappingTask(n_keys=0)
    with pytest.raises(ValueError, match="held_out_every must be between 2"):
        MappingTask(n_values=3, held_out_every=4)
    task = MappingTask(n_keys=4, n_values=4, held_out_every=2)
    with pytest.raises(ValueError, match="n_examples=5 needs as many"):
        task.sample(1, 5)
    with pytest.raises(ValueError, match="split must be one of"):
        task.sample(1, 2, split="test")


def test_answer_positions_point_at_the_answer():
    task = MappingTask()
    ids, answers = draw(task, n_examples=6)
    positions = answer_positions(ids)
    assert torch.equal(ids[torch.arange(len(ids)), positions], answers)
    assert torch.equal(ids[torch.arange(len(ids)), positions - 1], ids[:, -1])
    bad = ids.clone()
    bad[:, -1] = 31  # a key that some prompts do not show
    missing = [31 not in row[:-1:2] for row in bad.tolist()]
    assert any(missing)
    with pytest.raises(ValueError, match="exactly once among its keys"):
        answer_positions(bad)


class FirstValue(nn.Module):
    """A 'model' that always answers the first value of the prompt."""

    vocab_size = 64

    def forward(self, ids, targets=None):
        return F.one_hot(
            ids[:, 1:2].expand_as(ids), self.vocab_size
        ).float(), None


def test_answer_accuracy_counts_right_answers():
    ids, answers = draw(MappingTask(), n_examples=4, batch_size=200)
    expected = (ids[:, 1] == answers).float().mean().item()
    assert 0.15 < expected < 0.35  # the query is the first key 1 time in 4
    assert answer_accuracy(FirstValue(), ids, answers) == expected


def test_mapping_batches_train_on_the_answer_only():
    source = MappingBatches(MappingTask(), max_examples=4, val_size=64)
    generator = torch.Generator().manual_seed(0)
    lengths = set()
    for _ in range(40):
        ids, targets = source.sample(8, generator)
        lengths.add(ids.shape[1])
        assert (targets[:, :-1] == -1).all()
        assert torch.equal(
            targets[:, -1], ids[torch.arange(8), answer_positions(ids)]
        )
        pairs = zip(
            ids[:, 0:-1:2].flatten().tolist(),
            ids[:, 1:-1:2].flatten().tolist(),
        )
        assert {source.task.split_of(k, v) for k, v in pairs} == {"train"}
    assert lengths == {3, 5, 7, 9}  # k = 1 .. 4 examples
    again = MappingBatches(MappingTask(), max_examples=4, val_size=64)
    first = source.sample(8, torch.Generator().manual_seed(5))
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            first, again.sample(8, torch.Generator().manual_seed(5))
        )
    )
    assert source.fingerprint() == again.fingerprint()
    assert (
        MappingBatches(MappingTask(), 5, 64).fingerprint()
        != source.fingerprint()
    )


def test_mapping_batches_validate_on_held_out_answers():
    source = MappingBatches(MappingTask(), max_examples=3, val_size=50)
    pairs = zip(
        source.val_ids[:, 0:-1:2].flatten().tolist(),
        source.val_ids[:, 1:-1:2].flatten().tolist(),
    )
    assert {source.task.split_of(k, v) for k, v in pairs} == {"held-out"}
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=64, block_size=7, n_layer=1, n_head=2, n_embd=16)
    )
    logits, _ = model.eval()(source.val_ids)
    expected = F.cross_entropy(logits[:, -1], source.val_answers).item()
    # batches of 16, 16, 16 and 2 rows, weighted by their size
    assert source.evaluate(model, 16) == pytest.approx(expected, rel=1e-5)
    history = train(
        model,
        source,
        TrainConfig(
            max_iters=3,
            batch_size=4,
            eval_interval=0,
            device="cpu",
            progress=False,
        ),
    )
    assert len(history["val_loss"]) == 1 and len(history["train_loss"]) == 3


def test_mapping_batches_refuse_bad_settings():
    with pytest.raises(
        ValueError, match="max_examples must be a positive int"
    ):
        MappingBatches(MappingTask(), max_examples=0)
    with pytest.raises(ValueError, match="n_examples=9 needs as many"):
        MappingBatches(MappingTask(n_keys=8, n_values=8), max_examples=9)


def test_probe_reports_accuracy_and_the_two_head_patterns():
    source = MappingBatches(MappingTask(), max_examples=4, val_size=32)
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=64, block_size=9, n_layer=2, n_head=2, n_embd=16)
    )
    report = source.probe(model)
    assert report["accuracy"] == answer_accuracy(
        model, source.val_ids, source.val_answers
    )
    maps = model.attention_maps(source.val_ids)
    rows = torch.arange(32)
    answer = answer_positions(source.val_ids)
    for layer in range(2):
        by_loop = maps[layer][rows, :, 8, answer].mean(0)
        torch.testing.assert_close(
            torch.tensor(report["answer_attention"][layer]), by_loop
        )
        # values sit at 1, 3, 5, 7; their keys one step before
        previous = torch.stack(
            [maps[layer][:, :, v, v - 1] for v in (1, 3, 5, 7)]
        ).mean((0, 1))
        torch.testing.assert_close(
            torch.tensor(report["previous_token"][layer]), previous
        )


def test_sample_values_draws_each_split_uniformly():
    task = MappingTask(n_keys=4, n_values=8, held_out_every=4)
    keys = torch.tensor([1] * 4000)
    for split in ("train", "held-out"):
        values = task.sample_values(
            keys, split, torch.Generator().manual_seed(0)
        )
        allowed = {v for v in range(4, 12) if task.split_of(1, v) == split}
        assert set(values.tolist()) == allowed
        counts = torch.bincount(values, minlength=12)[sorted(allowed)]
        # uniform over the allowed values, within 5 standard deviations
        expected = 4000 / len(allowed)
        assert (counts - expected).abs().max() < 5 * expected**0.5
    with pytest.raises(ValueError, match="split must be one of"):
        task.sample_values(keys, "test")
