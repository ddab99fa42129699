"""The book's tasks: one small module each, data in ``minigpt/tasks/data/``.

- ``minigpt.tasks.numbers``     English <-> Chinese number words (translation)
- ``minigpt.tasks.docstrings``  docstrings: summarization, question answering
- ``minigpt.tasks.sentiment``   sentence pairs and a word-list baseline
- ``minigpt.tasks.word_order``  real lines against shuffled ones (fine-tuning)
- ``minigpt.tasks.incontext``   key -> value mappings shown only in the prompt
- ``minigpt.tasks.instructions`` instructions graded by code (alignment)

The tasks are scored with the text statistics of :mod:`minigpt.textstats`.
"""

from importlib import resources

__all__ = ["read_data"]


def read_data(name: str) -> str:
    """The UTF-8 text of the data file ``name`` in ``minigpt/tasks/data/``.

    Read from a checkout or an install alike.
    """
    folder = resources.files(__name__).joinpath("data")
    if not folder.joinpath(name).is_file():
        present = sorted(entry.name for entry in folder.iterdir())
        raise FileNotFoundError(
            f"no data file {name!r} in minigpt/tasks/data/ (it holds "
            f"{present}); "
            "a new file must also match the package data in pyproject.toml"
        )
    return folder.joinpath(name).read_text(encoding="utf-8")
