"""minigpt.tasks.incontext: prompts whose answer only the prompt holds."""

import pytest
import torch

from minigpt.tasks.incontext import MappingTask


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
