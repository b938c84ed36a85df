"""Figures: each helper draws what it claims (checked on the returned artists)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sktilt import LatentSampler  # noqa: E402
from sktilt.assessment import assess_criteria  # noqa: E402
from sktilt.tilt import CurveMaximum, LinearCriterion  # noqa: E402
from sktilt.plotting import (  # noqa: E402
    plot_avo_fit,
    plot_avo_trajectory,
    plot_criteria_histograms,
    plot_curves,
    plot_image_grid,
    plot_parameters,
    plot_pareto_front,
)


def test_pareto_and_curves():
    ax = plot_pareto_front([0.0, 1.0, 2.0], [0.0, 1.4, 2.0],
                           reference={"kl": np.array([0, 1.0]), "criterion_mean":
                                      np.array([0, 1.41]), "ess": np.array([1e4, 1e4])},
                           labels=["a", "b", "c"])
    assert len(ax.lines) == 2 and len(ax.texts) == 3
    rng = np.random.default_rng(0)
    ax = plot_curves(rng.normal(size=(50, 168)), rng.normal(1, 1, size=(50, 168)))
    # 2 median lines + 5 examples each; band centre of the tuned model is its median
    assert len(ax.lines) == 12 and len(ax.collections) == 2
    assert abs(np.mean(ax.lines[6].get_ydata()) - 1.0) < 0.1


def test_curve_bands_of_non_negative_loads_stay_above_zero():
    # skewed loads: mean - std is below 0 at every hour, the 10 % quantile is not
    loads = np.random.default_rng(0).lognormal(0.0, 1.5, size=(500, 168))
    assert (loads.mean(0) - loads.std(0) < 0).all()
    ax = plot_curves(loads, 2 * loads)
    for band in ax.collections:
        assert band.get_paths()[0].vertices[:, 1].min() > 0
    assert "median, 10-90 %" in ax.get_legend().get_texts()[0].get_text()


def test_image_grid_title_and_room_for_row_labels():
    fig = plot_image_grid([np.zeros((4, 64))] * 2, row_labels=["base VAE", "KL 3.0 (β=9.99)"],
                          title="tilted toward 4")
    assert fig._suptitle.get_text() == "tilted toward 4"
    fig.tight_layout()
    fig.canvas.draw()
    box = fig.axes[4].yaxis.label.get_window_extent()
    assert box.x0 >= 0  # the longest row label is inside the figure


def test_image_grid_and_histograms():
    fig = plot_image_grid([np.zeros((4, 64)), np.ones((3, 64))], row_labels=["0", "1"])
    assert len(fig.axes) == 8 and len(fig.axes[0].images) == 1 and not fig.axes[7].images
    res = assess_criteria(LatentSampler(torch.nn.Identity(), latent_dim=2),
                          {"lin": LinearCriterion([1.0, 0.0]), "max": CurveMaximum()},
                          n_samples=500, random_state=0)
    ax = plot_criteria_histograms(res)
    assert len(ax.get_legend().get_texts()) == 2


def test_avo_figures():
    history = [{"theta": np.array([1.0 + i, 2.0])} for i in range(5)]
    ax = plot_avo_trajectory(history, names=["a", "b"], truth=[3.0, 2.0])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [1, 2, 3, 4, 5])
    ax = plot_avo_trajectory(history, transform=lambda t: t.sum())
    assert len(ax.lines) == 1
    ax = plot_avo_fit(np.zeros((10, 1)), np.ones((10, 1)))
    assert len(ax.patches) > 0


def test_parameter_corner_plot():
    samples = np.random.default_rng(0).normal(size=(300, 3))
    axes = plot_parameters(samples, names=["a", "b", "c"], truth=[0, 0, 0],
                           reference=[0.1, 0.1, 0.1])
    assert axes.shape == (3, 3)
    assert not axes[0, 2].axison and axes[2, 0].get_xlabel() == "a"
    assert len(axes[1, 1].patches) == 40  # the histogram's bars
    offsets = axes[2, 0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets, samples[:, [0, 2]])
    assert {line.get_linestyle() for line in axes[1, 0].lines} == {"--", ":"}
