"""The summarization and question-answering tasks: stdlib docstrings.

The docstrings of a fixed list of pure-Python standard-library modules
(:data:`STDLIB_MODULES`) are read offline with :mod:`inspect`
(:func:`docstring_records`). A docstring's first line summarises the rest (PEP
257), which gives summarization pairs (body -> summary,
:func:`summarization_pairs`) and question-answering pairs (summary ->
qualified name, :func:`qa_pairs`). The text depends on the Python version.
"""

import importlib
import inspect
import re
from collections import Counter
from dataclasses import dataclass

__all__ = [
    "STDLIB_MODULES",
    "DocRecord",
    "docstring_records",
    "summarization_pairs",
    "qa_pairs",
]

#: Pure-Python modules of the standard library with well-written docstrings.
STDLIB_MODULES = (
    "argparse",
    "base64",
    "bisect",
    "calendar",
    "collections",
    "csv",
    "datetime",
    "difflib",
    "email.message",
    "fractions",
    "ftplib",
    "functools",
    "gzip",
    "heapq",
    "inspect",
    "ipaddress",
    "json",
    "logging",
    "mailbox",
    "os",
    "pathlib",
    "pickle",
    "pprint",
    "random",
    "shutil",
    "smtplib",
    "statistics",
    "string",
    "subprocess",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "unittest.case",
    "urllib.parse",
    "uuid",
    "zipfile",
)


@dataclass(frozen=True)
class DocRecord:
    """One documented function, class or method.

    Its qualified name, summary line and body.
    """

    name: str  # e.g. "textwrap.TextWrapper.wrap"
    summary: str  # the docstring's first line
    body: str  # the rest of the docstring, paragraphs joined by single spaces


def _split_docstring(doc: str) -> tuple[str, str] | None:
    """(summary, body) of a PEP 257 docstring.

    A one-line summary, a blank line, the body. The body is its prose:
    interactive examples (from the first ``>>>`` on) are code, not text, and
    are dropped. A first line that is a call signature
    (``name(args) -> result``) is no summary: None.
    """
    lines = doc.strip().splitlines()
    if len(lines) < 3 or lines[1].strip():
        return None  # no body, or a summary that runs over several lines
    summary = lines[0].strip()
    if re.match(r"[\w.]+\(", summary):
        # an old-style signature line such as "wrap(text : string) ->
        # [string]", not a summary
        return None
    body = " ".join(" ".join(lines[2:]).split()).split(">>>")[0].strip()
    return summary, body


def _documented(module) -> list[tuple[str, object]]:
    """(qualified name, object) for the public API of ``module``.

    Its public functions and classes, and their methods.
    """
    found = []
    for name, obj in vars(module).items():
        if (
            name.startswith("_")
            or getattr(obj, "__module__", None) != module.__name__
        ):
            continue
        if inspect.isfunction(obj):
            found.append((f"{module.__name__}.{name}", obj))
        elif inspect.isclass(obj):
            found.append((f"{module.__name__}.{name}", obj))
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    found.append((f"{module.__name__}.{name}.{attr}", member))
    return found


def docstring_records(
    modules=STDLIB_MODULES, min_body_words: int = 8, max_body_words: int = 150
) -> list[DocRecord]:
    """Every documented public function, class and method of ``modules``.

    Sorted by name. Kept: docstrings with a one-line summary, a blank line and
    a body of ``min_body_words``..``max_body_words`` words (very long bodies
    are dropped, not cut), whose summary appears only once (so a question has
    one answer).
    """
    records = {}
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ValueError(
                f"cannot import standard-library module {module_name!r} "
                f"({error}); "
                "pass modules= without it"
            ) from error
        for name, obj in _documented(module):
            doc = obj.__doc__
            parts = _split_docstring(doc) if isinstance(doc, str) else None
            if (
                parts
                and min_body_words <= len(parts[1].split()) <= max_body_words
            ):
                records[name] = DocRecord(name, *parts)
    counts = Counter(r.summary for r in records.values())
    return [r for _, r in sorted(records.items()) if counts[r.summary] == 1]


def summarization_pairs(records: list[DocRecord]) -> list[tuple[str, str]]:
    """(document, reference summary) = (body, first line) for each record."""
    return [(r.body, r.summary) for r in records]


def qa_pairs(records: list[DocRecord]) -> list[tuple[str, str]]:
    """(question, answer) = (summary line, qualified name).

    The question a pair asks: "which function does this?".
    """
    return [(r.summary, r.name) for r in records]
