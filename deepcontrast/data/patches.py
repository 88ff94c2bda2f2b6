"""Training pairs as patches: CSBDeep's ``create_patches``, drawn from a numpy Generator (:func:`create_patches`)."""
import logging
import warnings
from pathlib import Path

import numpy as np
from csbdeep.data import Transform, no_background_patches, permute_axes
from csbdeep.io import save_training_data
from csbdeep.utils import axes_check_and_normalize, axes_dict, compose, normalize_mi_ma
from tqdm.auto import tqdm

from ..internals.files import atomic_write
from .settings import save_settings, settings_path

__all__ = ["create_patches"]

log = logging.getLogger(__name__)


def create_patches(raw_data, patch_size, n_patches_per_image, *, save_file=None, overwrite=True, rng=None,
                   patch_axes=None, transforms=None, patch_filter=no_background_patches(), normalization="percentiles",
                   shuffle=True, verbose=True):
    """Normalized training patches from ``raw_data``, as :func:`csbdeep.data.create_patches` makes them.

    The same sampling as CSBDeep's: per (transformed) image, ``n_patches_per_image`` patch
    centres drawn uniformly among the positions ``patch_filter`` accepts (with replacement
    only when there are fewer), the same patch of input and target, CSBDeep's percentile
    normalization, a shuffle, and axes ``'SC...'``. ``transforms``, ``patch_filter``,
    ``patch_axes`` and ``normalization`` callables are CSBDeep's. Every random draw comes from
    ``rng`` (CSBDeep draws from NumPy's global state, which is left alone here). In addition:

    * for a :class:`DegradedRawData`, the patch size is checked against every image before any
      patch is extracted;
    * with ``normalization='percentiles'`` (default) a pair whose image has no intensity range
      at its drawn percentiles (equal: a plane of a few stray photons at most, as at the edge
      of a curved sample) is left out; CSBDeep divides by 1e-20 there and blows the patch up
      to ~1e18, which makes the training diverge. A log message says how many were left out;
    * an image in which ``patch_filter`` accepts nothing is named in the error;
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
        Source of the patch positions, the normalization's percentiles and the shuffle: the
        same seed gives the same pairs.
    patch_axes : str or None
        Axes of the patches, if they differ from the images' (CSBDeep's ``permute_axes``).
    transforms : list of csbdeep.data.Transform or None
        Applied to every image pair before patches are drawn (e.g.
        :func:`deepcontrast.data.deep_tissue_distortions`).
    patch_filter : callable or None
        ``patch_filter((target, input), patch_size)`` returns a boolean mask of the allowed
        patch centres (default CSBDeep's ``no_background_patches()``: where the target's
        max-filtered intensity exceeds 0.4 of its 99.9th percentile); ``None`` allows all.
    normalization : 'percentiles', callable or None
        ``'percentiles'`` (default): CSBDeep's default, for each patch a low percentile drawn
        from 1-3 and a high one from 99.5-99.9 of its whole image mapped to 0 and 1, input and
        target each on their own image; a callable ``f(patches_x, patches_y, x, y, mask,
        channel)`` as CSBDeep's; ``None`` leaves the patches as they are.
    shuffle : bool
        Shuffle the pairs (default True).
    verbose : bool
        Print a summary and show a progress bar.

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
    _check_patch_size(raw_data, patch_size, patch_axes)
    if isinstance(n_patches_per_image, bool) or not isinstance(n_patches_per_image, (int, np.integer)) \
            or n_patches_per_image < 1:
        raise ValueError(f"n_patches_per_image must be an integer >= 1, got {n_patches_per_image!r}")
    npz = None
    if save_file is not None:
        npz = Path(save_file).with_suffix(".npz")
        if npz.exists() and not overwrite:
            raise FileExistsError(f"training data file {npz} exists; pass overwrite=True or choose another save_file")
    rng = np.random.default_rng(rng)
    if isinstance(normalization, str):
        if normalization != "percentiles":
            raise ValueError(f"normalization must be 'percentiles', a function or None, got {normalization!r}")
        normalization = _percentiles_or_nan(rng)
        guarded = True
    else:
        guarded = False
        if normalization is None:
            def normalization(patches_x, patches_y, *_):
                return patches_x, patches_y
    X, Y, axes = _sample_pairs(raw_data, tuple(int(p) for p in patch_size), int(n_patches_per_image), patch_axes,
                               transforms, patch_filter, normalization, verbose, rng)
    if guarded:
        X, Y = _drop_unnormalizable(X, Y)
    if shuffle:
        order = rng.permutation(len(X))
        X, Y = X[order], Y[order]
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


def _sample_pairs(raw_data, patch_size, n_per, patch_axes, transforms, patch_filter, normalization, verbose, rng):
    """Patches of every (transformed) image pair, normalized, in order; axes ``'SC...'``."""
    transforms = list(transforms or [])
    if patch_axes is not None:
        transforms.append(permute_axes(patch_axes))
    if not transforms:
        transforms.append(Transform.identity())
    tf = Transform(*zip(*transforms))  # a list of Transforms as one Transform of lists
    pairs = compose(*tf.generator)(raw_data.generator())
    n_images = raw_data.size * int(np.prod(tf.size))
    if verbose:
        print(f"{raw_data.size} raw images x {int(np.prod(tf.size))} transformations = {n_images} images, "
              f"x {n_per} patches each = {n_images * n_per} patches of {' x '.join(map(str, patch_size))}\n"
              f"{raw_data.description}", flush=True)
    X = np.empty((n_images * n_per,) + patch_size, np.float32)
    Y = np.empty_like(X)
    axes = channel = None
    n = 0
    for i, (x, y, image_axes, mask) in enumerate(tqdm(pairs, total=n_images, disable=not verbose, unit="image",
                                                      desc="patches")):
        if i >= n_images:
            warnings.warn(f"raw_data yields more than its size of {n_images} images; the rest are left out",
                          stacklevel=3)
            break
        image_axes = axes_check_and_normalize(image_axes, len(patch_size))
        if axes is None:
            axes, channel = image_axes, axes_dict(image_axes)["C"]
        if image_axes != axes:
            raise ValueError(f"image {i} has axes {image_axes!r}, the first had {axes!r}; all images need the same axes")
        if x.shape != y.shape or (mask is not None and mask.shape != x.shape):
            raise ValueError(f"image {i}: input {x.shape}, target {y.shape} and mask "
                             f"{None if mask is None else mask.shape} must have the same shape")
        if channel is not None and patch_size[channel] != x.shape[channel]:
            raise ValueError(f"patch_size {patch_size} must take all {x.shape[channel]} channels of image {i} "
                             f"(axis {channel})")
        py, px = _draw_patches((y, x), patch_size, n_per, mask, patch_filter, rng, i)
        X[n:n + n_per], Y[n:n + n_per] = normalization(px, py, x, y, mask, channel)
        n += n_per
    if n < len(X):
        log.warning("raw_data yielded %d of its %d images", n // n_per, n_images)
        X, Y = X[:n], Y[:n]
    if channel is None:
        X, Y = X[:, np.newaxis], Y[:, np.newaxis]
    else:
        X, Y = np.moveaxis(X, 1 + channel, 1), np.moveaxis(Y, 1 + channel, 1)
    return X, Y, "SC" + (axes or "").replace("C", "")


def _draw_patches(datas, patch_size, n, mask, patch_filter, rng, index):
    """``n`` patches of each array in ``datas`` at the same centres, drawn among those ``patch_filter`` allows."""
    shape = datas[0].shape
    if len(patch_size) != len(shape) or any(p > d for p, d in zip(patch_size, shape)):
        raise ValueError(f"patch_size {patch_size} does not fit image {index} of shape {shape}")
    allowed = np.ones(shape, bool) if patch_filter is None else np.asarray(patch_filter(datas, patch_size), bool)
    if mask is not None:
        from scipy.ndimage import minimum_filter

        allowed &= minimum_filter(np.asarray(mask, bool), patch_size, mode="constant", cval=False)
    # centres whose patch (from centre - p // 2 to centre + p - p // 2) lies inside the image
    inner = tuple(slice(p // 2, d - p + p // 2 + 1) for p, d in zip(patch_size, shape))
    centres = np.nonzero(allowed[inner])
    if len(centres[0]) == 0:
        raise ValueError(
            f"image {index} holds no structure that patch_filter accepts (e.g. a blank image, or a sub-volume of "
            "empty medium beside a curved sample); leave such images out, or lower the filter's threshold "
            "(patch_filter=csbdeep.data.no_background_patches(threshold=...)); per_slice already leaves out planes "
            "without structure")
    pick = rng.choice(len(centres[0]), n, replace=len(centres[0]) < n)
    starts = [c[pick] + s.start - p // 2 for c, s, p in zip(centres, inner, patch_size)]
    return [np.stack([d[tuple(slice(a, a + p) for a, p in zip(start, patch_size))] for start in zip(*starts)])
            for d in datas]


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


def _percentiles_or_nan(rng):
    """CSBDeep's default percentile normalization with percentiles drawn from ``rng``; NaN where it cannot normalize.

    A patch whose image has equal drawn percentiles (no intensity range there) would be divided
    by CSBDeep's eps of 1e-20; it is set to NaN instead and :func:`_drop_unnormalizable` leaves
    the pair out.
    """
    (lo0, lo1), (hi0, hi1) = PERCENTILE_RANGES

    def normalize(patches_x, patches_y, x, y, mask, channel):
        n = len(patches_x)
        pmins, pmaxs = rng.uniform(lo0, lo1, n), rng.uniform(hi0, hi1, n)
        axis = None if channel is None else tuple(d for d in range(x.ndim) if d != channel)
        out = []
        for patches, img in ((patches_x, x), (patches_y, y)):
            mi = np.percentile(img, pmins, axis=axis, keepdims=True)
            ma = np.percentile(img, pmaxs, axis=axis, keepdims=True)
            norm = normalize_mi_ma(patches, mi, ma)
            norm[(ma <= mi).reshape(n, -1).any(axis=1)] = np.nan
            out.append(norm)
        return tuple(out)

    return normalize


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
