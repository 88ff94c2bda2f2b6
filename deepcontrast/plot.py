"""Figures for the contrast/detail trade-off (matplotlib, object API: no pyplot state, Agg-safe).

Every function returns a :class:`matplotlib.figure.Figure`; save it with ``fig.savefig(path)``
or show it in Jupyter by leaving it as the last expression of a cell.
"""
import numpy as np

from .degradation import slice_depths
from .metrics import contrast_profile

__all__ = ["plot_contrast_profile", "plot_iterations", "plot_tradeoff"]

_METRIC_LABEL = {
    "rms": "RMS contrast (std / mean)",
    "michelson": "Michelson contrast (p99 - p1) / (p99 + p1)",
    "weber": "Weber contrast (fg - bg) / bg",
    "dcts": "DCT Shannon entropy (sharpness)",
}


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def plot_contrast_profile(images, axes, *, depths=None, metric="rms", voxel_size_z=None, depth=0.0,
                          surface="first", title=None):
    """Contrast vs depth, one curve per image (raw, each iteration, baselines).

    Parameters
    ----------
    images : dict of str -> array_like
        Images to compare by label, e.g. ``{'raw': raw, 'iteration 1': y1, 'CLAHE': c}``, all
        with axes ``axes``.
    axes : str
        Axes of the images, e.g. ``'ZYX'`` (without Z each image gives one point).
    depths : array_like, optional
        Depth in um of each Z slice. Default: from ``voxel_size_z``, ``depth`` and ``surface``
        (slice index when ``voxel_size_z`` is None).
    metric : str
        Contrast metric (see :func:`deepcontrast.metrics.contrast_profile`).
    voxel_size_z : float, optional
        um per Z slice.
    depth : float
        Depth (um) of the surface-end slice.
    surface : {'first', 'last'}
        Which end of Z is the tissue surface.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Slices where the contrast is undefined (e.g. negative mean) are gaps in the curves.

    Raises
    ------
    ValueError
        If ``images`` is empty or ``depths`` has the wrong length.

    Examples
    --------
    >>> fig = plot_contrast_profile({'raw': np.random.default_rng(0).random((4, 16, 16))}, 'ZYX')
    """
    if not images:
        raise ValueError("images is empty; pass a dict like {'raw': raw, 'iteration 1': y1}")
    profiles = {k: contrast_profile(v, axes, metric=metric, undefined="nan") for k, v in images.items()}
    n = len(next(iter(profiles.values())))
    if depths is not None:
        depths = np.asarray(depths, float)
        if depths.shape != (n,):
            raise ValueError(f"depths has {depths.size} entries but the images have {n} Z slices")
        xlabel = "depth below surface (um)"
    elif voxel_size_z is not None:
        depths = slice_depths(n, depth=depth, voxel_size_z=voxel_size_z, surface=surface)
        xlabel = "depth below surface (um)"
    else:
        depths = slice_depths(n, surface=surface)
        xlabel = "slice index from the surface"
    fig = _figure((6.4, 4.2))
    ax = fig.add_subplot()
    order = np.argsort(depths)
    for label, prof in profiles.items():
        style = dict(color="k", lw=2.2) if label.lower() == "raw" else dict(lw=1.6)
        if "clahe" in label.lower() or "richardson" in label.lower() or "rl" == label.lower():
            style["ls"] = "--"
        ax.plot(depths[order], prof[order], marker="o" if n < 12 else None, label=label, **style)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_METRIC_LABEL.get(metric, str(metric)))
    ax.set_title(title or "Contrast vs depth")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _plane(img, axes, z):
    from .internals.axes import yx_last

    img, axes = yx_last(img, axes)
    if "Z" in axes:
        zi = axes.index("Z")
        nz = img.shape[zi]
        img = np.take(img, nz - 1 if z is None else z, axis=zi)
    while img.ndim > 2:  # channels etc.: show the first
        img = img[0]
    return img


def plot_iterations(raw, iterates, axes, *, labels=None, titles=None, z=None, zoom=None, percentiles=(1, 99.8),
                    cmap="magma", title=None, region=None, background=0.0, consistency=None):
    """Raw image and each iterate side by side, on one display range, with an optional zoom inset.

    Parameters
    ----------
    raw : array_like
        The raw image.
    iterates : sequence of array_like
        Images to show next to it (iterations, baselines), each of the raw's shape.
    axes : str
        Axes of the images.
    labels : sequence of str, optional
        Panel names (default ``'raw'``, ``'iteration 1'``, ...), length ``1 + len(iterates)``.
    titles : sequence of str, optional
        Extra title lines per panel (e.g. metrics), length ``1 + len(iterates)``. Default: each
        image's mean and 99.5th percentile (inside ``region``), so darkening and gain show next
        to the picture, with "below bg!" when it holds values below ``background`` by more
        than 4 times the raw's noise there (negative light, see
        :func:`deepcontrast.metrics.intensity_stats`; never on the raw).
    z : int, optional
        Z slice to show for stacks (default: the last slice).
    zoom : (y0, y1, x0, x1) or True, optional
        Region to magnify in an inset (True: the central quarter).
    percentiles : (float, float)
        Display range: these percentiles of all panels pooled (every panel uses the same range).
    cmap : str
        Colormap.
    title : str, optional
        Figure title (default names the Z slice shown).
    region : array_like of bool or tuple of slices, optional
        Where the default titles' statistics are taken (e.g. the deepest third); whole image
        by default.
    background : float
        Intensity of no light, for the default titles' flag (default 0).
    consistency : ConsistencyReport or list of dict, optional
        What each iteration restored according to the raw data (a
        :class:`~deepcontrast.consistency.ConsistencyReport` or its ``to_table()`` rows): the
        panel of iteration ``k`` (the ``k``-th after the raw) gets a line with its median
        restored depth and chi2 per third of the stack, e.g. ``restored 4/9/17 um, chi2
        1.0/1.1/1.2`` (shallow/middle/deep).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If shapes or list lengths do not match.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((16, 16))
    >>> fig = plot_iterations(x, [x, x], 'YX', zoom=True)
    """
    images = [raw] + list(iterates)
    n = len(images)
    labels = list(labels) if labels is not None else ["raw"] + [f"iteration {k}" for k in range(1, n)]
    if titles is None:
        from .metrics import background_noise

        noise = background_noise(np.asarray(raw), background)  # of the whole raw
        titles = [_stats_title(im, raw, region, background, noise) for im in images]
    titles = list(titles)
    for k, line in _consistency_lines(consistency).items():
        if k < len(titles):
            titles[k] = f"{titles[k]}\n{line}" if titles[k] else line
    if len(labels) != n or len(titles) != n:
        raise ValueError(f"labels and titles need {n} entries (raw + {n - 1} images), got {len(labels)} and {len(titles)}")
    shape = np.shape(raw)
    for k, im in enumerate(images[1:], 1):
        if np.shape(im) != shape:
            raise ValueError(f"image {k} ({labels[k]}) has shape {np.shape(im)}, raw has {shape}; they must match")
    planes = [_plane(im, axes, z) for im in images]
    vmin, vmax = np.percentile(np.concatenate([p.ravel() for p in planes]), percentiles)
    if vmax <= vmin:
        vmax = vmin + 1
    ncol = min(n, 4)
    nrow = int(np.ceil(n / ncol))
    fig = _figure((3.2 * ncol, 3.4 * nrow))
    if zoom is True:
        ny, nx = planes[0].shape
        zoom = (3 * ny // 8, 5 * ny // 8, 3 * nx // 8, 5 * nx // 8)
    panels = []
    for k, (p, lab, tit) in enumerate(zip(planes, labels, titles)):
        ax = fig.add_subplot(nrow, ncol, k + 1)
        panels.append(ax)
        im = ax.imshow(p, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(lab + (f"\n{tit}" if tit else ""), fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
        if zoom is not None:
            _zoom_inset(ax, p, zoom, cmap=cmap, vmin=vmin, vmax=vmax)
    fig.colorbar(im, ax=panels, shrink=0.8, label="intensity (same range in all panels)")
    sl = "" if "Z" not in axes.upper() else f" (Z slice {'last' if z is None else z})"
    fig.suptitle(title or ("Raw and iterates" + sl))
    return fig


def _zoom_inset(ax, p, zoom, **imshow):
    """Show the ``zoom`` box (y0, y1, x0, x1) of plane ``p`` enlarged in the top right of ``ax``, outlined in ``p``."""
    y0, y1, x0, x1 = (int(v) for v in zoom)
    ins = ax.inset_axes([0.6, 0.6, 0.38, 0.38])
    ins.imshow(p[y0:y1, x0:x1], interpolation="nearest", **imshow)
    ins.set_xticks([])
    ins.set_yticks([])
    for s in ins.spines.values():
        s.set_edgecolor("w")
    ax.add_patch(_rect(x0, y0, x1 - x0, y1 - y0))


def _stats_title(img, raw, region, background, noise):
    from .metrics import intensity_stats

    img, raw, mask = np.asarray(img), np.asarray(raw), None
    if isinstance(region, tuple):  # an index, e.g. the deepest third's slices
        img, raw = img[region], raw[region]
    elif region is not None:
        mask = region
    st = intensity_stats(img, raw, mask=mask, background=background, noise=noise)
    return f"mean {st['mean']:.3g}, p99.5 {st['p99_5']:.3g}" + (" (below bg!)" if st["below_background"] else "")


def _consistency_lines(consistency):
    """{panel index (= iteration): 'restored a/b/c um, chi2 x/y/z'} from a consistency report or its table rows."""
    if consistency is None:
        return {}
    rows = consistency.to_table() if hasattr(consistency, "to_table") else list(consistency)
    out = {}
    for k in sorted({r["iteration"] for r in rows}):
        mine = [r for r in rows if r["iteration"] == k]
        depth = "/".join(f"{r['restored_depth']:.2g}" for r in mine)
        chi2 = "/".join(f"{r['chi2']:.2g}" for r in mine)
        where = "" if len(mine) == 1 else " (" + "/".join(r["region"][0] for r in mine) + ")"
        out[int(k)] = f"restored {depth} um, chi2 {chi2}{where}"
    return out


def _rect(x, y, w, h):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="w", lw=1)


def plot_tradeoff(table, *, suggested=None, baselines=None, title=None):
    """Contrast gain vs detail retention per iteration, with the suggested iteration marked.

    Parameters
    ----------
    table : list of dict
        Rows of :func:`deepcontrast.metrics.iteration_tradeoff` (``contrast_gain`` and
        ``detail_retention``; row 0 = raw).
    suggested : int, optional
        Iteration to mark (e.g. :func:`deepcontrast.metrics.suggest_n_iter`).
    baselines : dict of str -> dict, optional
        Extra points by label (rows with the same keys), e.g. CLAHE and Richardson-Lucy.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> t = [dict(iteration=0, contrast_gain=1, detail_retention=1), dict(iteration=1, contrast_gain=1.5, detail_retention=.8)]
    >>> fig = plot_tradeoff(t, suggested=1)
    """
    fig = _figure((5.6, 4.4))
    ax = fig.add_subplot()
    pts = [(r.get("iteration", k), r.get("detail_retention"), r.get("contrast_gain")) for k, r in enumerate(table)]
    pts = [p for p in pts if p[1] is not None and p[2] is not None]
    if pts:
        it, x, y = zip(*pts)
        ax.plot(x, y, "-o", color="C0", label="iterations")
        for k, xi, yi in pts:
            ax.annotate("raw" if k == 0 else str(k), (xi, yi), textcoords="offset points", xytext=(6, 4))
        if suggested is not None and suggested in it:
            i = it.index(suggested)
            ax.plot([x[i]], [y[i]], marker="*", ms=18, color="C3", ls="none", label=f"suggested: {suggested} iteration(s)")
    for k, (name, r) in enumerate((baselines or {}).items()):
        if r.get("detail_retention") is not None and r.get("contrast_gain") is not None:
            ax.plot([r["detail_retention"]], [r["contrast_gain"]], marker="s", ls="none", color=f"C{k + 1}", label=name)
    ax.set_xlabel("detail retention vs raw (band-pass correlation, 1 = all kept)")
    ax.set_ylabel("contrast gain (RMS contrast / raw's)")
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title or "Contrast gained vs detail kept")
    return fig
