"""Plot helpers the chapters share: attention heatmaps, smoothed curves.

:func:`show_weights` draws on a matplotlib ``Axes`` the caller made (so this
module does not import matplotlib); :func:`smooth` is plain arithmetic on a
list of numbers.
"""

import numpy as np
import torch

__all__ = ["show_weights", "smooth"]


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
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
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
