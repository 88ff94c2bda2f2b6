"""Figures: returned as matplotlib Figures, labelled with units, savable without a display."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from deepcontrast.plot import plot_contrast_profile, plot_iterations, plot_tradeoff


def stack(rng=0):
    return 1 + np.random.default_rng(rng).random((5, 24, 24))


def test_contrast_profile_depth_axis_and_curves(tmp_path):
    x = stack()
    fig = plot_contrast_profile({"raw": x, "iteration 1": x**2, "CLAHE": x**3}, "ZYX", voxel_size_z=2.0, depth=10)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert "um" in ax.get_xlabel() and "contrast" in ax.get_ylabel().lower()
    assert len(ax.get_lines()) == 3
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [10, 12, 14, 16, 18])
    fig.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_contrast_profile_surface_last_and_bad_depths():
    fig = plot_contrast_profile({"raw": stack()}, "ZYX", surface="last")
    assert "slice" in fig.axes[0].get_xlabel()
    with pytest.raises(ValueError, match="depths"):
        plot_contrast_profile({"raw": stack()}, "ZYX", depths=[0, 1])


def test_contrast_profile_empty():
    with pytest.raises(ValueError, match="empty"):
        plot_contrast_profile({}, "ZYX")


def test_iterations_same_display_range_and_zoom(tmp_path):
    x = stack()
    fig = plot_iterations(x, [2 * x, 3 * x], "ZYX", titles=["a", "b", "c"], zoom=(4, 12, 4, 12), z=2)
    panels = [ax for ax in fig.axes if ax.get_images() and ax.get_title()]
    assert len(panels) == 3
    clims = {ax.get_images()[0].get_clim() for ax in panels}
    assert len(clims) == 1  # one display range for all panels
    assert [ax.get_title() for ax in panels] == ["raw\na", "iteration 1\nb", "iteration 2\nc"]
    assert all(len(ax.child_axes) == 1 for ax in panels)  # the zoom insets
    fig.savefig(tmp_path / "i.png")


def test_iterations_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        plot_iterations(stack(), [stack()[:, :10]], "ZYX")


def test_iterations_label_count():
    with pytest.raises(ValueError, match="entries"):
        plot_iterations(stack(), [stack()], "ZYX", labels=["only one"])


def test_tradeoff_marks_suggestion():
    table = [dict(iteration=0, contrast_gain=1.0, detail_retention=1.0),
             dict(iteration=1, contrast_gain=1.4, detail_retention=0.8),
             dict(iteration=2, contrast_gain=1.6, detail_retention=None)]
    fig = plot_tradeoff(table, suggested=1, baselines={"CLAHE": dict(contrast_gain=1.1, detail_retention=0.7)})
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "suggested: 1 iteration(s)" in labels and "CLAHE" in labels
    star = ax.get_lines()[labels.index("suggested: 1 iteration(s)")]
    assert star.get_xdata()[0] == 0.8 and star.get_ydata()[0] == 1.4
    assert "detail" in ax.get_xlabel() and "contrast" in ax.get_ylabel()


def test_iterations_titles_show_level_and_flag_negative_light():
    raw = stack()
    # below the background of 0 by 2 (at least), about 7 times the raw's noise (std ~0.3): flagged; the raw never
    dark = raw - 3.0
    fig = plot_iterations(raw, [raw * 2, dark], "ZYX", region=(slice(3, 5),))
    titles = [ax.get_title() for ax in fig.axes[:3:]]
    sub = raw[3:5]
    assert f"mean {sub.mean():.3g}" in titles[0] and f"p99.5 {np.percentile(sub, 99.5):.3g}" in titles[0]
    assert f"mean {2 * sub.mean():.3g}" in titles[1]
    assert "below bg!" in titles[2] and "below bg!" not in titles[0] + titles[1]
