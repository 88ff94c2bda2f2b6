"""The consistency report: restored depth and chi2 per iterate and plane, residual maps, table, figure."""
import json
from dataclasses import dataclass, field

import numpy as np

from ..internals.axes import axes_last
from ..internals.files import to_jsonable

from .choice import NO_RESTORATION, no_restoration

__all__ = ["ConsistencyReport"]


@dataclass
class ConsistencyReport:
    """What :func:`check_consistency` found: per iterate and plane, the depth restored and the residual.

    Attributes
    ----------
    restored_depth : numpy.ndarray
        ``(n_iter, Z)`` micrometres: how much shallower each plane of each iterate looks, i.e.
        how far the forward model must push it down to give the raw plane (``Z = 1`` for 2D).
        A plane restored to the tissue surface has ``restored_depth`` equal to its own depth;
        more than that means restored past the surface.
    chi2 : numpy.ndarray
        ``(n_iter, Z)``: mean squared residual at ``restored_depth``, in units of the raw's
        noise variance (after a gain and offset fit per plane). About 1: the iterate explains
        the raw within its noise; well above 1: it holds structure or light the raw cannot
        explain (see :meth:`residual_map`); well below 1: it reproduces the raw's own noise.
    gain, offset : numpy.ndarray
        ``(n_iter, Z)``: the fitted intensity scale and offset (raw ~ gain * pushed + offset).
    plane_depth : numpy.ndarray
        ``(Z,)`` depth (um) of each plane (median of the depth map when one was given).
    grid : numpy.ndarray
        Depths (um) at which the forward model ran.
    noise : dict
        ``photons``, ``read_noise``, ``background`` and their ``source``.
    degradation : DeepTissueDegradation
        The forward model used (its noise switched off for the push).
    notes : list of str
    inputs, cost : dict
        Axes, shape, voxel size, surface, depth; seconds and forward passes.
    measurable : bool
        False when the forward model adds no depth-dependent blur or haze over the depths
        tried (e.g. a calibration that found none): then every depth explains the raw equally
        well, ``restored_depth`` means nothing, and :attr:`no_restoration` is True.

    Examples
    --------
    >>> report = check_consistency(raw, iterates, 'ZYX', deg, voxel_size=(2, .5, .5))  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    >>> r1 = report.residual_map(1)  # doctest: +SKIP
    """

    restored_depth: np.ndarray
    chi2: np.ndarray
    gain: np.ndarray
    offset: np.ndarray
    plane_depth: np.ndarray
    grid: np.ndarray
    noise: dict
    degradation: object
    notes: list = field(default_factory=list)
    inputs: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)
    measurable: bool = True
    _state: dict = field(default_factory=dict, repr=False)

    @property
    def n_iter(self):
        """Number of iterates checked."""
        return len(self.chi2)

    @property
    def no_restoration(self):
        """True when no restoration happened: every iterate's median restored depth is about 0 (< 1 um), or
        restored depth is not measurable with this forward model (:attr:`measurable`)."""
        return (not self.measurable) or no_restoration(self.restored_depth)

    def residual_map(self, k):
        """Signed residual of iterate ``k`` (1-based) in noise units, shaped like the raw.

        ``(raw - gain * pushed - offset) / sqrt(noise variance)`` with the iterate pushed down by
        each plane's ``restored_depth``. Negative where the iterate holds light that the raw
        cannot explain (e.g. invented bright structure), positive where it lost light the raw
        has; about standard normal where it is consistent. Costs one forward pass (with a
        per-voxel depth map: one per grid depth the planes fall between).

        Parameters
        ----------
        k : int
            Iteration, 1 to ``n_iter``.

        Returns
        -------
        numpy.ndarray
            float32, the raw's shape and axes.

        Raises
        ------
        ValueError
            If ``k`` is not an iteration of the report (or the report was rebuilt from a dict).
        """
        if not self._state:
            raise ValueError("this report holds no images (rebuilt from a dict?); run check_consistency again")
        if not (isinstance(k, (int, np.integer)) and 1 <= k <= self.n_iter):
            raise ValueError(f"k must be an iteration from 1 to {self.n_iter} (1-based), got {k!r}")
        st = self._state
        raw, var, search = st["raw"], st["var"], st["search"]
        pred = search.pushed(st["iterates"][k - 1], self.restored_depth[k - 1], st["where"][k - 1])
        pred *= self.gain[k - 1].astype(np.float32)[:, None, None]
        pred += self.offset[k - 1].astype(np.float32)[:, None, None]
        res = (raw - pred) / np.sqrt(var)
        axes = self.inputs["axes"]
        if "Z" not in axes:
            return axes_last(res[0], "YX", axes)[0]
        return np.ascontiguousarray(axes_last(res, "ZYX", axes)[0])

    def regions(self):
        """``{name: plane indices}``: the shallow, middle and deep thirds by depth (``'all'`` under 3 planes)."""
        n = len(self.plane_depth)
        if n < 3:
            return {"all": np.arange(n)}
        order = np.argsort(self.plane_depth, kind="stable")
        return dict(zip(("shallow", "middle", "deep"), np.array_split(order, 3)))

    def to_table(self):
        """Rows per iteration and region: median restored depth and median chi2.

        Returns
        -------
        list of dict
            Keys ``iteration``, ``region``, ``n_planes``, ``depth_um`` ([shallowest, deepest]),
            ``restored_depth`` (um) and ``chi2`` (medians over the region's planes).
        """
        rows = []
        for k in range(self.n_iter):
            for name, idx in self.regions().items():
                rows.append({"iteration": k + 1, "region": name, "n_planes": int(len(idx)),
                             "depth_um": [float(self.plane_depth[idx].min()), float(self.plane_depth[idx].max())],
                             "restored_depth": float(np.median(self.restored_depth[k, idx])),
                             "chi2": float(np.median(self.chi2[k, idx]))})
        return rows

    def to_dict(self):
        """JSON-serializable dict (``json.dumps(report.to_dict())`` works); no images."""
        d = {"restored_depth": self.restored_depth, "chi2": self.chi2, "gain": self.gain, "offset": self.offset,
             "plane_depth": self.plane_depth, "grid": self.grid, "noise": self.noise,
             "degradation": self.degradation.to_dict(), "table": self.to_table(), "notes": self.notes,
             "inputs": self.inputs, "cost": self.cost, "measurable": self.measurable,
             "no_restoration": self.no_restoration}
        d = to_jsonable(d)
        json.dumps(d)  # fail here, not in the caller
        return d

    def summary(self):
        """A short text table: per iteration and third, median restored depth and chi2, with notes."""
        nz = len(self.plane_depth)
        n = self.noise
        head = (f"consistency of {self.n_iter} iterate(s) with the raw ({nz} plane(s), "
                f"{self.plane_depth.min():.3g}-{self.plane_depth.max():.3g} um deep); noise: photons={_fmt(n['photons'])}, "
                f"read_noise={_fmt(n['read_noise'])}, background={_fmt(n['background'])} from {n['source']}")
        lines = [head, f"{'iteration':<10}{'region':<9}{'depth (um)':>12}{'restored (um)':>15}{'chi2':>8}"]
        for r in self.to_table():
            lo, hi = r["depth_um"]
            lines.append(f"{r['iteration']:<10}{r['region']:<9}{f'{lo:.3g}-{hi:.3g}':>12}"
                         f"{r['restored_depth']:>15.3g}{r['chi2']:>8.3g}")
        for k in range(self.n_iter):
            if np.median(self.restored_depth[k]) < NO_RESTORATION:
                lines.append(f"note: iteration {k + 1} restored about 0 um (median {np.median(self.restored_depth[k]):.2g}"
                             " um): no restoration happened")
        lines += [f"note: {t}" for t in self.notes]
        lines.append("chi2 ~ 1: the raw is explained within its noise; >> 1: the iterate holds what the raw cannot "
                     "explain (see residual_map); << 1: it reproduces the raw's noise")
        if self.cost:
            lines.append(f"cost: {self.cost['forward_passes']} forward passes on {self.cost['grid_points']} depths, "
                         f"{self.cost['seconds']:.2f} s")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()

    def figure(self):
        """Matplotlib figure: restored depth and chi2 against plane depth, one curve per iteration.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.8), layout="constrained")
        ax = fig.subplots(1, 2)
        z = self.plane_depth
        order = np.argsort(z, kind="stable")
        style = "o-" if len(z) > 1 else "o"
        for k in range(self.n_iter):
            ax[0].plot(z[order], self.restored_depth[k, order], style, ms=3, label=f"iteration {k + 1}")
            ax[1].plot(z[order], self.chi2[k, order], style, ms=3, label=f"iteration {k + 1}")
        ax[0].plot(z[order], z[order], ":", color="0.5", label="restored to the surface")
        ax[0].set(xlabel="plane depth (um)", ylabel="restored depth (um)", title="depth restored")
        ax[1].axhline(1.0, color="0.5", ls=":", label="within the noise")
        ax[1].set(xlabel="plane depth (um)", ylabel="chi2 (noise variances)", title="residual vs the raw")
        for a in ax:
            a.legend(fontsize=8)
        return fig


def _fmt(v):
    return "None" if v is None else f"{v:.3g}"
