"""Alignment: the losses that turn a language model into an assistant.

A chat model reads and writes turns marked by special tokens:
:func:`format_chat` writes one exchange as
``<|user|>prompt<|assistant|>response<|end|>`` with :data:`CHAT_TOKENS`,
which :func:`chat_tokenizer` adds to a tokenizer (the merges unchanged), and
:func:`chat_rows` builds training rows whose loss covers the response and
its ``<|end|>`` only. :data:`CHAT_TEMPLATE` is the same format for
``transformers``' ``apply_chat_template`` (:func:`minigpt.hf.to_hf_tokenizer`
attaches it).

After instruction tuning, a model is tuned on *preferences* (which of two
answers is better) or on *rewards* (a score per answer). Four losses do it,
each a few lines on log-probabilities the model already gives
(:func:`sequence_logprobs`):

- :func:`preference_loss`: a reward model's Bradley-Terry loss on pairs,
  -log sigmoid(r_chosen - r_rejected) (Christiano et al. 2017; Ouyang et al.
  2022).
- :func:`dpo_loss`: direct preference optimisation (Rafailov et al. 2023):
  the same Bradley-Terry loss with the reward replaced by
  beta * (log pi(y|x) - log pi_ref(y|x)), so the policy is tuned on pairs
  without a reward model or a reinforcement-learning loop.
- :func:`group_advantages` and :func:`grpo_loss`: group-relative policy
  optimisation (Shao et al. 2024): sample several answers per prompt, score
  each (e.g. with a checker), use reward minus the group's mean over its
  spread as the advantage, and take a clipped policy-gradient step with a KL
  penalty to the reference model.

Sign convention everywhere: log-probabilities are natural logs (<= 0),
"chosen" is the preferred answer, and a loss is minimised.

>>> chosen, rejected = torch.tensor([-4.0]), torch.tensor([-6.0])
>>> loss, _, _ = dpo_loss(chosen, rejected, chosen, rejected, beta=0.1)
>>> round(loss.item(), 4)  # the policy is the reference: log 2
0.6931
"""

import torch
import torch.nn.functional as F
from torch import nn

from minigpt.finetune import prompt_response_rows, token_logprobs

__all__ = [
    "CHAT_TOKENS",
    "CHAT_TEMPLATE",
    "chat_tokenizer",
    "format_chat",
    "chat_rows",
    "sequence_logprobs",
    "preference_loss",
    "dpo_loss",
    "group_advantages",
    "grpo_loss",
]


#: The role markers and the end of a turn, special tokens of a chat model.
CHAT_TOKENS = ("<|user|>", "<|assistant|>", "<|end|>")
USER, ASSISTANT, END = CHAT_TOKENS
#: :func:`format_chat` as a Jinja template for ``transformers``: user and
#: assistant turns, and with ``add_generation_prompt`` the assistant marker
#: that asks the model to answer.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}" + USER + "{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %}"
    + ASSISTANT
    + "{{ message['content'] }}"
    + END
    + "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
)


def chat_tokenizer(tokenizer):
    """``tokenizer`` with :data:`CHAT_TOKENS` added as special tokens.

    A character or byte-level BPE tokenizer of minigpt; its other ids, and a
    BPE tokenizer's merges, are unchanged, so a pre-trained model keeps its
    embeddings and gets new rows for the three markers.
    """
    return tokenizer.with_special_tokens(CHAT_TOKENS)


def format_chat(prompt: str, response: str | None = None) -> str:
    """One exchange as text: ``<|user|>prompt<|assistant|>response<|end|>``.

    Without ``response``, the text ends at ``<|assistant|>``: the prompt a
    model completes.

    >>> format_chat("Say hi.", "Hi.")
    '<|user|>Say hi.<|assistant|>Hi.<|end|>'
    """
    for name, text in (("prompt", prompt), ("response", response)):
        if text is not None and any(t in text for t in CHAT_TOKENS):
            raise ValueError(
                f"the {name} {text!r} contains a chat marker "
                f"{CHAT_TOKENS}; they are written by format_chat only"
            )
    asked = USER + prompt + ASSISTANT
    return asked if response is None else asked + response + END


def chat_rows(
    tokenizer, pairs: list[tuple[str, str]], block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) LongTensors (N, T) for instruction tuning.

    Each (prompt, response) pair is written by :func:`format_chat`; the
    targets are the next tokens of the response and its ``<|end|>``, -1
    everywhere else (the user's turn, the markers before the response, and
    the padding), so the model learns to answer and to stop, not to write
    prompts. ``tokenizer`` must have :data:`CHAT_TOKENS`
    (:func:`chat_tokenizer`).
    """
    missing = [t for t in CHAT_TOKENS if t not in tokenizer.special_tokens]
    if missing:
        raise ValueError(
            f"the tokenizer lacks the chat tokens {missing}; use "
            "minigpt.align.chat_tokenizer(tokenizer)"
        )
    return prompt_response_rows(
        tokenizer,
        [(format_chat(p), r + END) for p, r in pairs],
        block_size,
    )


def _same_shape(**tensors) -> torch.Size:
    """The common shape of ``tensors``, or a ValueError naming them."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(
            f"these tensors must have one shape, got {shapes}; pass one "
            "value per example (or per token) in each"
        )
    return next(iter(tensors.values())).shape


def sequence_logprobs(
    model: nn.Module, idx: torch.Tensor, response_mask: torch.Tensor
) -> torch.Tensor:
    """log p(response | prompt) of each row: (B, T) -> (B,).

    ``idx`` holds right-padded rows ``prompt + response`` (PAD = -1, as
    :func:`minigpt.finetune.pad_rows` builds them); ``response_mask`` (B, T,
    bool) is True at the response's tokens. The result sums the
    log-probabilities of those tokens, each given everything before it; the
    first token of a row cannot be scored, so it must not be a response
    token. The gradient flows.
    """
    if (
        not isinstance(response_mask, torch.Tensor)
        or response_mask.dtype != torch.bool
        or response_mask.shape != idx.shape
    ):
        raise ValueError(
            "response_mask must be a bool tensor of the shape of idx "
            f"{tuple(idx.shape)}, True at the response's tokens"
        )
    if response_mask[:, 0].any():
        raise ValueError(
            "response_mask is True at position 0, which has nothing before "
            "it to be predicted from; a row must start with its prompt"
        )
    per_token = token_logprobs(model, idx)  # (B, T - 1), 0 at padding
    return (per_token * response_mask[:, 1:]).sum(dim=1)


def preference_loss(
    chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor
) -> torch.Tensor:
    """The Bradley-Terry loss of a reward model on preference pairs.

    ``chosen_rewards`` and ``rejected_rewards`` (N,): the scalar rewards of
    the preferred and the other answer of each pair. Under Bradley-Terry,
    P(chosen preferred) = sigmoid(r_chosen - r_rejected); the loss is the
    mean negative log of it. Only the difference matters.
    """
    _same_shape(
        chosen_rewards=chosen_rewards, rejected_rewards=rejected_rewards
    )
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO's loss and its implicit rewards (Rafailov et al. 2023).

    Each argument (N,) is log pi(y | x) of the chosen or rejected answer
    under the policy being tuned or under the frozen reference. The implicit
    reward of an answer is beta * (log pi - log pi_ref); the loss is the
    Bradley-Terry loss on those rewards:

        -log sigmoid(beta * ((pc - rc) - (pr - rr)))

    Returns ``(mean loss, chosen rewards (N,), rejected rewards (N,))``; the
    rewards are detached, for logging. A larger ``beta`` keeps the policy
    closer to the reference.
    """
    if not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a positive number, got {beta!r}")
    _same_shape(
        policy_chosen=policy_chosen,
        policy_rejected=policy_rejected,
        reference_chosen=reference_chosen,
        reference_rejected=reference_rejected,
    )
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    loss = preference_loss(chosen_rewards, rejected_rewards)
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


def group_advantages(
    rewards: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """GRPO's advantages: each reward against its own group.

    ``rewards`` (n_prompts, group_size): the rewards of ``group_size``
    answers sampled for each prompt. The advantage of an answer is its reward
    minus its group's mean, over its group's standard deviation (the
    unbiased one, as ``torch.std``) plus ``eps``. A group whose answers all
    score the same has advantage 0 everywhere: nothing to learn from it.
    """
    if rewards.dim() != 2 or rewards.size(1) < 2:
        raise ValueError(
            "rewards must be (n_prompts, group_size) with group_size >= 2, "
            f"got shape {tuple(rewards.shape)}"
        )
    mean = rewards.mean(dim=1, keepdim=True)
    spread = rewards.std(dim=1, keepdim=True)
    return (rewards - mean) / (spread + eps)


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    reference_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
    beta: float = 0.04,
) -> torch.Tensor:
    """GRPO's loss for a batch of sampled answers (Shao et al. 2024).

    ``logprobs``, ``old_logprobs``, ``reference_logprobs`` (B, T): each
    answer token's log-probability under the policy being tuned, under the
    policy that sampled it, and under the frozen reference; ``mask`` (B, T,
    bool) is True at the answer's tokens; ``advantages`` (B,) one per answer
    (:func:`group_advantages`, flattened). Per token, with ratio
    r = exp(logprobs - old_logprobs) and advantage A:

        objective = min(r A, clip(r, 1 - clip, 1 + clip) A) - beta * KL

    where KL = exp(ref - logprobs) - (ref - logprobs) - 1, the unbiased,
    non-negative estimate of KL(policy || reference) that GRPO uses. The loss
    is minus the objective, averaged over each answer's tokens, then over the
    answers.
    """
    _same_shape(
        logprobs=logprobs,
        old_logprobs=old_logprobs,
        reference_logprobs=reference_logprobs,
        mask=mask,
    )
    if mask.dtype != torch.bool or logprobs.dim() != 2:
        raise ValueError(
            "mask must be a bool tensor (B, T) like the log-probabilities, "
            f"got {mask.dtype} of shape {tuple(mask.shape)}"
        )
    if advantages.shape != logprobs.shape[:1]:
        raise ValueError(
            f"advantages must hold one value per answer, shape "
            f"{tuple(logprobs.shape[:1])}, got {tuple(advantages.shape)}"
        )
    lengths = mask.sum(dim=1)
    if (lengths == 0).any():
        empty = int((lengths == 0).nonzero()[0])
        raise ValueError(
            f"answer {empty} has no token in mask; drop empty answers "
            "before the loss"
        )
    if not 0 < clip < 1 or beta < 0:
        raise ValueError(
            f"clip must lie in (0, 1) and beta be >= 0, got clip={clip!r}, "
            f"beta={beta!r}"
        )
    ratio = torch.exp(logprobs - old_logprobs)
    A = advantages[:, None]
    surrogate = torch.min(ratio * A, ratio.clamp(1 - clip, 1 + clip) * A)
    log_ref_ratio = reference_logprobs - logprobs
    kl = torch.exp(log_ref_ratio) - log_ref_ratio - 1
    per_token = (surrogate - beta * kl) * mask
    return -(per_token.sum(dim=1) / lengths).mean()
