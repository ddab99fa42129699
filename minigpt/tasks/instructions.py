"""Instructions that code can grade: the alignment chapter's data.

Each instruction asks something about a short *phrase* of Shakespeare's words
(two or three words of at most six letters, cut from one line of the corpus):
repeat it, give its first or its last word, or count its words. Every
instruction has four *phrasings*; the first three are trained on and the last
is held out, so a chapter can tell whether the model learned the instruction
or only its wording. Phrases are split too: :func:`phrase_split` keeps the
test phrases out of training.

The answers are graded by code, in three grades (:func:`grade`):

- ``"concise"``: exactly the answer;
- ``"rambling"``: the answer, then a comma and more (``"two, my lord"``), as
  a third of the training responses are written (:func:`sft_pairs`);
- ``"wrong"``: anything else.

:func:`is_correct` is the *checker* (concise or rambling), a verifiable
reward; :func:`prefer` is the *judge* that states a preference between two
answers (concise beats rambling beats wrong), the rule that stands in for
people's preferences.

>>> ex = Example("count", "good my lord", 0)
>>> ex.prompt, ex.answer
('Count: good my lord', 'three')
>>> grade(ex, "three"), grade(ex, "three, good sir"), grade(ex, "two")
('concise', 'rambling', 'wrong')
"""

import random
import re
from dataclasses import dataclass

from minigpt.tasks.numbers import english_words

__all__ = [
    "PHRASINGS",
    "SEEN_PHRASINGS",
    "HELD_OUT_PHRASING",
    "TAILS",
    "GRADES",
    "MAX_LETTERS",
    "Example",
    "corpus_phrases",
    "phrase_split",
    "examples",
    "sft_pairs",
    "grade",
    "is_correct",
    "prefer",
]

#: Four phrasings of each instruction; ``{}`` is where the phrase goes.
PHRASINGS = {
    "repeat": ("Repeat: {}", "Say: {}", "Echo: {}", "Copy: {}"),
    "first": ("First word: {}", "Word one: {}", "Start of: {}", "Opener: {}"),
    "last": ("Last word: {}", "End of: {}", "Final word: {}", "Closer: {}"),
    "count": ("Count: {}", "How many: {}", "Words in: {}", "Tally: {}"),
}
#: The phrasings trained on, by index; the last one is held out.
SEEN_PHRASINGS = (0, 1, 2)
HELD_OUT_PHRASING = 3
#: What a rambling response adds after its answer.
TAILS = (", my lord", ", good sir", ", I pray")
#: The grades of an answer, worst first.
GRADES = ("wrong", "rambling", "concise")
#: The longest word a phrase may hold, in letters.
MAX_LETTERS = 6


@dataclass(frozen=True)
class Example:
    """One instruction applied to one phrase, in one phrasing.

    ``task``: a key of :data:`PHRASINGS`; ``phrase``: the words it is about;
    ``phrasing``: the index of the phrasing used.
    """

    task: str
    phrase: str
    phrasing: int

    def __post_init__(self):
        if self.task not in PHRASINGS:
            raise ValueError(
                f"task must be one of {tuple(PHRASINGS)}, got {self.task!r}"
            )
        n = len(PHRASINGS[self.task])
        if self.phrasing not in range(n):
            raise ValueError(
                f"phrasing must be an index 0..{n - 1} of "
                f"PHRASINGS[{self.task!r}], got {self.phrasing!r}"
            )
        if not self.phrase.split():
            raise ValueError("the phrase must hold at least one word")

    @property
    def prompt(self) -> str:
        return PHRASINGS[self.task][self.phrasing].format(self.phrase)

    @property
    def answer(self) -> str:
        words = self.phrase.split()
        return {
            "repeat": " ".join(words),
            "first": words[0],
            "last": words[-1],
            "count": english_words(len(words)),
        }[self.task]


def corpus_phrases(text: str) -> list[str]:
    """Every distinct phrase of the corpus, sorted.

    A phrase is two or three consecutive words of one line, lower-cased,
    each of letters only and at most :data:`MAX_LETTERS` long.
    """
    found = set()
    for line in text.splitlines():
        words = re.findall(r"[a-z]+", line.lower())
        for n in (2, 3):
            for i in range(len(words) - n + 1):
                window = words[i : i + n]
                if all(len(w) <= MAX_LETTERS for w in window):
                    found.add(" ".join(window))
    return sorted(found)


def phrase_split(
    phrases: list[str], n_test: int, seed: int = 0
) -> tuple[list[str], list[str]]:
    """(training phrases, ``n_test`` test phrases): a fixed random split."""
    if not 0 < n_test < len(phrases):
        raise ValueError(
            f"n_test must lie in 1..{len(phrases) - 1} for "
            f"{len(phrases)} phrases, got {n_test!r}"
        )
    shuffled = sorted(phrases)
    random.Random(seed).shuffle(shuffled)
    return shuffled[n_test:], shuffled[:n_test]


def examples(
    phrases: list[str], phrasings=SEEN_PHRASINGS, seed: int = 0
) -> list[Example]:
    """One :class:`Example` per phrase: a random task and phrasing each.

    ``phrasings``: the phrasing indices to draw from (e.g.
    ``(HELD_OUT_PHRASING,)`` for the held-out wording).
    """
    rng = random.Random(seed)
    tasks = list(PHRASINGS)
    return [
        Example(rng.choice(tasks), phrase, rng.choice(phrasings))
        for phrase in phrases
    ]


def sft_pairs(
    items: list[Example], rambling: float = 1 / 3, seed: int = 0
) -> list[tuple[str, str]]:
    """(prompt, response) pairs for instruction tuning.

    A ``rambling`` fraction of the responses add one of :data:`TAILS` after
    the answer, as real instruction data mixes terse and wordy answers.
    """
    if not 0 <= rambling <= 1:
        raise ValueError(f"rambling must lie in [0, 1], got {rambling!r}")
    rng = random.Random(seed)
    return [
        (
            ex.prompt,
            ex.answer
            + (rng.choice(TAILS) if rng.random() < rambling else ""),
        )
        for ex in items
    ]


def grade(example: Example, response: str) -> str:
    """``"concise"``, ``"rambling"`` or ``"wrong"`` (see the module)."""
    if response == example.answer:
        return "concise"
    if response.startswith(example.answer + ","):
        return "rambling"
    return "wrong"


def is_correct(example: Example, response: str) -> bool:
    """The checker: does ``response`` give the right answer first?

    Rambling after a right answer passes; the checker does not look at it.
    """
    return grade(example, response) != "wrong"


def prefer(example: Example, a: str, b: str) -> int:
    """The judge: 0 if ``a`` is better, 1 if ``b`` is, -1 for a tie.

    Better means a higher grade in :data:`GRADES`.
    """
    rank_a, rank_b = (GRADES.index(grade(example, r)) for r in (a, b))
    return -1 if rank_a == rank_b else int(rank_b > rank_a)
