"""minigpt.common: atomic writes, the positive-int check, a private RNG."""

import os
from pathlib import Path

import pytest
import torch

from minigpt.common import atomic_path, check_positive_int, seeded_rng


def leftovers(folder):
    """Hidden names in ``folder``: temporary files or folders left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_path_writes_a_file_and_replaces_the_old_one(tmp_path):
    target = tmp_path / "sub" / "result.json"
    for text in ("first", "second"):
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp != target
            tmp.write_text(text)
            # not visible before the end
            assert not target.exists() or target.read_text() == "first"
        assert target.read_text() == text
    assert leftovers(target.parent) == []


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_atomic_path_swaps_a_whole_folder(tmp_path):
    target = tmp_path / "checkpoint"
    target.mkdir()
    (target / "stale.txt").write_text("from the old folder")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["weights"]
    assert leftovers(tmp_path) == []
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            raise ValueError("interrupted")
    assert (
        sorted(p.name for p in target.iterdir()) == ["weights"]
        and leftovers(tmp_path) == []
    )


def test_atomic_path_puts_the_old_folder_back_when_the_swap_fails(
    tmp_path, monkeypatch
):
    target = tmp_path / "checkpoint"
    target.mkdir()
    (target / "weights").write_text("old")
    real_replace, calls = os.replace, []

    def fail_second(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # after the old folder moved aside
            raise OSError("no space left")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(OSError, match="no space left"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "weights").write_text("new")
    assert calls[1][1] == "checkpoint"  # it failed moving the new one in
    assert (target / "weights").read_text() == "old"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("good", [1, 7, 10**9])
def test_check_positive_int_returns_the_value(good):
    assert check_positive_int("n", good) == good


@pytest.mark.parametrize("bad", [0, -3, 2.0, "4", True, None])
def test_check_positive_int_names_the_value_and_the_fix(bad):
    with pytest.raises(
        ValueError,
        match=rf"^batch_size must be a positive int, got {bad!r}; try 12$",
    ):
        check_positive_int("batch_size", bad, fix="; try 12")


def test_seeded_rng_repeats_and_leaves_the_callers_random_numbers_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded_rng(5):
        first = torch.randn(4)
    with seeded_rng(5):
        second = torch.randn(4)
    assert torch.equal(first, second)
    # seeded with 5
    assert torch.equal(
        first, torch.randn(4, generator=torch.Generator().manual_seed(5))
    )
    # the caller's stream continues as if nothing happened
    assert torch.equal(torch.rand(3), expected)


def test_seeded_rng_restores_the_state_after_an_exception():
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    with pytest.raises(KeyError):
        with seeded_rng(0):
            torch.rand(10)
            raise KeyError("boom")
    assert torch.equal(torch.rand(2), expected)
