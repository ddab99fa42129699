"""The README's quick start runs as written, on a small text and fewer
steps."""

import re
from pathlib import Path

from minigpt import data

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start() -> str:
    """The first ```python block after the 'Quick start' heading."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_quick_start_trains_saves_reloads_and_samples(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "my_text.txt").write_text(
        data.load_text("tinyshakespeare")[:30_000], encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    code = quick_start()
    assert code.count("max_iters=1000") == 1
    exec(
        compile(
            code.replace("max_iters=1000", "max_iters=20, progress=False"),
            "README.md",
            "exec",
        ),
        {},
    )
    sample = capsys.readouterr().out
    assert len(sample) >= 200 and set(sample) <= set(
        data.load_text("tinyshakespeare")[:30_000]
    ) | {"\n"}
    assert (tmp_path / "runs" / "mine" / "model.safetensors").is_file()
