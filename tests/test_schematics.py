"""The book's schematic figures: hand-written SVG files in book/figures/.

Each one is self-contained (parses, has a viewBox, loads nothing from
outside, text legible at the width of the text column), is placed by exactly
one figure directive, and every {numref} to a figure has its figure.
"""

import json
import re
import xml.etree.ElementTree as ET

import pytest
from test_notebooks import BOOK, notebooks

FIGURES = BOOK / "figures"
SVGS = sorted(FIGURES.glob("*.svg"))
SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
# At 1280 px the book's text column is about 690 px wide, and the figures are
# shown at 100% of it: a viewBox wider than that shrinks the text.
COLUMN_PX = 690
MIN_FONT_PX = 13

# ```{figure} figures/x.svg  or  :::{figure} figures/x.svg
FIGURE = re.compile(r"^\s*(?:`{3,}|:{3,})\{figure\}\s+(\S+)", re.M)
NAME = re.compile(r"^\s*:name:\s*(\S+)", re.M)
# {numref}`fig-x`  or  {numref}`Figure %s <fig-x>`
NUMREF = re.compile(r"\{numref\}`(?:[^`<]*<)?([^`>]+)>?`")


def markdown_sources() -> dict[str, str]:
    """The markdown of every page: .md files and notebooks' markdown
    cells."""
    sources = {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(BOOK.rglob("*.md"))
        if "_build" not in p.parts
    }
    for path in notebooks():
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        sources[path.name] = "\n\n".join(
            "".join(c["source"])
            for c in cells
            if c["cell_type"] == "markdown"
        )
    return sources


def figure_directives() -> list[tuple[str, str, str | None]]:
    """(page, image path relative to book/, :name: or None) per figure."""
    found = []
    for page, text in markdown_sources().items():
        for match in FIGURE.finditer(text):
            # the directive's options follow it up to the first blank line
            options = text[match.end() :].split("\n\n", 1)[0]
            name = NAME.search(options)
            found.append(
                (page, match.group(1), name.group(1) if name else None)
            )
    return found


def test_there_are_schematics():
    assert SVGS, f"no SVG files in {FIGURES}"


@pytest.mark.parametrize("svg", SVGS, ids=lambda p: p.name)
def test_svg_parses_and_has_a_viewbox(svg):
    root = ET.parse(svg).getroot()
    assert root.tag == f"{SVG_NS}svg", (
        f"{svg.name}: the root element is {root.tag}, not an SVG <svg>"
    )
    box = root.get("viewBox", "").replace(",", " ").split()
    assert len(box) == 4 and all(float(v) >= 0 for v in box[2:]), (
        f"{svg.name}: needs a viewBox='0 0 W H' so it scales with the column"
    )
    width = float(box[2])
    assert width <= COLUMN_PX + 10, (
        f"{svg.name}: viewBox width {width:g} is wider than the text column "
        f"({COLUMN_PX} px), so its text would shrink; draw it about 680 wide"
    )


@pytest.mark.parametrize("svg", SVGS, ids=lambda p: p.name)
def test_svg_loads_nothing_from_outside(svg):
    root = ET.parse(svg).getroot()
    for element in root.iter():
        tag = element.tag.removeprefix(SVG_NS)
        assert tag not in {"script", "foreignObject"}, (
            f"{svg.name}: <{tag}> is not allowed in a figure"
        )
        for key in ("href", XLINK_HREF):
            ref = element.get(key)
            assert ref is None or ref.startswith("#"), (
                f"{svg.name}: <{tag}> refers to {ref!r}; only references "
                "inside the file (#id) are allowed"
            )
        texts = list(element.attrib.values()) + [element.text or ""]
        for text in texts:
            for url in re.findall(r"url\(\s*['\"]?([^)'\"]*)", text):
                assert url.startswith("#"), (
                    f"{svg.name}: url({url}) points outside the file"
                )
            assert not re.search(r"@import|https?:|//[\w.-]+\.\w", text), (
                f"{svg.name}: <{tag}> mentions an outside resource: "
                f"{text.strip()[:80]!r}"
            )


@pytest.mark.parametrize("svg", SVGS, ids=lambda p: p.name)
def test_svg_text_is_large_enough(svg):
    source = svg.read_text(encoding="utf-8")
    sizes = [
        float(s)
        for s in re.findall(r"font-size(?:=\"|\s*:\s*)([\d.]+)", source)
    ]
    small = [s for s in sizes if s < MIN_FONT_PX]
    assert not small, (
        f"{svg.name}: font sizes {sorted(set(small))} are below "
        f"{MIN_FONT_PX} px, too small to read in the text column"
    )


@pytest.mark.parametrize("svg", SVGS, ids=lambda p: p.name)
def test_svg_is_placed_by_exactly_one_figure(svg):
    target = svg.relative_to(BOOK).as_posix()
    pages = [page for page, path, _ in figure_directives() if path == target]
    assert len(pages) == 1, (
        f"{target} is used by {len(pages)} figure directives {pages}; "
        "place each schematic once (```{figure} " + target + " ... ```)"
    )


def test_every_figure_directive_has_its_file_and_a_unique_name():
    names = []
    for page, path, name in figure_directives():
        assert (BOOK / path).is_file(), f"{page}: figure {path} is missing"
        assert name, (
            f"{page}: figure {path} has no :name: to refer to it with "
            "{numref}"
        )
        names.append(name)
    doubles = sorted({n for n in names if names.count(n) > 1})
    assert not doubles, f"figure names used twice: {doubles}"


def test_every_numref_to_a_figure_has_its_figure():
    names = {name for _, _, name in figure_directives()}
    for page, text in markdown_sources().items():
        for target in NUMREF.findall(text):
            if target.startswith("fig-"):
                assert target in names, (
                    f"{page}: {{numref}}`{target}` has no figure with "
                    f":name: {target}"
                )


def test_every_figure_is_referred_to_from_the_prose():
    refs = {
        target
        for text in markdown_sources().values()
        for target in NUMREF.findall(text)
    }
    for page, path, name in figure_directives():
        assert name in refs, (
            f"{page}: figure {name} ({path}) is never referred to with "
            "{numref}; say in the text what to look at"
        )


# bpe-merges.svg replays the merges that the language-models chapter's
# from-scratch tokenizer learns; this is the walk it draws: (merge number or
# None for the start, the tokens after it).
BPE_WALK = [
    (None, [" ", "C", "i", "t", "i", "z", "e", "n"]),
    (14, [" ", "C", "it", "i", "z", "e", "n"]),
    (22, [" ", "C", "it", "i", "z", "en"]),
    (84, [" C", "it", "i", "z", "en"]),
    (109, [" C", "iti", "z", "en"]),
    (135, [" C", "iti", "zen"]),
    (141, [" C", "itizen"]),
    (198, [" Citizen"]),
]


def test_bpe_figure_shows_the_merges_the_tokenizer_learns():
    import regex

    from minigpt.data import load_text
    from minigpt.tokenizer import BPETokenizer, merge

    # as in book/language_models.ipynb
    text = load_text("tinyshakespeare")[:100_000]
    tok = BPETokenizer.train(text, vocab_size=256 + 256)
    ids = [tok.byte_to_id[b] for b in " Citizen".encode()]
    walk = [(None, [tok.vocab[i].decode() for i in ids])]
    while len(ids) >= 2:  # BPETokenizer._encode_chunk, one merge per row
        pair = min(
            zip(ids, ids[1:]),
            key=lambda p: tok.ranks.get(p, len(tok.ranks)),
        )
        if pair not in tok.merges:
            break
        ids = merge(ids, pair, tok.merges[pair])
        walk.append(
            (tok.ranks[pair] + 1, [tok.vocab[i].decode() for i in ids])
        )
    assert walk == BPE_WALK, "the BPE merges changed: redraw bpe-merges.svg"
    assert [t.decode() for t in tok.tokens(" citizens")] == [
        " c",
        "itizen",
        "s",
    ]
    words = regex.findall(r" ?\p{L}+", text)
    assert (words.count(" Citizen"), words.count(" citizens")) == (64, 5)

    drawn = " ".join(
        "".join(t.itertext())
        for t in ET.parse(FIGURES / "bpe-merges.svg").iter(f"{SVG_NS}text")
    )
    for (_, before), (rank, after) in zip(BPE_WALK, BPE_WALK[1:]):
        a, b = next(
            (x, y)
            for x, y in zip(before, before[1:])
            if x + y in after and x + y not in before
        )
        label = f"merge {rank}: {a} + {b} → {a + b}".replace(" ", "␣")
        assert label in drawn.replace(" ", "␣"), f"{label!r} is not drawn"
    assert "occurs 64 times" in drawn and "5 times" in drawn
