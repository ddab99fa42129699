"""minigpt.viz: the heatmap draws the given weights on a fixed 0..1 scale;
smooth is a moving average."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from minigpt.viz import show_weights, smooth


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
