"""Byte-level BPE: the from-scratch tokenizer against ``tokenizers``.

That is, minigpt's ``BPETokenizer`` against the Hugging Face library. Both
learn the same merges (``tests/test_tokenizer.py`` checks it), so this
measures only speed, in one process with the contenders interleaved
(``harness.compare``):

1. training: ``BPETokenizer.train`` against ``train_bpe`` on the first
   ``--train-chars`` characters of Tiny Shakespeare, to a vocabulary of
   ``--vocab`` tokens;
2. encoding: the last 10% of the corpus (held out) as one string with the two
   trained tokenizers, each starting with an empty cache of encoded chunks on
   every call;
3. encoding the same text line by line: a Python loop over ``encode`` against
   the library's ``encode_batch``, which spreads the lines over threads.

Timings on a shared machine are noisy; the ratios, taken in one process with
the two contenders alternating, are what to compare.

Run: ``python benchmarks/bench_tokenizer.py [--train-chars 200000] [--vocab
512]``. Writes ``benchmarks/results/bench_tokenizer.json``.
"""

import argparse

from harness import compare, row, save

from minigpt.data import load_text, train_val_split
from minigpt.tokenizer import BPETokenizer, train_bpe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-chars", type=int, default=200_000)
    parser.add_argument(
        "--vocab",
        type=int,
        default=512,
        help="from-scratch vocabulary (the library gets +1 for "
        "<|endoftext|>)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    corpus = "tinyshakespeare"
    text = load_text(corpus)
    train_text = text[: args.train_chars]
    _, held_out = train_val_split(text)
    print(
        f"corpus {corpus}: train on {len(train_text):,} characters to "
        f"{args.vocab} tokens, "
        f"encode {len(held_out):,} held-out characters"
    )

    training = compare(
        "train",
        lambda: BPETokenizer.train(train_text, args.vocab),
        lambda: train_bpe(train_text, args.vocab + 1),
        a_name="from scratch",
        b_name="tokenizers",
        warmup=1,
        repeats=args.repeats,
    )

    scratch, library = (
        BPETokenizer.train(train_text, args.vocab),
        train_bpe(train_text, args.vocab + 1),
    )
    assert scratch.merge_list() == library.merge_list(), (
        "the two tokenizers learned different merges"
    )

    def encode_scratch():
        # every call starts cold, as a fresh tokenizer would
        scratch.clear_cache()
        return scratch.encode(held_out)

    def encode_library():
        library.clear_cache()
        return library.encode(held_out)

    encoding = compare(
        "encode",
        encode_scratch,
        encode_library,
        a_name="from scratch",
        b_name="tokenizers",
        warmup=1,
        repeats=args.repeats,
    )

    lines = held_out.splitlines(keepends=True)

    def lines_scratch():
        scratch.clear_cache()
        return [scratch.encode(line) for line in lines]

    def lines_library():
        library.clear_cache()
        return library.tokenizer.encode_batch(lines)

    batched = compare(
        "encode lines (batch)",
        lines_scratch,
        lines_library,
        a_name="from scratch",
        b_name="tokenizers",
        warmup=1,
        repeats=args.repeats,
    )

    rows = []
    for comparison, chars in (
        (training, len(train_text)),
        (encoding, len(held_out)),
        (batched, len(held_out)),
    ):
        speedup = 1 / comparison.ratio
        print(
            f"{comparison.name}: tokenizers is {speedup:.1f}x faster "
            f"({chars / comparison.b_median_s / 1e6:.2f} vs "
            f"{chars / comparison.a_median_s / 1e6:.2f} M chars/s)"
        )
        rows.append(
            row(
                comparison,
                corpus=corpus,
                chars=chars,
                vocab_size=args.vocab,
                library_speedup=speedup,
                scratch_chars_per_s=chars / comparison.a_median_s,
                library_chars_per_s=chars / comparison.b_median_s,
            )
        )
    print("wrote", save("bench_tokenizer", rows))


if __name__ == "__main__":
    main()
