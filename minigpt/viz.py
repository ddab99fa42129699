"""The book's plot helpers: figure style, weight heatmaps, smoothed curves.

:func:`use_book_style` sets matplotlib's defaults once per notebook so that
every figure fits the book's text column; :func:`show_weights` draws on a
matplotlib ``Axes`` the caller made; :func:`smooth` is plain arithmetic on a
list of numbers. This module imports matplotlib only inside
:func:`use_book_style`, so the package does not need it.
"""

import numpy as np
import torch

__all__ = [
    "COLUMN_INCHES",
    "BOOK_STYLE",
    "use_book_style",
    "show_weights",
    "smooth",
]

#: The width of the book's text column in inches at 100 dpi: about 690 px
#: at a 1280 px wide window, so a figure 6.8 in (680 px) wide is shown at
#: its natural size, never shrunk.
COLUMN_INCHES = 6.8

#: The matplotlib settings :func:`use_book_style` applies. 1 pt = 1/72 in,
#: so at 100 dpi 1 pt = 100/72 = 1.39 px: 10 pt text is 13.9 px tall, 9 pt
#: tick labels and legends 12.5 px.
BOOK_STYLE = {
    "figure.figsize": (COLUMN_INCHES, 4.0),
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 11,
    "savefig.dpi": 200,
    "savefig.format": "png",
    "savefig.bbox": "tight",
    # Jupyter crops figures to what is drawn plus this margin: 5 px, so a
    # 680 px figure stays within the column
    "savefig.pad_inches": 0.05,
}


def use_book_style() -> None:
    """Set matplotlib's defaults so that every figure of the book is readable
    in its text column; call it once, right after ``import
    matplotlib.pyplot as plt``.

    The arithmetic: at a window 1280 px wide the book's text column is about
    690 px. A default figure is ``COLUMN_INCHES`` = 6.8 in wide at
    ``figure.dpi`` = 100, so 680 px: the page shows it at its natural size,
    1:1, instead of shrinking it (a 12 in figure would be shrunk to 57 %, its
    9 pt labels to 7 px). A point is 1/72 in, so at 100 dpi it is 1.39 px:
    text, titles and axis labels at 10 pt are 13.9 px tall, tick labels and
    legends at 9 pt 12.5 px, above the 9 px that stay legible. A figure
    with more panels than fit side by side at these sizes wraps them into
    rows rather than growing wider. Constrained layout is on, so titles and
    labels never overlap (``plt.tight_layout()`` is not needed).

    Sharpness: in Jupyter the figures are sent as retina PNGs, drawn at 200
    dpi with a width of 680 px in the page, so they stay sharp on high-density
    screens and when zoomed; ``savefig`` writes PNGs at 200 dpi too.

    Why after ``import matplotlib.pyplot``: when pyplot is first imported in
    Jupyter, the inline backend applies its own settings (older versions set
    ``figure.dpi`` to 72) and selects its PNG format, which would undo what
    this function set before. Calling it twice is harmless.
    """
    import matplotlib

    matplotlib.rcParams.update(BOOK_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: no inline figures to configure
        return
    if get_ipython() is None:
        return
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    set_matplotlib_formats("retina")


def show_weights(
    ax, weights, labels: list[str], title: str, cmap: str = "Blues"
) -> None:
    """Draw attention weights (T, T) on ``ax`` as a 0..1 heatmap.

    Row i is query position i, column j the key position j it attends to;
    ``labels`` are the T tokens, written along both axes. A fixed scale lets
    heatmaps side by side be compared.
    """
    weights = torch.as_tensor(weights).detach().cpu().numpy()
    if weights.shape != (len(labels), len(labels)):
        raise ValueError(
            f"weights must be (T, T) with T = len(labels) = {len(labels)}, "
            "got shape "
            f"{tuple(weights.shape)}; pass one head's map, e.g. "
            "maps[layer][0, head]"
        )
    ax.imshow(weights, cmap=cmap, vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("key position j (attended to)")
    ax.set_ylabel("query position i")
    ax.set_title(title)


def smooth(values, width: int = 10) -> np.ndarray:
    """Moving average over ``width`` values: the trend of a noisy curve.

    N values -> N - width + 1 means; entry i is the mean of
    ``values[i : i + width]``, so it belongs at step i + width - 1 of the
    original curve.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(
            f"smooth needs a 1-D list of numbers, got shape {values.shape}"
        )
    if (
        not isinstance(width, int)
        or isinstance(width, bool)
        or not 1 <= width <= len(values)
    ):
        raise ValueError(
            f"width must be an int in 1..{len(values)} (the number of "
            f"values), got {width!r}"
        )
    # sums[k] = values[0] + ... + values[k - 1]
    sums = np.concatenate([[0.0], np.cumsum(values)])
    return (sums[width:] - sums[:-width]) / width
