"""minigpt.data: the shipped corpora (found, verified, offline), splits and
batches."""

import hashlib
import socket
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from minigpt import data, env, zoo

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SHAKESPEARE = data.SHIPPED["tinyshakespeare"]


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to open a connection or resolve a host name fails, as on
    a plane."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache dir."""
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_no_network_fixture_really_blocks(no_network):
    with pytest.raises(OSError, match="network disabled"):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)


def test_shipped_corpus_loads_offline_and_matches_its_checksum(
    no_network, fresh_cache
):
    text = data.load_text("tinyshakespeare")
    raw = text.encode("utf-8")
    assert len(raw) == SHAKESPEARE.size
    assert hashlib.sha256(raw).hexdigest() == SHAKESPEARE.sha256
    assert text.startswith(
        "First Citizen:\nBefore we proceed any further, hear me speak."
    )
    assert not fresh_cache.exists()  # reading a corpus writes nothing


def test_shipped_corpus_is_the_shared_reference_copy():
    path = SHARED / SHAKESPEARE.filename
    if not path.exists():
        pytest.skip(f"no reference copy at {path}")
    assert (
        Path(str(data.corpus_file("tinyshakespeare"))).read_bytes()
        == path.read_bytes()
    )


def test_a_damaged_corpus_file_is_refused_with_the_fix(tmp_path, monkeypatch):
    truncated = tmp_path / "tinyshakespeare.txt"
    truncated.write_bytes(
        Path(str(data.corpus_file("tinyshakespeare"))).read_bytes()[:-10]
    )
    monkeypatch.setattr(data, "corpus_file", lambda name: truncated)
    with pytest.raises(
        data.CorpusError,
        match=f"{truncated} has 1,115,384 bytes, expected 1,115,394"
        ".*git checkout minigpt/corpora",
    ):
        data.load_text("tinyshakespeare")


def test_an_edited_corpus_file_is_refused_by_its_checksum(monkeypatch):
    monkeypatch.setitem(
        data.SHIPPED, "tinyshakespeare", replace(SHAKESPEARE, sha256="0" * 64)
    )
    with pytest.raises(
        data.CorpusError,
        match=f"SHA-256 {SHAKESPEARE.sha256}, expected 0{{64}}.*reinstall",
    ):
        data.load_text("tinyshakespeare")


def test_env_reports_the_corpus_and_a_damaged_one(monkeypatch):
    rows = {label: (ok, text) for label, ok, text in env.report()}
    assert rows["corpus"] == (
        True,
        f"{data.corpus_file('tinyshakespeare')} (SHA-256 checked)",
    )
    monkeypatch.setitem(
        data.SHIPPED, "tinyshakespeare", replace(SHAKESPEARE, size=1)
    )
    ok, text = env.corpus_line()
    assert not ok and "expected 1 for 'tinyshakespeare'" in text


def test_a_zoo_preset_trains_from_the_shipped_corpus_offline(
    no_network, fresh_cache
):
    tiny = zoo.Preset(
        name="offline-tiny",
        tokenizer="char",
        model={"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16},
        train={"max_iters": 4, "batch_size": 4, "eval_interval": 4},
        sample_steps=(4,),
        sample_tokens=10,
    )
    model, tokenizer, history = zoo.pretrained(tiny, progress=False)
    text = data.load_text("tinyshakespeare")
    assert history["corpus"] == "tinyshakespeare"
    # Tiny Shakespeare's 65 characters
    assert tokenizer.vocab_size == len(set(text)) == 65
    assert tokenizer.decode(tokenizer.encode(text[:500])) == text[:500]
    assert zoo.model_dir(
        tiny, zoo.cache_key(tiny, text)
    ).is_dir()  # cached in the fresh dir


def test_pydocs_is_deterministic_and_large():
    text = data.load_text("pydocs")
    assert text == data.load_text("pydocs")
    assert len(text) > 100_000 and "assert_stmt" in text


def test_unknown_corpus_name():
    with pytest.raises(
        ValueError,
        match="unknown corpus 'shakespear'.*tinyshakespeare, pydocs",
    ):
        data.load_text("shakespear")


def test_pydocs_has_no_file():
    with pytest.raises(
        ValueError,
        match="ships with Python, not as a file.*load_text\\('pydocs'\\)",
    ):
        data.corpus_file("pydocs")


def test_cache_dir_honours_env_and_is_created(fresh_cache):
    assert not fresh_cache.exists()
    assert data.cache_dir() == fresh_cache
    assert fresh_cache.is_dir()


def test_train_val_split_str_and_tensor():
    assert data.train_val_split("abcdefghij", 0.2) == ("abcdefgh", "ij")
    train, val = data.train_val_split(torch.arange(10))
    assert train.tolist() == list(range(9)) and val.tolist() == [9]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_train_val_split_bad_fraction(fraction):
    with pytest.raises(
        ValueError, match="val_fraction must be between 0 and 1"
    ):
        data.train_val_split("abcdef", fraction)


def test_train_val_split_too_small():
    with pytest.raises(ValueError, match="one side would be empty"):
        data.train_val_split("a", 0.1)


def test_get_batch_targets_are_inputs_shifted_by_one():
    ids = torch.randint(
        1000, (500,), generator=torch.Generator().manual_seed(1)
    )
    x, y = data.get_batch(
        ids,
        block_size=8,
        batch_size=16,
        generator=torch.Generator().manual_seed(0),
    )
    assert x.shape == y.shape == (16, 8) and x.dtype == y.dtype == torch.long
    # so y.view(-1) works, as in nanoGPT's loss
    assert x.is_contiguous() and y.is_contiguous()
    starts = torch.randint(
        500 - 8, (16,), generator=torch.Generator().manual_seed(0)
    )
    for b, i in enumerate(starts.tolist()):
        assert torch.equal(x[b], ids[i : i + 8]) and torch.equal(
            y[b], ids[i + 1 : i + 9]
        )


def test_get_batch_repeats_with_the_same_generator():
    ids = torch.arange(100)
    a = data.get_batch(ids, 4, 3, generator=torch.Generator().manual_seed(7))
    b = data.get_batch(ids, 4, 3, generator=torch.Generator().manual_seed(7))
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_get_batch_reaches_the_last_token():
    ids = torch.arange(5)
    _, y = data.get_batch(ids, block_size=4, batch_size=3)
    assert (y[:, -1] == 4).all()  # the only window


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.arange(5.0), "1-D LongTensor"),
        (torch.arange(6).view(2, 3), "1-D LongTensor"),
        ([1, 2, 3], "1-D LongTensor"),
        (torch.arange(4), "too few for block_size=4"),
    ],
)
def test_get_batch_bad_data(bad, match):
    with pytest.raises(ValueError, match=match):
        data.get_batch(bad, block_size=4, batch_size=2)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_get_batch_bad_sizes(bad):
    with pytest.raises(
        ValueError, match=f"block_size must be a positive int, got {bad!r}"
    ):
        data.get_batch(torch.arange(10), bad, 2)
    with pytest.raises(
        ValueError, match=f"batch_size must be a positive int, got {bad!r}"
    ):
        data.get_batch(torch.arange(10), 2, bad)


def test_token_dataset_windows_and_dataloader():
    ids = torch.arange(10)
    ds = data.TokenDataset(ids, block_size=3)
    assert len(ds) == 7
    x, y = ds[6]
    assert x.tolist() == [6, 7, 8] and y.tolist() == [7, 8, 9]
    with pytest.raises(IndexError, match="window 7 out of range"):
        ds[7]
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 3) and torch.equal(yb, xb + 1)
