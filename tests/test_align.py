"""minigpt.align: the preference and reward losses, against hand
computations and PyTorch's own binary cross-entropy."""

import math

import pytest
import torch
import torch.nn.functional as F

from minigpt.align import (
    CHAT_TOKENS,
    DPO,
    RewardModel,
    add_chat_tokens,
    best_of_n,
    chat_rows,
    chat_tokenizer,
    dpo_loss,
    format_chat,
    group_advantages,
    grow_vocab,
    grpo_loss,
    grpo_step,
    preference_loss,
    preference_rows,
    respond,
    response_rows,
    response_text,
    sample_responses,
    sequence_logprobs,
)
from minigpt.finetune import PAD, accuracy, fit, pad_rows
from minigpt.hf import to_hf_tokenizer
from minigpt.model import GPT, GPTConfig, eval_mode
from minigpt.tokenizer import CharTokenizer, HFBPETokenizer, train_bpe
from minigpt.train import TrainConfig, make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def test_preference_loss_is_binary_cross_entropy_of_the_difference():
    generator = torch.Generator().manual_seed(0)
    chosen, rejected = torch.randn(2, 7, generator=generator)
    expected = F.binary_cross_entropy_with_logits(
        chosen - rejected, torch.ones(7)
    )
    torch.testing.assert_close(preference_loss(chosen, rejected), expected)
    # only the difference matters
    torch.testing.assert_close(
        preference_loss(chosen + 3, rejected + 3), expected
    )
    with pytest.raises(ValueError, match="one shape"):
        preference_loss(chosen, rejected[:3])


def test_dpo_loss_by_hand():
    # margin = 0.5 * ((-3 + 4) - (-5 + 4)) = 1
    loss, chosen, rejected = dpo_loss(
        torch.tensor([-3.0]),
        torch.tensor([-5.0]),
        torch.tensor([-4.0]),
        torch.tensor([-4.0]),
        beta=0.5,
    )
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)))
    assert chosen.item() == pytest.approx(0.5)
    assert rejected.item() == pytest.approx(-0.5)


def test_dpo_loss_at_the_reference_is_log_2_for_every_beta():
    logps = torch.tensor([-2.0, -7.5]), torch.tensor([-3.0, -1.0])
    for beta in (0.01, 0.1, 1.0):
        loss, _, _ = dpo_loss(*logps, *logps, beta=beta)
        assert loss.item() == pytest.approx(math.log(2))


def test_dpo_loss_beta_scales_the_margin_and_the_sign_favours_chosen():
    policy_chosen = torch.tensor([-3.0], requires_grad=True)
    policy_rejected = torch.tensor([-5.0], requires_grad=True)
    reference = torch.tensor([-4.0]), torch.tensor([-4.0])
    losses = [
        dpo_loss(policy_chosen, policy_rejected, *reference, beta=b)[0]
        for b in (0.1, 1.0)
    ]
    # the policy already prefers the chosen answer more than the reference:
    # a larger beta makes that count more
    assert losses[1] < losses[0] < math.log(2)
    losses[0].backward()
    # descending the loss raises the chosen answer and lowers the other
    assert policy_chosen.grad.item() < 0 < policy_rejected.grad.item()
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(*reference, *reference, beta=0.0)


def test_group_advantages_by_hand():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    advantages = group_advantages(rewards, eps=0.0 + 1e-12)
    third = math.sqrt(1 / 3)  # the unbiased std of 1, 0, 0, 1
    expected = torch.tensor(
        [[0.5, -0.5, -0.5, 0.5], [0.0] * 4]
    ) / torch.tensor([[third], [1.0]])
    torch.testing.assert_close(advantages, expected)
    for bad in (torch.ones(4), torch.ones(3, 1)):
        with pytest.raises(ValueError, match="group_size"):
            group_advantages(bad)


def grpo_inputs():
    """Two answers of 3 and 2 tokens (the second padded)."""
    logprobs = torch.tensor([[-1.0, -2.0, -0.5], [-1.5, -0.2, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    return logprobs, mask


def test_grpo_loss_on_policy_is_the_mean_advantage_and_its_gradient():
    logprobs, mask = grpo_inputs()
    logprobs.requires_grad_(True)
    advantages = torch.tensor([1.0, -2.0])
    loss = grpo_loss(
        logprobs, logprobs.detach(), logprobs.detach(), advantages, mask
    )
    # ratio 1 and KL 0 everywhere: minus the mean advantage
    assert loss.item() == pytest.approx(-(1.0 - 2.0) / 2)
    loss.backward()
    # policy gradient: d loss / d logp = -A / (2 answers * length)
    expected = torch.tensor([[-1 / 6, -1 / 6, -1 / 6], [2 / 4, 2 / 4, 0.0]])
    torch.testing.assert_close(logprobs.grad, expected)


def test_grpo_loss_clips_and_penalises_the_distance_to_the_reference():
    logprobs = torch.log(torch.tensor([[0.3, 0.2]])).requires_grad_(True)
    old = torch.log(torch.tensor([[0.2, 0.4]]))  # ratios 1.5 and 0.5
    mask = torch.ones(1, 2, dtype=torch.bool)
    # A > 0: the ratio 1.5 is clipped to 1.2, the ratio 0.5 counts as is
    loss = grpo_loss(
        logprobs, old, logprobs.detach(), torch.tensor([2.0]), mask
    )
    assert loss.item() == pytest.approx(-(1.2 * 2 + 0.5 * 2) / 2)
    loss.backward()
    assert logprobs.grad[0, 0].item() == 0.0  # clipped: no gradient
    assert logprobs.grad[0, 1].item() == pytest.approx(-0.5 * 2 / 2)
    # the KL estimate: exp(d) - d - 1 with d = ref - logp = 0.5
    on_policy = torch.zeros(1, 2)
    reference = torch.full((1, 2), 0.5)
    kl = math.exp(0.5) - 0.5 - 1
    loss = grpo_loss(
        on_policy, on_policy, reference, torch.tensor([0.0]), mask, beta=0.1
    )
    assert loss.item() == pytest.approx(0.1 * kl)


def test_grpo_loss_refuses_bad_inputs():
    logprobs, mask = grpo_inputs()
    advantages = torch.zeros(2)
    with pytest.raises(ValueError, match="one value per answer"):
        grpo_loss(logprobs, logprobs, logprobs, torch.zeros(3), mask)
    with pytest.raises(ValueError, match="no token"):
        grpo_loss(logprobs, logprobs, logprobs, advantages, mask & False)
    with pytest.raises(ValueError, match="one shape"):
        grpo_loss(logprobs, logprobs[:1], logprobs, advantages, mask)
    with pytest.raises(ValueError, match="clip"):
        grpo_loss(logprobs, logprobs, logprobs, advantages, mask, clip=1.5)


def test_sequence_logprobs_sum_the_response_tokens_by_hand():
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    ).eval()
    rows = [[3, 4, 5, 6, 7], [1, 2, 9]]  # prompts of 2 and 1 tokens
    prompt_lengths = [2, 1]
    idx = pad_rows(rows)
    mask = torch.zeros_like(idx, dtype=torch.bool)
    for i, (row, p) in enumerate(zip(rows, prompt_lengths)):
        mask[i, p : len(row)] = True
    with torch.no_grad():
        scored = sequence_logprobs(model, idx, mask)
        for i, (row, p) in enumerate(zip(rows, prompt_lengths)):
            logits = model(torch.tensor([row]))[0][0]
            logp = F.log_softmax(logits, dim=-1)
            by_hand = sum(logp[t - 1, row[t]] for t in range(p, len(row)))
            assert scored[i].item() == pytest.approx(by_hand.item(), abs=1e-5)
    assert (idx == PAD).any()
    with pytest.raises(ValueError, match="position 0"):
        sequence_logprobs(model, idx, torch.ones_like(mask))
    with pytest.raises(ValueError, match="bool tensor"):
        sequence_logprobs(model, idx, mask[:, :3])


TEXT = "Say hi, hello to the world. The world says yo back to you. " * 20


def test_format_chat_and_its_bad_input():
    assert format_chat("Hi?") == "<|user|>Hi?<|assistant|>"
    assert (
        format_chat("Hi?", "Hello.")
        == "<|user|>Hi?<|assistant|>Hello.<|end|>"
    )
    with pytest.raises(ValueError, match="chat marker"):
        format_chat("a <|end|> b")


def test_chat_tokens_keep_the_merges_and_survive_save_and_load(tmp_path):
    base = train_bpe(TEXT, 300)
    chat = chat_tokenizer(base)
    assert chat.special_tokens == list(CHAT_TOKENS)
    assert chat.vocab_size == base.vocab_size + 3
    assert chat.encode("say hello") == base.encode("say hello")
    ids = chat.encode(format_chat("say hello", "hello"))
    assert ids[0] == chat.special_id("<|user|>") and ids[
        -1
    ] == chat.special_id("<|end|>")
    loaded = HFBPETokenizer.load(chat.save(tmp_path / "tokenizer.json"))
    assert loaded.encode(format_chat("say hello", "hello")) == ids


def test_apply_chat_template_gives_the_ids_of_format_chat():
    chat = chat_tokenizer(train_bpe(TEXT, 300))
    hf = to_hf_tokenizer(chat)
    messages = [
        {"role": "user", "content": "Say hello."},
        {"role": "assistant", "content": "Hello, world."},
    ]
    ids = hf.apply_chat_template(messages, tokenize=True, return_dict=True)
    assert list(ids["input_ids"]) == chat.encode(
        format_chat("Say hello.", "Hello, world.")
    )
    asked = hf.apply_chat_template(
        messages[:1], tokenize=False, add_generation_prompt=True
    )
    assert asked == format_chat("Say hello.")
    # a tokenizer without the chat tokens gets no template
    assert to_hf_tokenizer(train_bpe(TEXT, 300)).chat_template is None


def test_chat_rows_train_on_the_response_and_its_end_only():
    chat = chat_tokenizer(CharTokenizer.from_text(TEXT + "?"))
    inputs, targets = chat_rows(chat, [("hi?", "hello"), ("say", "yo")], 32)
    for row, (prompt, response) in enumerate(
        [("hi?", "hello"), ("say", "yo")]
    ):
        ids = chat.encode(format_chat(prompt, response))
        n_prompt = len(chat.encode(format_chat(prompt)))
        assert inputs[row, : len(ids) - 1].tolist() == ids[:-1]
        trained = targets[row][targets[row] != -1].tolist()
        # the response's characters, then <|end|>
        assert trained == ids[n_prompt:]
        assert chat.decode(trained) == response + "<|end|>"
    with pytest.raises(ValueError, match="chat tokens"):
        chat_rows(CharTokenizer.from_text(TEXT), [("hi", "yo")], 32)


def chat_model(seed=0, tie_embeddings=True):
    """A tiny character GPT and its chat tokenizer."""
    torch.manual_seed(seed)
    tokenizer = CharTokenizer.from_text(TEXT + "?")
    model = GPT(
        GPTConfig(
            vocab_size=tokenizer.vocab_size,
            block_size=32,
            n_layer=1,
            n_head=2,
            n_embd=16,
            tie_embeddings=tie_embeddings,
        )
    )
    return model, add_chat_tokens(model, tokenizer)


@pytest.mark.parametrize("tie_embeddings", [True, False])
def test_grow_vocab_keeps_the_old_logits_and_starts_new_rows_at_the_mean(
    tie_embeddings,
):
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            vocab_size=10,
            block_size=8,
            n_layer=1,
            n_head=2,
            n_embd=8,
            tie_embeddings=tie_embeddings,
        )
    ).eval()
    idx = torch.randint(10, (2, 6))
    before = model(idx)[0]
    old_head = model.lm_head.weight.detach().clone()
    grow_vocab(model, 13)
    after = model(idx)[0]
    assert after.shape == (2, 6, 13) and model.config.vocab_size == 13
    torch.testing.assert_close(after[..., :10], before)
    wte, head = model.transformer.wte.weight, model.lm_head.weight
    assert (head is wte) == tie_embeddings
    torch.testing.assert_close(wte[10:], wte[:10].mean(0).expand(3, -1))
    torch.testing.assert_close(head[10:], old_head.mean(0).expand(3, -1))
    model(torch.tensor([[12, 11]]))  # the new ids are accepted
    with pytest.raises(ValueError, match="only grows"):
        grow_vocab(model, 12)


def test_add_chat_tokens_refuses_another_tokenizer():
    model, chat = chat_model()
    assert model.config.vocab_size == chat.vocab_size
    with pytest.raises(ValueError, match="token ids"):
        # the model has grown already
        add_chat_tokens(model, CharTokenizer.from_text(TEXT + "?"))


def test_sample_responses_match_one_prompt_at_a_time_and_stop_at_end():
    model, chat = chat_model()
    end = chat.special_id("<|end|>")
    prompts = ["say hi?", "yo", "the world?", "hi"]  # two lengths twice
    responses = sample_responses(model, chat, prompts, 12, temperature=0)
    for prompt, response in zip(prompts, responses):
        asked = torch.tensor([chat.encode(format_chat(prompt))])
        alone = model.generate(asked, 12, temperature=0)[0, asked.size(1) :]
        alone = alone.tolist()
        expected = alone[: alone.index(end) + 1] if end in alone else alone
        assert response == expected
    # a model that always says <|end|> stops after one token: every final
    # state is all ones, and <|end|>'s row is the largest
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.lm_head.weight[end] = 10.0
    assert sample_responses(model, chat, prompts[:1], 12, temperature=0) == [
        [end]
    ]
    assert response_text(chat, [end]) == ""
    assert respond(model, chat, ["hi"]) == [""]


def test_response_rows_mark_the_response_tokens():
    _, chat = chat_model()
    rows, mask = response_rows(chat, ["hi", "say yo"], [[5, 6], [7]])
    for i, (prompt, response) in enumerate([("hi", [5, 6]), ("say yo", [7])]):
        asked = chat.encode(format_chat(prompt))
        n = len(asked) + len(response)
        assert rows[i, :n].tolist() == asked + response
        assert (rows[i, n:] == PAD).all()
        assert mask[i].nonzero()[:, 0].tolist() == list(range(len(asked), n))
    with pytest.raises(ValueError, match="one length"):
        response_rows(chat, ["hi"], [])


def test_preference_rows_put_the_chosen_answer_first():
    _, chat = chat_model()
    pairs, mask = preference_rows(
        chat, [("hi?", "hello", "yo"), ("say", "yo", "the world")], 32
    )
    assert pairs.shape == mask.shape == (2, 2, pairs.size(2))
    chosen = pairs[0, 0][mask[0, 0]].tolist()
    rejected = pairs[1, 1][mask[1, 1]].tolist()
    assert chat.decode(chosen) == "hello<|end|>"
    assert chat.decode(rejected) == "the world<|end|>"
    with pytest.raises(ValueError, match="block_size"):
        preference_rows(chat, [("hi?", "hello " * 5, "yo")], 20)
    with pytest.raises(ValueError, match="chat marker"):
        preference_rows(chat, [("hi?", "yo<|end|>", "yo")], 32)


def test_reward_model_scores_the_last_token_and_its_loss_is_bradley_terry():
    model, chat = chat_model()
    reward_model = RewardModel(model).eval()
    pairs, _ = preference_rows(
        chat, [("hi?", "hello", "yo"), ("say", "the world", "yo")], 32
    )
    labels = torch.tensor([0, 1])
    rewards, loss = reward_model(pairs, labels)
    for i in range(2):
        for j in range(2):
            row = pairs[i, j][pairs[i, j] != PAD][None]  # unpadded
            hidden = model.hidden_states(row)[0, -1]
            by_hand = reward_model.score_head(hidden)[0]
            assert rewards[i, j].item() == pytest.approx(by_hand.item())
    # two logits under a softmax: the same as cross-entropy
    torch.testing.assert_close(loss, F.cross_entropy(rewards, labels))
    torch.testing.assert_close(
        loss,
        preference_loss(
            torch.stack([rewards[0, 0], rewards[1, 1]]),
            torch.stack([rewards[0, 1], rewards[1, 0]]),
        ),
    )
    assert accuracy(reward_model, pairs, labels) == pytest.approx(
        ((rewards[:, 0] > rewards[:, 1]).long() == 1 - labels)
        .float()
        .mean()
        .item()
    )
    with pytest.raises(ValueError, match="0 or 1"):
        reward_model(pairs, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"\(B, 2, T\)"):
        reward_model(pairs[:, 0])


class ShortestWins(torch.nn.Module):
    """A stand-in reward model: minus the number of real tokens."""

    def score(self, rows):
        return -(rows != PAD).sum(dim=1).float()


def test_best_of_n_keeps_the_sample_the_reward_model_ranks_highest():
    model, chat = chat_model()
    prompts = ["hi", "say yo"]
    best = best_of_n(
        model,
        ShortestWins(),
        chat,
        prompts,
        n=5,
        max_new_tokens=8,
        generator=torch.Generator().manual_seed(3),
    )
    samples = sample_responses(
        model,
        chat,
        [p for p in prompts for _ in range(5)],
        8,
        generator=torch.Generator().manual_seed(3),
    )
    for i in range(2):
        group = samples[5 * i : 5 * i + 5]
        assert best[i] == response_text(chat, min(group, key=len))
    with pytest.raises(ValueError, match="n must"):
        best_of_n(model, ShortestWins(), chat, prompts, n=0)


def test_dpo_module_is_dpo_loss_and_trains_only_the_policy():
    policy, chat = chat_model()
    reference = GPT(policy.config)
    reference.load_state_dict(policy.state_dict())
    pairs, mask = preference_rows(
        chat,
        [("hi?", "hello", "yo"), ("say", "the world", "yo")] * 4,
        32,
    )
    dpo = DPO(policy, reference, beta=0.5)
    rewards, loss = dpo(pairs, mask)
    # the policy is the reference: every implicit reward is 0, the loss log 2
    assert loss.item() == pytest.approx(math.log(2))
    assert rewards.abs().max().item() == pytest.approx(0.0, abs=1e-6)
    assert not any(p.requires_grad for p in reference.parameters())
    before = {k: v.clone() for k, v in reference.state_dict().items()}
    fit(
        dpo,
        (pairs, mask),
        (pairs, mask),
        TrainConfig(
            max_iters=20,
            batch_size=4,
            learning_rate=1e-2,
            warmup_iters=0,
            eval_interval=0,
            progress=False,
        ),
    )
    for k, v in reference.state_dict().items():
        torch.testing.assert_close(v, before[k])
    rewards, loss = dpo(pairs, mask)
    assert loss.item() < 0.5 and (rewards[:, 0] > rewards[:, 1]).all()
    # the rewards are beta times the log-ratios
    flat, flat_mask = pairs.flatten(0, 1), mask.flatten(0, 1)
    with torch.no_grad(), eval_mode(policy):
        ratio = sequence_logprobs(
            policy, flat, flat_mask
        ) - sequence_logprobs(reference, flat, flat_mask)
    torch.testing.assert_close(rewards.flatten(), 0.5 * ratio)
    with pytest.raises(ValueError, match="copy"):
        DPO(policy, policy)
    with pytest.raises(ValueError, match="beta"):
        DPO(policy, reference, beta=-1)


def grpo_setup(seed=0):
    policy, chat = chat_model(seed)
    reference = GPT(policy.config)
    reference.load_state_dict(policy.state_dict())
    optimizer = make_optimizer(
        policy, TrainConfig(learning_rate=1e-2, weight_decay=0.0)
    )
    return policy, reference.requires_grad_(False), optimizer, chat


def test_grpo_step_learns_nothing_from_groups_that_all_score_the_same():
    policy, reference, optimizer, chat = grpo_setup()
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    stats = grpo_step(
        policy,
        reference,
        optimizer,
        chat,
        ["hi", "say yo"],
        lambda i, answer: 1.0,
        group_size=4,
        max_new_tokens=6,
        generator=torch.Generator().manual_seed(0),
    )
    assert stats["reward"] == 1.0 and stats["mixed"] == 0.0
    assert len(stats["answers"]) == 8 and stats["kl"] == pytest.approx(0.0)
    # advantages 0 and the policy equal to the reference: zero gradient
    for k, v in policy.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_grpo_step_makes_rewarded_answers_more_likely():
    policy, reference, optimizer, chat = grpo_setup()
    prompts = ["hi", "say yo"]
    rewarded = "aeiouy hlw"

    def starts_well(i, answer):
        return float(answer[:1] in rewarded and answer != "")

    stats = grpo_step(
        policy,
        reference,
        optimizer,
        chat,
        prompts,
        starts_well,
        group_size=32,
        max_new_tokens=4,
        generator=torch.Generator().manual_seed(0),
    )
    assert stats["mixed"] == 1.0 and 0 < stats["reward"] < 1
    good = [chat.encode(c)[0] for c in rewarded]
    for prompt in prompts:
        asked = torch.tensor([chat.encode(format_chat(prompt))])
        with torch.no_grad():
            p_policy = policy(asked)[0][0, -1].softmax(-1)[good].sum()
            p_reference = reference(asked)[0][0, -1].softmax(-1)[good].sum()
        assert p_policy > p_reference
    args = (policy, reference, optimizer, chat, prompts, starts_well)
    with pytest.raises(ValueError, match="updates"):
        grpo_step(*args, updates=0)
    with pytest.raises(ValueError, match="block_size"):
        grpo_step(*args, max_new_tokens=40)
