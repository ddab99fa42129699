"""minigpt.timing: warm-up, rotated rounds, each call timed, bad input."""

import time

import pytest

from minigpt import timing
from minigpt.timing import time_interleaved


def recorders(names, calls):
    """One function per name that appends its name to ``calls``."""

    def recorder(name):
        def call():
            calls.append(name)

        return call

    return {name: recorder(name) for name in names}


def test_warmup_calls_then_rounds_that_rotate_the_first_function():
    calls = []
    seconds = time_interleaved(recorders("abc", calls), repeats=4, warmup=2)
    # by hand: two warm-up passes in order, then rounds starting at a, b, c, a
    assert calls == [
        *"abc",
        *"abc",
        *"abc",
        *"bca",
        *"cab",
        *"abc",
    ]
    assert list(seconds) == ["a", "b", "c"]
    assert all(len(times) == 4 for times in seconds.values())


def test_no_warmup_and_a_single_function():
    calls = []
    seconds = time_interleaved(recorders("a", calls), repeats=3, warmup=0)
    assert calls == ["a", "a", "a"] and len(seconds["a"]) == 3
    calls.clear()
    time_interleaved(recorders("ab", calls), repeats=1, warmup=0)
    assert calls == ["a", "b"]


def test_each_duration_is_its_own_calls_and_warmup_is_not_timed(
    monkeypatch,
):
    # a fake clock that only the functions move: a takes 1 s, b takes 2 s,
    # so every measured duration is known exactly
    now = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])

    def advance(by):
        def call():
            now[0] += by

        return call

    seconds = time_interleaved(
        {"a": advance(1.0), "b": advance(2.0)}, repeats=3, warmup=5
    )
    assert seconds == {"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0]}


def test_a_sleeping_function_measures_at_least_its_sleep():
    seconds = time_interleaved(
        {"sleep": lambda: time.sleep(0.02), "nothing": lambda: None},
        repeats=3,
        warmup=0,
    )
    assert all(t >= 0.02 for t in seconds["sleep"])
    assert all(t >= 0.0 for t in seconds["nothing"])


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True, "3"])
def test_rejects_repeats_that_are_not_positive_ints(repeats):
    with pytest.raises(
        ValueError,
        match=rf"repeats must be a positive int, got {repeats!r}; "
        "time each function once or more",
    ):
        time_interleaved({"a": lambda: None}, repeats=repeats)


@pytest.mark.parametrize("warmup", [-1, 0.5, True, None])
def test_rejects_warmup_that_is_not_a_non_negative_int(warmup):
    with pytest.raises(
        ValueError,
        match=rf"warmup must be a non-negative int, got {warmup!r}; "
        "pass 0 for no warm-up calls",
    ):
        time_interleaved({"a": lambda: None}, warmup=warmup)


@pytest.mark.parametrize(
    "fns, kind",
    [([lambda: None], "list"), (print, "builtin_function_or_method")],
)
def test_rejects_functions_not_given_as_a_dict(fns, kind):
    with pytest.raises(
        TypeError,
        match=rf"fns must be a dict of name -> function, got {kind}; "
        r"e\.g\. time_interleaved\(\{'a': f, 'b': g\}\)",
    ):
        time_interleaved(fns)


def test_rejects_an_empty_dict_and_a_result_in_place_of_a_function():
    with pytest.raises(ValueError, match="fns is empty: pass at least one"):
        time_interleaved({})
    calls = []
    with pytest.raises(
        TypeError,
        match=r"fns\['b'\] is a NoneType, not a function: pass the function "
        r"itself, not its result",
    ):
        time_interleaved({"a": lambda: calls.append("a"), "b": None})
    assert calls == []  # checked before anything runs
