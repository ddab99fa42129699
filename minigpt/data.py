"""Corpora, train/validation splits and batches of (input, target) windows.

Two corpora are registered, and both are on disk wherever minigpt is
installed, so nothing is ever downloaded:

- ``"tinyshakespeare"``: the 1.1 MB of plays that char-rnn and nanoGPT train
  on (public domain), shipped inside the package as
  ``minigpt/corpora/tinyshakespeare.txt`` and checked against its size and
  SHA-256 every time it is read;
- ``"pydocs"``: Python's own reference manual (``pydoc_data``, shipped with
  every Python), a second corpus for exercises.

A corpus is always named where it is used: no corpus silently stands in for
another. Trained models are cached under :func:`cache_dir`.

A language model is trained on windows of ``block_size`` tokens: the input
``x = data[i : i + block_size]`` and the target
``y = data[i + 1 : i + block_size + 1]``, the same window shifted by one, so
``y[t]`` is the token that follows ``x[: t + 1]``.
"""

import hashlib
import importlib.resources
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from minigpt.common import check_positive_int

__all__ = [
    "CACHE_DIR_ENV",
    "Corpus",
    "SHIPPED",
    "NAMES",
    "CorpusError",
    "cache_dir",
    "corpus_file",
    "verified",
    "pydocs_text",
    "load_text",
    "train_val_split",
    "get_batch",
    "TokenDataset",
]

#: The environment variable that, when set, names the cache folder.
CACHE_DIR_ENV = "MINIGPT_CACHE_DIR"


@dataclass(frozen=True)
class Corpus:
    """A text file shipped in ``minigpt/corpora/``.

    Its fields say where it came from and how to recognise it.
    """

    name: str
    filename: str
    # where the file was taken from, for the record; minigpt never fetches it
    origin: str
    sha256: str
    size: int  # bytes


SHIPPED = {
    "tinyshakespeare": Corpus(
        name="tinyshakespeare",
        filename="tinyshakespeare.txt",
        origin="https://github.com/karpathy/char-rnn/blob/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        size=1_115_394,
    ),
}
NAMES = (*SHIPPED, "pydocs")


class CorpusError(ValueError):
    """A shipped corpus file that is not the one minigpt was released with.

    The file was damaged or edited.
    """


def cache_dir() -> Path:
    """Where trained models are written; created on demand.

    ``$MINIGPT_CACHE_DIR``, else the user cache dir (``~/.cache/minigpt`` on
    Linux).
    """
    if os.environ.get(CACHE_DIR_ENV):
        path = Path(os.environ[CACHE_DIR_ENV]).expanduser()
    elif sys.platform == "win32":
        path = (
            Path(
                os.environ.get(
                    "LOCALAPPDATA", Path.home() / "AppData" / "Local"
                )
            )
            / "minigpt"
            / "Cache"
        )
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Caches" / "minigpt"
    else:
        path = (
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
            / "minigpt"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise ValueError(
            f"unknown corpus {name!r}: choose one of {', '.join(NAMES)}, "
            "or read your own file with open(path).read()"
        )


def corpus_file(name: str):
    """The shipped file of corpus ``name`` inside the installed package.

    An ``importlib.resources`` path; ``str()`` of it names the file on disk.
    """
    _check_name(name)
    if name not in SHIPPED:
        raise ValueError(
            f"corpus {name!r} ships with Python, not as a file: use "
            f"load_text({name!r})"
        )
    return (
        importlib.resources.files("minigpt")
        / "corpora"
        / SHIPPED[name].filename
    )


def verified(content: bytes, corpus: Corpus, where) -> bytes:
    """``content``, checked against the corpus's size and SHA-256.

    A mismatch raises :class:`CorpusError`.
    """
    fix = (
        "the file was damaged or edited: restore it (`git checkout "
        "minigpt/corpora` in a clone "
        "of the book) or reinstall minigpt"
    )
    if len(content) != corpus.size:
        raise CorpusError(
            f"{where} has {len(content):,} bytes, expected {corpus.size:,} "
            "for "
            f"{corpus.name!r}; {fix}"
        )
    digest = hashlib.sha256(content).hexdigest()
    if digest != corpus.sha256:
        raise CorpusError(
            f"{where} has SHA-256 {digest}, expected {corpus.sha256} for "
            f"{corpus.name!r}; {fix}"
        )
    return content


def pydocs_text() -> str:
    """Python's reference manual: the topics of ``pydoc_data.topics``.

    Joined in the sorted order of their names.
    """
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def load_text(name: str) -> str:
    """The text of a registered corpus, ``"tinyshakespeare"`` or ``"pydocs"``.

    A shipped file is verified against its SHA-256 first (milliseconds).
    """
    _check_name(name)
    if name == "pydocs":
        return pydocs_text()
    file = corpus_file(name)
    return verified(file.read_bytes(), SHIPPED[name], file).decode("utf-8")


def train_val_split(data, val_fraction: float = 0.1):
    """Split a str or 1-D tensor into (train, val), in order.

    The first ``1 - val_fraction`` and the last ``val_fraction``; no
    shuffling, so the validation text is unseen text.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(
            "val_fraction must be between 0 and 1 (exclusive), got "
            f"{val_fraction!r}; e.g. 0.1"
        )
    if isinstance(data, torch.Tensor) and data.dim() != 1:
        raise ValueError(
            f"data must be 1-D, got shape {tuple(data.shape)}: flatten it "
            "first"
        )
    n = len(data)
    split = int(n * (1.0 - val_fraction))
    if split == 0 or split == n:
        raise ValueError(
            f"cannot split {n} items with val_fraction={val_fraction}: "
            "one side would be empty; use more data or another fraction"
        )
    return data[:split], data[split:]


def _check_tokens(data, block_size: int) -> None:
    if (
        not isinstance(data, torch.Tensor)
        or data.dim() != 1
        or data.dtype != torch.long
    ):
        got = type(data).__name__
        if isinstance(data, torch.Tensor):
            got += f"{tuple(data.shape)} {data.dtype}"
        raise ValueError(
            f"data must be a 1-D LongTensor of token ids, got {got}: "
            "use torch.tensor(ids, dtype=torch.long)"
        )
    check_positive_int("block_size", block_size)
    if len(data) <= block_size:
        raise ValueError(
            f"data has {len(data)} tokens, too few for "
            f"block_size={block_size}: "
            f"need at least block_size + 1 = {block_size + 1}"
        )


def get_batch(
    data: torch.Tensor,
    block_size: int,
    batch_size: int,
    generator: torch.Generator | None = None,
    device="cpu",
):
    """A random batch of windows ``x, y`` (batch_size, block_size).

    ``y`` is ``x`` shifted by one. Window starts are drawn with
    ``torch.randint(..., generator=generator)``, so the same seeded generator
    gives the same batches.

    >>> data = torch.arange(10)
    >>> gen = torch.Generator().manual_seed(0)
    >>> x, y = get_batch(data, block_size=3, batch_size=2, generator=gen)
    >>> bool((y[:, :-1] == x[:, 1:]).all()) and bool((y == x + 1).all())
    True
    """
    _check_tokens(data, block_size)
    check_positive_int("batch_size", batch_size)
    # the first position of each window: (B,)
    starts = torch.randint(
        len(data) - block_size, (batch_size,), generator=generator
    )
    index = starts[:, None] + torch.arange(block_size + 1)  # (B, T + 1)
    windows = data[index]
    # contiguous: .view() works on them
    x, y = (
        windows[:, :-1].contiguous(),
        windows[:, 1:].contiguous(),
    )
    return x.to(device), y.to(device)


class TokenDataset(torch.utils.data.Dataset):
    """Every window of ``block_size`` tokens, as a torch ``Dataset``.

    For ``torch.utils.data.DataLoader`` users. Item ``i`` is
    ``(data[i : i + block_size], data[i + 1 : i + block_size + 1])``.
    """

    def __init__(self, data: torch.Tensor, block_size: int):
        _check_tokens(data, block_size)
        self.data = data
        self.block_size = block_size

    def __len__(self) -> int:
        return len(self.data) - self.block_size

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(
                f"window {i} out of range for {len(self)} windows"
            )
        i = i % len(self)
        return self.data[i : i + self.block_size], self.data[
            i + 1 : i + self.block_size + 1
        ]
