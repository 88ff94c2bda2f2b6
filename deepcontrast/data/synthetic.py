"""The built-in samples: synthetic fluorescent tissue with known clean truth (and depth)."""
import numpy as np
from scipy import ndimage

from ..degradation import DeepTissueDegradation
from ..internals.checks import check_depth

__all__ = ["synthetic_tissue", "synthetic_spheroid"]

#: nuclei per cubic micrometre (about a quarter of the volume is nuclei)
_NUCLEUS_DENSITY = 1 / 1000.0
#: fibre length (um) per cubic micrometre
_FIBRE_DENSITY = 1 / 80.0


def synthetic_tissue(shape=(48, 256, 256), *, voxel_size=(2.0, 0.5, 0.5), degradation=None, depth=None, rng=0):
    """A synthetic fluorescent-tissue sample, clean and as seen deep in tissue.

    The clean structure holds nuclei of varying size (radius 2.5-5.5 um) and brightness with
    an internal chromatin-like texture, thin curved fibres, and a dim, slowly varying
    background; it lies roughly in [0, 1] and its statistics do not depend on depth. The
    observed image is ``degradation.render(clean, ...)``: slice ``k`` of a stack lies at
    depth ``depth + k * voxel_size[0]`` below the surface (the first slice), so signal,
    sharpness and contrast fall along Z, and Poisson noise is added. Because the clean truth
    is known, the sample lets you measure restoration quality honestly.

    Parameters
    ----------
    shape : tuple of int
        ``(Z, Y, X)`` for a stack (axes ``'ZYX'``) or ``(Y, X)`` for a single plane (axes
        ``'YX'``). Each entry must be >= 1 (Y and X >= 8).
    voxel_size : tuple of float
        Micrometres per pixel, ``(Z, Y, X)``; for a 2D shape either ``(Y, X)`` or ``(Z, Y, X)``
        (then only the last two entries are used).
    degradation : DeepTissueDegradation or None
        Forward model used to render the observed image. ``None`` (default) is
        ``DeepTissueDegradation(photons=50)``: the default model with Poisson noise at 50
        photons per unit of intensity.
    depth : float or None
        Depth in micrometres of the first slice (3D) or of the plane (2D). ``None`` means 0
        for a stack (the first slice is the tissue surface) and 60 for a single plane.
    rng : None, int or numpy.random.Generator
        Randomness of the structure and the noise (default 0: the same sample every time).

    Returns
    -------
    observed : numpy.ndarray
        float32 image of ``shape`` as seen through the forward model.
    clean : numpy.ndarray
        float32 image of ``shape``, the structure without degradation, roughly in [0, 1].

    Raises
    ------
    ValueError
        If ``shape`` or ``voxel_size`` is malformed, or ``depth`` is negative.

    Examples
    --------
    >>> from deepcontrast.data import synthetic_tissue
    >>> observed, clean = synthetic_tissue((16, 64, 64))
    >>> observed.shape, observed.dtype
    ((16, 64, 64), dtype('float32'))
    >>> plane, truth = synthetic_tissue((128, 128), depth=80)
    """
    shape, vs, is_2d = _check_shape(shape, voxel_size)
    if depth is None:
        depth = 60.0 if is_2d else 0.0
    depth = check_depth(depth)
    degradation = _check_degradation(degradation)
    rng = np.random.default_rng(rng)
    clean = _phantom(shape, vs, rng, slab=is_2d)
    if is_2d:
        clean = clean[0]
        observed = degradation.render(clean, "YX", depth=depth, voxel_size=vs[1:], rng=rng)
    else:
        observed = degradation.render(clean, "ZYX", depth=depth, voxel_size=vs, surface="first", rng=rng)
    return observed.astype(np.float32, copy=False), clean


def synthetic_spheroid(shape=(48, 192, 192), *, voxel_size=(2.0, 0.5, 0.5), degradation=None, rng=0):
    """A curved sample: tissue inside an ellipsoid, seen at each voxel's own depth, with its truth.

    The structure of :func:`synthetic_tissue` fills an ellipsoid in an empty (black) medium:
    centred in Y and X with semi-axes 0.4 of the field, its top 5% of the stack's depth below
    the first slice and its bottom beyond the last one (as a spheroid imaged from above, whose
    lower part is out of reach). Light from a voxel crosses the tissue above it, so the
    observed image is ``degradation.render(clean, 'ZYX', depth=depth)`` with the true depth
    below the ellipsoid's upper surface along Z (the detection axis, first slice up): a
    curved sample for which slice depths from a flat surface are wrong.

    Parameters
    ----------
    shape : tuple of int
        ``(Z, Y, X)``, each >= 1 (Y and X >= 8).
    voxel_size : tuple of float
        Micrometres per voxel, ``(Z, Y, X)``.
    degradation : DeepTissueDegradation or None
        Forward model; ``None`` (default) is ``DeepTissueDegradation(photons=50)``.
    rng : None, int or numpy.random.Generator
        Randomness of the structure and the noise (default 0: the same sample every time).

    Returns
    -------
    observed : numpy.ndarray
        float32 ``shape``, the sample as seen through the forward model.
    clean : numpy.ndarray
        float32 ``shape``, the structure without degradation (0 outside the ellipsoid).
    depth : numpy.ndarray
        float32 ``shape``, the true depth (um) of each voxel centre below the ellipsoid's
        upper surface, 0 outside the ellipsoid.

    Raises
    ------
    ValueError
        If ``shape`` is not 3D or too small, or ``voxel_size`` is malformed.

    Examples
    --------
    >>> from deepcontrast.data import synthetic_spheroid
    >>> observed, clean, depth = synthetic_spheroid((16, 64, 64))
    >>> observed.shape, depth.dtype, bool(depth[0].max() == 0)
    ((16, 64, 64), dtype('float32'), True)
    """
    if np.ndim(shape) != 1 or len(shape) != 3:
        raise ValueError(f"shape must be (Z, Y, X) for a spheroid (a 3D sample), got {shape!r}")
    shape, vs, _ = _check_shape(shape, voxel_size)
    degradation = _check_degradation(degradation)
    rng = np.random.default_rng(rng)
    inside, depth = _ellipsoid(shape, vs)
    clean = _phantom(shape, vs, rng)
    clean *= inside
    observed = degradation.render(clean, "ZYX", depth=depth, voxel_size=vs, rng=rng)
    return observed.astype(np.float32, copy=False), clean, depth.astype(np.float32)


#: the ellipsoid of :func:`synthetic_spheroid` as fractions of the stack's extent (Z, Y, X)
SPHEROID_CENTRE = (0.55, 0.5, 0.5)
SPHEROID_SEMI_AXES = (0.5, 0.4, 0.4)


def _ellipsoid(shape, vs):
    """``(inside, depth)`` of the spheroid: voxel centres inside the ellipsoid, and their depth
    (um) below its upper surface along Z (0 outside)."""
    extent = np.asarray(shape) * np.asarray(vs)
    c, r = extent * SPHEROID_CENTRE, extent * SPHEROID_SEMI_AXES
    z, y, x = ((np.arange(n) + 0.5) * v for n, v in zip(shape, vs))
    rho2 = ((y[:, None] - c[1]) / r[1]) ** 2 + ((x[None, :] - c[2]) / r[2]) ** 2  # (Y, X)
    half = r[0] * np.sqrt(np.clip(1 - rho2, 0, None))  # half-height of the ellipsoid over each column
    inside = np.abs(z[:, None, None] - c[0]) <= half
    inside &= (rho2 < 1)[None]
    depth = np.where(inside, z[:, None, None] - (c[0] - half), 0.0)
    return inside, depth


def _check_degradation(degradation):
    if degradation is None:
        return DeepTissueDegradation(photons=50)
    if not isinstance(degradation, DeepTissueDegradation):
        raise ValueError(
            f"degradation must be a DeepTissueDegradation or None, got {type(degradation).__name__}; "
            "e.g. DeepTissueDegradation(photons=50)"
        )
    return degradation


def _check_shape(shape, voxel_size):
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (Z, Y, X) or (Y, X) integers, got {shape!r}") from None
    if len(shape) not in (2, 3):
        raise ValueError(f"shape must have 2 (Y, X) or 3 (Z, Y, X) entries, got {shape}")
    if min(shape[-2:]) < 8 or min(shape) < 1:
        raise ValueError(f"shape {shape} is too small: Y and X must be >= 8 and Z >= 1")
    try:
        vs = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError):
        raise ValueError(f"voxel_size must be numbers (um per pixel), got {voxel_size!r}") from None
    is_2d = len(shape) == 2
    if is_2d and len(vs) == 2:
        vs = (1.0,) + vs
    if len(vs) != 3:
        raise ValueError(
            f"voxel_size {voxel_size!r} must have one entry per axis of shape {shape} "
            "(for a 2D shape, (Y, X) or (Z, Y, X))"
        )
    if not all(np.isfinite(v) and v > 0 for v in vs):
        raise ValueError(f"voxel_size entries must be finite and > 0 um, got {vs}")
    return ((1,) + shape if is_2d else shape), vs, is_2d


def _smooth_noise(shape, sigma, rng, coarse=1):
    """Zero-mean, unit-std Gaussian-filtered noise (``sigma`` in pixels of the coarse grid)."""
    small = tuple(max(1, -(-s // coarse)) for s in shape)
    f = ndimage.gaussian_filter(rng.standard_normal(small).astype(np.float32), sigma, mode="wrap")
    if coarse > 1:
        f = ndimage.zoom(f, [s / t for s, t in zip(shape, small)], order=1, mode="nearest")
        f = f[tuple(slice(0, s) for s in shape)]
    f -= f.mean()
    return f / max(float(f.std()), 1e-6)


def _phantom(shape, vs, rng, slab=False):
    """Clean structure of ``shape`` (Z, Y, X) with voxel size ``vs`` (um), roughly in [0, 1]."""
    nz, ny, nx = shape
    vs = np.asarray(vs, float)
    extent = np.array(shape) * vs
    rmax = 5.5
    # nuclei whose centre lies within rmax of the volume (or of the plane, for a 2D slab)
    lo = np.array([-rmax, -rmax, -rmax])
    hi = extent + rmax
    if slab:
        lo[0], hi[0] = -rmax, rmax
    n_nuc = rng.poisson(_NUCLEUS_DENSITY * np.prod(hi - lo))
    centres = lo + (hi - lo) * rng.random((n_nuc, 3))
    radii = rng.uniform(2.5, rmax, n_nuc)[:, None] * rng.uniform(0.8, 1.2, (n_nuc, 3))
    bright = rng.uniform(0.3, 0.9, n_nuc)

    nuc = np.zeros(shape, np.float32)
    for c, r, b in zip(centres, radii, bright):
        if slab:
            c = c.copy()
            c[0] -= extent[0] / 2  # the plane sits in the middle of the slab
        start = np.maximum(np.floor((c - r * 1.3) / vs).astype(int), 0)
        stop = np.minimum(np.ceil((c + r * 1.3) / vs).astype(int) + 1, shape)
        if np.any(stop <= start):
            continue
        grids = np.ogrid[tuple(slice(a, o) for a, o in zip(start, stop))]
        rho2 = sum(((g * s + s / 2 - ci) / ri) ** 2 for g, s, ci, ri in zip(grids, vs, c, r))
        blob = (b / (1 + np.exp((np.sqrt(rho2) - 1) / 0.06))).astype(np.float32)
        box = tuple(slice(a, o) for a, o in zip(start, stop))
        np.maximum(nuc[box], blob, out=nuc[box])

    # chromatin-like texture (about 0.6 um grain) and a few nucleoli-like bright spots
    sig = np.maximum(0.6 / vs, 0.5)
    texture = _smooth_noise(shape, sig, rng)
    nuc *= np.clip(1 + 0.35 * texture, 0.3, None)

    fibres = _fibres(shape, vs, extent, rng)
    background = 0.06 + 0.02 * _smooth_noise(shape, 2.0, rng, coarse=8)
    clean = background + nuc + fibres
    return np.clip(clean, 0, 1).astype(np.float32)


def _fibres(shape, vs, extent, rng):
    """Thin, gently curving fibres (about 0.5 um thick), mostly running laterally."""
    total = _FIBRE_DENSITY * np.prod(np.maximum(extent, 4 * vs))
    length = float(np.hypot(extent[1], extent[2]))
    n_fib = max(1, int(round(total / length)))
    step = 0.5 * float(vs[1:].min())
    t = np.arange(0, length, step)
    pts = []
    for _ in range(n_fib):
        p0 = rng.random(3) * extent
        theta = rng.uniform(0, 2 * np.pi)
        tilt = rng.normal(0, 0.08)
        d = np.array([tilt, np.sin(theta), np.cos(theta)])
        d /= np.linalg.norm(d)
        perp = np.array([0.0, -d[2], d[1]])
        perp /= max(np.linalg.norm(perp), 1e-9)
        amp, wl, ph = rng.uniform(1, 6), rng.uniform(15, 60), rng.uniform(0, 2 * np.pi)
        p = p0 + (t - length / 2)[:, None] * d + (amp * np.sin(2 * np.pi * t / wl + ph))[:, None] * perp
        pts.append(p)
    pts = np.concatenate(pts)
    idx = np.floor(pts / vs).astype(int)
    keep = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
    idx = idx[keep]
    vol = np.zeros(shape, np.float32)
    vol[tuple(idx.T)] = 1.0
    vol = ndimage.gaussian_filter(vol, np.maximum(0.3 / vs, 0.4))
    peak = float(np.percentile(vol[vol > 0], 99.5)) if np.any(vol > 0) else 1.0
    return np.clip(vol / peak, 0, 1) * np.float32(0.5)
