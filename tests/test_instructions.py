"""minigpt.tasks.instructions: the prompts, answers, grades and splits of the
alignment chapter's instructions, by hand."""

import pytest

from minigpt.tasks import instructions as ins
from minigpt.tasks.instructions import Example


@pytest.mark.parametrize(
    "task, prompt, answer",
    [
        ("repeat", "Repeat: o my lord", "o my lord"),
        ("first", "First word: o my lord", "o"),
        ("last", "Last word: o my lord", "lord"),
        ("count", "Count: o my lord", "three"),
    ],
)
def test_prompt_and_answer_of_each_task(task, prompt, answer):
    example = Example(task, "o my lord", 0)
    assert (example.prompt, example.answer) == (prompt, answer)


def test_the_held_out_phrasing_is_not_among_the_seen_ones():
    held = Example("count", "my lord", ins.HELD_OUT_PHRASING)
    assert held.prompt == "Tally: my lord"
    assert ins.HELD_OUT_PHRASING not in ins.SEEN_PHRASINGS
    for phrasings in ins.PHRASINGS.values():
        assert len(set(phrasings)) == len(phrasings) == 4


def test_example_refuses_bad_input():
    with pytest.raises(ValueError, match="task must be one of"):
        Example("upper", "my lord", 0)
    with pytest.raises(ValueError, match="phrasing must be an index 0..3"):
        Example("first", "my lord", 4)
    with pytest.raises(ValueError, match="at least one word"):
        Example("first", "  ", 0)


def test_corpus_phrases_by_hand():
    text = "First Citizen:\nBefore we proceed any further, hear me.\n"
    # 'citizen', 'proceed' and 'further' have seven letters: no phrase
    # holds them, and phrases do not cross lines
    assert ins.corpus_phrases(text) == ["before we", "hear me"]
    assert ins.corpus_phrases("O my good lord!\nO my good lord.") == [
        "good lord",
        "my good",
        "my good lord",
        "o my",
        "o my good",
    ]


def test_phrase_split_is_fixed_disjoint_and_complete():
    phrases = [f"w{i} x" for i in range(50)]
    train, test = ins.phrase_split(phrases, 10, seed=1)
    assert len(test) == 10 and not set(train) & set(test)
    assert sorted(train + test) == sorted(phrases)
    assert ins.phrase_split(list(reversed(phrases)), 10, seed=1) == (
        train,
        test,
    )
    assert ins.phrase_split(phrases, 10, seed=2)[1] != test
    for n_test in (0, 50):
        with pytest.raises(ValueError, match="n_test"):
            ins.phrase_split(phrases, n_test)


def test_examples_draw_only_the_phrasings_asked_for():
    phrases = [f"w{i} x" for i in range(200)]
    held = ins.examples(phrases, (ins.HELD_OUT_PHRASING,), seed=0)
    assert {e.phrasing for e in held} == {ins.HELD_OUT_PHRASING}
    seen = ins.examples(phrases, seed=0)
    assert {e.phrasing for e in seen} == set(ins.SEEN_PHRASINGS)
    assert {e.task for e in seen} == set(ins.PHRASINGS)
    assert [e.phrase for e in seen] == phrases
    assert ins.examples(phrases, seed=0) == seen


def test_sft_pairs_ramble_at_the_asked_rate():
    items = ins.examples([f"w{i} x" for i in range(300)], seed=0)
    concise = ins.sft_pairs(items, rambling=0.0)
    assert [r for _, r in concise] == [e.answer for e in items]
    wordy = ins.sft_pairs(items, rambling=1.0)
    assert all(
        ins.grade(e, r) == "rambling" for e, (_, r) in zip(items, wordy)
    )
    mixed = ins.sft_pairs(items, seed=3)
    share = sum(
        ins.grade(e, r) == "rambling" for e, (_, r) in zip(items, mixed)
    )
    assert 70 <= share <= 130  # a third of 300, within 4 standard errors
    with pytest.raises(ValueError, match="rambling"):
        ins.sft_pairs(items, rambling=1.5)


def test_grade_checker_and_judge_by_hand():
    example = Example("first", "two ways", 0)  # answer 'two'
    assert ins.grade(example, "two") == "concise"
    assert ins.grade(example, "two, my lord") == "rambling"
    for wrong in ("twofold", "two ways", "Two", "", " two"):
        assert ins.grade(example, wrong) == "wrong"
    assert ins.is_correct(example, "two, good sir")
    assert not ins.is_correct(example, "ways")
    assert ins.prefer(example, "two", "two, I pray") == 0
    assert ins.prefer(example, "ways", "two, I pray") == 1
    assert ins.prefer(example, "ways", "two ways") == -1
