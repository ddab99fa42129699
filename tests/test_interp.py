"""minigpt.interp: head scores on hand-made attention maps, and ablation
checked against an independent route (editing the output projection)."""

import copy

import pytest
import torch

from minigpt.interp import (
    ablate_heads,
    ablation_effects,
    attention_to,
    induction_scores,
    mean_head_outputs,
    previous_token_scores,
    repeated_random_tokens,
)
from minigpt.model import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def small_gpt(**options) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=20,
        block_size=16,
        n_layer=2,
        n_head=4,
        n_embd=32,
        **options,
    )
    return GPT(config).eval()


def test_repeated_random_tokens_repeat_and_are_reproducible():
    def draw():
        return repeated_random_tokens(
            7, 5, 3, generator=torch.Generator().manual_seed(1)
        )

    idx = draw()
    assert idx.shape == (3, 10) and idx.min() >= 0 and idx.max() < 7
    assert torch.equal(idx[:, :5], idx[:, 5:]) and torch.equal(idx, draw())
    with pytest.raises(ValueError, match="length must be a positive int"):
        repeated_random_tokens(7, 0, 3)


def one_hot_maps(target, B=2, H=3, T=8):
    """Maps whose query i puts all its weight on key target(i)."""
    maps = torch.zeros(B, H, T, T)
    for i in range(T):
        maps[:, :, i, target(i)] = 1.0
    return maps


def test_previous_token_scores_by_hand():
    previous = one_hot_maps(lambda i: max(i - 1, 0))
    first = one_hot_maps(lambda i: 0)
    scores = previous_token_scores([previous, first])
    assert scores.shape == (2, 3)
    torch.testing.assert_close(scores[0], torch.ones(3))
    # only query 1's weight on key 0 counts: 1 of the 7 queries 1..7
    torch.testing.assert_close(scores[1], torch.full((3,), 1 / 7))
    # uniform causal attention: query i gives 1/(i+1) to i-1
    uniform = torch.tril(torch.ones(8, 8))
    uniform = (uniform / uniform.sum(-1, keepdim=True)).expand(1, 1, 8, 8)
    expected = sum(1 / (i + 1) for i in range(1, 8)) / 7
    assert previous_token_scores([uniform]).item() == pytest.approx(expected)


def test_induction_scores_by_hand():
    length = 4
    induction = one_hot_maps(
        lambda i: i - length + 1 if i >= length else 0, T=2 * length
    )
    previous = one_hot_maps(lambda i: max(i - 1, 0), T=2 * length)
    scores = induction_scores([induction, previous], length)
    torch.testing.assert_close(scores[0], torch.ones(3))
    torch.testing.assert_close(scores[1], torch.zeros(3))
    with pytest.raises(ValueError, match="2 \\* length = 6 positions"):
        induction_scores([induction], 3)
    with pytest.raises(ValueError, match="one tensor \\(B, n_head, T, T\\)"):
        induction_scores([torch.zeros(2, 3, 8)], length)


def test_attention_to_per_sequence_pairs_by_hand():
    # sequence 0 looks at key 0 from every query, sequence 1 one step back
    maps = torch.stack(
        [
            one_hot_maps(lambda i: 0, B=1)[0],
            one_hot_maps(lambda i: max(i - 1, 0), B=1)[0],
        ]
    )
    queries = torch.tensor([[5, 7], [5, 7]])
    keys = torch.tensor([[0, 6], [4, 6]])
    # sequence 0: pair (5, 0) hit, (7, 6) missed; sequence 1: both hit
    torch.testing.assert_close(
        attention_to([maps], queries, keys), torch.full((1, 3), 3 / 4)
    )
    # a random map: the mean of the picked weights, computed by loops
    weights = torch.rand(2, 3, 8, 8).tril().softmax(-1)
    expected = torch.zeros(3)
    for b in range(2):
        for q, k in zip(queries[b].tolist(), keys[b].tolist()):
            expected += weights[b, :, q, k] / 4
    torch.testing.assert_close(
        attention_to([weights], queries, keys)[0], expected
    )


@pytest.mark.parametrize(
    "queries, keys, message",
    [
        ([1, 2], [0], "of one shape"),
        ([[1, 2]], [[0, 1]], "of one shape"),  # B=1 rows for a batch of 2
        ([], [], "of one shape"),
        ([2], [3], "0 <= key <= query < T=8"),
        ([8], [0], "0 <= key <= query < T=8"),
        ([2], [-1], "0 <= key <= query < T=8"),
    ],
)
def test_attention_to_refuses_bad_positions(queries, keys, message):
    maps = one_hot_maps(lambda i: 0)
    with pytest.raises(ValueError, match=message):
        attention_to(
            [maps],
            torch.tensor(queries, dtype=torch.long),
            torch.tensor(keys, dtype=torch.long),
        )


def test_scores_of_a_model_are_probabilities_per_head():
    model = small_gpt()
    idx = repeated_random_tokens(20, 8, 4)
    maps = model.attention_maps(idx)
    for scores in (previous_token_scores(maps), induction_scores(maps, 8)):
        assert scores.shape == (2, 4)
        assert (scores >= 0).all() and (scores <= 1).all()


def head_removed(model, layer, head, mean=None):
    """The independent route: zero the head's columns of c_proj.weight and,
    for a mean ablation, move what the mean contributes into the bias."""
    edited = copy.deepcopy(model)
    attn = edited.transformer.h[layer].attn
    d = attn.head_dim
    columns = slice(head * d, (head + 1) * d)
    with torch.no_grad():
        if mean is not None:
            attn.c_proj.bias += attn.c_proj.weight[:, columns] @ mean[columns]
        attn.c_proj.weight[:, columns] = 0
    return edited


@pytest.mark.parametrize("options", [{}, {"n_kv_head": 2}])
def test_ablating_a_head_removes_exactly_its_contribution(options):
    model = small_gpt(**options)
    idx = torch.randint(
        20, (3, 12), generator=torch.Generator().manual_seed(2)
    )
    before = model(idx)[0]
    with ablate_heads(model, []):
        torch.testing.assert_close(model(idx)[0], before, rtol=0, atol=0)
    with ablate_heads(model, [(1, 2)]):
        ablated = model(idx)[0]
    torch.testing.assert_close(ablated, head_removed(model, 1, 2)(idx)[0])
    assert not torch.allclose(ablated, before)
    # restored: hooks gone, weights never touched
    torch.testing.assert_close(model(idx)[0], before, rtol=0, atol=0)


def test_ablation_effects_are_the_metric_without_each_head():
    model = small_gpt()
    idx = torch.randint(
        20, (2, 10), generator=torch.Generator().manual_seed(4)
    )

    def metric(m):
        return m(idx)[0][0, -1, 0].item()

    effects = ablation_effects(model, metric)
    assert effects.shape == (2, 4)
    for layer in range(2):
        for head in range(4):
            edited = head_removed(model, layer, head)
            assert effects[layer, head].item() == pytest.approx(
                metric(edited), abs=1e-5
            )
    # every hook removed afterwards
    assert metric(model) == small_gpt()(idx)[0][0, -1, 0].item()


def test_mean_ablation_puts_the_heads_average_in_its_place():
    model = small_gpt()
    idx = torch.randint(
        20, (4, 12), generator=torch.Generator().manual_seed(3)
    )
    means = mean_head_outputs(model, idx)
    assert means.shape == (2, 32)
    with ablate_heads(model, [(0, 1)], mode="mean", means=means):
        ablated = model(idx)[0]
    expected = head_removed(model, 0, 1, mean=means[0])(idx)[0]
    torch.testing.assert_close(ablated, expected)


def test_ablation_is_undone_when_the_block_raises():
    model = small_gpt()
    idx = torch.randint(20, (1, 8))
    before = model(idx)[0]
    with pytest.raises(RuntimeError, match="inside"):
        with ablate_heads(model, [(0, 0), (1, 3)]):
            raise RuntimeError("inside")
    torch.testing.assert_close(model(idx)[0], before, rtol=0, atol=0)


@pytest.mark.parametrize(
    "bad", [(2, 0), (0, 4), (-1, 0), (0,), "0,1", (0, True)]
)
def test_bad_heads_are_refused(bad):
    with pytest.raises(ValueError, match="heads must be \\(layer, head\\)"):
        with ablate_heads(small_gpt(), [bad]):
            pass


def test_bad_mode_or_means_are_refused():
    model = small_gpt()
    with pytest.raises(ValueError, match="mode must be one of"):
        with ablate_heads(model, [(0, 0)], mode="random"):
            pass
    with pytest.raises(ValueError, match="needs means of shape \\(2, 32\\)"):
        with ablate_heads(model, [(0, 0)], mode="mean"):
            pass
