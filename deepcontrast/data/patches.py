"""CSBDeep's ``create_patches`` with up-front checks and the settings side file (:func:`create_patches`)."""
import contextlib
import logging
from pathlib import Path

import numpy as np
from csbdeep.data import create_patches as _csbdeep_create_patches
from csbdeep.io import save_training_data
from csbdeep.utils import axes_check_and_normalize, normalize_mi_ma

from ..internals.files import atomic_write
from .settings import save_settings, settings_path

__all__ = ["create_patches"]

log = logging.getLogger(__name__)


def create_patches(raw_data, patch_size, n_patches_per_image, *, save_file=None, overwrite=True, rng=None, **kwargs):
    """:func:`csbdeep.data.create_patches`, plus the settings side file and up-front checks.

    Calls CSBDeep's ``create_patches`` unchanged (so ``transforms``, ``patch_filter``,
    ``normalization``, ``shuffle``, ``verbose`` work as there). In addition:

    * for a :class:`DegradedRawData`, the patch size is checked against every image before any
      patch is extracted;
    * without a ``normalization`` argument, the patches are normalized as CSBDeep's default
      does (percentiles of the whole image, low drawn from 1-3 and high from 99.5-99.9 for
      each patch, the same draws), except that a pair whose image has no intensity range
      at its drawn percentiles (equal: a plane of a few stray photons at most, as at the edge
      of a curved sample) is left out; CSBDeep divides by 1e-20 there and blows the patch up
      to ~1e18, which makes the training diverge. A log message says how many were left out;
    * ``save_file`` is written atomically (temp file, then rename: nothing half-written), and
      ``raw_data.settings`` goes to :func:`settings_path` ``(save_file)``, e.g.
      ``data/my_training_data.settings.json``, so training can store it with the model
      (read it with :func:`load_settings`).

    Parameters
    ----------
    raw_data : csbdeep.data.RawData
        Usually a :class:`DegradedRawData`.
    patch_size : tuple of int
        Patch shape, one entry per axis of the images (or of ``patch_axes``).
    n_patches_per_image : int
        Patches per (degraded) image.
    save_file : str or pathlib.Path or None
        Where to save the patches (``.npz``, as :func:`csbdeep.io.save_training_data`).
    overwrite : bool
        Replace an existing ``save_file`` (default True, as CSBDeep does); with False an
        existing file raises FileExistsError before any work is done.
    rng : None, int or numpy.random.Generator
        Makes patch positions and shuffling reproducible. CSBDeep draws them from NumPy's
        global random state; with ``rng`` given, that state is seeded from ``rng`` for the
        call and restored afterwards. ``None`` leaves CSBDeep's behaviour unchanged.
    **kwargs
        Passed on to :func:`csbdeep.data.create_patches`.

    Returns
    -------
    X, Y : numpy.ndarray
        Input (degraded) and target (raw) patches, normalized.
    XY_axes : str
        Their axes, e.g. ``'SCZYX'``.

    Raises
    ------
    ValueError
        If ``patch_size`` does not fit the images (names the image, its shape and the axis), or
        an image (with :func:`per_slice`, a plane) has nothing the ``patch_filter`` accepts
        (e.g. all medium).
    FileExistsError
        If ``save_file`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> from deepcontrast import DeepTissueDegradation
    >>> from deepcontrast.data import DegradedRawData, synthetic_tissue, load_settings
    >>> raw_data = DegradedRawData.from_arrays(synthetic_tissue((64, 64))[0], 'YX',
    ...                                        DeepTissueDegradation(photons=50), (10, 40), rng=0)
    >>> X, Y, axes = create_patches(raw_data, (32, 32), 8, save_file='data/pairs.npz',
    ...                             verbose=False)  # doctest: +SKIP
    >>> load_settings('data/pairs.npz')['extra_depth']  # doctest: +SKIP
    [10.0, 40.0]
    """
    _check_patch_size(raw_data, patch_size, kwargs.get("patch_axes"))
    if isinstance(n_patches_per_image, bool) or not isinstance(n_patches_per_image, (int, np.integer)) \
            or n_patches_per_image < 1:
        raise ValueError(f"n_patches_per_image must be an integer >= 1, got {n_patches_per_image!r}")
    npz = None
    if save_file is not None:
        npz = Path(save_file).with_suffix(".npz")
        if npz.exists() and not overwrite:
            raise FileExistsError(f"training data file {npz} exists; pass overwrite=True or choose another save_file")
    guarded = "normalization" not in kwargs
    if guarded:
        kwargs["normalization"] = _percentiles_or_nan
    with _csbdeep_random_state(rng):
        try:
            X, Y, axes = _csbdeep_create_patches(raw_data, patch_size, n_patches_per_image, save_file=None, **kwargs)
        except ValueError as e:
            if "didn't return any region" not in str(e):
                raise
            raise ValueError(
                "an image holds no structure that CSBDeep's patch_filter accepts (e.g. a blank image, or a "
                "sub-volume of empty medium beside a curved sample); leave such images out, or lower the filter's "
                "threshold (patch_filter=csbdeep.data.no_background_patches(threshold=...)); per_slice already "
                "leaves out planes without structure") from e
    if guarded:
        X, Y = _drop_unnormalizable(X, Y)
    if npz is not None:
        atomic_write(npz, lambda tmp: save_training_data(tmp, X, Y, axes))
        settings = getattr(raw_data, "settings", None)
        if settings is not None:
            save_settings(npz, settings)
            log.info("saved %s and %s", npz, settings_path(npz))
        else:
            log.info("saved %s", npz)
            if settings_path(npz).exists():
                log.warning("%s is left from earlier data and does not describe %s", settings_path(npz), npz)
    return X, Y, axes


def _check_patch_size(raw_data, patch_size, patch_axes):
    try:
        patch_size = tuple(int(p) for p in patch_size)
    except (TypeError, ValueError):
        raise ValueError(f"patch_size must be a tuple of integers, e.g. (16, 64, 64), got {patch_size!r}") from None
    if any(p < 1 for p in patch_size):
        raise ValueError(f"patch_size entries must be >= 1, got {patch_size}")
    shapes = getattr(raw_data, "shapes", None)
    axes = (getattr(raw_data, "settings", None) or {}).get("axes")
    if shapes is None or axes is None:
        return
    p_axes = axes if patch_axes is None else axes_check_and_normalize(patch_axes)
    if len(patch_size) != len(p_axes):
        raise ValueError(
            f"patch_size {patch_size} has {len(patch_size)} entries but the images have axes {p_axes!r}; "
            "give one patch size per axis"
        )
    if set(p_axes) != set(axes):
        return  # a transform changes the axes; leave the check to CSBDeep
    smallest = {a: min(s[axes.index(a)] for s in shapes) for a in axes}
    for name, shape in zip(raw_data.names, shapes):
        for a, p in zip(p_axes, patch_size):
            n = shape[axes.index(a)]
            if p > n:
                fit = tuple(min(q, smallest[b]) for b, q in zip(p_axes, patch_size))
                raise ValueError(
                    f"patch_size {patch_size} is larger than {name} of shape {shape} along {a} ({p} > {n}); "
                    f"use a patch size that fits every image, e.g. {fit}"
                )


#: CSBDeep's default ranges of the low and high percentiles drawn for each patch
PERCENTILE_RANGES = ((1, 3), (99.5, 99.9))


def _percentiles_or_nan(patches_x, patches_y, x, y, mask, channel):
    """CSBDeep's default normalization (same draws, same arithmetic); NaN for patches it cannot normalize.

    A patch whose image has equal drawn percentiles (no intensity range there) would be divided
    by CSBDeep's eps of 1e-20; it is set to NaN instead and :func:`_drop_unnormalizable` leaves
    the pair out.
    """
    (lo0, lo1), (hi0, hi1) = PERCENTILE_RANGES
    pmins, pmaxs = zip(*((np.random.uniform(lo0, lo1), np.random.uniform(hi0, hi1)) for _ in patches_x))
    axis = None if channel is None else tuple(d for d in range(x.ndim) if d != channel)
    out = []
    for patches, img in ((patches_x, x), (patches_y, y)):
        mi = np.percentile(img, pmins, axis=axis, keepdims=True)
        ma = np.percentile(img, pmaxs, axis=axis, keepdims=True)
        norm = normalize_mi_ma(patches, mi, ma)
        flat = (ma <= mi).reshape(len(patches), -1).any(axis=1)
        norm[flat] = np.nan
        out.append(norm)
    return tuple(out)


def _drop_unnormalizable(X, Y):
    """Leave out the pairs :func:`_percentiles_or_nan` marked (NaN); a log message says how many."""
    keep = ~(np.isnan(X).reshape(len(X), -1).any(axis=1) | np.isnan(Y).reshape(len(Y), -1).any(axis=1))
    if keep.all():
        return X, Y
    if not keep.any():
        raise ValueError("no training pair could be normalized: every image has equal low and high percentiles (no "
                         "intensity range, a few stray photons at most); nothing to train on")
    log.info("create_patches: %d of %d pairs left out: their image has no intensity range at the drawn percentiles "
             "(a few stray photons at most, e.g. at the edge of a curved sample)", int((~keep).sum()), len(X))
    return X[keep], Y[keep]


@contextlib.contextmanager
def _csbdeep_random_state(rng):
    """Seed numpy's *global* generator from ``rng`` for the duration, then restore it.

    csbdeep's ``create_patches`` draws patch positions from the global ``np.random`` and offers
    no generator argument; this is the only way to make it reproducible from our ``rng``
    without copying it. The caller's global state is left exactly as it was. ``rng=None``
    leaves the global generator untouched.
    """
    if rng is None:
        yield
        return
    state = np.random.get_state()
    np.random.seed(int(np.random.default_rng(rng).integers(2**32)))  # csbdeep reads the global state
    try:
        yield
    finally:
        np.random.set_state(state)
