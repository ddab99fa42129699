"""minigpt.tokenizer: characters, byte-level BPE from scratch, and the
tokenizers library.

The from-scratch BPE is checked against the ``tokenizers`` library trained on
the same text with the same pre-tokenization: the same merges in the same
order, and the same tokens on held-out text.
"""

import json
from collections import Counter

import pytest
import regex
import torch
from tokenizers.pre_tokenizers import ByteLevel

from minigpt import data
from minigpt.tokenizer import (
    EOT,
    GPT2_PATTERN,
    BPETokenizer,
    CharTokenizer,
    HFBPETokenizer,
    get_pairs,
    gpt2_byte_order,
    gpt2_byte_to_char,
    load_tokenizer,
    merge,
    train_bpe,
)

TEXTS = [
    "hello world",
    "自注意力机制 is self-attention",
    "emoji 🤖🚀 and a zero-width joiner 👩‍💻",
    "  leading, trailing and \t\n\n mixed   whitespace  ",
    "naïve café, Ünïcödé; ½ ² Ⅻ",
    "",
]
CORPUS = (
    "the quick brown fox jumps over the lazy dog. " * 20
    + "自注意力机制 自注意力 注意力 " * 10
)


@pytest.fixture(scope="module")
def shakespeare():
    """The first 100,000 characters of Tiny Shakespeare,
    and the 20,000 after them as held-out text."""
    text = data.load_text("tinyshakespeare")
    return text[:100_000], text[100_000:120_000]


def test_byte_to_char_is_the_librarys_alphabet():
    byte_to_char = gpt2_byte_to_char()
    assert sorted(byte_to_char.values()) == sorted(ByteLevel.alphabet())
    assert byte_to_char[ord(" ")] == "Ġ" and byte_to_char[ord("A")] == "A"
    # the library's ids for the 256 bytes follow the characters' code points,
    # i.e. gpt2_byte_order()
    assert [byte_to_char[b] for b in gpt2_byte_order()] == sorted(
        ByteLevel.alphabet()
    )


# --- characters ---


def test_char_roundtrip_and_ids():
    tok = CharTokenizer.from_text("hello")
    assert tok.vocab_size == 4 and tok.chars == ["e", "h", "l", "o"]
    assert tok.encode("hello") == [1, 0, 2, 2, 3]
    assert tok.decode(torch.tensor([1, 0, 2, 2, 3])) == "hello"


def test_char_unknown_raises_naming_the_character():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(
        ValueError,
        match=r"character 'z' \(U\+007A\) at position 2 is not in the "
        r"vocabulary.*unknown=",
    ):
        tok.encode("abzc")


def test_char_explicit_unknown_token():
    tok = CharTokenizer.from_text("abc", unknown="?")
    assert tok.vocab_size == 4
    assert tok.decode(tok.encode("abzc")) == "ab?c"
    with pytest.raises(
        ValueError, match="unknown must be a single character"
    ):
        CharTokenizer.from_text("abc", unknown="<unk>")


def test_char_save_load(tmp_path):
    tok = CharTokenizer.from_text("自注意力 ok", unknown="?")
    path = tok.save(tmp_path / "chars.json")
    for loaded in (CharTokenizer.load(path), load_tokenizer(path)):
        assert (
            isinstance(loaded, CharTokenizer)
            and loaded.chars == tok.chars
            and loaded.unknown == "?"
        )
    tok.save(tmp_path)  # a directory: tokenizer.json inside it
    assert load_tokenizer(tmp_path).encode("ok") == tok.encode("ok")


# --- bad input, every tokenizer ---


@pytest.fixture(scope="module", params=["char", "bpe", "hf"])
def any_tokenizer(request):
    if request.param == "char":
        return CharTokenizer.from_text(CORPUS)
    if request.param == "bpe":
        return BPETokenizer.train(CORPUS, 300)
    return train_bpe(CORPUS, 300)


@pytest.mark.parametrize("bad", [[-1], "vocab", torch.tensor([0, 99999])])
def test_decode_ids_outside_vocabulary(any_tokenizer, bad):
    ids = [any_tokenizer.vocab_size] if isinstance(bad, str) else bad
    with pytest.raises(
        ValueError,
        match=r"token id -?\d+ is outside the vocabulary \(0\.\.\d+\)",
    ):
        any_tokenizer.decode(ids)


def test_decode_rejects_non_integers_and_2d(any_tokenizer):
    with pytest.raises(TypeError, match="token ids must be ints, got 1.5"):
        any_tokenizer.decode([1.5])
    with pytest.raises(ValueError, match="ids must be 1-D"):
        any_tokenizer.decode(torch.zeros(2, 2, dtype=torch.long))


def test_encode_rejects_non_strings(any_tokenizer):
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        any_tokenizer.encode(b"abc")


@pytest.mark.parametrize(
    "trainer",
    [
        CharTokenizer.from_text,
        lambda t: BPETokenizer.train(t, 300),
        lambda t: train_bpe(t, 300),
    ],
)
def test_empty_training_text(trainer):
    with pytest.raises(ValueError, match="training text is empty"):
        trainer("")


def test_byte_level_vocabulary_below_256():
    with pytest.raises(
        ValueError, match="vocab_size must be an int >= 256.*got 255"
    ):
        BPETokenizer.train(CORPUS, 255)
    with pytest.raises(
        ValueError, match="vocab_size must be an int >= 257.*got 256"
    ):
        train_bpe(CORPUS, 256)


def test_load_wrong_kind(tmp_path):
    path = CharTokenizer.from_text("abc").save(tmp_path / "t.json")
    with pytest.raises(
        ValueError, match="kind 'char', not 'bpe'.*load_tokenizer"
    ):
        BPETokenizer.load(path)
    (tmp_path / "x.json").write_text(json.dumps({"kind": "word"}))
    with pytest.raises(ValueError, match="not a tokenizer saved by minigpt"):
        load_tokenizer(tmp_path / "x.json")
    with pytest.raises(FileNotFoundError, match="no tokenizer at"):
        load_tokenizer(tmp_path / "missing.json")


# --- BPE from scratch: the building blocks, by hand ---


def test_get_pairs_and_merge_by_hand():
    assert get_pairs([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert merge([5, 6, 6, 7, 5, 6], (5, 6), 99) == [99, 6, 7, 99]
    # left to right, no overlaps
    assert merge([1, 1, 1, 1, 1], (1, 1), 2) == [
        2,
        2,
        1,
    ]
    assert merge([], (1, 1), 2) == []


def test_gpt2_byte_order_is_a_permutation_with_printables_first():
    order = gpt2_byte_order()
    assert sorted(order) == list(range(256))
    # soft hyphen last
    assert order[:3] == [ord("!"), ord('"'), ord("#")] and order[-1] == 173


def test_bpe_hand_worked_example():
    """Wikipedia's "aaabdaaabac", kept as one chunk by the pattern ".+",
    worked by hand."""
    tok = BPETokenizer.train("aaabdaaabac", 256 + 3, pattern=r".+")
    a, b = tok.byte_to_id[ord("a")], tok.byte_to_id[ord("b")]
    # 1. (a,a) occurs 4 times -> 256 "aa"; the text becomes aa a b d aa a b a
    #    c
    # 2. (256,a) and (a,b) occur twice each: a tie, broken by the smaller ids
    #    -> 257 "ab"
    # 3. the text is aa ab d aa ab a c: (256,257) occurs twice -> 258 "aaab"
    assert list(tok.merges) == [(a, a), (a, b), (256, 257)]
    assert [tok.vocab[i] for i in tok.merges.values()] == [
        b"aa",
        b"ab",
        b"aaab",
    ]
    assert tok.tokens("aaabdaaabac") == [b"aaab", b"d", b"aaab", b"a", b"c"]


@pytest.mark.parametrize("text", TEXTS)
def test_bpe_roundtrips_any_unicode(text):
    tok = BPETokenizer.train(CORPUS, 300)
    assert tok.decode(tok.encode(text)) == text
    assert b"".join(tok.tokens(text)) == text.encode("utf-8")


def test_bpe_learns_chinese_merges():
    tok = BPETokenizer.train(CORPUS, 300)
    assert len(tok.encode("自注意力")) < len("自注意力".encode("utf-8"))


def test_bpe_stops_and_warns_when_pairs_run_out():
    with pytest.warns(
        UserWarning,
        match="ran out of pairs to merge: "
        "vocabulary has 258 tokens, not the 300",
    ):
        tok = BPETokenizer.train("abc", 300)
    assert tok.vocab_size == 258


def test_bpe_save_load(tmp_path):
    tok = BPETokenizer.train(CORPUS, 300)
    loaded = load_tokenizer(tok.save(tmp_path / "bpe.json"))
    assert (
        isinstance(loaded, BPETokenizer)
        and loaded.merges == tok.merges
        and loaded.vocab == tok.vocab
    )


# --- BPE from scratch against the tokenizers library ---


def test_same_merges_as_the_library(shakespeare):
    """The first 100,000 characters of the corpus, 300 merges: identical
    lists, in order."""
    train, _ = shakespeare
    ours = BPETokenizer.train(train, 256 + 300)
    theirs = train_bpe(train, 1 + 256 + 300)  # + the end-of-text token
    assert len(ours.merge_list()) == 300
    assert ours.merge_list() == theirs.merge_list()
    # independently: the first merge is the most frequent byte pair inside
    # GPT-2's chunks
    pairs = Counter(
        p
        for chunk in regex.findall(GPT2_PATTERN, train)
        for p in zip(chunk.encode(), chunk.encode()[1:])
    )
    (a, b), _ = pairs.most_common(1)[0]
    assert theirs.merge_list()[0] == (bytes([a]), bytes([b]))


def test_same_tokens_as_the_library_on_held_out_text(shakespeare):
    train, held_out = shakespeare
    ours, theirs = BPETokenizer.train(train, 512), train_bpe(train, 513)
    assert ours.tokens(held_out) == theirs.tokens(held_out)


def test_same_merges_on_unicode_text():
    text = CORPUS + TEXTS[2] * 5
    ours, theirs = BPETokenizer.train(text, 320), train_bpe(text, 321)
    assert ours.merge_list() == theirs.merge_list()
    assert ours.tokens(TEXTS[1]) == theirs.tokens(TEXTS[1])


# --- the library path ---


@pytest.mark.parametrize("text", TEXTS)
def test_train_bpe_roundtrips(text):
    tok = train_bpe(CORPUS, 300)
    assert tok.decode(tok.encode(text)) == text


def test_train_bpe_eot_and_save_load(tmp_path):
    tok = train_bpe([CORPUS, "more text"], 300)
    assert tok.vocab_size == 300 and tok.eot_id == tok.tokenizer.token_to_id(
        EOT
    )
    assert tok.decode([tok.eot_id]) == EOT
    path = tok.save(tmp_path / "tokenizer.json")
    assert path == tmp_path / "tokenizer.json" and path.is_file()
    for where in (path, tmp_path):  # the file, or the folder that holds it
        loaded = load_tokenizer(where)
        assert isinstance(loaded, HFBPETokenizer)
        assert loaded.eot_id == tok.eot_id
        assert loaded.encode(CORPUS) == tok.encode(CORPUS)


def test_train_bpe_file_loads_in_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    tok = train_bpe(CORPUS, 300)
    path = tok.save(tmp_path / "tokenizer.json")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
    text = "自注意力 the fox 🤖"
    assert (
        fast.encode(text) == tok.encode(text)
        and fast.decode(fast.encode(text)) == text
    )


def test_merge_checker_passes_the_reference_and_fails_overlapping_merges():
    from minigpt.exercises import check_merge

    assert check_merge(merge, verbose=False)

    # merges overlapping pairs: [1, 1, 1] -> [2, 2]
    def replace_all_pairs(ids, pair, new_id):
        return (
            [new_id if (a, b) == pair else a for a, b in zip(ids, ids[1:])]
            if len(ids) > 1
            else list(ids)
        )

    report = check_merge(replace_all_pairs, verbose=False)
    assert (
        not report
        and "overlapping run: [1, 1, 1, 1, 1], (1, 1)" in report.failed
    )


def test_corrupt_saved_files_are_rejected(tmp_path):
    (tmp_path / "bpe.json").write_text(
        json.dumps({"kind": "bpe", "pattern": ".+", "merges": [[0, 1, 300]]})
    )
    with pytest.raises(
        ValueError, match=r"merge \(0, 1\) -> 300 is inconsistent"
    ):
        load_tokenizer(tmp_path / "bpe.json")
    (tmp_path / "char.json").write_text(
        json.dumps({"kind": "char", "chars": ["a", "a"], "unknown": None})
    )
    with pytest.raises(ValueError, match="distinct single characters"):
        load_tokenizer(tmp_path / "char.json")


def test_clear_cache_forgets_encoded_chunks_and_changes_no_ids():
    scratch, library = BPETokenizer.train(CORPUS, 300), train_bpe(CORPUS, 301)
    for tok in (scratch, library):
        ids = tok.encode(CORPUS)
        tok.clear_cache()
        assert tok.encode(CORPUS) == ids
    scratch.clear_cache()
    # the next encode starts cold, which is what a benchmark wants
    assert scratch._cache == {}
    scratch.encode("the fox")
    assert set(scratch._cache) == {"the", " fox"}


def test_save_leaves_no_temporary_file(tmp_path):
    for tok in (
        CharTokenizer.from_text(CORPUS),
        BPETokenizer.train(CORPUS, 300),
        train_bpe(CORPUS, 301),
    ):
        folder = tmp_path / type(tok).__name__
        for _ in range(2):  # the second save replaces the first
            tok.save(folder / "tokenizer.json")
        assert [p.name for p in folder.iterdir()] == ["tokenizer.json"]
        assert load_tokenizer(folder / "tokenizer.json").encode(
            CORPUS
        ) == tok.encode(CORPUS)


BERT_TOKENS = ["[CLS]", "[SEP]", "[MASK]", "[PAD]"]


def test_char_special_tokens_follow_the_characters(tmp_path):
    plain = CharTokenizer.from_text("hello world")
    tok = plain.with_special_tokens(BERT_TOKENS)
    n = plain.vocab_size
    assert tok.vocab_size == n + 4 and tok.special_tokens == BERT_TOKENS
    assert [tok.special_id(t) for t in BERT_TOKENS] == [
        n,
        n + 1,
        n + 2,
        n + 3,
    ]
    # ordinary text encodes as before; a special token's text is one id
    assert tok.encode("hello") == plain.encode("hello")
    ids = tok.encode("[CLS]he[MASK]o[SEP]")
    assert ids == [n] + plain.encode("he") + [n + 2] + plain.encode("o") + [
        n + 1
    ]
    assert tok.decode(ids) == "[CLS]he[MASK]o[SEP]"
    tok.save(tmp_path / "tok.json")
    loaded = load_tokenizer(tmp_path / "tok.json")
    assert loaded.special_tokens == BERT_TOKENS
    assert loaded.encode("[PAD]w") == [n + 3, plain.encode("w")[0]]


def test_the_longest_special_token_wins():
    tok = CharTokenizer.from_text("ab<>").with_special_tokens(["<a>", "<ab>"])
    assert tok.encode("<ab>") == [tok.special_id("<ab>")]
    assert tok.encode("<a>b") == [tok.special_id("<a>"), tok.stoi["b"]]


def test_bpe_special_tokens_match_transformers(tmp_path):
    from transformers import PreTrainedTokenizerFast

    plain = train_bpe(
        "the quick brown fox jumps over the lazy dog " * 30, 300
    )
    tok = plain.with_special_tokens(BERT_TOKENS)
    assert tok.vocab_size == plain.vocab_size + 4
    assert tok.special_tokens == BERT_TOKENS and plain.special_tokens == []
    assert tok.special_id("[CLS]") == plain.vocab_size
    text = "[CLS]the lazy fox[MASK] jumps[SEP]"
    ids = tok.encode(text)
    assert ids[0] == tok.special_id("[CLS]") and ids[-1] == tok.special_id(
        "[SEP]"
    )
    assert tok.special_id("[MASK]") in ids and tok.decode(ids) == text
    assert tok.encode("the lazy fox") == plain.encode("the lazy fox")
    tok.save(tmp_path / "tokenizer.json")
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert loaded.special_tokens == BERT_TOKENS and loaded.encode(text) == ids
    theirs = PreTrainedTokenizerFast(
        tokenizer_file=str(tmp_path / "tokenizer.json")
    )
    assert theirs(text)["input_ids"] == ids


@pytest.mark.parametrize(
    "make",
    [
        lambda: CharTokenizer.from_text("abc"),
        lambda: train_bpe("abc abc " * 20, 260),
    ],
)
def test_bad_special_tokens_are_refused(make):
    tok = make()
    with pytest.raises(ValueError, match="no special token '\\[MASK\\]'"):
        tok.special_id("[MASK]")
    with pytest.raises(ValueError, match="non-empty string"):
        tok.with_special_tokens([""])
    with pytest.raises(
        ValueError, match="repeated or already in the vocabulary"
    ):
        tok.with_special_tokens(["[X]", "[X]"])
    with pytest.raises(
        ValueError, match="repeated or already in the vocabulary"
    ):
        tok.with_special_tokens(["[X]"]).with_special_tokens(["[X]"])
