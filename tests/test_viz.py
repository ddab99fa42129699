"""minigpt.viz: the book style fits figures to the text column with
readable labels; the heatmap draws the given weights on a fixed 0..1 scale;
smooth is a moving average."""

import base64

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from minigpt.viz import COLUMN_INCHES, show_weights, smooth, use_book_style


@pytest.fixture
def book_style():
    """The book style for one test, matplotlib's defaults restored after."""
    with matplotlib.rc_context():
        use_book_style()
        yield


def test_book_style_sets_column_width_readable_fonts_and_layout(book_style):
    rc = matplotlib.rcParams
    assert rc["figure.dpi"] == 100
    assert list(rc["figure.figsize"]) == [COLUMN_INCHES, 4.0]
    assert rc["figure.constrained_layout.use"]
    assert (
        rc["font.size"] == rc["axes.labelsize"] == rc["axes.titlesize"] == 10
    )
    assert rc["xtick.labelsize"] == rc["ytick.labelsize"] == 9
    assert rc["legend.fontsize"] == 9
    assert rc["savefig.dpi"] == 200
    # the smallest text, in pixels at the figure's dpi: 9 pt = 12.5 px
    assert 9 / 72 * rc["figure.dpi"] >= 12


def test_a_default_figure_fits_the_text_column_at_natural_size(book_style):
    fig = plt.figure()
    width_px = fig.get_size_inches()[0] * fig.dpi
    plt.close(fig)
    # the column is about 690 px wide at a 1280 px window: 680 px is shown
    # 1:1, neither shrunk nor stretched much
    assert 650 <= width_px <= 690


def test_book_style_can_be_called_twice(book_style):
    first = dict(matplotlib.rcParams)
    use_book_style()
    assert dict(matplotlib.rcParams) == first
    fig, ax = plt.subplots()
    ax.set_title("still draws")
    fig.canvas.draw()
    plt.close(fig)


def test_show_weights_draws_the_weights_with_token_labels_on_a_fixed_scale():
    weights = torch.softmax(
        torch.randn(3, 3, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    fig, ax = plt.subplots()
    show_weights(ax, weights.requires_grad_(), ["a", "b", "c"], "a head")
    image = ax.images[0]
    np.testing.assert_array_equal(image.get_array(), weights.detach().numpy())
    assert image.get_clim() == (0, 1)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert ax.get_title() == "a head"
    with pytest.raises(
        ValueError,
        match=r"weights must be \(T, T\) with T = len\(labels\) = 2, "
        r"got shape \(3, 3\)",
    ):
        show_weights(ax, weights, ["a", "b"], "wrong")
    plt.close(fig)


def test_smooth_is_the_moving_average_of_each_window():
    values = [1.0, 2.0, 4.0, 8.0, 16.0]
    # by hand
    np.testing.assert_allclose(smooth(values, 2), [1.5, 3.0, 6.0, 12.0])
    np.testing.assert_allclose(smooth(values, 5), [6.2])
    np.testing.assert_array_equal(smooth(values, 1), values)
    noisy = np.random.default_rng(0).normal(size=200)
    np.testing.assert_allclose(
        smooth(noisy),
        np.convolve(noisy, np.ones(10) / 10, mode="valid"),
        atol=1e-12,
    )


@pytest.mark.parametrize(
    "values, width, match",
    [
        (
            [1.0, 2.0],
            3,
            r"width must be an int in 1..2 \(the number of values\), got 3",
        ),
        ([1.0, 2.0], 0, "width must be an int in 1..2"),
        ([[1.0, 2.0]], 1, "1-D list of numbers"),
    ],
)
def test_smooth_refuses_a_window_it_cannot_fill(values, width, match):
    with pytest.raises(ValueError, match=match):
        smooth(values, width)


def test_in_jupyter_figures_are_sent_as_pngs_of_double_resolution(
    book_style,
):
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    shell = interactiveshell.InteractiveShell.instance()
    try:
        use_book_style()
        fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 2))
        ax.plot([0, 1], [0, 1])
        data, metadata = shell.display_formatter.format(fig)
        plt.close(fig)
    finally:
        interactiveshell.InteractiveShell.clear_instance()
    # drawn at 200 dpi, shown 680 px wide: bbox "tight" may trim a little
    shown = metadata["image/png"]["width"]
    assert 600 <= shown <= 690
    png = base64.b64decode(data["image/png"])
    width_px = int.from_bytes(png[16:20], "big")  # the PNG header's width
    assert width_px // 2 == shown
