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
    "check_chinese_numeral",
    "check_last_positions",
    "check_sequence_logprob",
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
