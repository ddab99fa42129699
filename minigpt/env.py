"""``python -m minigpt env``: what to run first when a notebook misbehaves.

Prints the versions that matter, the device, the thread count and where the
corpus is read from and where models are cached, one line each, with ``OK`` or
the problem and its fix.
"""

import importlib.metadata
import platform
import re
import sys

import torch

from minigpt import __version__, default_device
from minigpt.data import CorpusError, cache_dir, corpus_file, load_text

__all__ = [
    "check_package",
    "corpus_line",
    "report",
    "main",
]

# (package, minimum version known to work, why the book needs it)
PACKAGES = [
    ("torch", "2.1", "the model and training"),
    ("numpy", "1.24", "numbers in the notebooks"),
    ("tokenizers", "0.15", "fast byte-level BPE"),
    ("safetensors", "0.4", "checkpoints that load without unpickling code"),
    (
        "transformers",
        "4.40",
        "the Hugging Face chapter and equivalence tests",
    ),
    ("matplotlib", "3.7", "figures"),
    ("jupyter-book", "1.0", "building the book (1.x, not 2.x)"),
]


def _version_tuple(text: str) -> tuple[int, ...]:
    """The leading numeric release of a version string.

    ``"2.13.0+cpu"`` -> ``(2, 13, 0)``.
    """
    match = re.match(r"\d+(\.\d+)*", text)
    return (
        tuple(int(part) for part in match.group(0).split("."))
        if match
        else ()
    )


def check_package(name: str, minimum: str) -> tuple[bool, str]:
    """(ok, text) for one installed package against the minimum version."""
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return (
            False,
            "not installed: run `make install` (or pip install "
            f"'{name}>={minimum}')",
        )
    if _version_tuple(version) < _version_tuple(minimum):
        return (
            False,
            f"{version} is older than {minimum}: pip install -U "
            f"'{name}>={minimum}'",
        )
    if name == "jupyter-book" and _version_tuple(version) >= (2,):
        return (
            False,
            f"{version} is Jupyter Book 2, this book needs 1.x: pip install "
            "'jupyter-book>=1,<2'",
        )
    return True, version


def corpus_line() -> tuple[bool, str]:
    """(ok, text): where Tiny Shakespeare is and if its checksum matches."""
    try:
        load_text("tinyshakespeare")
    except (CorpusError, OSError) as error:
        return False, str(error)
    return True, f"{corpus_file('tinyshakespeare')} (SHA-256 checked)"


def report() -> list[tuple[str, bool, str]]:
    """Every line of the environment report as (label, ok, text)."""
    lines = [("minigpt", True, __version__)]
    python_ok = sys.version_info >= (3, 10)
    lines.append(
        (
            "python",
            python_ok,
            platform.python_version()
            + ("" if python_ok else ": minigpt needs Python >= 3.10"),
        )
    )
    for name, minimum, why in PACKAGES:
        ok, text = check_package(name, minimum)
        lines.append((name, ok, f"{text}  ({why})"))
    lines.append(("device", True, default_device()))
    lines.append(("torch threads", True, str(torch.get_num_threads())))
    lines.append(
        (
            "torch build",
            True,
            "CUDA " + torch.version.cuda if torch.version.cuda else "CPU",
        )
    )
    ok, text = corpus_line()
    lines.append(("corpus", ok, text))
    lines.append(
        (
            "cache",
            True,
            f"{cache_dir()} (trained zoo models; set MINIGPT_CACHE_DIR to "
            "move it)",
        )
    )
    return lines


def main() -> int:
    """Print the report; the exit status is 1 when any line has a problem."""
    rows = report()
    width = max(len(label) for label, _, _ in rows)
    for label, ok, text in rows:
        print(f"{'OK ' if ok else 'BAD'}  {label:<{width}}  {text}")
    return 0 if all(ok for _, ok, _ in rows) else 1
