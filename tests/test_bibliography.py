"""The reference list's author-year labels (book/_ext), by hand."""

from author_year_bibliography import AuthorYearLabels
from pybtex.database import Entry, Person


def entry(year, *authors):
    return Entry(
        "article",
        fields={"year": str(year), "title": "A title"},
        persons={"author": [Person(a) for a in authors]},
    )


def test_labels_read_like_the_citations():
    entries = [
        entry(1997, "Hochreiter, Sepp", "Schmidhuber, Jürgen"),
        entry(2017, "Vaswani, Ashish", "Shazeer, Noam", "Parmar, Niki"),
        entry(2017, "Press, Ofir"),
        Entry("misc", fields={"year": "2024", "title": "llm.c repository"}),
    ]
    assert list(AuthorYearLabels().format_labels(entries)) == [
        "Hochreiter and Schmidhuber, 1997",
        "Vaswani et al., 2017",
        "Press, 2017",
        "llm.c, 2024",
    ]


def test_a_repeated_label_gets_a_letter_after_the_year():
    entries = [entry(2019, "Radford, Alec", "Wu, Jeff", "Child, Rewon")] * 2
    assert list(AuthorYearLabels().format_labels(entries)) == [
        "Radford et al., 2019a",
        "Radford et al., 2019b",
    ]
