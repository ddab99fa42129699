"""Timing functions side by side: warm-up, then interleaved rounds.

A speed comparison is only as fair as the conditions each side ran under.
Timed one after the other, one function may get the quiet machine and the
other the busy one, or always run on the cache its rival just warmed. So
:func:`time_interleaved` first calls every function ``warmup`` times untimed
(imports, allocations, caches, lazy compilation), then runs ``repeats``
rounds in which every function is timed once, rotating which goes first:
whatever else the machine does slows all of them alike, and none always
runs first or last.

>>> calls = []
>>> def a():
...     calls.append("a")
>>> def b():
...     calls.append("b")
>>> seconds = time_interleaved({"a": a, "b": b}, repeats=2, warmup=1)
>>> calls  # one warm-up call each, then rounds a-b and b-a
['a', 'b', 'a', 'b', 'b', 'a']
>>> {name: len(times) for name, times in seconds.items()}
{'a': 2, 'b': 2}
"""

import time
from typing import Callable

from minigpt.common import check_positive_int

__all__ = ["time_interleaved"]


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    repeats: int = 5,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Seconds of each call of each function, timed in interleaved rounds.

    ``fns`` maps names to functions of no arguments. Each is called
    ``warmup`` times untimed, then ``repeats`` rounds time every function
    once with ``time.perf_counter``; round r starts with the function at
    position r (mod the number of functions) and goes on in the dict's order.
    Returns ``{name: [seconds of round 0, round 1, ...]}``; take the median
    to compare.
    """
    _check_fns(fns)
    check_positive_int(
        "repeats", repeats, "; time each function once or more"
    )
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(
            f"warmup must be a non-negative int, got {warmup!r}; pass 0 for "
            "no warm-up calls"
        )
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    seconds = {name: [] for name in names}
    for r in range(repeats):
        first = r % len(names)
        for name in names[first:] + names[:first]:
            start = time.perf_counter()
            fns[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def _check_fns(fns) -> None:
    """Fail, naming the problem, unless ``fns`` is a dict of callables."""
    if not isinstance(fns, dict):
        raise TypeError(
            f"fns must be a dict of name -> function, got "
            f"{type(fns).__name__}; e.g. time_interleaved({{'a': f, 'b': g}})"
        )
    if not fns:
        raise ValueError(
            "fns is empty: pass at least one function to time, e.g. "
            "time_interleaved({'a': f})"
        )
    for name, fn in fns.items():
        if not callable(fn):
            raise TypeError(
                f"fns[{name!r}] is a {type(fn).__name__}, not a function: "
                f"pass the function itself, not its result ({{'a': f}}, not "
                "{'a': f()})"
            )
