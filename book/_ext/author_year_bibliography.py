"""The reference list labelled the way the chapters cite: "Vaswani et al.,
2017" instead of pybtex's "[VSP+17]".

The chapters cite in author-year form (``bibtex_reference_style:
author_year``), but the bibliography's own labels come from the formatting
style, and pybtex ships only numbered and alpha labels. This Sphinx extension
registers a label style and a formatting style that uses it; ``_config.yml``
selects it with ``bibtex_default_style: author_year``.
"""

from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

NAME = "author_year"


def author_year(entry) -> str:
    """'Press and Wolf, 2017', 'Vaswani et al., 2017', or the title's first
    word when an entry has no author or editor."""
    persons = entry.persons.get("author") or entry.persons.get("editor")
    year = entry.fields.get("year", "n.d.")
    if not persons:
        return f"{entry.fields.get('title', '?').split()[0]}, {year}"
    last = [" ".join(p.last_names) for p in persons]
    if len(last) == 1:
        names = last[0]
    elif len(last) == 2:
        names = f"{last[0]} and {last[1]}"
    else:
        names = f"{last[0]} et al."
    return f"{names}, {year}".replace("{", "").replace("}", "")


class AuthorYearLabels(BaseLabelStyle):
    """Author-year labels; a repeated one gets a, b, ... after the year."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year(entry) for entry in entries]
        repeated = Counter(labels)
        seen = Counter()
        for label in labels:
            if repeated[label] > 1:
                seen[label] += 1
                label += "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            yield label


class AuthorYearStyle(UnsrtStyle):
    """pybtex's unsrt entries, sorted by author and year, labelled by
    them."""

    default_label_style = NAME
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.labels", NAME, AuthorYearLabels)
    register_plugin("pybtex.style.formatting", NAME, AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
