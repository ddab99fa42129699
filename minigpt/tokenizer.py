"""Tokenizers: text to integer ids and back, behind one interface.

Every tokenizer here has ``encode(text) -> list[int]``,
``decode(ids) -> str``, ``vocab_size``, ``save(path)`` and ``load(path)``;
:func:`load_tokenizer` loads whichever kind was saved.

:class:`CharTokenizer` and :class:`HFBPETokenizer` take **special tokens**
such as BERT's ``[CLS]``, ``[SEP]``, ``[MASK]``, ``[PAD]`` or a chat
template's role markers: ``with_special_tokens([...])`` returns a tokenizer
whose vocabulary ends with them (the merges and characters unchanged, so
every other text encodes as before), ``special_id(token)`` gives an id, and
``encode`` turns the token's text into its one id. They are saved and loaded
with the tokenizer.

- :class:`CharTokenizer`: one id per character seen in the training text.
- :class:`BPETokenizer`: byte-level byte-pair encoding written from scratch to
  be read. Text is split into chunks (GPT-2's pattern), each chunk into its
  UTF-8 bytes, and the most frequent adjacent pair is merged into a new token,
  again and again, until the vocabulary has the size asked for.
- :class:`HFBPETokenizer` / :func:`train_bpe`: the same algorithm through the
  Hugging Face ``tokenizers`` library (Rust), the fast path the later chapters
  use. Its ``tokenizer.json`` loads in ``transformers``.

A test checks that the from-scratch trainer learns the same merges, in the
same order, as the library: both break ties between equally frequent pairs by
taking the pair whose ids are smallest, with the 256 bytes numbered in GPT-2's
order.
"""

import json
import operator
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import regex
import torch

from minigpt.common import atomic_path

__all__ = [
    "EOT",
    "GPT2_PATTERN",
    "CharTokenizer",
    "gpt2_byte_order",
    "gpt2_byte_to_char",
    "get_pairs",
    "merge",
    "BPETokenizer",
    "HFBPETokenizer",
    "train_bpe",
    "load_tokenizer",
]

#: GPT-2's end-of-text token, which separates documents.
EOT = "<|endoftext|>"
#: GPT-2's pre-tokenization: contractions, words, numbers, punctuation runs,
#: whitespace. A merge never crosses a chunk boundary, so " the" and "the."
#: stay separate tokens.
GPT2_PATTERN = (
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"""
    r"""|\s+(?!\S)|\s+"""
)


# --- shared helpers ---------------------------------------------------------


def _check_text(text, what: str = "text") -> None:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")


def _check_training_text(text) -> None:
    _check_text(text, "training text")
    if not text:
        raise ValueError(
            "training text is empty: a tokenizer learns its vocabulary from "
            "text, pass some"
        )


def _id_list(ids, vocab_size: int) -> list[int]:
    """``ids`` (a list or 1-D tensor) as a list of ints.

    Each id is checked to be in the vocabulary.
    """
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1:
            raise ValueError(
                f"ids must be 1-D, got a tensor of shape {tuple(ids.shape)}: "
                "decode one row at a time"
            )
        ids = ids.tolist()
    out = []
    for i in ids:
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise TypeError(
                f"token ids must be ints, got {i!r} ({type(i).__name__})"
            )
        i = operator.index(i)
        if not 0 <= i < vocab_size:
            raise ValueError(
                f"token id {i} is outside the vocabulary "
                f"(0..{vocab_size - 1}): "
                "was it produced by another tokenizer or model?"
            )
        out.append(i)
    return out


def _file(path) -> Path:
    """``path``, or ``path/tokenizer.json`` when ``path`` is a directory."""
    path = Path(path)
    return path / "tokenizer.json" if path.is_dir() else path


def _write_json(path: Path, payload: dict) -> Path:
    """Write JSON atomically (:func:`minigpt.common.atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps(payload, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return path


def _read_json(path: Path, kind: str) -> dict:
    payload = json.loads(path.read_text(encoding="utf-8"))
    if payload.get("kind") != kind:
        raise ValueError(
            f"{path} holds a tokenizer of kind {payload.get('kind')!r}, not "
            f"{kind!r}: "
            "use minigpt.tokenizer.load_tokenizer(path), which picks the "
            "right class"
        )
    return payload


# --- characters -------------------------------------------------------------


def _check_special_tokens(tokens, existing) -> list[str]:
    """``tokens`` as a list, each a new, non-empty string."""
    tokens = list(tokens)
    for token in tokens:
        if not isinstance(token, str) or not token:
            raise ValueError(
                f"a special token must be a non-empty string, got {token!r}"
            )
    repeated = sorted(
        {t for t in tokens if tokens.count(t) > 1 or t in existing}
    )
    if repeated:
        raise ValueError(
            f"special tokens {repeated} are repeated or already in the "
            "vocabulary; give each once"
        )
    return tokens


def _missing_special(token: str, tokens: list[str]) -> ValueError:
    return ValueError(
        f"the tokenizer has no special token {token!r} (it has {tokens}); "
        f"add it with tokenizer.with_special_tokens([{token!r}])"
    )


class CharTokenizer:
    """One token per character; the vocabulary is the sorted characters seen.

    ``special_tokens`` get the ids after the characters.

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.encode("hell"), tok.decode([1, 0, 2, 2, 3])
    ([1, 0, 2, 2], 'hello')
    >>> bert = tok.with_special_tokens(["[CLS]", "[MASK]"])
    >>> bert.encode("[CLS]he[MASK]lo"), bert.special_id("[MASK]")
    ([4, 1, 0, 5, 2, 3], 5)
    """

    def __init__(
        self,
        chars: list[str],
        unknown: str | None = None,
        special_tokens: tuple[str, ...] = (),
    ):
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("chars must be distinct single characters")
        if unknown is not None and unknown not in chars:
            raise ValueError(
                f"the unknown token {unknown!r} must be one of the characters"
            )
        self.chars = list(chars)
        self.unknown = unknown
        self.special_tokens = _check_special_tokens(special_tokens, chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        # the longest first, so that one special token's prefix never wins
        self._special_pattern = (
            regex.compile(
                "|".join(
                    regex.escape(t)
                    for t in sorted(
                        self.special_tokens, key=len, reverse=True
                    )
                )
            )
            if self.special_tokens
            else None
        )

    def with_special_tokens(self, tokens) -> "CharTokenizer":
        """This tokenizer with ``tokens`` added after its other ids."""
        return CharTokenizer(
            self.chars, self.unknown, [*self.special_tokens, *tokens]
        )

    def special_id(self, token: str) -> int:
        if token not in self.special_tokens:
            raise _missing_special(token, self.special_tokens)
        return len(self.chars) + self.special_tokens.index(token)

    @classmethod
    def from_text(
        cls, text: str, unknown: str | None = None
    ) -> "CharTokenizer":
        """The vocabulary of ``text``.

        With ``unknown`` (one character, e.g. ``"?"``), characters not in
        ``text`` encode as that character instead of raising.
        """
        _check_training_text(text)
        if unknown is not None and (
            not isinstance(unknown, str) or len(unknown) != 1
        ):
            raise ValueError(
                "unknown must be a single character such as '?', got "
                f"{unknown!r}"
            )
        return cls(
            sorted(set(text) | ({unknown} if unknown else set())), unknown
        )

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + len(self.special_tokens)

    def encode(self, text: str) -> list[int]:
        _check_text(text)
        if self._special_pattern is None:
            return self._encode_chars(text)
        ids, start = [], 0
        for match in self._special_pattern.finditer(text):
            ids += self._encode_chars(text[start : match.start()])
            ids.append(self.special_id(match.group()))
            start = match.end()
        return ids + self._encode_chars(text[start:])

    def _encode_chars(self, text: str) -> list[int]:
        if self.unknown is not None:
            fallback = self.stoi[self.unknown]
            return [self.stoi.get(c, fallback) for c in text]
        try:
            return [self.stoi[c] for c in text]
        except KeyError as error:
            c = error.args[0]
            raise ValueError(
                f"character {c!r} (U+{ord(c):04X}) at position "
                f"{text.index(c)} is not in the "
                f"vocabulary of {self.vocab_size} characters: build the "
                "tokenizer from text that "
                "contains it, or pass unknown='?' to CharTokenizer.from_text"
            ) from None

    def decode(self, ids) -> str:
        tokens = self.chars + self.special_tokens
        return "".join(tokens[i] for i in _id_list(ids, self.vocab_size))

    def save(self, path) -> Path:
        return _write_json(
            _file(path),
            {
                "kind": "char",
                "chars": self.chars,
                "unknown": self.unknown,
                "special_tokens": self.special_tokens,
            },
        )

    @classmethod
    def load(cls, path) -> "CharTokenizer":
        payload = _read_json(_file(path), "char")
        return cls(
            payload["chars"],
            payload["unknown"],
            payload.get("special_tokens", []),
        )


# --- byte-level BPE from scratch --------------------------------------------


def gpt2_byte_order() -> list[int]:
    """The 256 byte values in GPT-2's order.

    Printable ``!`` to ``~``, ``¡`` to ``¬`` and ``®`` to ``ÿ`` first, then
    the rest.
    Byte ``gpt2_byte_order()[i]`` is token ``i``, as in GPT-2's vocabulary and
    the ``tokenizers`` library, which makes ties between merges break the same
    way.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    return printable + [b for b in range(256) if b not in printable]


def gpt2_byte_to_char() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte.

    The alphabet the ``tokenizers`` library writes byte-level tokens in:
    printable bytes stand for themselves, the other 68 (control characters,
    space, ...) become ``chr(256)``, ``chr(257)``, ... (space is ``Ġ``).
    """
    order = gpt2_byte_order()
    # 94 + 12 + 82 printable bytes come first in gpt2_byte_order()
    printable = 188
    return {
        b: chr(b) if i < printable else chr(256 + i - printable)
        for i, b in enumerate(order)
    }


_BYTE_OF_CHAR = {c: b for b, c in gpt2_byte_to_char().items()}


def get_pairs(ids: list[int]) -> Counter:
    """How often each adjacent pair occurs.

    >>> get_pairs([1, 2, 3, 1, 2])
    Counter({(1, 2): 2, (2, 3): 1, (3, 1): 1})
    """
    return Counter(zip(ids, ids[1:]))


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every ``pair`` in ``ids``, left to right, by ``new_id``.

    >>> merge([5, 6, 6, 7, 5, 6], (5, 6), 99)
    [99, 6, 7, 99]
    >>> merge([1, 1, 1], (1, 1), 2)
    [2, 1]
    """
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class BPETokenizer:
    """Byte-level BPE, from scratch: ``train``, ``encode``, ``decode``.

    ``vocab[i]`` is the bytes of token ``i``; ``merges`` maps a pair of ids to
    the id it became, in the order learned. Any text round-trips exactly,
    because every string is a sequence of bytes and every byte is a token.
    """

    def __init__(
        self, merges: list[tuple[int, int, int]], pattern: str = GPT2_PATTERN
    ):
        self.pattern = pattern
        self.byte_to_id = {b: i for i, b in enumerate(gpt2_byte_order())}
        self.vocab = [bytes([b]) for b in gpt2_byte_order()]
        self.merges: dict[tuple[int, int], int] = {}
        for a, b, new_id in merges:
            if new_id == len(self.vocab):
                self.vocab.append(self.vocab[a] + self.vocab[b])
            elif (
                new_id > len(self.vocab)
                or self.vocab[new_id] != self.vocab[a] + self.vocab[b]
            ):
                raise ValueError(
                    f"merge ({a}, {b}) -> {new_id} is inconsistent with the "
                    "merges before it"
                )
            self.merges[(a, b)] = new_id
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self._cache: dict[
            str, list[int]
        ] = {}  # chunk -> ids: words repeat, so this saves most of the work

    @classmethod
    def train(
        cls, text: str, vocab_size: int, pattern: str = GPT2_PATTERN
    ) -> "BPETokenizer":
        """Learn merges from ``text`` up to ``vocab_size`` tokens (>= 256).

        Each step merges the most frequent adjacent pair; among equally
        frequent pairs, the one with the smallest ids ``(a, b)``. Pairs are
        counted once per distinct chunk, weighted by how often the chunk
        occurs, and after a merge only the chunks that contained the pair are
        recounted.
        """
        _check_training_text(text)
        if (
            isinstance(vocab_size, bool)
            or not isinstance(vocab_size, int)
            or vocab_size < 256
        ):
            raise ValueError(
                "vocab_size must be an int >= 256 (one token per byte, then "
                f"merges), got {vocab_size!r}"
            )
        tok = cls([], pattern)
        chunks = Counter(regex.findall(pattern, text))
        words = [
            [tok.byte_to_id[b] for b in chunk.encode("utf-8")]
            for chunk in chunks
        ]
        counts = list(chunks.values())
        stats: Counter = Counter()  # pair -> occurrences in the whole text
        # pair -> indices of the words that contain it (or once did)
        where = defaultdict(set)

        def count(w: int, sign: int) -> None:
            for pair in zip(words[w], words[w][1:]):
                stats[pair] += sign * counts[w]
                if sign > 0:
                    where[pair].add(w)
                elif stats[pair] == 0:
                    del stats[pair]

        for w in range(len(words)):
            count(w, +1)
        merges, known = [], {token: i for i, token in enumerate(tok.vocab)}
        while len(tok.vocab) < vocab_size and stats:
            best = max(stats.values())
            pair = min(p for p, c in stats.items() if c == best)
            token = tok.vocab[pair[0]] + tok.vocab[pair[1]]
            # the same bytes reached by another pair keep one id
            new_id = known.get(token, len(tok.vocab))
            if new_id == len(tok.vocab):
                tok.vocab.append(token)
                known[token] = new_id
            merges.append((*pair, new_id))
            for w in where.pop(pair):
                merged = merge(words[w], pair, new_id)
                if len(merged) < len(words[w]):
                    count(w, -1)
                    words[w] = merged
                    count(w, +1)
        if len(tok.vocab) < vocab_size:
            warnings.warn(
                "the text ran out of pairs to merge: vocabulary has "
                f"{len(tok.vocab)} tokens, "
                f"not the {vocab_size} asked for; train on more text for a "
                "larger vocabulary"
            )
        return cls(merges, pattern)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _encode_chunk(self, chunk: str) -> list[int]:
        """Apply the merges to one chunk, earliest first, as in training."""
        ids = [self.byte_to_id[b] for b in chunk.encode("utf-8")]
        while len(ids) >= 2:
            pair = min(
                zip(ids, ids[1:]),
                key=lambda p: self.ranks.get(p, len(self.ranks)),
            )
            if pair not in self.merges:
                break
            ids = merge(ids, pair, self.merges[pair])
        return ids

    def clear_cache(self) -> None:
        """Forget the chunks encoded so far.

        The next :meth:`encode` then starts cold, for timing it.
        """
        self._cache.clear()

    def encode(self, text: str) -> list[int]:
        _check_text(text)
        ids = []
        for chunk in regex.findall(self.pattern, text):
            if chunk not in self._cache:
                self._cache[chunk] = self._encode_chunk(chunk)
            ids.extend(self._cache[chunk])
        return ids

    def decode(self, ids) -> str:
        """Join the tokens' bytes and decode them as UTF-8.

        An incomplete character becomes U+FFFD.
        """
        return b"".join(
            self.vocab[i] for i in _id_list(ids, self.vocab_size)
        ).decode("utf-8", errors="replace")

    def tokens(self, text: str) -> list[bytes]:
        """The bytes of each token of ``text``, to see how it was split."""
        return [self.vocab[i] for i in self.encode(text)]

    def merge_list(self) -> list[tuple[bytes, bytes]]:
        """The merges in the order learned, as pairs of byte strings."""
        return [(self.vocab[a], self.vocab[b]) for a, b in self.merges]

    def save(self, path) -> Path:
        merges = [[a, b, new_id] for (a, b), new_id in self.merges.items()]
        return _write_json(
            _file(path),
            {"kind": "bpe", "pattern": self.pattern, "merges": merges},
        )

    @classmethod
    def load(cls, path) -> "BPETokenizer":
        payload = _read_json(_file(path), "bpe")
        return cls([tuple(m) for m in payload["merges"]], payload["pattern"])


# --- byte-level BPE through the tokenizers library --------------------------


class HFBPETokenizer:
    """A ``tokenizers.Tokenizer`` (byte-level BPE) behind minigpt's interface.

    ``.tokenizer`` is the library object; ``eot_id`` is the id of
    ``"<|endoftext|>"``.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        eot_id = tokenizer.token_to_id(EOT)
        if eot_id is None:
            raise ValueError(
                f"the tokenizer has no {EOT!r} token: train it with "
                "minigpt.tokenizer.train_bpe"
            )
        self.eot_id = eot_id

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def special_tokens(self) -> list[str]:
        """The special tokens after end-of-text, in the order of their ids."""
        added = self.tokenizer.get_added_tokens_decoder()
        return [
            added[i].content
            for i in sorted(added)
            if added[i].special and added[i].content != EOT
        ]

    def with_special_tokens(self, tokens) -> "HFBPETokenizer":
        """A copy of this tokenizer with ``tokens`` added after its ids.

        The merges are unchanged; ``encode`` matches each token in the text
        as one id, as ``transformers`` does.
        """
        from tokenizers import Tokenizer

        vocab = self.tokenizer.get_vocab()
        tokens = _check_special_tokens(tokens, vocab)
        copy = Tokenizer.from_str(self.tokenizer.to_str())
        copy.add_special_tokens(tokens)
        return HFBPETokenizer(copy)

    def special_id(self, token: str) -> int:
        if token not in self.special_tokens:
            raise _missing_special(token, self.special_tokens)
        return self.tokenizer.token_to_id(token)

    def clear_cache(self) -> None:
        """Forget the words the library's BPE model cached.

        As :meth:`BPETokenizer.clear_cache` does.
        """
        self.tokenizer.model._clear_cache()  # the library's only way to do it

    def encode(self, text: str) -> list[int]:
        _check_text(text)
        return self.tokenizer.encode(text).ids

    def decode(self, ids) -> str:
        return self.tokenizer.decode(
            _id_list(ids, self.vocab_size), skip_special_tokens=False
        )

    def tokens(self, text: str) -> list[bytes]:
        """The bytes of each token of ``text``.

        Comparable with :meth:`BPETokenizer.tokens`.
        """
        return [
            self._to_bytes(token)
            for token in self.tokenizer.encode(text).tokens
        ]

    def merge_list(self) -> list[tuple[bytes, bytes]]:
        """The merges in the order learned, as pairs of byte strings."""
        merges = json.loads(self.tokenizer.to_str())["model"]["merges"]
        # older files: "a b"
        pairs = [m.split(" ") if isinstance(m, str) else m for m in merges]
        return [(self._to_bytes(a), self._to_bytes(b)) for a, b in pairs]

    @staticmethod
    def _to_bytes(token: str) -> bytes:
        return bytes(_BYTE_OF_CHAR[c] for c in token)

    def save(self, path) -> Path:
        path = _file(path)
        with atomic_path(path) as tmp:
            self.tokenizer.save(str(tmp))
        return path

    @classmethod
    def load(cls, path) -> "HFBPETokenizer":
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(_file(path))))


def train_bpe(texts, vocab_size: int) -> HFBPETokenizer:
    """Train byte-level BPE with the ``tokenizers`` library.

    GPT-2's pre-tokenization, all 256 bytes in the alphabet, and
    ``"<|endoftext|>"`` as id 0. ``vocab_size`` counts all three parts, so it
    must be at least 257.
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        trainers,
    )

    texts = [texts] if isinstance(texts, str) else list(texts)
    for text in texts:
        _check_text(text, "each training text")
    if not any(texts):
        raise ValueError(
            "training text is empty: a tokenizer learns its vocabulary from "
            "text, pass some"
        )
    if (
        isinstance(vocab_size, bool)
        or not isinstance(vocab_size, int)
        or vocab_size < 257
    ):
        raise ValueError(
            f"vocab_size must be an int >= 257 (256 bytes + {EOT}), got "
            f"{vocab_size!r}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    return HFBPETokenizer(tokenizer)


def load_tokenizer(path):
    """Load a tokenizer saved by any class here.

    The class is chosen from the file.
    """
    path = _file(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no tokenizer at {path}: save one first with "
            "tokenizer.save(path)"
        )
    payload = json.loads(path.read_text(encoding="utf-8"))
    kinds = {"char": CharTokenizer, "bpe": BPETokenizer}
    if payload.get("kind") in kinds:
        return kinds[payload["kind"]].load(path)
    if payload.get("model", {}).get("type") == "BPE":
        return HFBPETokenizer.load(path)
    raise ValueError(
        f"{path} is not a tokenizer saved by minigpt (kind "
        f"{payload.get('kind')!r}): "
        "expected 'char', 'bpe' or a tokenizers-library tokenizer.json"
    )
