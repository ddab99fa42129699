"""Corpora, train/validation splits and batches of (input, target) windows.

Two corpora are registered:

- ``"tinyshakespeare"``: the 1.1 MB text that char-rnn and nanoGPT train on,
  downloaded once from its canonical address, checked against its SHA-256 and
  cached;
- ``"pydocs"``: Python's own reference manual (``pydoc_data``, shipped with
  every Python), the offline fallback.

Where files live: ``MINIGPT_DATA_DIR`` is looked in first and never written
(it may be read-only); downloads go to :func:`cache_dir`.

A language model is trained on windows of ``block_size`` tokens: the input
``x = data[i : i + block_size]`` and the target ``y = data[i + 1 : i + block_size + 1]``,
the same window shifted by one, so ``y[t]`` is the token that follows ``x[: t + 1]``.
"""

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

DATA_DIR_ENV = "MINIGPT_DATA_DIR"
CACHE_DIR_ENV = "MINIGPT_CACHE_DIR"


@dataclass(frozen=True)
class Corpus:
    """A downloadable text file: where it comes from and how to recognise it."""

    name: str
    filename: str
    url: str
    sha256: str
    size: int  # bytes


CORPORA = {
    "tinyshakespeare": Corpus(
        name="tinyshakespeare",
        filename="tinyshakespeare.txt",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        size=1_115_394,
    ),
}
BUILTIN = ("pydocs",)  # corpora that ship with Python: nothing to download
NAMES = tuple(CORPORA) + BUILTIN


class CorpusUnavailableError(RuntimeError):
    """A corpus is neither on disk nor downloadable (offline, or the address failed)."""


def cache_dir() -> Path:
    """Where downloads and trained models are written: ``$MINIGPT_CACHE_DIR``, else the
    user cache dir (``~/.cache/minigpt`` on Linux). Created on demand."""
    if os.environ.get(CACHE_DIR_ENV):
        path = Path(os.environ[CACHE_DIR_ENV]).expanduser()
    elif sys.platform == "win32":
        path = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "minigpt" / "Cache"
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Caches" / "minigpt"
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minigpt"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, corpus: Corpus) -> None:
    """Raise ``ValueError`` unless ``path`` has the corpus's size and SHA-256."""
    size = path.stat().st_size
    if size != corpus.size:
        raise ValueError(f"{path} has {size} bytes, expected {corpus.size} for {corpus.name!r} "
                         f"(truncated or a different file): delete it and run again to download {corpus.url}")
    digest = sha256_of(path)
    if digest != corpus.sha256:
        raise ValueError(f"{path} has SHA-256 {digest}, expected {corpus.sha256} for {corpus.name!r} "
                         f"(corrupt or a different file): delete it and run again to download {corpus.url}")


def download(corpus: Corpus, dest: Path, timeout: float = 30.0) -> Path:
    """Download ``corpus.url`` to ``dest`` with a progress bar; verify, then move into place.

    The bytes go to a temporary file beside ``dest``, which is checked against the
    expected size and SHA-256 and only then renamed onto ``dest`` (``os.replace`` is
    atomic), so ``dest`` is either absent or complete and correct. On any failure the
    temporary file is removed and nothing is cached.
    """
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(corpus.url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {corpus.name}") as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
        try:
            verify(tmp, corpus)
        except ValueError as error:
            raise ValueError(f"download of {corpus.url} failed verification, nothing was cached: {error}") from None
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError) as error:
        raise CorpusUnavailableError(
            f"cannot download {corpus.name!r} from {corpus.url} ({error}). Fix: download it yourself to "
            f"{dest}, or set {DATA_DIR_ENV} to a folder holding {corpus.filename}, "
            f"or use the corpus that ships with Python: load_text('pydocs')") from error
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise ValueError(f"unknown corpus {name!r}: choose one of {', '.join(NAMES)}")


def corpus_path(name: str, download_missing: bool = True) -> Path:
    """The verified file of a downloadable corpus: from ``$MINIGPT_DATA_DIR``, the cache,
    or (when ``download_missing``) a fresh download into the cache."""
    _check_name(name)
    if name in BUILTIN:
        raise ValueError(f"corpus {name!r} ships with Python and has no file: use load_text({name!r})")
    corpus = CORPORA[name]
    if os.environ.get(DATA_DIR_ENV):
        path = Path(os.environ[DATA_DIR_ENV]).expanduser() / corpus.filename
        if path.exists():
            verify(path, corpus)
            return path
    path = cache_dir() / corpus.filename
    if path.exists():
        verify(path, corpus)
        return path
    if not download_missing:
        raise CorpusUnavailableError(f"{corpus.name!r} is not at {path} and downloading was not allowed: "
                                     f"set {DATA_DIR_ENV} to a folder holding {corpus.filename}")
    return download(corpus, path)


def pydocs_text() -> str:
    """Python's reference manual topics (``pydoc_data.topics``), joined in sorted order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def load_text(name: str) -> str:
    """The text of a registered corpus: ``"tinyshakespeare"`` or ``"pydocs"``."""
    _check_name(name)
    if name == "pydocs":
        return pydocs_text()
    return corpus_path(name).read_text(encoding="utf-8")


def default_corpus() -> str:
    """``"tinyshakespeare"`` when it is on disk or can be downloaded, else ``"pydocs"``."""
    try:
        corpus_path("tinyshakespeare")
    except CorpusUnavailableError:
        return "pydocs"
    return "tinyshakespeare"


def train_val_split(data, val_fraction: float = 0.1):
    """Split a str or 1-D tensor into (train, val): the first ``1 - val_fraction`` and the
    last ``val_fraction``, in order (no shuffling: the validation text is unseen text)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}; e.g. 0.1")
    if isinstance(data, torch.Tensor) and data.dim() != 1:
        raise ValueError(f"data must be 1-D, got shape {tuple(data.shape)}: flatten it first")
    n = len(data)
    split = int(n * (1.0 - val_fraction))
    if split == 0 or split == n:
        raise ValueError(f"cannot split {n} items with val_fraction={val_fraction}: "
                         "one side would be empty; use more data or another fraction")
    return data[:split], data[split:]


def _check_tokens(data, block_size: int) -> None:
    if not isinstance(data, torch.Tensor) or data.dim() != 1 or data.dtype != torch.long:
        raise ValueError(f"data must be a 1-D LongTensor of token ids, got "
                         f"{type(data).__name__}{tuple(data.shape) if isinstance(data, torch.Tensor) else ''}"
                         f"{' ' + str(data.dtype) if isinstance(data, torch.Tensor) else ''}: "
                         "use torch.tensor(ids, dtype=torch.long)")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if len(data) <= block_size:
        raise ValueError(f"data has {len(data)} tokens, too few for block_size={block_size}: "
                         f"need at least block_size + 1 = {block_size + 1}")


def get_batch(data: torch.Tensor, block_size: int, batch_size: int,
              generator: torch.Generator | None = None, device="cpu"):
    """A random batch of windows: ``x, y`` of shape (batch_size, block_size), ``y`` = ``x`` shifted by one.

    Window starts are drawn with ``torch.randint(..., generator=generator)``, so the same
    seeded generator gives the same batches.

    >>> data = torch.arange(10)
    >>> x, y = get_batch(data, block_size=3, batch_size=2, generator=torch.Generator().manual_seed(0))
    >>> bool((y[:, :-1] == x[:, 1:]).all()) and bool((y == x + 1).all())
    True
    """
    _check_tokens(data, block_size)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    index = starts[:, None] + torch.arange(block_size + 1)  # (B, T + 1)
    windows = data[index]
    x, y = windows[:, :-1].contiguous(), windows[:, 1:].contiguous()  # contiguous: .view() works on them
    return x.to(device), y.to(device)


class TokenDataset(torch.utils.data.Dataset):
    """Every window of ``block_size`` tokens, for ``torch.utils.data.DataLoader`` users.

    Item ``i`` is ``(data[i : i + block_size], data[i + 1 : i + block_size + 1])``.
    """

    def __init__(self, data: torch.Tensor, block_size: int):
        _check_tokens(data, block_size)
        self.data = data
        self.block_size = block_size

    def __len__(self) -> int:
        return len(self.data) - self.block_size

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        i = i % len(self)
        return self.data[i:i + self.block_size], self.data[i + 1:i + self.block_size + 1]
