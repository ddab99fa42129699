"""minigpt.align: the preference and reward losses, against hand
computations and PyTorch's own binary cross-entropy."""

import math

import pytest
import torch
import torch.nn.functional as F

from minigpt.align import (
    CHAT_TOKENS,
    chat_rows,
    chat_tokenizer,
    dpo_loss,
    format_chat,
    group_advantages,
    grpo_loss,
    preference_loss,
    sequence_logprobs,
)
from minigpt.finetune import PAD, pad_rows
from minigpt.hf import to_hf_tokenizer
from minigpt.model import GPT, GPTConfig
from minigpt.tokenizer import CharTokenizer, HFBPETokenizer, train_bpe

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
