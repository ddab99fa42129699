"""Mechanics several minigpt modules share, written once.

Atomic writes, argument checks and a private RNG:

- :func:`atomic_path`: write a file or a folder under a temporary name beside
  its destination, then move it into place with ``os.replace``, so a crash
  mid-write never leaves half a file (checkpoints, tokenizers, benchmark
  results).
- :func:`check_positive_int`: the one check behind every "must be a positive
  int" error.
- :func:`config_from_dict`: a config dataclass from a dict read from JSON,
  unknown keys refused.
- :func:`seeded_rng`: run a block with torch's global random state seeded, and
  give the caller's state back afterwards: a model built inside
  (``GPT(config)`` draws its initial weights from that state) never shifts the
  random numbers the caller draws next.
"""

import contextlib
import dataclasses
import os
import shutil
from pathlib import Path

import torch

__all__ = [
    "atomic_path",
    "check_positive_int",
    "config_from_dict",
    "seeded_rng",
    "shape_or_type",
]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``, moved onto it on success.

    Write a file or create a folder at the yielded path. On success it
    replaces ``path`` (an existing folder there is moved aside first, put
    back if the move into place fails, and deleted only afterwards); on an
    exception it is deleted and ``path`` is untouched. The parent folder is
    created.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "result.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('done', ['result.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        # os.replace cannot overwrite a non-empty folder
        if tmp.is_dir() and path.is_dir():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)  # the previous folder goes back
                raise
            _remove(old)
        else:
            os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    """Delete the file or folder ``path`` if it exists."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def check_positive_int(name: str, value, fix: str = "") -> int:
    """``value`` if it is an int >= 1 (not a bool), else a ValueError.

    The error names ``name``, the value and ``fix``.

    >>> check_positive_int("n_layer", 4)
    4
    >>> check_positive_int("n_layer", 0, fix="; use at least one block")
    Traceback (most recent call last):
    ...
    ValueError: n_layer must be a positive int, got 0; use at least one block
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}{fix}")
    return value


@contextlib.contextmanager
def seeded_rng(seed: int = 0):
    """Run the block with torch's global CPU RNG seeded with ``seed``.

    The caller's random state is restored afterwards. Use it to build a model
    whose weights are about to be replaced (loading a checkpoint) or must
    repeat (a zoo preset), without moving the caller's random numbers.

    >>> _ = torch.manual_seed(1); before = torch.rand(1)
    >>> _ = torch.manual_seed(1)
    >>> with seeded_rng(0):
    ...     _ = torch.rand(1000)
    >>> torch.equal(torch.rand(1), before)
    True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def shape_or_type(value):
    """What an error message says it got: a tensor's shape, else a type name.

    >>> shape_or_type(torch.zeros(2, 3)), shape_or_type([1, 2])
    ((2, 3), 'list')
    """
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    return type(value).__name__


def config_from_dict(cls, values: dict):
    """``cls(**values)`` for a config dataclass, unknown keys refused.

    A key the class does not know means a file from another program or
    version; ignoring it would silently build another model or run.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} field(s) {unknown}; known fields: "
            f"{sorted(known)} (was this saved by another program or "
            "another version?)"
        )
    return cls(**values)
