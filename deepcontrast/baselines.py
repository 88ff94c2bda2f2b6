"""Classical baselines to compare DeepContrast against: CLAHE and Richardson-Lucy deconvolution.

Both take an image with an axes string (like every function of the package), handle extra
axes (S, T, C) independently, and return float32 arrays of the input's shape in the input's
intensity units, so they can be put side by side with a DeepContrast prediction.
"""
import logging

import numpy as np

from .degradation import DeepTissueDegradation, slice_depths
from .internals.axes import check_image_axes, spatial_voxel_size, to_planes

__all__ = ["clahe", "richardson_lucy", "gaussian_psf"]

log = logging.getLogger(__name__)


def clahe(img, axes, *, per_slice=True, kernel_size=None, clip_limit=0.01, nbins=256):
    r"""Contrast-limited adaptive histogram equalization (scikit-image ``equalize_adapthist``).

    Each block (a YX plane, or the ZYX volume when ``per_slice=False``) is scaled to [0, 1]
    by its minimum and maximum, equalized, and scaled back to that block's range
    ``[min, max]``, so the output is in the input's intensity units and deep (dim) slices stay
    dim while their local contrast is equalized.

    Parameters
    ----------
    img : array_like
        Input image.
    axes : str
        Its axes, e.g. ``'YX'`` or ``'ZYX'`` (S, T, C are processed independently).
    per_slice : bool
        For stacks: equalize each YX slice on its own (default; deep slices get their own
        histogram, which is what users usually do) or the whole ZYX volume at once (n-D CLAHE).
    kernel_size, clip_limit, nbins
        Passed to :func:`skimage.exposure.equalize_adapthist` (default kernel: 1/8 of each
        dimension).

    Returns
    -------
    numpy.ndarray
        float32, same shape as ``img``; constant planes are returned unchanged.

    Raises
    ------
    ValueError
        If the axes do not match the image or it holds NaN/Inf.

    Examples
    --------
    >>> y = clahe(np.random.default_rng(0).random((32, 32)), 'YX')
    >>> y.shape, y.dtype
    ((32, 32), dtype('float32'))
    """
    from skimage.exposure import equalize_adapthist

    img, axes = check_image_axes(img, axes)
    keep = "YX" if per_slice or "Z" not in axes else "ZYX"
    stack, restore = to_planes(img.astype(np.float64), axes, keep)
    out = np.empty_like(stack)
    for i, p in enumerate(stack):
        lo, hi = float(p.min()), float(p.max())
        if hi == lo:
            out[i] = p
            continue
        eq = equalize_adapthist((p - lo) / (hi - lo), kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins)
        out[i] = lo + (hi - lo) * eq
    return restore(out).astype(np.float32)


def gaussian_psf(sigma_px, *, truncate=3.0):
    """A normalized 2D Gaussian PSF with per-axis sigmas ``(sy, sx)`` in pixels (odd size, sums to 1)."""
    sy, sx = (float(s) for s in np.broadcast_to(np.asarray(sigma_px, float), (2,)))
    if not (sy > 0 and sx > 0):
        raise ValueError(f"PSF sigmas must be > 0 pixels, got {(sy, sx)}")
    ry, rx = max(1, int(np.ceil(truncate * sy))), max(1, int(np.ceil(truncate * sx)))
    y, x = np.mgrid[-ry:ry + 1, -rx:rx + 1]
    g = np.exp(-0.5 * ((y / sy) ** 2 + (x / sx) ** 2))
    return g / g.sum()


def _forward_psf(deg, z, vyx, include_haze):
    """Lateral PSF of the forward model at depth z (um): ballistic Gaussian (+ scattered halo)."""
    s_b = float(deg.psf_width(z))
    g = gaussian_psf((s_b / vyx[0], s_b / vyx[1]))
    b = float(deg.ballistic_fraction(z)) if include_haze else 1.0
    if b >= 1.0:
        return g
    s_h = float(deg.haze_width(z))
    h = gaussian_psf((s_h / vyx[0], s_h / vyx[1]))
    py, px = (np.array(h.shape) - g.shape) // 2
    if py < 0 or px < 0:  # halo narrower than the ballistic PSF (odd parameters): pad the halo instead
        out = b * g
        qy, qx = (np.array(g.shape) - h.shape) // 2
        out[qy:qy + h.shape[0], qx:qx + h.shape[1]] += (1 - b) * h
        return out / out.sum()
    out = (1 - b) * h
    out[py:py + g.shape[0], px:px + g.shape[1]] += b * g
    return out / out.sum()


def _rl_padded(x, psf, n_iter):
    """RL on a reflect-padded copy (avoids the dark rim of zero padding), cropped back."""
    from skimage.restoration import richardson_lucy as _rl

    pad = [(min(h // 2, n - 1),) * 2 for h, n in zip(psf.shape, x.shape)]
    out = _rl(np.pad(x, pad, mode="reflect"), psf, num_iter=int(n_iter), clip=False)
    return out[tuple(slice(a, a + n) for (a, _), n in zip(pad, x.shape))]


def richardson_lucy(img, axes, psf=None, n_iter=10, *, degradation=None, depth=0.0, voxel_size=None,
                    surface="first", include_haze=False):
    r"""Richardson-Lucy deconvolution with the forward model's PSF at the image's depth.

    Iterates ``u <- u * (P^T * (y / (P * u)))`` (scikit-image ``restoration.richardson_lucy``,
    no clipping, on a reflect-padded copy so borders do not darken). RL needs non-negative data, so the image minimum is subtracted first and
    added back after, and intensities are scaled to max 1 and back (RL is scale-equivariant).

    Default PSF (``psf=None``): the forward model's Gaussian PSF ``G(s_b(z))`` of
    :class:`~deepcontrast.degradation.DeepTissueDegradation` at the depth of each YX plane, the
    PSF a microscopist would deconvolve with (``include_haze=True`` adds the scattered-light
    halo, ``b(z) G(s_b(z)) + (1 - b(z)) G(s_h(z))``: on data rendered by this very model that
    is deconvolution with the exact PSF, an oracle no real sample offers), sigmas converted from um to pixels with
    ``voxel_size``. A 2D image sits at ``depth``; in a stack each Z slice is deconvolved with
    the PSF of its own depth ``depth + k * voxel_size_z`` (``k`` counted from the ``surface``
    end), which is exact for the model's depth-dependent lateral blur. The model's (weaker)
    axial blur is not deconvolved.

    Parameters
    ----------
    img : array_like
        Input image.
    axes : str
        Its axes, e.g. ``'YX'`` or ``'ZYX'`` (S, T, C processed independently).
    psf : array_like, optional
        Explicit PSF: 2D (applied to every YX plane) or, for a stack, 3D (ZYX, applied to the
        volume). Normalized to sum 1.
    n_iter : int
        Number of RL iterations (default 10; more sharpens and amplifies noise).
    degradation : DeepTissueDegradation or dict, optional
        Forward model whose PSF is used (default: the package defaults).
    depth : float
        Depth in um of the image (2D) or of the surface-end slice (3D).
    voxel_size : sequence of float, optional
        um per pixel of each spatial axis (default 1).
    surface : {'first', 'last'}
        Which end of Z is the tissue surface.
    include_haze : bool
        Include the scattered-light halo in the default PSF (default False: the Gaussian
        ballistic PSF only).

    Returns
    -------
    numpy.ndarray
        float32, same shape as ``img``.

    Raises
    ------
    ValueError
        For mismatching axes/voxel sizes, a bad PSF or ``n_iter < 1``.

    Examples
    --------
    >>> y = richardson_lucy(np.random.default_rng(0).random((32, 32)), 'YX', n_iter=2, depth=50)
    >>> y.shape
    (32, 32)
    """
    img, axes = check_image_axes(img, axes)
    if int(n_iter) != n_iter or n_iter < 1:
        raise ValueError(f"n_iter must be an integer >= 1, got {n_iter!r}")
    vs = spatial_voxel_size(axes, voxel_size)
    x = img.astype(np.float64)
    lo = float(x.min())
    x = x - lo
    scale = float(x.max())
    if scale == 0:
        return img.astype(np.float32, copy=True)
    x = x / scale

    if psf is not None:
        out, restore = _rl_explicit_psf(x, axes, psf, n_iter)
    else:
        out, restore = _rl_forward_psf(x, axes, n_iter, degradation, depth, vs, surface, include_haze)
    return (lo + scale * restore(out)).astype(np.float32)


def _rl_explicit_psf(x, axes, psf, n_iter):
    """RL of every YX plane (or ZYX volume) of ``x`` with a user's PSF; returns planes and their inverse move."""
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim not in (2, 3) or (psf.ndim == 3 and "Z" not in axes) or psf.sum() <= 0 or np.any(psf < 0):
        raise ValueError(f"psf must be a non-negative 2D (YX) array, or 3D (ZYX) for stacks, with positive sum; "
                         f"got shape {psf.shape}")
    psf = psf / psf.sum()
    keep = "ZYX" if psf.ndim == 3 else "YX"
    stack, restore = to_planes(x, axes, keep)
    out = np.stack([_rl_padded(p, psf, n_iter) for p in stack])
    return out, restore


def _rl_forward_psf(x, axes, n_iter, degradation, depth, vs, surface, include_haze):
    """RL of every YX plane of ``x`` with the forward model's PSF at the plane's depth; planes and inverse move."""
    spatial = [a for a in axes if a in "ZYX"]
    vyx = (vs[spatial.index("Y")], vs[spatial.index("X")])
    if degradation is None:
        degradation = DeepTissueDegradation()
    elif isinstance(degradation, dict):
        degradation = DeepTissueDegradation.from_dict(degradation)
    if "Z" in axes:
        nz = x.shape[axes.index("Z")]
        z_of = slice_depths(nz, depth=depth, voxel_size_z=vs[spatial.index("Z")], surface=surface)
    else:
        z_of = np.array([float(depth)])
    keep = "ZYX" if "Z" in axes else "YX"
    stack, restore = to_planes(x, axes, keep)
    stack = stack.reshape((stack.shape[0], -1) + stack.shape[-2:])  # (n, nz, ny, nx)
    psfs = [_forward_psf(degradation, z, vyx, include_haze) for z in z_of]
    out = np.empty_like(stack)
    for i in range(stack.shape[0]):
        for k in range(stack.shape[1]):
            out[i, k] = _rl_padded(stack[i, k], psfs[k], n_iter)
    return out, restore
