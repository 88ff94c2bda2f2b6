"""Matplotlib canvases for Qt widgets: the iteration trade-off plot, the consistency curves, and any Figure."""
import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

__all__ = ["TradeoffPlot", "ConsistencyPlot", "PLOTTED", "figure_canvas"]

#: columns of the trade-off table that the plot shows, with their legend labels
PLOTTED = {"contrast_gain": "contrast gain (RMS, vs raw)", "detail_retention": "detail retention"}


def figure_canvas(fig):
    """A Qt widget showing the matplotlib Figure ``fig``."""
    canvas = FigureCanvasQTAgg(fig)
    canvas.setMinimumHeight(220)
    return canvas


class TradeoffPlot:
    """Contrast gain and detail retention per iteration; the suggested iteration marked.

    Clicking a point calls ``on_select(iteration)``. ``lines[column]`` holds the plotted
    values (``get_xdata()`` iterations, ``get_ydata()`` values, NaN where the table has None).
    """

    def __init__(self, on_select=None):
        self.figure = Figure(figsize=(4, 2.6), layout="constrained")
        self.axes = self.figure.subplots()
        self.canvas = figure_canvas(self.figure)
        self.lines = {}
        self.on_select = on_select
        self._marker = None
        self.canvas.mpl_connect("pick_event", self._picked)

    def plot(self, table, suggested):
        """Draw ``table`` (rows of :func:`deepcontrast.metrics.iteration_tradeoff`), mark ``suggested``."""
        ax = self.axes
        ax.clear()
        k = np.array([row["iteration"] for row in table])
        for i, (col, label) in enumerate(PLOTTED.items()):
            y = np.array([np.nan if row.get(col) is None else row[col] for row in table], float)
            (self.lines[col],) = ax.plot(k, y, "o-", color=f"C{i}", label=label, picker=6)
        ax.axvline(suggested, color="0.4", ls="--", lw=1, label=f"suggested: {suggested}")
        self._marker = ax.axvspan(-0.2, 0.2, color="C2", alpha=0.25, label="shown")
        ax.set(xlabel="iteration (0 = raw)", xticks=k)
        ax.legend(fontsize=7, loc="best")
        self.canvas.draw_idle()

    def mark(self, iteration):
        """Highlight the iteration that is shown in the viewer."""
        if self._marker is not None:
            self._marker.set_x(iteration - 0.2)
            self.canvas.draw_idle()

    def _picked(self, event):
        ind = getattr(event, "ind", None)
        if ind is not None and len(ind) and self.on_select is not None:
            self.on_select(int(event.artist.get_xdata()[ind[0]]))


class ConsistencyPlot:
    """Restored depth and chi2 against plane depth, one curve per iteration; the shown iteration bold.

    From a :class:`~deepcontrast.consistency.ConsistencyReport` of the iterates.
    ``lines[('restored_depth', k)]`` and ``lines[('chi2', k)]`` hold the curves of iteration
    ``k`` (``get_xdata()`` plane depths in increasing order, ``get_ydata()`` the values).
    """

    def __init__(self):
        self.figure = Figure(figsize=(4, 3.4), layout="constrained")
        self.axes = self.figure.subplots(2, 1, sharex=True)
        self.canvas = figure_canvas(self.figure)
        self.lines = {}

    def plot(self, report, note=""):
        """Draw ``report`` (None: clear the plot and show ``note``)."""
        for ax in self.axes:
            ax.clear()
        self.lines = {}
        if report is None:
            self.axes[0].text(0.5, 0.5, note or "no consistency check", ha="center", va="center", wrap=True,
                              fontsize=7, transform=self.axes[0].transAxes)
            self.canvas.draw_idle()
            return
        z = report.plane_depth
        order = np.argsort(z, kind="stable")
        style = "o-" if len(z) > 1 else "o"
        for k in range(1, report.n_iter + 1):
            for ax, name in zip(self.axes, ("restored_depth", "chi2")):
                (self.lines[(name, k)],) = ax.plot(z[order], getattr(report, name)[k - 1, order], style, ms=2,
                                                   color=f"C{k - 1}", label=f"iteration {k}")
        self.axes[0].plot(z[order], z[order], ":", color="0.5", label="to the surface")
        self.axes[1].axhline(1.0, color="0.5", ls=":")
        self.axes[0].set(ylabel="restored depth (um)")
        self.axes[1].set(xlabel="plane depth (um)", ylabel="chi2 (noise units)")
        self.axes[0].legend(fontsize=6, loc="best")
        self.canvas.draw_idle()

    def mark(self, iteration):
        """Draw the curves of ``iteration`` bold (0, the raw: none)."""
        for (_, k), line in self.lines.items():
            line.set_linewidth(2.5 if k == iteration else 0.8)
            line.set_alpha(1.0 if k == iteration else 0.5)
        self.canvas.draw_idle()
