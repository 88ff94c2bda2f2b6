"""Training a 2D network on the planes of stacks: every plane becomes an image of its own."""
import logging

from csbdeep.data import RawData

from .normalize import PLANE_PERCENTILES

__all__ = ["per_slice", "empty_planes"]

log = logging.getLogger(__name__)


def per_slice(raw_data, axis="Z"):
    """Turn a RawData of stacks into one whose images are the stacks' single planes.

    Each stack is still degraded as a whole (every plane at its own depth); only afterwards
    are the pairs split into planes. Planes without structure (:func:`empty_planes`: a raw
    plane whose percentiles 2 and 99.8 are equal, e.g. the empty medium above a spheroid or
    embryo) give no pairs: they have nothing to learn from and no intensity range to be
    normalized on (CSBDeep's patch filter finds no region in them). Each stack is read once
    more, before the pairs, to find them; a log message names how many were left out.
    :func:`create_patches` then normalizes every plane on its own percentiles, which is what a
    2D network applied plane by plane with ``Config(normalize_per_slice=True)``
    (:class:`~deepcontrast.models.SlicePercentileNormalizer`) sees at prediction time: deep,
    attenuated planes are not squeezed into a dim band of a stack-wide intensity range.

    Parameters
    ----------
    raw_data : csbdeep.data.RawData
        E.g. from :meth:`DegradedRawData.from_arrays` / :meth:`DegradedRawData.from_folder`
        with axes containing ``axis``. Its ``settings`` are carried over with
        ``'per_slice': axis`` added.
    axis : str
        The axis to split along (default ``'Z'``).

    Returns
    -------
    csbdeep.data.RawData
        Yields ``(degraded_plane, raw_plane, axes_without_axis, mask_plane)``; use a 2D
        ``patch_size`` with ``create_patches``.

    Raises
    ------
    ValueError
        If ``raw_data`` is not a DegradedRawData (the plane count must be known in advance),
        its axes do not contain ``axis``, or no plane of any stack holds structure.

    Examples
    --------
    >>> from deepcontrast import DeepTissueDegradation
    >>> from deepcontrast.data import DegradedRawData, per_slice, synthetic_tissue
    >>> stack, _ = synthetic_tissue((4, 64, 64))
    >>> planes = per_slice(DegradedRawData.from_arrays(stack, 'ZYX', DeepTissueDegradation(), 20.0))
    >>> x, y, axes, mask = next(planes.generator())
    >>> x.shape, axes
    ((64, 64), 'YX')
    """
    import numpy as np

    axis = str(axis).upper()

    def generator():
        for n, (x, y, axes, mask) in enumerate(raw_data.generator()):
            if axis not in axes:
                raise ValueError(f"images have axes {axes!r} without {axis!r}; per_slice needs stacks with that axis")
            k = axes.index(axis)
            skip = empty[n // copies]
            for i in range(x.shape[k]):
                if i in skip:
                    continue
                m = None if mask is None else np.take(mask, i, axis=k)
                yield np.take(x, i, axis=k), np.take(y, i, axis=k), axes.replace(axis, ""), m

    settings = getattr(raw_data, "settings", None)
    shapes = getattr(raw_data, "shapes", None)
    axes = (settings or {}).get("axes")
    if shapes is None or axes is None:
        raise ValueError("per_slice needs a DegradedRawData (from_arrays / from_folder), which knows the shapes of "
                         "its images; csbdeep's create_patches needs the exact number of planes in advance")
    if axis not in axes:
        raise ValueError(f"images have axes {axes!r} without {axis!r}; per_slice needs stacks with that axis")
    copies = raw_data.size // len(shapes)  # degraded copies per image
    loaders = getattr(raw_data, "loaders", None) or [None] * len(shapes)
    empty = [set() if load is None else set(empty_planes(load(), axes, axis)) for load in loaders]
    n_planes = sum(int(shape[axes.index(axis)]) for shape in shapes)
    n_empty = sum(len(e) for e in empty)
    if n_empty == n_planes:
        raise ValueError("no plane of the images holds structure (every plane is constant, or nearly: its "
                         f"percentiles {PLANE_PERCENTILES[0]:g} and {PLANE_PERCENTILES[1]:g} are equal); nothing to "
                         "train on")
    if n_empty:
        names = getattr(raw_data, "names", None) or [f"image {i}" for i in range(len(shapes))]
        which = "; ".join(f"{name}: {_ranges(sorted(e))}" for name, e in zip(names, empty) if e)
        log.info("per_slice: %d of %d planes hold no structure (e.g. empty medium above a curved sample) and give no "
                 "training pairs (%s %s)", n_empty, n_planes, axis, which)
    size = copies * (n_planes - n_empty)
    out = RawData(generator, size, f"{raw_data.description} (per {axis} plane)")
    return _WithSettings(out, dict(settings, per_slice=axis))


class _WithSettings(RawData):
    """A RawData that also carries ``settings`` (written next to the npz by create_patches)."""

    def __new__(cls, raw_data, settings):
        self = super().__new__(cls, *raw_data)
        self.settings = settings
        return self


def empty_planes(img, axes, axis="Z"):
    """Indices of the planes of ``img`` along ``axis`` that hold no structure to train on.

    A plane holds none when its percentiles 2 and 99.8 (those of the per-plane normalization,
    :func:`deepcontrast.data.normalize_planes`) are equal: it is constant, or all but a few
    of its pixels are (the empty, black medium above a spheroid or embryo, a few stray photons
    at most). Normalized on its own, such a plane is all zeros (or a few pixels blown up to
    ~1e18): nothing a network can learn from.

    Parameters
    ----------
    img : numpy.ndarray
        A stack with axes ``axes``.
    axes : str
        Its axes, containing ``axis``, Y and X.
    axis : str
        The axis of the planes (default ``'Z'``).

    Returns
    -------
    list of int
        The empty planes' indices along ``axis``, ascending.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.zeros((4, 16, 16), np.float32)
    >>> stack[2:] = np.random.default_rng(0).random((2, 16, 16))
    >>> empty_planes(stack, 'ZYX')
    [0, 1]
    """
    import numpy as np
    from csbdeep.utils import axes_check_and_normalize

    axes = axes_check_and_normalize(axes, np.ndim(img))
    k = axes.index(axis)
    x = np.moveaxis(np.asarray(img), k, 0)
    inner = tuple(d for d, a in enumerate(axes.replace(axis, ""), start=1) if a in "YX")
    lo, hi = np.percentile(x, PLANE_PERCENTILES, axis=inner)
    flat = (hi <= lo).reshape(len(x), -1).all(axis=1)  # every channel (or sample) of the plane
    return [int(i) for i in np.flatnonzero(flat)]


def _ranges(idx):
    """[0, 1, 2, 5] -> '0-2, 5'."""
    out, start = [], None
    for a, b in zip(idx, idx[1:] + [None]):
        start = a if start is None else start
        if b != a + 1:
            out.append(f"{start}" if start == a else f"{start}-{a}")
            start = None
    return ", ".join(out)
