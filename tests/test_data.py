"""minigpt.data: corpora (found, downloaded, verified, cached), splits and batches."""

import hashlib
import http.server
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from minigpt import data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BODY = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 50


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache dir and no data dir."""
    monkeypatch.setenv("MINIGPT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MINIGPT_DATA_DIR", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def server(tmp_path):
    """A local HTTP server serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "input.txt").write_bytes(BODY)
    (root / "short.txt").write_bytes(BODY[:-10])

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def local_corpus(url: str, body: bytes = BODY) -> data.Corpus:
    return data.Corpus("tinyshakespeare", "tinyshakespeare.txt", url, hashlib.sha256(body).hexdigest(), len(body))


def test_registered_checksum_matches_the_shared_copy():
    corpus = data.CORPORA["tinyshakespeare"]
    path = SHARED / corpus.filename
    if not path.exists():
        pytest.skip(f"no shared copy at {path}")
    assert path.stat().st_size == corpus.size
    assert hashlib.sha256(path.read_bytes()).hexdigest() == corpus.sha256


def test_cache_dir_honours_env_and_is_created(cache):
    assert not cache.exists()
    assert data.cache_dir() == cache
    assert cache.is_dir()


def test_download_verifies_and_places_atomically(cache, server):
    dest = cache / "tinyshakespeare.txt"
    assert data.download(local_corpus(server + "/input.txt"), dest) == dest
    assert dest.read_bytes() == BODY
    assert sorted(p.name for p in cache.iterdir()) == ["tinyshakespeare.txt"]  # no temporary file left


def test_download_checksum_mismatch_caches_nothing(cache, server):
    corpus = replace(local_corpus(server + "/input.txt"), sha256="0" * 64)
    with pytest.raises(ValueError, match="failed verification, nothing was cached.*SHA-256"):
        data.download(corpus, cache / "tinyshakespeare.txt")
    assert list(cache.iterdir()) == []


def test_download_truncated_caches_nothing(cache, server):
    with pytest.raises(ValueError, match=f"has {len(BODY) - 10} bytes, expected {len(BODY)}"):
        data.download(local_corpus(server + "/short.txt"), cache / "tinyshakespeare.txt")
    assert list(cache.iterdir()) == []


def test_offline_error_names_url_path_and_variable(cache, server, monkeypatch):
    corpus = local_corpus(server + "/missing.txt")  # 404, as good as offline
    monkeypatch.setitem(data.CORPORA, "tinyshakespeare", corpus)
    with pytest.raises(data.CorpusUnavailableError) as info:
        data.load_text("tinyshakespeare")
    message = str(info.value)
    assert corpus.url in message and str(cache / "tinyshakespeare.txt") in message
    assert "MINIGPT_DATA_DIR" in message and "pydocs" in message
    assert list(cache.iterdir()) == []
    assert data.default_corpus() == "pydocs"


def test_unreachable_host_is_corpus_unavailable(cache, monkeypatch):
    corpus = local_corpus("http://127.0.0.1:9/input.txt")  # discard port: connection refused
    monkeypatch.setitem(data.CORPORA, "tinyshakespeare", corpus)
    with pytest.raises(data.CorpusUnavailableError, match="cannot download"):
        data.corpus_path("tinyshakespeare")


def test_load_text_downloads_once_then_reads_the_cache(cache, server, monkeypatch):
    monkeypatch.setitem(data.CORPORA, "tinyshakespeare", local_corpus(server + "/input.txt"))
    assert data.load_text("tinyshakespeare") == BODY.decode()
    monkeypatch.setitem(data.CORPORA, "tinyshakespeare", local_corpus(server + "/gone.txt"))
    assert data.load_text("tinyshakespeare") == BODY.decode()  # served from the cache, no download
    assert data.default_corpus() == "tinyshakespeare"


def test_data_dir_is_read_first_and_never_written(cache, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "tinyshakespeare.txt").write_bytes(BODY)
    os.chmod(ro, 0o555)
    monkeypatch.setenv("MINIGPT_DATA_DIR", str(ro))
    monkeypatch.setitem(data.CORPORA, "tinyshakespeare", local_corpus("http://127.0.0.1:9/never"))
    try:
        assert data.corpus_path("tinyshakespeare") == ro / "tinyshakespeare.txt"
        assert sorted(p.name for p in ro.iterdir()) == ["tinyshakespeare.txt"]
    finally:
        os.chmod(ro, 0o755)


def test_corrupt_cached_file_is_reported_not_used(cache, monkeypatch):
    monkeypatch.setitem(data.CORPORA, "tinyshakespeare", local_corpus("http://127.0.0.1:9/never"))
    cache.mkdir(parents=True)
    (cache / "tinyshakespeare.txt").write_bytes(BODY[:100])
    with pytest.raises(ValueError, match="truncated or a different file.*delete it"):
        data.load_text("tinyshakespeare")


def test_unknown_corpus_name():
    with pytest.raises(ValueError, match="unknown corpus 'shakespear'.*tinyshakespeare, pydocs"):
        data.load_text("shakespear")


def test_pydocs_is_deterministic_and_large():
    text = data.load_text("pydocs")
    assert text == data.load_text("pydocs")
    assert len(text) > 100_000 and "assert_stmt" in text


def test_train_val_split_str_and_tensor():
    assert data.train_val_split("abcdefghij", 0.2) == ("abcdefgh", "ij")
    train, val = data.train_val_split(torch.arange(10))
    assert train.tolist() == list(range(9)) and val.tolist() == [9]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_train_val_split_bad_fraction(fraction):
    with pytest.raises(ValueError, match="val_fraction must be between 0 and 1"):
        data.train_val_split("abcdef", fraction)


def test_train_val_split_too_small():
    with pytest.raises(ValueError, match="one side would be empty"):
        data.train_val_split("a", 0.1)


def test_get_batch_targets_are_inputs_shifted_by_one():
    ids = torch.randint(1000, (500,), generator=torch.Generator().manual_seed(1))
    x, y = data.get_batch(ids, block_size=8, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (16, 8) and x.dtype == y.dtype == torch.long
    assert x.is_contiguous() and y.is_contiguous()  # so y.view(-1) works, as in nanoGPT's loss
    starts = torch.randint(500 - 8, (16,), generator=torch.Generator().manual_seed(0))
    for b, i in enumerate(starts.tolist()):
        assert torch.equal(x[b], ids[i:i + 8]) and torch.equal(y[b], ids[i + 1:i + 9])


def test_get_batch_repeats_with_the_same_generator():
    ids = torch.arange(100)
    a = data.get_batch(ids, 4, 3, generator=torch.Generator().manual_seed(7))
    b = data.get_batch(ids, 4, 3, generator=torch.Generator().manual_seed(7))
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_get_batch_reaches_the_last_token():
    ids = torch.arange(5)
    _, y = data.get_batch(ids, block_size=4, batch_size=3)
    assert (y[:, -1] == 4).all()  # the only window


@pytest.mark.parametrize("bad, match", [
    (torch.arange(5.0), "1-D LongTensor"),
    (torch.arange(6).view(2, 3), "1-D LongTensor"),
    ([1, 2, 3], "1-D LongTensor"),
    (torch.arange(4), "too few for block_size=4"),
])
def test_get_batch_bad_data(bad, match):
    with pytest.raises(ValueError, match=match):
        data.get_batch(bad, block_size=4, batch_size=2)


def test_get_batch_bad_sizes():
    with pytest.raises(ValueError, match="block_size must be a positive int, got 0"):
        data.get_batch(torch.arange(10), 0, 2)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        data.get_batch(torch.arange(10), 2, 0)


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
