"""The book's structure: the table of contents and the notebooks agree, and
notebooks are stored clean (executing them is `make test-notebooks`)."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
# pages that are not chapters and so need not import minigpt
NOT_CHAPTERS = {"preface"}


def toc_files() -> list[str]:
    """Every `file:` in _toc.yml (the root included), without extension."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def notebooks() -> list[Path]:
    return sorted(
        p
        for p in BOOK.rglob("*.ipynb")
        if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts
    )


def test_toc_lists_each_page_once():
    files = toc_files()
    assert len(files) == len(set(files)), (
        "pages listed twice in _toc.yml: "
        f"{sorted({f for f in files if files.count(f) > 1})}"
    )


@pytest.mark.parametrize("entry", toc_files())
def test_every_toc_entry_exists(entry):
    candidates = [ROOT / f"{entry}{ext}" for ext in (".md", ".ipynb")]
    assert any(p.exists() for p in candidates), (
        f"_toc.yml lists {entry!r} but neither {entry}.md nor {entry}.ipynb "
        "exists"
    )


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_is_in_toc(path):
    entry = path.relative_to(ROOT).with_suffix("").as_posix()
    assert entry in toc_files(), (
        f"{path.name} is not in _toc.yml: add '- file: {entry}' (or delete "
        "the notebook)"
    )


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_cell_ids_are_unique(path):
    # nbformat renames a repeated id on every read, so a merge that repeats
    # one would show up as a warning in every run and a changing id
    ids = [cell["id"] for cell in json.loads(path.read_text())["cells"]]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    assert not repeated, (
        f"{path.name}: cell ids {repeated} are used more than once; give "
        "each repeat a new 8-hex-digit id"
    )


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [
        i
        for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: code cells {dirty} are stored with outputs or "
        "execution counts; "
        "clear them (jupyter nbconvert --clear-output --inplace "
        f"{path.relative_to(ROOT)})"
    )


@pytest.mark.parametrize(
    "path",
    [p for p in notebooks() if p.stem not in NOT_CHAPTERS],
    ids=lambda p: p.name,
)
def test_chapter_imports_minigpt(path):
    nb = json.loads(path.read_text())
    code = "\n".join(
        "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"
    )
    assert "import minigpt" in code or "from minigpt" in code, (
        f"{path.name} never imports minigpt"
    )


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_opens_with_a_title(path):
    nb = json.loads(path.read_text())
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and "".join(
        first["source"]
    ).lstrip().startswith("# "), (
        f"{path.name}: the first cell must be a markdown cell starting with "
        "'# Title'"
    )


def code_of(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "\n".join(
        "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"
    )


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_figures_fit_the_text_column_in_the_book_style(path):
    """A figure wider than the column is shrunk in the HTML book, its labels
    with it; so is text set below the style's 9 pt (see minigpt.viz)."""
    from minigpt.viz import COLUMN_INCHES

    code = code_of(path)
    if "matplotlib.pyplot" not in code:
        return
    assert "use_book_style()" in code, (
        f"{path.name} draws figures: call minigpt.viz.use_book_style() "
        "right after importing matplotlib.pyplot"
    )
    widths = [
        float(w) for w in re.findall(r"figsize=\(\s*([0-9.]+)\s*,", code)
    ]
    too_wide = [w for w in widths if w > COLUMN_INCHES]
    assert not too_wide, (
        f"{path.name}: figures {too_wide} in wide are shrunk into the "
        f"{COLUMN_INCHES} in column; wrap their panels into rows instead"
    )
    small = [float(s) for s in re.findall(r"fontsize=([0-9.]+)", code)]
    assert all(s >= 9 for s in small), (
        f"{path.name}: font sizes {small} below 9 pt are hard to read; "
        "leave the size to the book style"
    )
    assert "tight_layout" not in code, (
        f"{path.name}: the book style uses constrained layout; "
        "tight_layout() would replace it"
    )
