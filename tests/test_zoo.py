"""minigpt.zoo: train once, cache under a key that covers preset, corpus and
code, reuse safely.

The real presets train for minutes; these tests use a tiny preset on a small
text (``load_text`` is replaced), so the caching logic is tested in seconds.
"""

import threading
import warnings
from dataclasses import replace

import pytest
import torch

from minigpt import data, zoo
from minigpt.model import GPT, GPTConfig

TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me "
    "speak.\n\nAll:\nSpeak, speak.\n" * 20
)
TINY = zoo.Preset(
    name="test-tiny",
    tokenizer="char",
    model={"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16},
    train={"max_iters": 12, "batch_size": 4, "eval_interval": 6},
    sample_steps=(0, 6, 12),
    sample_tokens=20,
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache dir, a small corpus, and a count of how often a model is
    trained."""
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(
        zoo.data,
        "load_text",
        lambda name: TEXT if name == "tinyshakespeare" else TEXT.upper(),
    )
    calls = []
    real_train = zoo._train

    def counting_train(*args, **kwargs):
        calls.append(args[0].name)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(zoo, "_train", counting_train)
    return calls


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        torch.equal(sa[k], sb[k]) for k in sa
    )


def test_first_use_trains_then_loads_the_cached_copy(cache):
    model, tokenizer, history = zoo.pretrained(TINY, progress=False)
    again, tokenizer2, history2 = zoo.pretrained(TINY, progress=False)
    assert cache == ["test-tiny"]  # trained once, loaded the second time
    assert same_weights(model, again) and not again.training
    assert tokenizer2.encode(TEXT[:50]) == tokenizer.encode(TEXT[:50])
    assert history2 == history
    assert history["step"] == list(range(1, 13)) and history["val_step"] == [
        0,
        6,
        12,
    ]
    assert [s["step"] for s in history["samples"]] == [0, 6, 12]
    assert all(
        len(tokenizer.encode(s["text"])) == 20 for s in history["samples"]
    )
    assert (
        history["corpus"] == "tinyshakespeare"
        and history["train_cpu_seconds"] > 0
    )
    folder = zoo.model_dir(TINY, zoo.cache_key(TINY, TEXT))
    assert sorted(p.name for p in folder.parent.iterdir()) == [
        folder.name,
        folder.name + ".lock",
    ]


def test_training_is_deterministic_and_retrain_forces_it(cache):
    model, _, history = zoo.pretrained(TINY, progress=False)
    retrained, _, history2 = zoo.pretrained(
        TINY, retrain=True, progress=False
    )
    assert cache == ["test-tiny", "test-tiny"]
    assert same_weights(model, retrained)
    assert history2["train_loss"] == history["train_loss"]
    assert [s["text"] for s in history2["samples"]] == [
        s["text"] for s in history["samples"]
    ]


def test_samples_use_the_same_random_numbers_so_only_the_model_differs(cache):
    model, tokenizer, history = zoo.pretrained(TINY, progress=False)
    prompt = torch.tensor([tokenizer.encode(TINY.sample_prompt)])
    out = model.generate(
        prompt,
        TINY.sample_tokens,
        generator=torch.Generator().manual_seed(TINY.seed),
    )
    assert history["samples"][-1]["text"] == tokenizer.decode(out[0, 1:])


def test_caller_random_state_is_left_alone(cache):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    zoo.pretrained(TINY, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_cache_key_covers_preset_corpus_and_code(monkeypatch):
    key = zoo.cache_key(TINY, TEXT)
    assert zoo.cache_key(TINY, TEXT) == key
    assert (
        zoo.cache_key(
            replace(TINY, train={**TINY.train, "max_iters": 13}), TEXT
        )
        != key
    )
    assert zoo.cache_key(replace(TINY, seed=1), TEXT) != key
    # not part of the recipe
    assert (
        zoo.cache_key(replace(TINY, description="other words"), TEXT) == key
    )
    assert zoo.cache_key(TINY, TEXT + " ") != key
    monkeypatch.setattr(zoo, "source_hash", lambda: "0" * 64)
    assert zoo.cache_key(TINY, TEXT) != key


def test_code_digest_ignores_docstrings_and_comments_but_not_code():
    code = 'def f(x):\n    """Add one."""\n    return x + 1  # comment\n'
    digest = zoo.code_digest(code)
    assert (
        zoo.code_digest(
            code.replace("Add one.", "Adds one to x.").replace(
                "comment", "note"
            )
        )
        == digest
    )
    assert zoo.code_digest("def f(x):\n    return x + 1\n") == digest
    assert zoo.code_digest(code.replace("x + 1", "x + 2")) != digest
    assert zoo.code_digest(
        'def f(x):\n    """Only a docstring."""\n'
    ) == zoo.code_digest("def f(x):\n    pass\n")


def test_model_trained_by_other_code_is_not_reused(cache, monkeypatch):
    zoo.pretrained(TINY, progress=False)
    monkeypatch.setattr(zoo, "source_hash", lambda: "f" * 64)
    zoo.pretrained(TINY, progress=False)
    assert cache == ["test-tiny", "test-tiny"]


def test_unreadable_cached_copy_is_trained_again_with_a_warning(cache):
    zoo.pretrained(TINY, progress=False)
    folder = zoo.model_dir(TINY, zoo.cache_key(TINY, TEXT))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match="unreadable.*training it again"):
        model, _, _ = zoo.pretrained(TINY, progress=False)
    assert cache == ["test-tiny", "test-tiny"]
    reloaded, _, _ = zoo.pretrained(TINY, progress=False)
    assert same_weights(model, reloaded) and len(cache) == 2


def test_concurrent_first_use_trains_once_and_both_get_the_model(cache):
    # flock locks belong to an open file, not a process: two threads opening
    # the lock file contend exactly as two processes would, and share this
    # test's monkeypatched corpus
    results = [None, None]

    def worker(i):
        try:
            results[i] = zoo.pretrained(TINY, progress=False)
        except (
            Exception
        ) as error:  # a thread's exception would otherwise vanish
            results[i] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"a concurrent first use failed: {errors!r}"
    assert cache == ["test-tiny"]
    assert same_weights(results[0][0], results[1][0])
    folder = zoo.model_dir(TINY, zoo.cache_key(TINY, TEXT))
    assert not [
        p
        for p in folder.parent.iterdir()
        if ".tmp-" in p.name or ".old-" in p.name
    ]


def test_bpe_preset_trains_its_tokenizer_with_the_preset_vocabulary(cache):
    preset = replace(
        TINY, name="test-tiny-bpe", tokenizer="bpe", vocab_size=300
    )
    model, tokenizer, _ = zoo.pretrained(preset, progress=False)
    assert tokenizer.vocab_size == 300 == model.config.vocab_size
    assert tokenizer.decode(tokenizer.encode(TEXT[:80])) == TEXT[:80]


def test_the_book_presets():
    assert list(zoo.PRESETS) == [
        "shakespeare-char",
        "shakespeare-bpe",
        "shakespeare-char-llama",
        "shakespeare-char-bert",
        "incontext-mapping",
    ]
    char, bpe, llama, bert, incontext = zoo.PRESETS.values()
    assert incontext.task is not None and incontext.corpus is None
    # the encoder has the char GPT's corpus, tokenizer, size and budget
    assert bert.architecture == "encoder" and not bert.sample_steps
    assert (bert.corpus, bert.tokenizer, bert.model) == (
        char.corpus,
        char.tokenizer,
        char.model,
    )
    assert all(
        bert.train[k] == char.train[k]
        for k in ("max_iters", "batch_size", "eval_interval")
    )
    assert (
        char.tokenizer == "char" == llama.tokenizer
        and bpe.tokenizer == "bpe"
        and 1000 <= bpe.vocab_size <= 2000
    )
    for preset in (char, bpe, llama):
        assert (
            preset.corpus == "tinyshakespeare"
            and preset.train_config().device == "cpu"
        )
        assert (
            preset.sample_steps[0] == 0
            and preset.sample_steps[-1] == preset.train_config().max_iters
        )


def test_the_llama_preset_is_the_char_model_in_the_llama_layout():
    """Same size, training and parameter count; only the layout differs."""
    char, llama = (
        zoo.PRESETS[name]
        for name in ("shakespeare-char", "shakespeare-char-llama")
    )
    assert llama.train == char.train and llama.seed == char.seed
    gpt2_config, llama_config = (p.gpt_config(65) for p in (char, llama))
    assert llama_config == GPTConfig.llama(
        vocab_size=65,
        block_size=gpt2_config.block_size,
        n_layer=gpt2_config.n_layer,
        n_head=gpt2_config.n_head,
        n_embd=gpt2_config.n_embd,
        intermediate_size=345,
    )
    assert GPT(llama_config).num_params() == GPT(gpt2_config).num_params()


def test_unknown_name_is_refused():
    with pytest.raises(
        ValueError,
        match="unknown zoo model 'shakespeare'; "
        "choose one of shakespeare-char",
    ):
        zoo.pretrained("shakespeare")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"name": "my/model"}, "names a cache folder"),
        ({"tokenizer": "word"}, "tokenizer must be one of"),
        ({"tokenizer": "bpe"}, "needs vocab_size >= 257"),
        ({"tokenizer": "bpe", "vocab_size": 100}, "needs vocab_size >= 257"),
        ({"vocab_size": 500}, "vocab_size=500 is for BPE"),
        ({"corpus": "wikipedia"}, "unknown corpus 'wikipedia'"),
        (
            {"train": {"max_iters": 12, "device": "cuda"}},
            r"the zoo sets \['device'\] itself",
        ),
        (
            {"train": {"max_iters": 12, "seed": 3}},
            r"the zoo sets \['seed'\] itself",
        ),
        ({"train": {"max_iters": 0}}, "max_iters must be a positive int"),
        (
            {"model": {**TINY.model, "vocab_size": 65}},
            "leave vocab_size out of model",
        ),
        (
            {"model": {**TINY.model, "n_embd": 15}},
            "must be divisible by n_head",
        ),
        (
            {"sample_steps": (0, 13)},
            r"sample_steps \[13\] lie outside 0..max_iters=12",
        ),
    ],
)
def test_bad_presets_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        replace(TINY, **change)


def test_no_warning_on_the_normal_path(cache):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo.pretrained(TINY, progress=False)
        zoo.pretrained(TINY, progress=False)


def test_chapter_checkers_accept_the_reference_and_reject_wrong_answers():
    from minigpt.exercises import (
        check_lr_schedule,
        check_previous_token_score,
    )
    from minigpt.train import TrainConfig, lr_at

    def reference_lr(step, peak, floor, warmup, decay):
        return lr_at(
            step,
            TrainConfig(
                max_iters=decay,
                learning_rate=peak,
                min_lr=floor,
                warmup_iters=warmup,
                lr_decay_iters=decay,
            ),
        )

    assert check_lr_schedule(reference_lr, verbose=False)
    assert not check_lr_schedule(
        lambda step, peak, floor, warmup, decay: peak, verbose=False
    )

    # another formulation than the checker's reference loop
    def diagonal_score(
        weights,
    ):
        return torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1).mean(
            dim=(0, 2)
        )

    assert check_previous_token_score(diagonal_score, verbose=False)
    assert not check_previous_token_score(
        lambda w: w.mean(dim=(0, 2, 3)), verbose=False
    )


def test_training_speed_is_6nd_over_the_recorded_training_time(cache):
    model, _, history = zoo.pretrained(TINY, progress=False)
    embeddings = model.transformer.wte, model.transformer.wpe
    # by hand: N without the embeddings (lm_head is tied to wte, and
    # parameters() yields a tied weight once); D = 12 steps x 4 x 16 tokens
    n = sum(p.numel() for p in model.parameters()) - sum(
        e.weight.numel() for e in embeddings
    )
    expected = 6 * n * (12 * 4 * 16) / history["train_seconds"]
    assert zoo.training_speed(TINY) == pytest.approx(expected, rel=1e-12)
    assert cache == ["test-tiny"]  # measured once, when it trained


TASK = zoo.Preset(
    name="test-task",
    tokenizer=None,
    corpus=None,
    task={"n_keys": 8, "n_values": 8, "max_examples": 3},
    model={"block_size": 7, "n_layer": 1, "n_head": 2, "n_embd": 16},
    train={"max_iters": 10, "batch_size": 8, "eval_interval": 4},
)


def test_a_task_preset_trains_on_prompts_and_records_probes(cache):
    model, tokenizer, history = zoo.pretrained(TASK, progress=False)
    again, _, history2 = zoo.pretrained(TASK, progress=False)
    assert cache == ["test-task"] and tokenizer is None
    assert same_weights(model, again) and history2 == history
    assert model.config.vocab_size == 16 and model.config.block_size == 7
    # before training, at every evaluation and at the end
    assert [p["step"] for p in history["probes"]] == [0, 4, 8, 10]
    source = TASK.batch_source()
    assert history["probes"][-1] == {"step": 10, **source.probe(model)}
    assert history["task"] == TASK.task and history["train_seconds"] > 0
    # the key covers the task: another task is another model
    other = replace(TASK, task={**TASK.task, "n_keys": 9})
    assert zoo.cache_key(other, None) != zoo.cache_key(TASK, None)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tokenizer": "char"}, "set tokenizer=None and corpus=None"),
        ({"corpus": "tinyshakespeare"}, "set tokenizer=None and corpus=None"),
        ({"vocab_size": 300}, "leave vocab_size and sample_steps out"),
        ({"sample_steps": (0,)}, "leave vocab_size and sample_steps out"),
        ({"model": {**TASK.model, "block_size": 6}}, "use block_size >= 7"),
        ({"task": {"n_keys": 0}}, "n_keys must be a positive int"),
    ],
)
def test_bad_task_presets_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        replace(TASK, **change)


BERT = replace(
    TINY,
    name="test-bert",
    architecture="encoder",
    sample_steps=(),
    model={"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16},
)


def test_an_encoder_preset_trains_to_fill_in_masks(cache):
    from minigpt.encoder import Encoder

    model, tokenizer, history = zoo.pretrained(BERT, progress=False)
    again, tokenizer2, _ = zoo.pretrained(BERT, progress=False)
    assert cache == ["test-bert"] and isinstance(again, Encoder)
    assert same_weights(model, again)
    assert tokenizer.special_tokens == list(zoo.BERT_SPECIAL_TOKENS)
    assert model.config.vocab_size == tokenizer.vocab_size
    assert tokenizer2.special_id("[MASK]") == tokenizer.special_id("[MASK]")
    assert history["val_step"] == [0, 6, 12] and "samples" not in history


@pytest.mark.parametrize(
    "change, message",
    [
        ({"architecture": "rnn"}, "architecture must be one of"),
        ({"sample_steps": (0,)}, "does not generate"),
        ({"model": {**BERT.model, "n_embd": 15}}, "divisible by n_head"),
    ],
)
def test_bad_encoder_presets_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        replace(BERT, **change)


def test_training_speed_is_for_gpt_presets_only():
    for preset in (BERT, zoo.PRESETS["incontext-mapping"]):
        with pytest.raises(ValueError, match="is not one"):
            zoo.training_speed(preset)
