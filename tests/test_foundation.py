"""minigpt's top-level helpers, the environment report, the exercise checker
and the benchmark harness."""

import random
import subprocess
import sys

import harness
import pytest
import torch

import minigpt
from minigpt import env
from minigpt.exercises import Case, check, compare


def test_set_seed_repeats_python_numpy_and_torch():
    np = pytest.importorskip("numpy")
    minigpt.set_seed(123)
    first = (random.random(), np.random.rand(), torch.rand(3))
    minigpt.set_seed(123)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert (
        first[0] == second[0]
        and first[1] == second[1]
        and torch.equal(first[2], second[2])
    )


def test_set_seed_returns_a_seeded_generator():
    g1, g2 = minigpt.set_seed(7), minigpt.set_seed(7)
    assert torch.equal(
        torch.rand(4, generator=g1), torch.rand(4, generator=g2)
    )


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True, None])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        minigpt.set_seed(bad)


def test_default_device_is_available_here():
    device = minigpt.default_device()
    assert device in {"cpu", "cuda", "mps"}
    torch.zeros(1, device=device)  # the device it names must work


def test_env_report_marks_missing_and_old_packages():
    ok, text = env.check_package("surely-not-installed-package-xyz", "1.0")
    assert not ok and "not installed" in text
    ok, text = env.check_package("pytest", "999.0")
    assert not ok and "older than 999.0" in text
    ok, _ = env.check_package("pytest", "1.0")
    assert ok


def test_version_tuple_ignores_local_tags():
    assert env._version_tuple("2.13.0+cpu") == (2, 13, 0)
    assert env._version_tuple("1.0.4.post1") == (1, 0, 4)


def test_env_command_runs_and_prints_every_line():
    result = subprocess.run(
        [sys.executable, "-m", "minigpt", "env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        "torch" in result.stdout
        and "device" in result.stdout
        and "threads" in result.stdout
    )
    # 1 only when some line reports a problem
    assert result.returncode in (
        0,
        1,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert all(line.startswith(("OK ", "BAD")) for line in lines), (
        result.stdout
    )


def test_check_reports_pass_and_fail(capsys):
    cases = [
        Case("adds", (1, 2), 3),
        Case("adds floats", (0.1, 0.2), 0.3),
        Case("wrong on purpose", (1, 1), 3),
    ]
    report = check(lambda a, b: a + b, cases)
    assert report.passed == ["adds", "adds floats"] and list(
        report.failed
    ) == ["wrong on purpose"]
    assert not report.ok
    out = capsys.readouterr().out
    assert (
        "PASS  adds" in out
        and "FAIL  wrong on purpose: got 2, expected 3" in out
        and "2/3 cases passed" in out
    )


def test_check_catches_exceptions_and_goes_on(capsys):
    def broken(x):
        if x == 0:
            raise ZeroDivisionError("boom")
        return x

    report = check(
        broken, [Case("zero", (0,), 0), Case("one", (1,), 1)], verbose=False
    )
    assert report.failed == {
        "zero": "raised ZeroDivisionError: boom"
    } and report.passed == ["one"]


def test_compare_tensors_by_shape_and_value():
    t = torch.tensor([1.0, 2.0])
    assert compare(t, t.clone()) is None
    assert "shape" in compare(torch.zeros(3), t)
    assert "max abs difference" in compare(t + 1e-2, t)
    assert compare(t + 1e-9, t) is None
    assert "expected a tensor" in compare([1.0, 2.0], t)


def test_compare_property_checks():
    def rows_sum_to_one(r):
        if not torch.allclose(r.sum(-1), torch.ones(r.shape[0])):
            return "rows do not sum to one"
        return None

    assert compare(torch.full((2, 4), 0.25), rows_sum_to_one) is None
    assert (
        compare(torch.ones(2, 4), rows_sum_to_one) == "rows do not sum to one"
    )


def test_check_rejects_a_result_instead_of_a_function():
    with pytest.raises(TypeError, match="pass the function itself"):
        check(3, [Case("x", (), 3)])
    with pytest.raises(ValueError, match="at least one Case"):
        check(abs, [])


def test_harness_interleaves_and_computes_the_ratio(tmp_path, monkeypatch):
    calls = []
    result = harness.compare(
        "toy",
        lambda: calls.append("a"),
        lambda: calls.append("b"),
        warmup=1,
        repeats=4,
    )
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]
    assert (
        result.repeats == 4
        and result.ratio == result.b_median_s / result.a_median_s
    )
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path)
    path = harness.save("toy", [harness.row(result, size="tiny")])
    data = __import__("json").loads(path.read_text())
    assert (
        data["rows"][0]["size"] == "tiny"
        and data["rows"][0]["ratio"] == result.ratio
    )
    assert not list(tmp_path.glob("*.tmp"))


def test_harness_appends_rows_under_a_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path)
    assert harness.read_rows("sweep") == []
    harness.append_row("sweep", {"seed": 0})
    harness.append_row("sweep", {"seed": 1})
    assert harness.read_rows("sweep") == [{"seed": 0}, {"seed": 1}]


def test_modern_sweep_matches_every_variant_to_gpt2s_size():
    # the chapter compares layouts at equal parameter count: the MLP width
    # absorbs what a change adds or removes, to within 0.1 %
    import sweep_modern

    from minigpt import scaling

    target = scaling.param_count(sweep_modern.variant_config("gpt2", 65))
    for variant in [*sweep_modern.CHANGES, "llama"]:
        config = sweep_modern.variant_config(variant, 65)
        assert abs(scaling.param_count(config) / target - 1) < 1e-3, variant
    assert sweep_modern.variant_config("llama", 65).positions == "rotary"
    assert sweep_modern.variant_config("mqa", 65).n_kv_head == 1


def test_bert_sweep_scores_both_models_on_the_same_fill_in_test(monkeypatch):
    # a few steps on 2 windows: the rows have the chapter's layout, and the
    # GPT's score is its next-character accuracy at positions 1..T-1
    import sweep_bert

    from minigpt.model import GPT, GPTConfig

    monkeypatch.setattr(sweep_bert, "WINDOWS", 2)
    rows = {arch: sweep_bert.run(arch, 2, 1) for arch in ("gpt", "encoder")}
    for arch, row in rows.items():
        assert row["preset"] == sweep_bert.PRESETS[arch]
        assert [p["step"] for p in row["points"]] == [1, 2]
        assert all(0 <= p["fill_in"] <= 1 for p in row["points"])
    torch.manual_seed(0)
    gpt = GPT(
        GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=4)
    )
    windows = torch.randint(7, (3, 8))
    with torch.no_grad():
        predicted = gpt(windows)[0].argmax(-1)[:, :-1]
    expected = (predicted == windows[:, 1:]).float().mean().item()
    assert sweep_bert.fill_in_accuracy(gpt, windows, None) == expected


def test_align_sweep_records_every_stage_with_the_recipe(monkeypatch):
    # the chapter's pipeline on a tiny random GPT, two steps of everything:
    # the row holds each measurement, in range, and the recipe it ran
    import sweep_align

    from minigpt import data
    from minigpt.model import GPT, GPTConfig
    from minigpt.tokenizer import CharTokenizer

    def tiny_pretrained(name, progress):
        tokenizer = CharTokenizer.from_text(data.load_text("tinyshakespeare"))
        torch.manual_seed(0)
        config = GPTConfig(
            vocab_size=tokenizer.vocab_size,
            block_size=64,
            n_layer=1,
            n_head=2,
            n_embd=16,
        )
        return GPT(config), tokenizer, {}

    def fixed_pairs(lab, sft):  # an untrained model's samples tie
        return [
            ("Count: my lord", "two", "two, sir"),
            ("First word: o my", "o", "my"),
        ] * 4

    monkeypatch.setattr(sweep_align, "pretrained", tiny_pretrained)
    monkeypatch.setattr(sweep_align.Lab, "preference_pairs", fixed_pairs)
    recipe = sweep_align.RECIPE
    small = {
        **recipe,
        "n_test": 6,
        "n_train": 40,
        "sft": {**recipe["sft"], "steps": 2},
        "reward_model": {**recipe["reward_model"], "steps": 2, "batch": 2},
        "dpo": {**recipe["dpo"], "steps": 2, "batch": 2},
        "grpo": {**recipe["grpo"], "prompts": 2, "group": 2},
        "best_of": 2,
    }
    row = sweep_align.run(0, 2, 1, small)
    assert row["recipe"] == small and row["pairs"] == 8
    assert row["lora"]["trainable"] < row["sft"]["trainable"]
    assert [p["step"] for p in row["grpo"]["curve"]] == [0, 1, 2]
    for shares in (row["one_sample"], row["best_of_n"], *row["dpo"].values()):
        assert sum(shares[g] for g in ("concise", "rambling", "wrong")) == (
            pytest.approx(100)
        )
    assert set(row["dpo"]) == {"0.1", "0.5"}
    assert set(row["shakespeare"]) == {
        "base",
        "sft",
        "lora",
        "sft_mixed",
        "dpo_0.1",
        "dpo_0.5",
        "grpo",
    }
    assert row["sft_mixed"]["trainable"] == row["sft"]["trainable"]


def test_harness_rejects_bad_repeats():
    with pytest.raises(
        ValueError, match="repeats must be a positive int, got 0"
    ):
        harness.compare("x", lambda: None, lambda: None, repeats=0)


def test_harness_takes_its_times_from_time_interleaved(monkeypatch):
    def fake(fns, *, repeats, warmup):
        assert (repeats, warmup) == (3, 2) and list(fns) == ["a", "b"]
        return {"a": [1.0, 9.0, 2.0], "b": [4.0, 6.0, 5.0]}

    monkeypatch.setattr(harness, "time_interleaved", fake)
    result = harness.compare(
        "x", lambda: None, lambda: None, warmup=2, repeats=3
    )
    assert (result.a_median_s, result.b_median_s, result.ratio) == (
        2.0,
        5.0,
        2.5,
    )


def test_nanogpt_reference_computes_what_minigpt_does_in_nanogpt_layout():
    # bench_train_step times minigpt against this model; the ratio means
    # something only if the two do the same arithmetic: same logits and same
    # gradients from the same weights.
    from nanogpt_model import NanoGPT

    from minigpt.model import GPT, GPTConfig

    torch.manual_seed(0)
    ours = GPT(
        GPTConfig(
            vocab_size=50,
            block_size=16,
            n_layer=2,
            n_head=2,
            n_embd=32,
            bias=False,
            gelu="exact",
        )
    )
    reference = NanoGPT(
        vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32
    )
    reference.load_state_dict(ours.state_dict())
    idx = torch.randint(50, (3, 16))
    ours_logits, theirs_logits = ours(idx)[0], reference(idx)
    torch.testing.assert_close(ours_logits, theirs_logits)
    ours_logits.square().mean().backward()
    theirs_logits.square().mean().backward()
    theirs_grads = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, theirs_grads[name].grad, msg=name)
    # a GPT-2-layout model has biases the reference has no place for
    with pytest.raises(RuntimeError, match="Unexpected key"):
        reference.load_state_dict(
            GPT(
                GPTConfig(
                    vocab_size=50,
                    block_size=16,
                    n_layer=2,
                    n_head=2,
                    n_embd=32,
                )
            ).state_dict()
        )


def test_the_package_docstring_maps_every_module():
    import pkgutil

    modules = {
        f"minigpt.{info.name}"
        for info in pkgutil.iter_modules(minigpt.__path__)
    }
    assert {"minigpt.model", "minigpt.tasks", "minigpt.__main__"} <= modules
    missing = sorted(
        name for name in modules if f"``{name}``" not in minigpt.__doc__
    )
    assert missing == [], (
        f"add {missing} to the module map in minigpt/__init__.py"
    )
