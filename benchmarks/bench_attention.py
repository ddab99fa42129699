"""Attention's cost, written-out vs fused: time and memory against length.

Two comparisons, each run in one process with the contenders interleaved
(``harness.compare``):

1. ``F.scaled_dot_product_attention`` (fused) against
   ``minigpt.attention.scaled_dot_product_attention`` (written out, stores the
   T x T weights), one causal layer of ``--heads`` heads of ``--head-dim``,
   for T = 128 .. ``--max-len``. Memory is the peak of the bytes held by the
   tensors the call creates, counted exactly by a ``TorchDispatchMode``.
2. The fast ``MultiHeadAttention`` against the teaching form (a Python loop
   over heads) with the same weights.

Run: ``python benchmarks/bench_attention.py [--threads 1] [--max-len 2048]``.
Writes ``benchmarks/results/bench_attention.json``.
"""

import argparse
import weakref

import torch
import torch.nn.functional as F
from harness import compare, row, save
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from minigpt.attention import (
    MultiHeadAttention,
    causal_mask,
    fast_to_teaching,
    scaled_dot_product_attention,
)


class PeakMemory(TorchDispatchMode):
    """Peak bytes held by the tensors created inside the `with` block."""

    def __init__(self):
        super().__init__()
        self.size, self.refs, self.now, self.peak = {}, {}, 0, 0

    def _release(self, key):
        self.refs[key] -= 1
        if self.refs[key] == 0:
            self.now -= self.size.pop(key)
            del self.refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                # views share their base's storage
                key = t.untyped_storage().data_ptr()
                if key not in self.size:
                    self.size[key], self.refs[key] = (
                        t.untyped_storage().nbytes(),
                        0,
                    )
                    self.now += self.size[key]
                    self.peak = max(self.peak, self.now)
                self.refs[key] += 1
                weakref.finalize(t, self._release, key)
        return out


def peak_bytes(fn) -> int:
    with torch.no_grad(), PeakMemory() as memory:
        fn()
    return memory.peak


def bench_lengths(
    lengths: list[int], heads: int, head_dim: int, repeats: int
) -> list[dict]:
    rows = []
    for T in lengths:
        q, k, v = (torch.randn(1, heads, T, head_dim) for _ in range(3))
        mask = causal_mask(T)

        def fused():
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

        def written_out():
            return scaled_dot_product_attention(q, k, v, mask)

        with torch.no_grad():
            result = compare(
                f"attention T={T}",
                fused,
                written_out,
                "fused",
                "written-out",
                warmup=1,
                repeats=repeats if T < 1024 else max(3, repeats // 4),
            )
        memory = {
            "fused_peak_bytes": peak_bytes(fused),
            "written_out_peak_bytes": peak_bytes(written_out),
        }
        print(
            f"  peak memory: fused {memory['fused_peak_bytes'] / 2**20:.2f} "
            "MiB, "
            f"written-out {memory['written_out_peak_bytes'] / 2**20:.2f} MiB",
            flush=True,
        )
        rows.append(
            row(result, T=T, heads=heads, head_dim=head_dim, **memory)
        )
    return rows


def bench_forms(
    n_embd: int, n_head: int, T: int, batch: int, repeats: int
) -> dict:
    fast = MultiHeadAttention(n_embd, n_head).eval()
    teaching = fast_to_teaching(fast).eval()
    x = torch.randn(batch, T, n_embd)
    with torch.no_grad():
        result = compare(
            f"multi-head layer n_embd={n_embd} n_head={n_head} B={batch} "
            f"T={T}",
            lambda: fast(x),
            lambda: teaching(x),
            "fast",
            "teaching",
            repeats=repeats,
        )
    return row(
        result, T=T, heads=n_head, head_dim=n_embd // n_head, batch=batch
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: stable on a shared machine)",
    )
    parser.add_argument(
        "--max-len",
        type=int,
        default=2048,
        help="longest sequence length (a power of 2)",
    )
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args()
    if args.max_len < 128 or args.max_len & (args.max_len - 1):
        parser.error(
            f"--max-len must be a power of 2 >= 128, got {args.max_len}"
        )
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lengths = [2**p for p in range(7, args.max_len.bit_length())]
    rows = bench_lengths(lengths, args.heads, args.head_dim, args.repeats)
    rows.append(bench_forms(256, 8, 128, 4, args.repeats))
    print(f"wrote {save('bench_attention', rows)}")


if __name__ == "__main__":
    main()
