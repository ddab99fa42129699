"""Collect every benchmarks/results/*.json into results/RESULTS.md.

One markdown table per results file. `make bench` runs this after the
benchmark scripts; the book's performance appendix reads the same JSON files.
"""

import json
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def table(payload: dict) -> list[str]:
    """Markdown lines for one results file.

    A heading, the machine, one row per comparison.
    """
    rows = payload["rows"]
    if not rows:
        return []
    columns = list(rows[0])
    lines = [
        f"## {payload['script']}",
        "",
        f"Measured {payload['measured_at']} on "
        f"{payload['machine']['platform']}, "
        f"{payload['machine']['cpu_count']} CPUs, "
        f"{payload['machine']['torch_threads']} torch threads, "
        f"torch {payload['machine']['torch']}.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = [
            f"{v:.4g}" if isinstance(v, float) else str(v)
            for v in (row.get(c, "") for c in columns)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def main() -> None:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench`; every ratio compares two contenders "
        "run interleaved in one process.",
        "",
    ]
    for path in sorted(RESULTS_DIR.glob("*.json")):
        lines += table(json.loads(path.read_text()))
    out = RESULTS_DIR / "RESULTS.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
