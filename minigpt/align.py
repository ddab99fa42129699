"""Alignment: what turns a language model into an assistant.

A chat model reads and writes turns marked by special tokens:
:func:`format_chat` writes one exchange as
``<|user|>prompt<|assistant|>response<|end|>`` with :data:`CHAT_TOKENS`,
which :func:`add_chat_tokens` adds to a tokenizer (the merges unchanged) and
to a pre-trained model (:func:`grow_vocab`: new embedding rows), and
:func:`chat_rows` builds instruction-tuning rows whose loss covers the
response and its ``<|end|>`` only. :data:`CHAT_TEMPLATE` is the same
format for ``transformers``' ``apply_chat_template``
(:func:`minigpt.hf.to_hf_tokenizer` attaches it). :func:`respond` and
:func:`sample_responses` answer prompts with the KV cache
(:func:`complete`).

After instruction tuning, a model is tuned on *preferences* (which of two
answers is better) or on *rewards* (a score per answer), from
log-probabilities the model already gives (:func:`sequence_logprobs`):

- :class:`RewardModel`: the GPT with a scalar head, trained on pairs
  (:func:`preference_rows`) with the Bradley-Terry :func:`preference_loss`,
  -log sigmoid(r_chosen - r_rejected) (Christiano et al. 2017; Ouyang et al.
  2022); :func:`best_of_n` samples n answers and keeps the one it scores
  highest.
- :func:`dpo_loss` and :class:`DPO`: direct preference optimisation
  (Rafailov et al. 2023): the same Bradley-Terry loss with the reward
  replaced by beta * (log pi(y|x) - log pi_ref(y|x)), so the policy is tuned
  on pairs by :func:`minigpt.finetune.fit` without a reward model or a
  reinforcement-learning loop.
- :func:`group_advantages`, :func:`grpo_loss` and :func:`grpo_step`:
  group-relative policy optimisation (Shao et al. 2024): sample several
  answers per prompt, score each (e.g. with a checker), use reward minus the
  group's mean over its spread as the advantage, and take a clipped
  policy-gradient step with a KL penalty to the reference model.

Sign convention everywhere: log-probabilities are natural logs (<= 0),
"chosen" is the preferred answer, and a loss is minimised.

>>> chosen, rejected = torch.tensor([-4.0]), torch.tensor([-6.0])
>>> loss, _, _ = dpo_loss(chosen, rejected, chosen, rejected, beta=0.1)
>>> round(loss.item(), 4)  # the policy is the reference: log 2
0.6931
"""

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from minigpt.finetune import (
    PAD,
    last_token_features,
    pad_rows,
    prompt_response_rows,
    token_logprobs,
)
from minigpt.model import GPT, eval_mode

__all__ = [
    "CHAT_TOKENS",
    "CHAT_TEMPLATE",
    "chat_tokenizer",
    "grow_vocab",
    "add_chat_tokens",
    "format_chat",
    "chat_rows",
    "complete",
    "sample_responses",
    "response_text",
    "respond",
    "response_rows",
    "preference_rows",
    "sequence_logprobs",
    "preference_loss",
    "RewardModel",
    "best_of_n",
    "dpo_loss",
    "DPO",
    "group_advantages",
    "grpo_loss",
    "grpo_step",
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


def grow_vocab(model: GPT, vocab_size: int) -> None:
    """Give ``model`` rows for ids up to ``vocab_size`` - 1, in place.

    The new rows of the token embedding (and of an untied ``lm_head``) start
    as the mean of the old rows: a new token looks like an average token
    instead of a random one, so the model's outputs for the old tokens are
    unchanged and the new tokens' logits start at an ordinary size. The old
    rows are kept exactly.
    """
    old = model.config.vocab_size
    if not isinstance(vocab_size, int) or vocab_size < old:
        raise ValueError(
            f"vocab_size must be an int >= the model's {old}, got "
            f"{vocab_size!r}; a vocabulary only grows"
        )

    def grown(weight: torch.Tensor) -> nn.Parameter:
        mean = weight.detach().mean(dim=0, keepdim=True)
        extra = mean.expand(vocab_size - old, -1)
        return nn.Parameter(torch.cat([weight.detach(), extra]))

    wte, head = model.transformer.wte, model.lm_head
    tied = head.weight is wte.weight
    wte.weight = grown(wte.weight)
    wte.num_embeddings = vocab_size
    head.weight = wte.weight if tied else grown(head.weight)
    head.out_features = vocab_size
    model.config = dataclasses.replace(model.config, vocab_size=vocab_size)


def add_chat_tokens(model: GPT, tokenizer):
    """The chat tokenizer of ``tokenizer``, with ``model`` grown to fit it.

    :func:`chat_tokenizer` adds the three markers; :func:`grow_vocab` gives
    ``model`` (in place) their rows. Returns the new tokenizer.
    """
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(
            f"the model has {model.config.vocab_size} token ids and the "
            f"tokenizer {tokenizer.vocab_size}; pass the tokenizer the model "
            "was trained with"
        )
    chat = chat_tokenizer(tokenizer)
    grow_vocab(model, chat.vocab_size)
    return chat


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


@torch.no_grad()
def complete(
    model: GPT,
    tokenizer,
    texts: list[str],
    max_new_tokens: int,
    stop_token: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """The ids the model appends to each text, up to its first ``stop_token``.

    Sampled with the KV cache (:meth:`minigpt.model.GPT.generate`); a
    continuation ends with ``stop_token`` when it wrote one within
    ``max_new_tokens``. Texts of one length in tokens are sampled as one
    batch, so the result depends on the order of ``texts`` only through the
    ``generator``. ``temperature=0`` is greedy.
    """
    encoded = [tokenizer.encode(t) for t in texts]
    continuations = [None] * len(texts)
    for length in sorted({len(ids) for ids in encoded}):
        rows = [i for i, ids in enumerate(encoded) if len(ids) == length]
        out = model.generate(
            torch.tensor([encoded[i] for i in rows]),
            max_new_tokens,
            temperature=temperature,
            generator=generator,
            stop_token=stop_token,
        )
        for i, ids in zip(rows, out[:, length:].tolist()):
            if stop_token in ids:
                ids = ids[: ids.index(stop_token) + 1]
            continuations[i] = ids
    return continuations


def sample_responses(
    model: GPT,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """The model's response ids to each prompt, as the chat format asks.

    Each prompt is written by :func:`format_chat` (ending at
    ``<|assistant|>``) and continued by :func:`complete`; a response ends
    with its ``<|end|>`` when it wrote one within ``max_new_tokens``.
    """
    return complete(
        model,
        tokenizer,
        [format_chat(p) for p in prompts],
        max_new_tokens,
        tokenizer.special_id(END),
        temperature,
        generator,
    )


def response_text(tokenizer, ids: list[int]) -> str:
    """A response's text: its ids decoded, without the ``<|end|>``."""
    end = tokenizer.special_id(END)
    return tokenizer.decode(ids[: ids.index(end)] if end in ids else ids)


def respond(
    model: GPT,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[str]:
    """The model's answer to each prompt, as text (greedy by default)."""
    return [
        response_text(tokenizer, ids)
        for ids in sample_responses(
            model, tokenizer, prompts, max_new_tokens, temperature, generator
        )
    ]


def response_rows(
    tokenizer, prompts: list[str], responses: list[list[int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, response mask), both (N, T), of prompts and response ids.

    Row i is ``format_chat(prompts[i])`` encoded, then ``responses[i]``,
    right-padded with PAD; the mask is True at the response's tokens. What
    :func:`sequence_logprobs` and :class:`RewardModel` read.
    """
    if len(prompts) != len(responses) or not prompts:
        raise ValueError(
            "prompts and responses must be non-empty and of one length, got "
            f"{len(prompts)} and {len(responses)}"
        )
    asked = [tokenizer.encode(format_chat(p)) for p in prompts]
    rows = pad_rows([a + list(r) for a, r in zip(asked, responses)])
    position = torch.arange(rows.size(1))
    starts = torch.tensor([len(a) for a in asked])[:, None]
    return rows, (position >= starts) & (rows != PAD)


def preference_rows(
    tokenizer, triples: list[tuple[str, str, str]], block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(pairs, response mask), both (N, 2, T), for preference tuning.

    Each ``(prompt, chosen, rejected)`` becomes two rows of
    :func:`response_rows`, the chosen answer first; each answer ends with
    ``<|end|>``. All 2N rows are padded to one length T.
    """
    if not triples:
        raise ValueError(
            "triples must hold at least one (prompt, chosen, rejected)"
        )
    prompts, responses = [], []
    for prompt, *answers in triples:
        for answer in answers:
            format_chat(prompt, answer)  # refuses chat markers
            prompts.append(prompt)
            responses.append(tokenizer.encode(answer + END))
    rows, mask = response_rows(tokenizer, prompts, responses)
    if rows.size(1) > block_size:
        raise ValueError(
            f"a prompt and answer take {rows.size(1)} tokens, more than "
            f"block_size {block_size}; drop or shorten the longer triples"
        )
    return rows.view(len(triples), 2, -1), mask.view(len(triples), 2, -1)


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


def _check_pairs(pairs: torch.Tensor) -> None:
    if pairs.dim() != 3 or pairs.size(1) != 2:
        raise ValueError(
            "pairs must be (B, 2, T): two answers per prompt, as "
            f"preference_rows builds them, got shape {tuple(pairs.shape)}"
        )


class RewardModel(nn.Module):
    """A pre-trained GPT with a scalar head: the reward of a whole answer.

    The head reads the final hidden state at each row's last real token (the
    ``<|end|>`` of the answer), as :class:`minigpt.finetune.GPTClassifier`
    does. :meth:`score` rewards rows (B, T); ``forward(pairs, labels=None)``
    rewards the two answers of each pair (B, 2, T) -> (B, 2) and, with
    ``labels`` (B,) the index of the preferred answer, returns the
    Bradley-Terry :func:`preference_loss`. So :func:`minigpt.finetune.fit`
    trains it and :func:`minigpt.finetune.accuracy` is the fraction of pairs
    it orders as the labels do.
    """

    def __init__(self, gpt: GPT):
        super().__init__()
        self.body = gpt
        self.score_head = nn.Linear(gpt.config.n_embd, 1)
        nn.init.normal_(self.score_head.weight, std=0.02)
        nn.init.zeros_(self.score_head.bias)

    def score(self, idx: torch.Tensor) -> torch.Tensor:
        """The reward of each right-padded row: (B, T) -> (B,)."""
        return self.score_head(last_token_features(self.body, idx))[:, 0]

    def forward(
        self, pairs: torch.Tensor, labels: torch.Tensor | None = None
    ):
        _check_pairs(pairs)
        rewards = self.score(pairs.flatten(0, 1)).view(len(pairs), 2)
        if labels is None:
            return rewards, None
        if (
            labels.shape != pairs.shape[:1]
            or not ((labels == 0) | (labels == 1)).all()
        ):
            raise ValueError(
                "labels must be (B,) holding 0 or 1, the preferred answer "
                f"of each pair, got {labels.tolist()}"
            )
        chosen = rewards.gather(1, labels[:, None])[:, 0]
        rejected = rewards.gather(1, 1 - labels[:, None])[:, 0]
        return rewards, preference_loss(chosen, rejected)


@torch.no_grad()
def best_of_n(
    policy: GPT,
    reward_model: RewardModel,
    tokenizer,
    prompts: list[str],
    n: int,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> list[str]:
    """For each prompt, the best of ``n`` sampled answers by the reward model.

    Best-of-n (rejection) sampling: no weight changes, n times the sampling.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    repeated = [p for p in prompts for _ in range(n)]
    samples = sample_responses(
        policy, tokenizer, repeated, max_new_tokens, temperature, generator
    )
    rows, _ = response_rows(tokenizer, repeated, samples)
    with eval_mode(reward_model):
        scores = reward_model.score(rows).view(len(prompts), n)
    best = scores.argmax(dim=1).tolist()
    return [
        response_text(tokenizer, samples[i * n + b])
        for i, b in enumerate(best)
    ]


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


class DPO(nn.Module):
    """A policy and its frozen reference, as one model for minigpt.train.

    ``forward(pairs, response_mask)``, both (B, 2, T) from
    :func:`preference_rows` (chosen answer first), returns ``(implicit rewards
    (B, 2), dpo_loss)``. So :func:`minigpt.finetune.fit` runs DPO with the
    pre-training loop's optimizer, schedule and clipping; only ``policy``
    trains (``reference`` is frozen here, in place). A pair is ordered
    right when its chosen answer has the higher implicit reward.
    """

    def __init__(self, policy: GPT, reference: GPT, beta: float = 0.1):
        super().__init__()
        if policy is reference:
            raise ValueError(
                "the reference must be a copy of the policy "
                "(copy.deepcopy(policy)), not the policy itself"
            )
        if not isinstance(beta, (int, float)) or not beta > 0:
            raise ValueError(f"beta must be a positive number, got {beta!r}")
        self.policy = policy
        self.reference = reference.requires_grad_(False)
        self.beta = beta

    def forward(self, pairs: torch.Tensor, response_mask: torch.Tensor):
        _check_pairs(pairs)
        idx, mask = pairs.flatten(0, 1), response_mask.flatten(0, 1)
        policy = sequence_logprobs(self.policy, idx, mask).view(-1, 2)
        with torch.no_grad(), eval_mode(self.reference):
            reference = sequence_logprobs(self.reference, idx, mask)
        reference = reference.view(-1, 2)
        loss, chosen, rejected = dpo_loss(
            policy[:, 0],
            policy[:, 1],
            reference[:, 0],
            reference[:, 1],
            self.beta,
        )
        return torch.stack([chosen, rejected], dim=1), loss


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


def grpo_step(
    policy: GPT,
    reference: GPT,
    optimizer: torch.optim.Optimizer,
    tokenizer,
    prompts: list[str],
    reward,
    group_size: int = 8,
    max_new_tokens: int = 16,
    temperature: float = 1.0,
    clip: float = 0.2,
    beta: float = 0.04,
    updates: int = 1,
    generator: torch.Generator | None = None,
) -> dict:
    """One GRPO iteration on ``prompts``; returns its statistics.

    Samples ``group_size`` answers to each prompt with the KV cache
    (:func:`sample_responses`), scores each with ``reward(prompt_index,
    answer_text) -> float`` (a checker), turns the scores into
    :func:`group_advantages` and takes ``updates`` optimizer steps on
    :func:`grpo_loss` (the first on-policy, where the ratio is 1 and the
    sampling policy's log-probabilities are that step's own, detached;
    later ones reuse the samples, and the clipping keeps them near the
    sampling policy). Gradients are clipped to norm 1.

    Returns ``{"reward": mean reward, "mixed": fraction of groups whose
    answers got different rewards (the others teach nothing), "kl": mean
    per-token KL estimate to the reference, "loss": the last loss,
    "answers": the texts}``.
    """
    if not isinstance(updates, int) or updates < 1:
        raise ValueError(f"updates must be an int >= 1, got {updates!r}")
    repeated = [p for p in prompts for _ in range(group_size)]
    samples = sample_responses(
        policy, tokenizer, repeated, max_new_tokens, temperature, generator
    )
    answers = [response_text(tokenizer, ids) for ids in samples]
    rewards = torch.tensor(
        [float(reward(i // group_size, a)) for i, a in enumerate(answers)]
    ).view(len(prompts), group_size)
    advantages = group_advantages(rewards).flatten()
    rows, mask = response_rows(tokenizer, repeated, samples)
    if rows.size(1) > policy.config.block_size + 1:
        raise ValueError(
            f"a prompt and its answer take {rows.size(1)} tokens, more than "
            f"block_size + 1 = {policy.config.block_size + 1}; lower "
            "max_new_tokens or shorten the prompts"
        )
    mask = mask[:, 1:]  # per predicted token, as token_logprobs gives
    with torch.no_grad(), eval_mode(reference):
        ref = token_logprobs(reference, rows)
    old = None
    for _ in range(updates):
        logprobs = token_logprobs(policy, rows)
        if old is None:  # the sampling policy's: no second forward pass
            old = logprobs.detach()
        loss = grpo_loss(logprobs, old, ref, advantages, mask, clip, beta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
    log_ratio = (ref - old)[mask]
    kl = (torch.exp(log_ratio) - log_ratio - 1).mean()
    return {
        "reward": rewards.mean().item(),
        "mixed": (rewards.std(dim=1) > 0).float().mean().item(),
        "kl": kl.item(),
        "loss": loss.item(),
        "answers": answers,
    }
