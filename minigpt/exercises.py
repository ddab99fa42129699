"""Check a reader's own function against the book's reference cases.

Every exercise that asks you to write a function comes with a checker here.
A checker runs your function on named cases, compares each result with the
reference answer, and prints one line per case::

    >>> from minigpt.exercises import check
    >>> report = check(lambda a, b: a + b, [Case("small", (1, 2), 3)])
    PASS  small
    1/1 cases passed

The pattern is one function, :func:`check`, and a list of :class:`Case`.
Each chapter adds its own ``check_*`` function at the end of this file, built
on :func:`check` (for example ``check_attention`` in the self-attention
chapter).
"""

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

__all__ = [
    "Case",
    "Report",
    "compare",
    "check",
    "check_attention",
    "check_add_k_smoothing",
    "check_merge",
    "check_param_count",
    "check_block",
    "check_lr_schedule",
    "check_previous_token_score",
    "check_answer_attention",
    "check_chinese_numeral",
    "check_last_positions",
    "check_sequence_logprob",
    "check_doubling_time",
    "check_device_days",
    "check_lora_memory",
    "check_compute_optimal",
    "check_tokens_per_day",
    "check_patches",
    "check_shift_matrix",
    "check_to_torch_mha",
    "check_attention_cost",
    "check_lora_count",
    "check_head_off",
    "check_distinct_ngrams",
    "check_generation_speed",
    "check_equivariance",
    "check_apply_rope",
    "check_rms_norm",
    "check_grouped_query_attention",
    "check_mask_tokens",
    "check_encoder_param_count",
    "check_dpo_loss",
    "check_group_advantages",
    "check_response_targets",
]


@dataclass
class Case:
    """One reference case: a name, the arguments, and the expected result.

    ``expected`` is a value, or a callable ``expected(result) -> str | None``
    that returns an explanation when ``result`` is wrong (for checks that are
    properties, such as "rows sum to one", rather than one exact answer).
    """

    name: str
    args: tuple
    expected: Any
    kwargs: dict = field(default_factory=dict)
    atol: float = 1e-6
    rtol: float = 1e-5


@dataclass
class Report:
    """What :func:`check` found: passed and failed cases, with reasons."""

    passed: list[str]
    failed: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.failed

    def __bool__(self) -> bool:
        return self.ok


def compare(
    result: Any, expected: Any, atol: float = 1e-6, rtol: float = 1e-5
) -> str | None:
    """Why ``result`` differs from ``expected``, or None when they agree.

    Tensors are compared in shape and value (within the tolerances), tuples
    and lists element by element, floats within the tolerances, anything else
    by ``==``.
    """
    if callable(expected) and not isinstance(expected, (torch.Tensor, type)):
        return expected(result)
    if isinstance(expected, torch.Tensor):
        if not isinstance(result, torch.Tensor):
            return f"expected a tensor, got {type(result).__name__}"
        if result.shape != expected.shape:
            return (
                f"shape {tuple(result.shape)}, "
                f"expected {tuple(expected.shape)}"
            )
        diff = (
            (result.detach().to(expected.dtype) - expected).abs().max().item()
            if result.numel()
            else 0.0
        )
        if not torch.allclose(
            result.detach().to(expected.dtype), expected, atol=atol, rtol=rtol
        ):
            return (
                f"values differ: max abs difference {diff:.3g} "
                f"(tolerance {atol:g})"
            )
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(result, (tuple, list)) or len(result) != len(
            expected
        ):
            return (
                f"expected a sequence of length {len(expected)}, "
                f"got {result!r:.80}"
            )
        for i, (r, e) in enumerate(zip(result, expected)):
            why = compare(r, e, atol, rtol)
            if why:
                return f"item {i}: {why}"
        return None
    if isinstance(expected, float):
        if not isinstance(result, (int, float)) and not (
            isinstance(result, torch.Tensor) and result.numel() == 1
        ):
            return f"expected a number, got {type(result).__name__}"
        value = float(result)
        if abs(value - expected) > atol + rtol * abs(expected):
            return f"got {value:.6g}, expected {expected:.6g}"
        return None
    return (
        None
        if result == expected
        else f"got {result!r:.80}, expected {expected!r:.80}"
    )


def check(fn: Callable, cases: list[Case], verbose: bool = True) -> Report:
    """Run ``fn`` on every case; print PASS/FAIL per case and a summary line.

    An exception raised by ``fn`` fails that case (with the exception's
    message) and the remaining cases still run, so one report shows every
    problem.
    """
    if not callable(fn):
        raise TypeError(
            f"check() needs a function to test, got {type(fn).__name__}: "
            "pass the function itself, "
            "e.g. check(my_fn, cases), not my_fn(...)"
        )
    if not cases:
        raise ValueError("check() needs at least one Case")
    passed, failed = [], {}
    for case in cases:
        try:
            result = fn(*case.args, **case.kwargs)
        except Exception as error:  # the reader's code may raise anything
            failed[case.name] = f"raised {type(error).__name__}: {error}"
            continue
        why = compare(result, case.expected, case.atol, case.rtol)
        if why:
            failed[case.name] = why
        else:
            passed.append(case.name)
    if verbose:
        for case in cases:
            if case.name in failed:
                print(f"FAIL  {case.name}: {failed[case.name]}")
            else:
                print(f"PASS  {case.name}")
        print(f"{len(passed)}/{len(cases)} cases passed")
    return Report(passed, failed)


# Chapter checkers follow, one section per chapter, each built on check().


# --- Self-attention and multi-head attention ---


def _attention_cases() -> list[Case]:
    """Reference cases for an attention function ``fn(q, k, v, mask=None)``.

    ``fn`` returns ``(out, weights)``. Expected outputs come from PyTorch's
    fused ``F.scaled_dot_product_attention`` (which returns no weights),
    weights from the definition softmax(q k^T / sqrt(d_k)).
    """
    import math

    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)

    def reference(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask
        ), torch.softmax(scores, dim=-1)

    def case(name, shape_q, shape_k, d_v, mask=None, scale=1.0):
        q = torch.randn(*shape_q, generator=g, dtype=torch.float64) * scale
        k = torch.randn(*shape_k, generator=g, dtype=torch.float64) * scale
        v = torch.randn(*shape_k[:-1], d_v, generator=g, dtype=torch.float64)
        args = (q, k, v) if mask is None else (q, k, v, mask)
        return Case(name, args, reference(*args), atol=1e-8, rtol=1e-6)

    T = 5
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    hand = Case(
        "by hand: one query, two equally similar keys -> weights 1/2, 1/2",
        (
            torch.tensor([[1.0, 0.0]], dtype=torch.float64),
            torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64),
            torch.tensor([[2.0], [4.0]], dtype=torch.float64),
        ),
        (
            torch.tensor([[3.0]], dtype=torch.float64),
            torch.tensor([[0.5, 0.5]], dtype=torch.float64),
        ),
    )
    return [
        hand,
        case("one sequence (T, d_k), no mask", (T, 4), (T, 4), 4),
        case("scaled by sqrt(d_k): d_k = 64", (T, 64), (T, 64), 3),
        case("causal mask (T, T)", (T, 4), (T, 4), 4, mask=causal),
        case(
            "batch and heads (B, h, T, d_k) with a causal mask",
            (2, 3, T, 4),
            (2, 3, T, 4),
            4,
            mask=causal,
        ),
        case("T_q != T_k and d_v != d_k", (2, 3, 4), (2, 6, 4), 7),
        case(
            "large scores: softmax must not overflow",
            (T, 8),
            (T, 8),
            2,
            scale=30.0,
        ),
    ]


def check_attention(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(q, k, v, mask=None) -> (out, weights)``.

    ``out = softmax(q k^T / sqrt(d_k)) v`` with masked scores (mask False) set
    to -inf before the softmax; ``weights`` is the softmax itself. Shapes:
    q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v), mask (T_q, T_k)
    bool.
    """
    return check(fn, _attention_cases(), verbose=verbose)


# --- Language models ---


def check_add_k_smoothing(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(counts, k) -> probs``: add-k smoothing of counts.

    ``counts`` is a 1-D float tensor (how often each of V tokens followed the
    context); the answer is ``(counts + k) / (counts.sum() + k * V)``, uniform
    when that is 0 / 0.
    """
    from minigpt.ngram import add_k

    def case(name, counts, k):
        counts = torch.tensor(counts, dtype=torch.float64)
        return Case(name, (counts, k), add_k(counts, k), atol=1e-9)

    return check(
        fn,
        [
            Case(
                "by hand: counts [3, 1, 0], k = 1 -> [4/7, 2/7, 1/7]",
                (torch.tensor([3.0, 1.0, 0.0], dtype=torch.float64), 1.0),
                torch.tensor([4 / 7, 2 / 7, 1 / 7], dtype=torch.float64),
                atol=1e-9,
            ),
            case(
                "k = 0 is the maximum-likelihood estimate",
                [3.0, 1.0, 0.0, 0.0],
                0.0,
            ),
            case(
                "k = 0.5, a bigger vocabulary",
                [10.0, 0.0, 5.0, 2.0, 0.0, 1.0, 0.0, 7.0],
                0.5,
            ),
            case("an unseen context with k = 1: uniform", [0.0] * 5, 1.0),
            case("large k pulls towards uniform", [100.0, 0.0, 0.0], 1000.0),
        ],
        verbose=verbose,
    )


def check_merge(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(ids, pair, new_id) -> list[int]``: one BPE merge.

    It replaces every occurrence of ``pair`` in ``ids``, left to right without
    overlaps, by ``new_id``.
    """
    from minigpt.tokenizer import merge

    def case(name, ids, pair, new_id):
        return Case(
            name, (list(ids), pair, new_id), merge(list(ids), pair, new_id)
        )

    return check(
        fn,
        [
            Case(
                "by hand: [5, 6, 6, 7, 5, 6], (5, 6) -> [99, 6, 7, 99]",
                ([5, 6, 6, 7, 5, 6], (5, 6), 99),
                [99, 6, 7, 99],
            ),
            case(
                "overlapping run: [1, 1, 1, 1, 1], (1, 1)",
                [1, 1, 1, 1, 1],
                (1, 1),
                2,
            ),
            case("pair absent: unchanged", [1, 2, 3], (3, 1), 9),
            case("pair at the very end", [4, 1, 2], (1, 2), 300),
            case("empty list", [], (1, 2), 300),
            case("one token", [1], (1, 2), 300),
            case(
                "bytes of 'hello world', ('l', 'l')",
                list(b"hello world"),
                (108, 108),
                256,
            ),
        ],
        verbose=verbose,
    )


# --- Trends and challenges ---


def check_param_count(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(config) -> int``: the parameter count of a GPT.

    The number of parameters of ``GPT(config)``, computed from the sizes
    alone, with and without biases, the head tied to the token embedding.
    """
    from minigpt.model import GPT, GPTConfig

    def case(name, **sizes):
        config = GPTConfig(**sizes)
        return Case(name, (config,), GPT(config).num_params())

    return check(
        fn,
        [
            Case(
                "by hand: V=10, T=4, one layer, width 2, no bias -> 10*2 + "
                "4*2 + (2*2 + 12*4) + 2 = 82",
                (
                    GPTConfig(
                        vocab_size=10,
                        block_size=4,
                        n_layer=1,
                        n_head=1,
                        n_embd=2,
                        bias=False,
                    ),
                ),
                82,
            ),
            case(
                "the same with biases",
                vocab_size=10,
                block_size=4,
                n_layer=1,
                n_head=1,
                n_embd=2,
            ),
            case(
                "Shakespeare-char size: 4 layers, width 128",
                vocab_size=65,
                block_size=64,
                n_layer=4,
                n_head=4,
                n_embd=128,
            ),
            case(
                "no bias, 3 layers, width 48",
                vocab_size=500,
                block_size=32,
                n_layer=3,
                n_head=4,
                n_embd=48,
                bias=False,
            ),
            Case(
                "GPT-2 small: 124,439,808", (GPTConfig.gpt2(),), 124_439_808
            ),
        ],
        verbose=verbose,
    )


# --- The Transformer ---


def check_block(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(block, x) -> y``: a pre-LN block's output.

    The output of a pre-LN ``minigpt.model.Block`` for x of shape (B, T, C),
    computed from its parts ``ln_1``, ``attn``, ``ln_2`` and ``mlp``.
    """
    from minigpt.model import Block, GPTConfig

    def case(name, seed, B, T, n_embd, n_head, bias=True):
        torch.manual_seed(seed)
        config = GPTConfig(
            vocab_size=10,
            block_size=max(T, 1),
            n_layer=2,
            n_head=n_head,
            n_embd=n_embd,
            bias=bias,
        )
        block = Block(config).eval()
        # non-trivial LayerNorm gains and biases, so every part matters
        with torch.no_grad():
            for p in block.parameters():
                p.add_(0.1 * torch.randn_like(p))
        x = torch.randn(B, T, n_embd)
        with torch.no_grad():
            expected = block(x)
        return Case(name, (block, x), expected, atol=1e-5)

    return check(
        fn,
        [
            case(
                "one sequence of 5 positions, width 8, 2 heads", 0, 1, 5, 8, 2
            ),
            case(
                "batch of 3, 12 positions, width 32, 4 heads", 1, 3, 12, 32, 4
            ),
            case("one position only", 2, 2, 1, 16, 4),
            case("no biases", 3, 2, 6, 16, 2, bias=False),
        ],
        verbose=verbose,
    )


# --- Pre-training ---


def check_lr_schedule(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(step, peak, floor, warmup, decay) -> float``.

    The schedule of ``minigpt.train.lr_at``: linear warm-up from
    ``peak / (warmup + 1)`` to ``peak``, half cosine down to ``floor`` at
    ``decay``, then ``floor``.
    """
    from minigpt.train import TrainConfig, lr_at

    def case(name, step, peak, floor, warmup, decay):
        config = TrainConfig(
            max_iters=decay,
            learning_rate=peak,
            min_lr=floor,
            warmup_iters=warmup,
            lr_decay_iters=decay,
        )
        return Case(
            name,
            (step, peak, floor, warmup, decay),
            lr_at(step, config),
            atol=1e-12,
            rtol=1e-9,
        )

    return check(
        fn,
        [
            Case(
                "by hand: step 0 of a 9-step warm-up to 1.0 -> 1/10",
                (0, 1.0, 0.1, 9, 100),
                0.1,
                atol=1e-12,
            ),
            Case(
                "by hand: halfway through the cosine -> (peak + floor) / 2",
                (60, 1.0, 0.2, 10, 110),
                0.6,
                atol=1e-12,
            ),
            case("last warm-up step", 99, 1e-3, 1e-4, 100, 2000),
            case(
                "the peak, at the end of warm-up", 100, 1e-3, 1e-4, 100, 2000
            ),
            case("a quarter into the cosine", 575, 1e-3, 1e-4, 100, 2000),
            case(
                "the last step before the floor", 1999, 1e-3, 1e-4, 100, 2000
            ),
            case("at the decay step: the floor", 2000, 1e-3, 1e-4, 100, 2000),
            case(
                "after the decay: still the floor",
                5000,
                1e-3,
                1e-4,
                100,
                2000,
            ),
            case("no warm-up, step 0: the peak", 0, 6e-4, 6e-5, 0, 500),
            case("floor of zero", 300, 3e-3, 0.0, 50, 400),
        ],
        verbose=verbose,
    )


def check_previous_token_score(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(weights) -> scores``: a previous-token score per head.

    For attention weights (B, n_head, T, T), the mean weight that positions
    1..T-1 put on the position just before them, per head: shape (n_head,).
    """

    def reference(weights):
        B, H, T, _ = weights.shape
        return torch.tensor(
            [
                sum(
                    weights[b, h, i, i - 1].item()
                    for b in range(B)
                    for i in range(1, T)
                )
                / (B * (T - 1))
                for h in range(H)
            ]
        )

    def causal_softmax(seed, B, H, T):
        scores = torch.randn(
            B, H, T, T, generator=torch.Generator().manual_seed(seed)
        )
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        return scores.masked_fill(~mask, float("-inf")).softmax(-1)

    T = 6
    previous = torch.zeros(1, 1, T, T)
    previous[0, 0, 0, 0] = 1.0
    previous[0, 0, torch.arange(1, T), torch.arange(T - 1)] = 1.0
    uniform = torch.ones(T, T).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True))[None, None]
    random_weights = causal_softmax(0, 2, 3, 7)
    return check(
        fn,
        [
            Case(
                "by hand: a head that always looks one back -> 1",
                (previous,),
                torch.tensor([1.0]),
            ),
            Case(
                "by hand: a uniform causal head, T=6 -> mean of 1/2 .. 1/6",
                (uniform,),
                torch.tensor(
                    [sum(1 / (i + 1) for i in range(1, T)) / (T - 1)]
                ),
            ),
            Case(
                "a head on itself only -> 0",
                (torch.eye(5)[None, None],),
                torch.tensor([0.0]),
            ),
            Case(
                "random causal weights, batch 2, 3 heads",
                (random_weights,),
                reference(random_weights),
            ),
            Case(
                "two positions only",
                (causal_softmax(1, 1, 4, 2),),
                reference(causal_softmax(1, 1, 4, 2)),
            ),
        ],
        verbose=verbose,
    )


# --- In-context learning ---


def check_answer_attention(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(weights, ids) -> scores``: an induction score per head.

    ``weights`` (B, n_head, T, T) are one layer's attention maps of prompts
    ``ids`` (B, T) of :class:`minigpt.tasks.incontext.MappingTask`, keys at
    even positions and values at odd ones, the query last. The score of a
    head is the weight the last position puts on the value right after the
    earlier occurrence of the query key, averaged over the batch: shape
    (n_head,).
    """
    from minigpt.tasks.incontext import MappingTask

    def reference(weights, ids):
        B, H, T, _ = weights.shape
        scores = torch.zeros(H)
        for b in range(B):
            keys = ids[b, 0 : T - 1 : 2].tolist()
            answer = 2 * keys.index(ids[b, -1].item()) + 1
            scores += weights[b, :, T - 1, answer] / B
        return scores

    def prompts(seed, B, k):
        generator = torch.Generator().manual_seed(seed)
        return MappingTask(n_keys=8, n_values=8).sample(
            B, k, "train", generator
        )[0]

    def causal_softmax(seed, B, H, T):
        scores = torch.randn(
            B, H, T, T, generator=torch.Generator().manual_seed(seed)
        )
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        return scores.masked_fill(~mask, float("-inf")).softmax(-1)

    ids = prompts(0, 3, 4)
    on_answer = torch.zeros(3, 2, 9, 9)
    on_key = torch.zeros(3, 2, 9, 9)
    for b, row in enumerate(ids.tolist()):
        answer = 2 * row[0:8:2].index(row[-1]) + 1
        on_answer[b, :, -1, answer] = 1.0
        on_key[b, :, -1, answer - 1] = 1.0
    on_answer[:, :, :-1, 0] = on_key[:, :, :-1, 0] = 1.0
    random_ids = prompts(1, 4, 5)
    random_weights = causal_softmax(2, 4, 3, 11)
    return check(
        fn,
        [
            Case(
                "by hand: the query always on the answer -> 1",
                (on_answer, ids),
                torch.ones(2),
            ),
            Case(
                "by hand: on the matching key, one step early -> 0",
                (on_key, ids),
                torch.zeros(2),
            ),
            Case(
                "random causal weights, batch 4, 3 heads, 5 examples",
                (random_weights, random_ids),
                reference(random_weights, random_ids),
            ),
        ],
        verbose=verbose,
    )


# --- Applications ---


def check_chinese_numeral(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(n) -> str``: the Chinese numeral of 0..9999.

    With the conventions of :func:`minigpt.tasks.numbers.chinese_numeral`:
    十 for 10, 一十 inside larger numbers, one 零 for a run of inner zeros,
    silent trailing zeros, 二 rather than 两.
    """
    from minigpt.tasks.numbers import chinese_numeral

    hand = {
        0: "零",
        10: "十",
        11: "十一",
        20: "二十",
        101: "一百零一",
        1001: "一千零一",
        1010: "一千零一十",
    }
    cases = [
        Case(f"by hand: {n} -> {text}", (n,), text)
        for n, text in hand.items()
    ]
    cases += [
        Case(f"{n} -> {chinese_numeral(n)}", (n,), chinese_numeral(n))
        for n in (7, 19, 42, 110, 115, 321, 1100, 2005, 3040, 7019, 9999)
    ]
    return check(fn, cases, verbose=verbose)


# --- Fine-tuning ---


def check_last_positions(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(rows) -> LongTensor (B,)``: last real positions.

    The index of each row's last real token in a LongTensor (B, T) padded on
    the right with ``minigpt.finetune.PAD`` (-1).
    """
    from minigpt.finetune import PAD, last_positions, pad_rows

    def case(name, sequences):
        rows = pad_rows(sequences)
        return Case(name, (rows,), last_positions(rows))

    return check(
        fn,
        [
            Case(
                "by hand: [[5, 6, 7], [8, PAD, PAD]] -> [2, 0]",
                (torch.tensor([[5, 6, 7], [8, PAD, PAD]]),),
                torch.tensor([2, 0]),
            ),
            case("no padding at all", [[1, 2, 3, 4], [5, 6, 7, 8]]),
            case("token id 0 is a real token, not padding", [[0, 0, 0], [0]]),
            case("one token per row", [[3], [4], [5]]),
            case("mixed lengths", [[1] * n for n in (7, 1, 4, 2, 7)]),
        ],
        verbose=verbose,
    )


# --- Using Hugging Face Transformers ---


def check_sequence_logprob(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(model, ids, prompt_len) -> float``.

    The total log-probability under minigpt's ``GPT`` of the tokens
    ``ids[0, prompt_len:]``, each given all tokens before it (``ids`` a
    LongTensor (1, T), 1 <= prompt_len < T).
    """
    import math

    from minigpt.common import seeded_rng
    from minigpt.model import GPT, GPTConfig

    # one forward pass per scored token: slow and obvious
    def reference(model, ids, prompt_len):
        total = 0.0
        with torch.no_grad():
            for t in range(prompt_len, ids.size(1)):
                logits, _ = model(ids[:, :t])
                total += torch.log_softmax(logits[0, -1], dim=-1)[
                    ids[0, t]
                ].item()
        return total

    config = GPTConfig(
        vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=8
    )
    with seeded_rng(0):
        model = GPT(config).eval()
        uniform = GPT(config).eval()
        ids = torch.randint(0, 11, (1, 9))
    with torch.no_grad():
        # tied head: every logit 0, every token 1/11
        uniform.transformer.wte.weight.zero_()
    cases = [
        Case(
            "by hand: uniform model, 9 - 3 = 6 tokens -> 6 * log(1/11)",
            (uniform, ids, 3),
            -6 * math.log(11),
        )
    ]
    cases += [
        Case(
            f"random model, prompt_len={p}",
            (model, ids, p),
            reference(model, ids, p),
            atol=1e-4,
        )
        for p in (1, 4, 8)
    ]
    return check(fn, cases, verbose=verbose)


# --- Arithmetic of scale (background, FAQ, pre-training, trends) ---


def _numbers(cases: list[tuple], rtol: float = 1e-9) -> list[Case]:
    """Cases ``(name, args, expected)`` compared to a relative tolerance.

    Answers of scale span many powers of ten, so the tolerance is relative.
    """
    return [Case(n, a, e, atol=0.0, rtol=rtol) for n, a, e in cases]


def check_doubling_time(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(slope) -> months``: the doubling time of a trend.

    ``slope`` is the growth in decades (powers of ten) per year of a line
    fitted to log10 of a quantity; the answer is how many months the
    quantity takes to double. The cases are worked from the definition
    10 ** (slope * years) = 2, not from a formula for the answer.
    """
    return check(
        fn,
        _numbers(
            [
                ("by hand: x2 per year -> 12 months", (math.log10(2),), 12.0),
                (
                    "by hand: x2 every two years (Moore) -> 24 months",
                    (math.log10(2) / 2,),
                    24.0,
                ),
                (
                    "by hand: x4 per year -> 6 months",
                    (math.log10(4),),
                    6.0,
                ),
                (
                    "x10 per year -> 12 * log10(2) = 3.61 months",
                    (1.0,),
                    12 / math.log2(10),
                ),
            ]
        ),
        verbose=verbose,
    )


def check_device_days(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(n_params, n_tokens, peak_flops, utilisation)``.

    The days one device with ``peak_flops`` FLOP/s, busy ``utilisation`` of
    the time, takes to train ``n_params`` parameters on ``n_tokens`` tokens
    at 6 FLOPs per parameter per token. Reference:
    :func:`minigpt.scaling.training_seconds` of
    :func:`minigpt.scaling.training_flops`, divided by a day.
    """
    from minigpt.scaling import training_flops, training_seconds

    def case(name, n, d, peak, u):
        seconds = training_seconds(training_flops(n, d), peak, u)
        return (name, (n, d, peak, u), seconds / 86400)

    return check(
        fn,
        _numbers(
            [
                (
                    "by hand: 8.64e19 FLOPs at 1e15 FLOP/s, 100% -> 1 day",
                    (1e9, 1.44e10, 1e15, 1.0),
                    1.0,
                ),
                case(
                    "utilisation 40% takes 2.5 times longer",
                    1e9,
                    1.44e10,
                    1e15,
                    0.4,
                ),
                case(
                    "GPT-3 on an A100 (312 TFLOP/s) at 40%",
                    175e9,
                    300e9,
                    312e12,
                    0.4,
                ),
                case(
                    "LLaMA-65B on an H100 at 50%", 65e9, 1.4e12, 989e12, 0.5
                ),
            ],
            rtol=1e-6,
        ),
        verbose=verbose,
    )


def check_lora_memory(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(n_params, adapter_fraction) -> bytes``.

    Memory to fine-tune with LoRA, activations aside: the ``n_params``
    frozen weights in 16 bits (2 bytes, no gradients, no optimizer
    states) plus an adapter of ``adapter_fraction * n_params`` parameters
    trained in mixed precision (:func:`minigpt.scaling.training_memory`).
    """
    from minigpt.scaling import training_memory

    def case(name, n, fraction):
        adapter = training_memory(n * fraction, "mixed")["total"]
        return (name, (n, fraction), 2 * n + adapter)

    return check(
        fn,
        _numbers(
            [
                (
                    "by hand: 1e9 and 0.1% -> 2e9 + 1e6 * 16 = 2.016e9",
                    (1e9, 0.001),
                    2.016e9,
                ),
                case("7B, adapter 0.1%", 7e9, 0.001),
                case("65B, adapter 1%", 65e9, 0.01),
                case("a tiny model with a large adapter", 1e6, 0.5),
            ]
        ),
        verbose=verbose,
    )


def check_compute_optimal(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(compute) -> (n_params, n_tokens)``.

    The model size N and token count D that spend ``compute`` FLOPs
    (compute = 6 N D) with Chinchilla's 20 tokens per parameter (D = 20 N).
    The cases check both equations on your answer and a few hand-worked
    budgets, so a missing 6 or swapped N and D fails.
    """

    def obeys(compute):
        def why(result):
            n, d = result
            if not math.isclose(6 * n * d, compute, rel_tol=1e-9):
                return f"6 N D = {6 * n * d:.4g}, expected {compute:.4g}"
            if not math.isclose(d, 20 * n, rel_tol=1e-9):
                return f"D / N = {d / n:.4g}, expected 20"
            return None

        return why

    return check(
        fn,
        [
            Case(
                "by hand: 120 FLOPs -> N = 1, D = 20",
                (120.0,),
                (1.0, 20.0),
                atol=0.0,
                rtol=1e-9,
            ),
            Case(
                "by hand: 1.2e20 -> N = 1e9, D = 2e10",
                (1.2e20,),
                (1e9, 2e10),
                atol=0.0,
                rtol=1e-9,
            ),
            Case("GPT-3's 3.15e23 FLOPs", (3.15e23,), obeys(3.15e23)),
            Case("a laptop's 1e17 FLOPs", (1e17,), obeys(1e17)),
        ],
        verbose=verbose,
    )


def check_tokens_per_day(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(flops_per_second, n_params) -> tokens``.

    How many tokens one day at ``flops_per_second`` trains a model of
    ``n_params`` parameters on, at 6 FLOPs per parameter per token; the
    reference inverts :func:`minigpt.scaling.training_flops`.
    """
    from minigpt.scaling import training_flops

    def case(name, speed, n):
        return (name, (speed, n), speed * 86400 / training_flops(n, 1.0))

    return check(
        fn,
        _numbers(
            [
                (
                    "by hand: 6e9 FLOP/s, 1e6 parameters -> 1000 tokens/s, "
                    "86.4 million a day",
                    (6e9, 1e6),
                    8.64e7,
                ),
                case("GPT-2 small on 1e11 FLOP/s", 1e11, 124_439_808),
                case("a large model on an A100", 312e12 * 0.4, 7e9),
            ]
        ),
        verbose=verbose,
    )


def check_patches(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(image, p) -> patches``: a ViT's image tokens.

    ``image`` is a NumPy array (H, W, C) with H and W multiples of ``p``;
    the answer is (H/p * W/p, p * p * C): the p x p patches in reading
    order (left to right, then top to bottom), each flattened row by row.
    The reference cuts each patch out with a slice, one at a time.
    """
    import numpy as np

    def reference(image, p):
        H, W, _ = image.shape
        return np.stack(
            [
                image[i : i + p, j : j + p].reshape(-1)
                for i in range(0, H, p)
                for j in range(0, W, p)
            ]
        )

    def same(expected):
        def why(result):
            result = np.asarray(result)
            if result.shape != expected.shape:
                return f"shape {result.shape}, expected {expected.shape}"
            if not np.array_equal(result, expected):
                return "values differ: patch contents or order"
            return None

        return why

    rng = np.random.default_rng(0)
    hand = np.arange(8).reshape(2, 4, 1)
    cases = [
        Case(
            "by hand: [[0 1 2 3], [4 5 6 7]], p = 2 -> [0 1 4 5], [2 3 6 7]",
            (hand, 2),
            same(np.array([[0, 1, 4, 5], [2, 3, 6, 7]])),
        )
    ]
    for name, shape, p in [
        ("RGB 4 x 4, p = 2", (4, 4, 3), 2),
        ("RGB 32 x 48 (not square), p = 8", (32, 48, 3), 8),
        ("one patch is the whole image", (16, 16, 3), 16),
        ("p = 1: every pixel a token", (3, 5, 3), 1),
    ]:
        image = rng.integers(0, 256, shape)
        cases.append(Case(name, (image, p), same(reference(image, p))))
    return check(fn, cases, verbose=verbose)


# --- Attention heads and layers ---


def check_shift_matrix(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(T, offset) -> W`` (T, T): "look ``offset`` back".

    ``W[i, i - offset] = 1`` for every position i >= offset, all else 0:
    the matrix that maps position i's one-hot e_i to e_{i - offset}, as the
    position block of a hand-built query. Reference: ``torch.diag`` of a
    vector of ones below the diagonal (not a slice of ``torch.eye``).
    """

    def case(name, T, offset):
        W = (
            torch.diag(torch.ones(T - offset), -offset)
            if offset < T
            else (torch.zeros(T, T))
        )
        return Case(name, (T, offset), W)

    hand = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    return check(
        fn,
        [
            Case("by hand: T = 3, one back", (3, 1), hand),
            case("two back, T = 6", 6, 2),
            case("offset 0 is the identity", 5, 0),
            case("three back, T = 9", 9, 3),
            case("offset T - 1: only the last position", 4, 3),
        ],
        verbose=verbose,
    )


def check_to_torch_mha(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(layer) -> torch.nn.MultiheadAttention``.

    Given minigpt's causal ``MultiHeadAttention``, return PyTorch's own
    layer (``batch_first=True``) holding the same weights and biases. The
    check runs both on random inputs, PyTorch's with the causal
    ``attn_mask`` (True = not allowed), and compares the outputs.
    """
    from minigpt.attention import MultiHeadAttention

    def same_output(layer, seed, B, T):
        def why(theirs):
            if not isinstance(theirs, torch.nn.MultiheadAttention):
                return f"expected nn.MultiheadAttention, got {theirs!r:.60}"
            x = torch.randn(
                B,
                T,
                layer.n_embd,
                generator=torch.Generator().manual_seed(seed),
            )
            blocked = torch.ones(T, T, dtype=torch.bool).triu(1)
            with torch.no_grad():
                out, _ = theirs.eval()(
                    x, x, x, attn_mask=blocked, need_weights=False
                )
                return compare(out, layer.eval()(x), atol=1e-5)

        return why

    cases = []
    for seed, (width, heads, B, T) in enumerate(
        [(64, 4, 2, 10), (32, 2, 1, 7), (16, 1, 3, 5), (48, 6, 2, 12)]
    ):
        torch.manual_seed(seed)
        layer = MultiHeadAttention(width, heads).eval()
        cases.append(
            Case(
                f"width {width}, {heads} heads, batch {B}, {T} positions",
                (layer,),
                same_output(layer, seed, B, T),
            )
        )
    return check(fn, cases, verbose=verbose)


def check_attention_cost(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(d_model, n_head, T) -> (n_params, flops)``.

    The parameters of one causal ``MultiHeadAttention(d_model, n_head)``
    (Q, K, V and output projections with biases) and the FLOPs of its
    forward pass on T tokens (2 per multiply-add; masked scores counted as
    computed, softmax not counted). Parameters are counted on the module
    itself; FLOPs add up its four matrix products one at a time.
    """
    from minigpt.attention import MultiHeadAttention

    def matmul(m, k, n):
        return 2 * m * k * n

    def case(name, d, h, T):
        params = sum(p.numel() for p in MultiHeadAttention(d, h).parameters())
        flops = (
            matmul(T, d, 3 * d)  # x -> Q, K, V
            + h * matmul(T, d // h, T)  # scores, per head
            + h * matmul(T, T, d // h)  # weights @ V, per head
            + matmul(T, d, d)  # output projection
        )
        return Case(name, (d, h, T), (params, flops))

    return check(
        fn,
        [
            Case(
                "by hand: d = 2, 1 head, T = 1 -> 16 + 8 = 24 parameters, "
                "24 + 4 + 4 + 8 = 40 FLOPs",
                (2, 1, 1),
                (24, 40),
            ),
            case("8 wide, 2 heads, 3 tokens", 8, 2, 3),
            case("the chapter's 64 wide, 4 heads, 10 tokens", 64, 4, 10),
            case(
                "GPT-2 small: 768 wide, 12 heads, 1024 tokens", 768, 12, 1024
            ),
        ],
        verbose=verbose,
    )


def check_lora_count(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(config, rank, n_classes) -> int``.

    The trainable parameters of ``GPTClassifier(GPT(config), n_classes)``
    after ``add_lora(model.body, rank)``: a rank-r adapter, r (d_in +
    d_out) parameters, on every ``c_attn``, ``c_proj`` and ``c_fc`` of
    every block, plus the classification head with its bias. Reference:
    build the model and count with ``trainable_parameters``.
    """
    from minigpt.finetune import GPTClassifier, add_lora, trainable_parameters
    from minigpt.model import GPT, GPTConfig

    def case(name, rank, n_classes, **sizes):
        config = GPTConfig(vocab_size=11, block_size=8, **sizes)
        torch.manual_seed(0)
        model = GPTClassifier(GPT(config), n_classes)
        add_lora(model.body, rank=rank)
        return Case(
            name, (config, rank, n_classes), trainable_parameters(model)
        )

    return check(
        fn,
        [
            Case(
                "by hand: width 4, 1 layer, r = 1, 2 classes -> 64 + 10",
                (
                    GPTConfig(
                        vocab_size=11,
                        block_size=8,
                        n_layer=1,
                        n_head=1,
                        n_embd=4,
                    ),
                    1,
                    2,
                ),
                74,
            ),
            case(
                "rank 2, 2 layers, width 8",
                2,
                2,
                n_layer=2,
                n_head=2,
                n_embd=8,
            ),
            case(
                "rank 8, 3 classes, 4 layers, width 32",
                8,
                3,
                n_layer=4,
                n_head=4,
                n_embd=32,
            ),
            case(
                "no biases in the body",
                4,
                2,
                n_layer=2,
                n_head=2,
                n_embd=16,
                bias=False,
            ),
        ],
        verbose=verbose,
    )


def check_head_off(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(layer, head) -> new layer`` without one head.

    Given a ``MultiHeadAttention``, return a copy whose output lacks head
    ``head``'s contribution (the output bias stays), leaving ``layer``
    itself unchanged: later code may still use it. The reference runs the
    other heads one at a time from slices of ``c_attn`` and ``c_proj``.
    """
    import copy

    import torch.nn.functional as F

    from minigpt.attention import MultiHeadAttention

    def without(layer, head, x):
        C, d = layer.n_embd, layer.head_dim
        q, k, v = F.linear(x, layer.c_attn.weight, layer.c_attn.bias).split(
            C, dim=-1
        )
        y = layer.c_proj.bias.expand_as(x).clone()
        for h in range(layer.n_head):
            if h == head:
                continue
            part = slice(h * d, (h + 1) * d)
            out = F.scaled_dot_product_attention(
                q[..., part], k[..., part], v[..., part], is_causal=True
            )
            y += out @ layer.c_proj.weight[:, part].T
        return y

    def case(name, seed, width, n_head, head):
        torch.manual_seed(seed)
        layer = MultiHeadAttention(width, n_head).eval()
        before = copy.deepcopy(layer.state_dict())
        x = torch.randn(2, 6, width)

        def why(result):
            for key, value in layer.state_dict().items():
                if not torch.equal(value, before[key]):
                    return f"the original layer changed ({key})"
            if result is layer:
                return "returned the original layer, not a copy"
            with torch.no_grad():
                return compare(
                    result.eval()(x), without(layer, head, x), atol=1e-5
                )

        return Case(name, (layer, head), why)

    return check(
        fn,
        [
            case("head 0 of 4", 0, 32, 4, 0),
            case("the last head of 4", 1, 32, 4, 3),
            case("a middle head of 3", 2, 24, 3, 1),
            case("the only head", 3, 8, 1, 0),
        ],
        verbose=verbose,
    )


# --- Sampling and speed ---


def check_distinct_ngrams(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(text, n) -> float``: how repetitive a text is.

    The number of distinct n-character substrings of ``text`` divided by
    the number of all its n-character substrings, ``len(text) - n + 1`` of
    them (overlapping); 1.0 when nothing repeats. The reference counts with
    ``collections.Counter`` over a sliding window.
    """
    from collections import Counter

    def reference(text, n):
        grams = Counter(text[i : i + n] for i in range(len(text) - n + 1))
        return len(grams) / sum(grams.values())

    texts = [
        ("a verse", "to be, or not to be, that is the question", 4),
        ("a loop", "the the the the the the ", 4),
        ("n = 1: distinct characters", "hello world", 1),
    ]
    return check(
        fn,
        [
            Case(
                "by hand: 'abab', n = 2 -> ab, ba, ab: 2/3",
                ("abab", 2),
                2 / 3,
            ),
            Case("by hand: 'aaaa', n = 2 -> 1/3", ("aaaa", 2), 1 / 3),
            Case("by hand: 'abcd', n = 2 -> 1", ("abcd", 2), 1.0),
            Case("one gram only: 'abcd', n = 4 -> 1", ("abcd", 4), 1.0),
        ]
        + [Case(name, (t, n), reference(t, n)) for name, t, n in texts],
        verbose=verbose,
    )


def check_generation_speed(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(new_tokens, seconds) -> (tokens_per_s, ms_per_token)``.

    The rate of a generation run that produced ``new_tokens`` tokens in
    ``seconds`` (a median time from a results file), and its inverse in
    milliseconds per token. The cases are worked by hand.
    """
    return check(
        fn,
        [
            Case(
                "by hand: 100 tokens in 2 s -> 50 tokens/s, 20 ms",
                (100, 2.0),
                (50.0, 20.0),
            ),
            Case(
                "by hand: 1 token in 4 ms -> 250 tokens/s, 4 ms",
                (1, 0.004),
                (250.0, 4.0),
            ),
            Case(
                "by hand: 64 tokens in 0.5 s -> 128 tokens/s, 7.8125 ms",
                (64, 0.5),
                (128.0, 7.8125),
            ),
        ],
        verbose=verbose,
    )


def check_equivariance(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(layer, x, perm) -> bool``: is a layer order-blind?

    True when shuffling the positions (dim 1) of ``x`` (B, T, C) by
    ``perm`` only shuffles ``layer(x)`` the same way, within 1e-5. The
    cases are layers whose answer is known: attention without a mask and a
    position-wise MLP are permutation equivariant; causal attention, a
    layer that adds position embeddings and one that reverses the positions
    are not.
    """
    from minigpt.attention import MultiHeadAttention

    torch.manual_seed(0)
    width, T = 16, 5
    free = MultiHeadAttention(width, 2, causal=False).eval()
    causal = MultiHeadAttention(width, 2).eval()
    mlp = torch.nn.Sequential(
        torch.nn.Linear(width, 32),
        torch.nn.GELU(),
        torch.nn.Linear(32, width),
    )
    positions = torch.randn(T, width)

    def with_positions(x):
        return free(x + positions)

    x = torch.randn(2, T, width)
    perm = torch.tensor([2, 0, 4, 1, 3])  # not its own inverse
    cases = [
        ("attention without a mask -> True", free, True),
        ("a position-wise MLP -> True", mlp, True),
        ("causal attention -> False", causal, False),
        ("reversing the positions -> False", lambda x: x.flip(1), False),
        (
            "attention after position embeddings -> False",
            with_positions,
            False,
        ),
    ]
    with torch.no_grad():
        return check(
            fn,
            [
                Case(name, (layer, x, perm), answer)
                for name, layer, answer in cases
            ],
            verbose=verbose,
        )


# --- From GPT-2 to today's models ---


def _rope_by_complex_numbers(
    x: torch.Tensor, start: int, theta: float
) -> torch.Tensor:
    """RoPE as complex multiplication, Hugging Face's halves convention.

    Component j and component j + d/2 of x (..., T, d) form the complex
    number z_j, which position m multiplies by exp(i m theta^(-2j/d)).
    """
    d = x.shape[-1]
    x = x.double()
    z = torch.complex(x[..., : d // 2], x[..., d // 2 :])
    j = torch.arange(d // 2, dtype=torch.float64)
    m = torch.arange(start, start + x.shape[-2], dtype=torch.float64)
    rotated = z * torch.polar(
        torch.ones(len(m), d // 2, dtype=torch.float64),
        torch.outer(m, theta ** (-2 * j / d)),
    )
    return torch.cat((rotated.real, rotated.imag), dim=-1).float()


def check_apply_rope(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(x, start, theta) -> x rotated`` (rotary positions).

    x (B, heads, T, d) holds queries or keys at positions start .. start +
    T - 1; pair j is components (j, j + d/2), rotated by the angle
    m * theta^(-2j/d) at position m, as Hugging Face's Llama does. The
    reference multiplies complex numbers instead of rotating pairs.
    """
    torch.manual_seed(0)
    cases = []
    for name, shape, start, theta in (
        ("position 0 is the identity", (1, 1, 1, 8), 0, 10000.0),
        ("one head, 5 positions", (1, 1, 5, 8), 0, 10000.0),
        ("batch of 2, 3 heads, d = 32", (2, 3, 7, 32), 0, 10000.0),
        ("positions 60..63 (start = 60)", (1, 2, 4, 16), 60, 10000.0),
        ("Llama 3's theta = 500000", (1, 1, 6, 64), 100, 500000.0),
        ("d = 2: a single pair", (1, 1, 9, 2), 3, 10.0),
    ):
        x = torch.randn(shape)
        expected = _rope_by_complex_numbers(x, start, theta)
        cases.append(Case(name, (x, start, theta), expected, atol=1e-4))
    return check(fn, cases, verbose=verbose)


def check_rms_norm(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(x, weight, eps) -> RMSNorm of x`` over the last dim.

    ``x / sqrt(mean(x^2) + eps) * weight``; the reference is PyTorch's own
    ``torch.nn.functional.rms_norm``.
    """
    import torch.nn.functional as F

    torch.manual_seed(0)
    cases = []
    for name, x, weight, eps in (
        ("a vector of 8, weight 1", torch.randn(8), torch.ones(8), 1e-5),
        (
            "(2, 3, 16) with a learned weight",
            torch.randn(2, 3, 16),
            torch.randn(16),
            1e-5,
        ),
        (
            "large values (x 1000): scale does not matter",
            1000 * torch.randn(4, 32),
            torch.rand(32),
            1e-6,
        ),
        (
            "tiny values: eps matters",
            1e-3 * torch.randn(3, 8),
            torch.ones(8),
            1e-5,
        ),
        ("all zeros stay zero", torch.zeros(2, 4), torch.ones(4), 1e-5),
        (
            "not LayerNorm: the mean is kept",
            5 + torch.randn(2, 16),
            torch.ones(16),
            1e-5,
        ),
    ):
        expected = F.rms_norm(x, (x.shape[-1],), weight, eps)
        cases.append(Case(name, (x, weight, eps), expected, atol=1e-5))
    return check(fn, cases, verbose=verbose)


def check_grouped_query_attention(
    fn: Callable, verbose: bool = True
) -> Report:
    """Check your ``fn(q, k, v) -> out``: causal grouped-query attention.

    q (B, n_head, T, d); k and v (B, n_kv_head, T, d) with n_head a multiple
    of n_kv_head: query head i uses key/value head i // (n_head //
    n_kv_head). out (B, n_head, T, d). The reference is PyTorch's
    ``F.scaled_dot_product_attention(..., is_causal=True,
    enable_gqa=True)``.
    """
    import torch.nn.functional as F

    torch.manual_seed(0)
    cases = []
    for name, n_head, n_kv_head, T, d in (
        ("multi-head: 4 query, 4 key/value heads", 4, 4, 6, 8),
        ("grouped: 8 query heads, 2 key/value heads", 8, 2, 7, 16),
        ("multi-query: 4 query heads, 1 key/value head", 4, 1, 5, 8),
        ("one position", 6, 3, 1, 4),
    ):
        q = torch.randn(2, n_head, T, d)
        k, v = torch.randn(2, 2, n_kv_head, T, d)
        expected = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=True
        )
        cases.append(Case(name, (q, k, v), expected, atol=1e-5))
    return check(fn, cases, verbose=verbose)


# --- Encoders: BERT ---


def check_mask_tokens(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(ids, mask_id, vocab_size, generator, special_ids)
    -> (inputs, targets)``: BERT's masking.

    Each token of ``ids`` (B, T) that is not in ``special_ids`` is chosen
    with probability 0.15; a chosen token becomes ``mask_id`` with
    probability 0.8, a uniformly random id of ``0..vocab_size-1`` with 0.1,
    and stays itself with 0.1. ``targets`` hold the original id where chosen
    and -1 elsewhere. All randomness comes from ``generator``. The rates are
    checked on 200,000 tokens, each within about five standard errors.
    """
    V, MASK, CLS = 50, 49, 48
    ids = torch.randint(
        0, CLS, (400, 500), generator=torch.Generator().manual_seed(0)
    )
    ids[:, 0] = CLS  # a special token at the start of every row

    def generator(seed):
        return torch.Generator().manual_seed(seed)

    def shaped(result):
        if not (isinstance(result, tuple) and len(result) == 2):
            return "return the pair (inputs, targets)"
        inputs, targets = result
        if not all(
            isinstance(t, torch.Tensor) and t.shape == ids.shape
            for t in result
        ):
            return (
                "inputs and targets must be tensors of shape "
                f"{tuple(ids.shape)}"
            )
        chosen = targets != -1
        if not torch.equal(targets[chosen], ids[chosen]):
            return "a chosen position's target is not its original token"
        if not torch.equal(inputs[~chosen], ids[~chosen]):
            return "a token that was not chosen changed in inputs"
        return None

    def well_formed(check_property):
        """The expected-callable of a Case: the shape checks, then the
        property of (inputs, targets)."""
        return lambda result: shaped(result) or check_property(*result)

    def rates(inputs, targets):
        chosen = targets != -1
        n = int(chosen.sum())
        shown, original = inputs[chosen], ids[chosen]
        for what, share, expected, count in (
            ("chosen", chosen.float().mean().item(), 0.15, ids.numel()),
            (
                "[MASK] among chosen",
                (shown == MASK).float().mean().item(),
                0.8,
                n,
            ),
            (
                "random among chosen",
                ((shown != MASK) & (shown != original)).float().mean().item(),
                0.1 * (1 - 1 / V),
                n,
            ),
        ):
            spread = (expected * (1 - expected) / count) ** 0.5
            if abs(share - expected) > 5 * spread:
                return f"{what}: {share:.4f}, expected {expected:.4f}"
        return None

    def specials_kept(inputs, targets):
        if (targets[:, 0] != -1).any() or (inputs[:, 0] != CLS).any():
            return "a special token was chosen"
        return None

    def repeats(result):
        again = fn(ids, MASK, V, generator(1), (CLS,))
        if not all(torch.equal(a, b) for a, b in zip(result, again)):
            return "the same generator seed gave a different batch"
        return None

    return check(
        fn,
        [
            Case(
                "15% chosen; of those 80% [MASK], 10% random, 10% kept",
                (ids, MASK, V, generator(0), (CLS,)),
                well_formed(rates),
            ),
            Case(
                "special tokens are never chosen",
                (ids, MASK, V, generator(0), (CLS,)),
                well_formed(specials_kept),
            ),
            Case(
                "the same generator seed, the same batch",
                (ids, MASK, V, generator(1), (CLS,)),
                repeats,
            ),
        ],
        verbose=verbose,
    )


def check_encoder_param_count(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(config) -> int``: the parameters of a BERT encoder
    without its masked-LM head (Hugging Face's ``BertModel``).

    ``config`` is a :class:`minigpt.encoder.EncoderConfig`. The small cases'
    reference is a built :class:`~minigpt.encoder.Encoder`'s parameters
    minus those of its masked-LM head; BERT-base's and BERT-large's are the
    exact counts of the published configurations.
    """
    from minigpt.encoder import Encoder, EncoderConfig

    def built(config):
        encoder = Encoder(config)
        head = [encoder.mlm_dense, encoder.mlm_ln]
        return (
            encoder.num_params()
            - sum(p.numel() for m in head for p in m.parameters())
            - encoder.mlm_bias.numel()
        )

    cases = []
    for name, sizes in (
        ("1 layer, width 8", dict(n_layer=1, n_head=2, n_embd=8)),
        ("3 layers, width 24", dict(n_layer=3, n_head=4, n_embd=24)),
        (
            "an MLP of width 40",
            dict(n_layer=2, n_head=2, n_embd=16, intermediate_size=40),
        ),
        (
            "three segments",
            dict(n_layer=1, n_head=1, n_embd=12, type_vocab_size=3),
        ),
    ):
        config = EncoderConfig(vocab_size=37, block_size=20, **sizes)
        cases.append(Case(name, (config,), built(config)))
    for name, sizes, total in (
        ("BERT-base", dict(n_layer=12, n_head=12, n_embd=768), 109_482_240),
        ("BERT-large", dict(n_layer=24, n_head=16, n_embd=1024), 335_141_888),
    ):
        config = EncoderConfig(vocab_size=30522, block_size=512, **sizes)
        cases.append(Case(name, (config,), total))
    return check(fn, cases, verbose=verbose)


# --- From language model to assistant ---


def check_dpo_loss(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(pc, pr, rc, rr, beta) -> mean loss``: DPO's loss.

    ``pc``/``pr``: log pi of the chosen/rejected answers under the policy,
    ``rc``/``rr`` under the reference, each (N,). The reference value is
    written out here as -log sigmoid of the margin, by its definition.
    """
    torch.manual_seed(0)
    pc, pr, rc, rr = -10 * torch.rand(4, 6)

    def by_definition(pc, pr, rc, rr, beta):
        margin = beta * ((pc - rc) - (pr - rr))
        return torch.log1p(torch.exp(-margin)).mean()

    cases = [
        Case(
            "by hand: the policy is the reference -> log 2",
            (pc, pr, pc, pr, 0.1),
            torch.tensor(math.log(2)),
        ),
        Case(
            "by hand: margin 0.5 * (1 - (-1)) = 1 -> log(1 + e^-1)",
            (
                torch.tensor([-3.0]),
                torch.tensor([-5.0]),
                torch.tensor([-4.0]),
                torch.tensor([-4.0]),
                0.5,
            ),
            torch.tensor(math.log(1 + math.exp(-1))),
        ),
    ]
    cases += [
        Case(
            f"random log-probabilities, beta={beta}",
            (pc, pr, rc, rr, beta),
            by_definition(pc, pr, rc, rr, beta),
            atol=1e-5,
        )
        for beta in (0.1, 1.0)
    ]
    cases.append(
        Case(
            "chosen and rejected swapped: the loss is not symmetric",
            (pr, pc, rr, rc, 0.5),
            by_definition(pr, pc, rr, rc, 0.5),
            atol=1e-5,
        )
    )
    return check(fn, cases, verbose=verbose)


def check_group_advantages(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(rewards) -> advantages`` (GRPO's), both (P, G).

    Each reward minus its group's (row's) mean, over the row's standard
    deviation (``torch.std``, unbiased) plus 1e-6; the reference is
    :func:`minigpt.align.group_advantages`.
    """
    from minigpt.align import group_advantages

    torch.manual_seed(0)
    cases = [
        Case(
            "by hand: [1, 0, 0, 1] -> mean 0.5, std 0.577 -> +-0.866",
            (torch.tensor([[1.0, 0.0, 0.0, 1.0]]),),
            torch.tensor([[1.0, -1.0, -1.0, 1.0]]) * 0.5 / (3**-0.5 + 1e-6),
        ),
        Case(
            "a group that all scored the same -> 0, not NaN",
            (torch.ones(1, 5),),
            torch.zeros(1, 5),
        ),
    ]
    for name, rewards in (
        ("each row is its own group", torch.tensor([[0.0, 1.0], [5.0, 9.0]])),
        ("random rewards, 3 prompts x 8 answers", torch.randn(3, 8)),
    ):
        cases.append(
            Case(name, (rewards,), group_advantages(rewards), atol=1e-5)
        )
    return check(fn, cases, verbose=verbose)


def check_response_targets(fn: Callable, verbose: bool = True) -> Report:
    """Check your ``fn(prompt_ids, response_ids) -> (inputs, targets)``.

    For one chat exchange: ``inputs`` is ``prompt + response`` without its
    last token, ``targets`` the next token at each input position, or -1
    where that token belongs to the prompt; both lists of ints. The
    reference is :func:`minigpt.finetune.prompt_response_rows`, which
    :func:`minigpt.align.chat_rows` uses.
    """
    from minigpt.finetune import prompt_response_rows

    class Ids:  # a tokenizer whose text is already a list of ids
        @staticmethod
        def encode(ids):
            return list(ids)

    def reference(prompt, response):
        inputs, targets = prompt_response_rows(Ids, [(prompt, response)], 64)
        return inputs[0].tolist(), targets[0].tolist()

    cases = [
        Case(
            "by hand: prompt [7, 8, 9], response [4, 2]",
            ([7, 8, 9], [4, 2]),
            ([7, 8, 9, 4], [-1, -1, 4, 2]),
        )
    ]
    for name, prompt, response in (
        ("a one-token prompt", [5], [6, 7, 8]),
        ("a one-token response", [1, 2, 3, 4], [0]),
        ("id 0 in the response is a target", [9, 9], [0, 0, 3]),
    ):
        cases.append(
            Case(name, (prompt, response), reference(prompt, response))
        )
    return check(fn, cases, verbose=verbose)
