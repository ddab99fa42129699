"""Side-by-side timing of two callables, in one process, for the book.

Every benchmark script in this folder is built on :func:`compare`, which
times its two contenders with :func:`minigpt.timing.time_interleaved`: after
warm-up, alternately (A, B, then B, A, ...), so that whatever else the
machine is doing slows both alike and the ratio is more trustworthy than
either time alone. Each script prints a table and writes its rows to
``benchmarks/results/<name>.json`` for the book's performance appendix.
"""

import fcntl
import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from minigpt.timing import time_interleaved

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Comparison:
    """Median seconds per call of ``a`` and ``b``.

    ``ratio`` = b / a: above 1, ``a`` is the faster.
    """

    name: str
    a_name: str
    b_name: str
    a_median_s: float
    b_median_s: float
    repeats: int

    @property
    def ratio(self) -> float:
        return self.b_median_s / self.a_median_s

    def line(self) -> str:
        return (
            f"{self.name}: {self.a_name} {self.a_median_s * 1e3:.3f} ms, "
            f"{self.b_name} {self.b_median_s * 1e3:.3f} ms, "
            f"{self.a_name} is {self.ratio:.2f}x the speed of {self.b_name}"
        )


def compare(
    name: str,
    a: Callable[[], object],
    b: Callable[[], object],
    a_name: str = "minigpt",
    b_name: str = "peer",
    warmup: int = 3,
    repeats: int = 20,
) -> Comparison:
    """Time ``a()`` and ``b()`` in ``repeats`` interleaved rounds; print it.

    Each is called ``warmup`` times first, untimed.
    """
    seconds = time_interleaved(
        {"a": a, "b": b}, repeats=repeats, warmup=warmup
    )
    result = Comparison(
        name,
        a_name,
        b_name,
        statistics.median(seconds["a"]),
        statistics.median(seconds["b"]),
        repeats,
    )
    print(result.line(), flush=True)
    return result


def save(script: str, rows: list[dict]) -> Path:
    """Write ``rows`` to results/<script>.json, atomically.

    The machine they were measured on is recorded with them.
    """
    import platform

    import torch

    from minigpt.common import atomic_path

    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{script}.json"
    payload = {
        "script": script,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rows": rows,
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def row(comparison: Comparison, **extra) -> dict:
    """A JSON-ready dict of one comparison, its ratio and ``extra``."""
    return {**asdict(comparison), "ratio": comparison.ratio, **extra}


def read_rows(script: str) -> list[dict]:
    """The rows saved so far in results/<script>.json ([] if none)."""
    path = RESULTS_DIR / f"{script}.json"
    return json.loads(path.read_text())["rows"] if path.exists() else []


def append_row(script: str, row: dict) -> None:
    """Add ``row`` to results/<script>.json.

    A lock keeps concurrent sweeps from losing each other's rows.
    """
    lock_path = Path(tempfile.gettempdir()) / f"minigpt-{script}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        save(script, read_rows(script) + [row])


def parse_sweep_args(parser, argv=None):
    """``parser``'s arguments plus the two every sweep has.

    ``--threads`` (torch threads, default 1: a sweep runs one process per
    core) is applied at once; ``--summary`` asks for the recorded results
    only.
    """
    import torch

    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default: 1)"
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="only print the results recorded so far",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    return args
