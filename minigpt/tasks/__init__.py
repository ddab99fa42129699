"""The book's tasks: one small module each, with its data in
``minigpt/tasks/data/``.

- ``minigpt.tasks.numbers``     English number words <-> Chinese numerals
  (translation; generated)
- ``minigpt.tasks.docstrings``  standard-library docstrings (summarization,
  question answering; real text)
- ``minigpt.tasks.sentiment``   topic-sharing sentence pairs and a word-list
  baseline (written for the book)
- ``minigpt.tasks.word_order``  real lines against their words shuffled
  (fine-tuning)

The text statistics the tasks are scored with live in
:mod:`minigpt.textstats`.
"""

from importlib import resources

__all__ = ["read_data"]


def read_data(name: str) -> str:
    """The UTF-8 text of the data file ``name`` in ``minigpt/tasks/data/``,
    from a checkout or an install."""
    folder = resources.files(__name__).joinpath("data")
    if not folder.joinpath(name).is_file():
        present = sorted(entry.name for entry in folder.iterdir())
        raise FileNotFoundError(
            f"no data file {name!r} in minigpt/tasks/data/ (it holds "
            f"{present}); "
            "a new file must also match the package data in pyproject.toml"
        )
    return folder.joinpath(name).read_text(encoding="utf-8")
