"""The built book as a reader gets it: every page of the TOC, every image,
every link, math rendered, no error shown, nothing loaded from outside the
book.

These tests read ``_build/html`` and so run after the build:
``make test-book`` builds the book and then runs ``pytest -m built_book``;
``make test-unit`` leaves them out. Asked for without a built book, they fail
rather than skip.
"""

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from bs4 import BeautifulSoup
from test_notebooks import ROOT, toc_files

pytestmark = pytest.mark.built_book

HTML = ROOT / "_build" / "html"
# What a source-text leak looks like on a page: a MyST role or directive, or a
# glue key.
MYST_LEFTOVER = re.compile(
    r"\{(glue|glue:text|glue:figure|term|ref|numref|eq|cite|cite:p|cite:t|doc)\}`|^:::|^```\{"
)
# Math that MathJax did not get: TeX commands outside a math element.
RAW_TEX = re.compile(
    r"\\(frac|sum|mathrm|text|mathbf|sqrt|operatorname|begin)\b|\$\$"
)


def pages() -> list[Path]:
    """The HTML page of every TOC entry."""
    return [HTML / f"{entry}.html" for entry in toc_files()]


@cache
def soup(page: Path) -> BeautifulSoup:
    if not page.exists():
        pytest.fail(
            f"{page} is missing: build the book first (make test-book builds "
            "it and runs these checks)"
        )
    return BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")


def main_text(page: Path):
    """The article of a page, without the navigation and the theme's
    chrome."""
    return soup(page).find("article") or soup(page).body


def page_id(page: Path) -> str:
    return page.relative_to(HTML).as_posix()


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_every_toc_page_is_built(page):
    assert page.exists(), f"{page_id(page)} is in _toc.yml but was not built"
    assert main_text(page).get_text(strip=True), f"{page_id(page)} is empty"


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_images_exist_and_are_not_empty(page):
    for img in main_text(page).find_all("img"):
        src = img.get("src", "")
        assert src and not src.startswith(("http:", "https:", "//")), (
            f"{page_id(page)}: image from outside: {src!r}"
        )
        if src.startswith("data:"):
            assert len(src) > 200, (
                f"{page_id(page)}: an inline image with almost no data"
            )
            continue
        file = (page.parent / unquote(src)).resolve()
        assert file.is_file() and file.stat().st_size > 0, (
            f"{page_id(page)}: image {src} is missing or empty"
        )


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_no_output_shows_an_error_or_stderr(page):
    for cell in main_text(page).select("div.cell"):
        if "tag_raises-exception" in cell.get("class", []):
            continue
        bad = cell.select(
            "div.output.traceback, div.output.error, div.output.stderr"
        )
        text = "\n".join(
            node.get_text() for node in cell.select("div.cell_output")
        )
        assert not bad, (
            f"{page_id(page)}: an output shows an error or "
            f"stderr:\n{bad[0].get_text()[:500]}"
        )
        assert "Traceback (most recent call last)" not in text, (
            f"{page_id(page)}: a traceback is shown"
        )
        assert not re.search(r"\b\w*Warning: ", text), (
            f"{page_id(page)}: a warning is shown:\n{text[:500]}"
        )


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_no_myst_source_or_unrendered_tex_shows(page):
    article = main_text(page)
    # code may show any text
    for code in article.find_all(["pre", "code", "script", "style"]):
        code.decompose()
    for math in article.select(".math, .MathJax, mjx-container"):
        math.decompose()
    text = article.get_text("\n")
    leftover = MYST_LEFTOVER.search(text)
    assert not leftover, (
        f"{page_id(page)}: MyST source shows: "
        f"{text[max(0, leftover.start() - 60) : leftover.end() + 60]!r}"
    )
    tex = RAW_TEX.search(text)
    assert not tex, (
        f"{page_id(page)}: unrendered TeX: "
        f"{text[max(0, tex.start() - 60) : tex.end() + 60]!r}"
    )


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_internal_links_and_anchors_resolve(page):
    for link in main_text(page).find_all("a", href=True):
        href = link["href"]
        parts = urlparse(href)
        if parts.scheme or href.startswith(("mailto:", "//")):
            continue
        target = (
            (page.parent / unquote(parts.path)).resolve()
            if parts.path
            else page
        )
        assert target.exists(), (
            f"{page_id(page)}: link {href!r} points at a missing file"
        )
        if parts.fragment and target.suffix == ".html":
            ids = {node["id"] for node in soup(target).find_all(id=True)}
            assert unquote(parts.fragment) in ids, (
                f"{page_id(page)}: link {href!r}: no anchor #{parts.fragment}"
            )


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_no_script_is_loaded_from_outside_the_book(page):
    for script in soup(page).find_all("script", src=True):
        src = script["src"]
        assert not src.startswith(("http:", "https:", "//")), (
            f"{page_id(page)}: loads {src}: a reader offline gets a broken "
            "page (bundle it instead)"
        )


# The widest code line the column shows whole at 1280 px: the line length of
# `make format` (pyproject.toml's [tool.ruff]).
CODE_WIDTH = 78


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_code_lines_fit_the_column(page):
    # the code of a cell and every code block of the prose; a cell's output
    # scrolls in its own box instead
    blocks = [
        pre
        for pre in main_text(page).select("div.highlight pre")
        if not pre.find_parent("div", class_="cell_output")
    ]
    too_long = [
        line
        for block in blocks
        for line in block.get_text().splitlines()
        if len(line) > CODE_WIDTH
    ]
    assert not too_long, (
        f"{page_id(page)}: {len(too_long)} code lines are longer than "
        f"{CODE_WIDTH} characters and are cut at the column, e.g. "
        f"{too_long[0]!r}: run make format"
    )
