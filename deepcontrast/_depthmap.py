"""The forward model at a depth of its own for every voxel (numpy/scipy only).

Split out of :mod:`deepcontrast.degradation` to keep that module short. A per-voxel depth
map is applied in the gather sense: the output at a voxel is the model's output at that
voxel's own depth (its own kernels, attenuation and haze). The depths are binned: the model
runs once per bin depth, every voxel interpolating linearly between its two neighbouring
bins. Each bin has one depth for the whole volume, so its kernels are stationary and the
whole 3D filter is one multiplication in the 3D DCT-II domain (reflective borders, as in
:func:`deepcontrast.internals.filters.blur_mix`): one forward transform for all bins and one inverse
transform per bin, only of the planes where the bin has weight (along Z a matrix product for
up to :data:`Z_MATMUL` planes, faster than an FFT along the first axis; laterally an FFT).
Extra memory: about five volumes of float32 (the scalar path needs about two).
"""
import numpy as np
from scipy import fft as sfft

from .internals.axes import axes_last
from .internals.checks import check_depth_arg  # noqa: F401 (re-exported for degradation)
from .internals.filters import axial_tf, blur_mix, dct_freqs, lateral_tf

__all__ = []

#: largest error of the model's transfer function (1 = all the light at a frequency) that the
#: linear interpolation between bin depths may make (:func:`bin_depths`)
TF_TOLERANCE = 0.02
#: at most this many bins (time grows with the bins): beyond, the tolerance is loosened
MAX_BINS = 24
#: depths tried between the shallowest and the deepest voxel when placing the bins
GRID = 128
#: stacks of up to this many planes transform along Z by matrix products (measured 2x faster
#: than scipy's FFT along axis 0 at 48 planes; their cost grows with the square of the planes)
Z_MATMUL = 128


def bin_depths(lo, hi, sigmas_weights, f_max, tol=None):
    """Bin depths from ``lo`` to ``hi`` (um) between which linear interpolation is good enough.

    The model's transfer function ``T(z, f) = sum_b w_b(z) exp(-2 pi^2 sigma_b(z)^2 f^2)``
    (continuous Gaussians; frequencies ``f`` up to ``f_max`` cycles/um) is interpolated
    linearly between bins: nodes are placed greedily from ``lo`` so that on a grid of
    :data:`GRID` depths the interpolated ``T`` stays within ``tol`` (default
    :data:`TF_TOLERANCE`) of the true one. Sharp kernels change fast near the surface, so the
    bins are dense there and sparse deep down. Where that needs more than :data:`MAX_BINS`
    bins, the tolerance is loosened until it does not (time grows with the bins).

    ``sigmas_weights(z)`` maps depths (1D) to ``(sigmas, weights)``, each ``(len(z), branches)``.
    """
    tol = TF_TOLERANCE if tol is None else float(tol)
    z = np.linspace(lo, hi, GRID + 1)
    sig, w = sigmas_weights(z)
    f2 = np.linspace(0, f_max, 32) ** 2
    t = np.einsum("zb,zbf->zf", w, np.exp(-2 * np.pi**2 * sig[:, :, None] ** 2 * f2))
    while True:
        nodes = [0]
        while nodes[-1] < GRID:
            a = e = nodes[-1]
            while e + 1 < GRID:  # extend the bin [a, e + 1] to [a, e + 2] while its interpolation holds
                u = (np.arange(1, e + 2 - a) / (e + 2 - a))[:, None]
                if np.abs(t[a + 1:e + 2] - ((1 - u) * t[a] + u * t[e + 2])).max() > tol:
                    break
                e += 1
            nodes.append(e + 1)
        if len(nodes) <= MAX_BINS:
            return z[nodes]
        tol *= 1.5


def blur_mix_map(vol, dmap, params, vsz, vyx, axial, tol=None):
    """The forward model's filters at each voxel's own depth (see the module docstring).

    Parameters
    ----------
    vol : numpy.ndarray
        ``(n_z, ny, nx)`` float32.
    dmap : numpy.ndarray
        ``(n_z, ny, nx)`` depths (um) from :func:`check_depth_arg`.
    params : callable
        Depths ``z`` (1D, um) -> ``(ra, rb, s_ball, s_haze, s_oof, w_oof)``, arrays like ``z``
        (the arguments of :func:`deepcontrast.internals.filters.blur_mix` per slice).
    vsz, vyx, axial
        As in :func:`deepcontrast.internals.filters.blur_mix`.
    tol : float or None
        Interpolation tolerance of :func:`bin_depths`.

    Returns
    -------
    numpy.ndarray
        ``(n_z, ny, nx)`` float32. A map with one depth per plane runs the scalar path itself
        (:func:`deepcontrast.internals.filters.blur_mix` with those depths): flat samples get exactly
        today's result.
    """
    n_z, ny, nx = vol.shape
    lo, hi = dmap.min(axis=(1, 2)).astype(float), dmap.max(axis=(1, 2)).astype(float)
    if np.array_equal(lo, hi):
        ra, rb, s_ball, s_haze, s_oof, w_oof = params(lo)
        return blur_mix(vol, ra, rb, s_ball, s_haze, vsz, vyx, axial=axial, s_oof=s_oof, w_oof=w_oof)
    z_mix = axial and n_z > 1

    def sigmas_weights(z):
        ra, rb, s_ball, s_haze, s_oof, w_oof = (np.broadcast_to(np.asarray(p, float), z.shape) for p in params(z))
        return np.stack([s_ball, s_haze, s_oof], axis=1), np.stack([ra * rb, ra * (1 - rb), ra * w_oof], axis=1)

    f_max = 0.5 / min(vyx + ((vsz,) if z_mix else ()))
    nodes = bin_depths(float(lo.min()), float(hi.max()), sigmas_weights, f_max, tol)
    sigmas, weights = sigmas_weights(nodes)  # (bins, branches)
    used = np.any(weights != 0, axis=0)
    sigmas, weights = sigmas[:, used], weights[:, used]
    fy, fx = dct_freqs(ny), dct_freqs(nx)

    coef = sfft.dctn(vol, axes=(1, 2), workers=-1)
    pos_lo, pos_hi = (np.interp(v, nodes, np.arange(len(nodes))) for v in (lo, hi))  # per plane, in bins
    gaps = np.diff(nodes)
    dmap = dmap.astype(np.float32, copy=False)
    out = np.zeros((n_z, ny, nx), np.float32)
    spec, hat, part = coef, np.empty_like(coef), np.empty_like(coef)  # reused: no page faults per bin
    matmul_z = z_mix and n_z <= Z_MATMUL
    if matmul_z:  # the DCT along Z as matrices; the inverse only to the planes a bin needs
        k = np.arange(n_z)
        cos = np.cos(np.pi * k[:, None] * (2 * k[None] + 1) / (2 * n_z))  # [frequency, plane]
        inverse_z = (cos.T * np.where(k == 0, 0.5, 1.0) / n_z).astype(np.float32)
        coef = np.matmul((2 * cos).astype(np.float32), spec.reshape(n_z, -1)).reshape(spec.shape)
    else:
        if z_mix:
            coef = sfft.dct(coef, axis=0, workers=-1, overwrite_x=True)
        spec = np.empty_like(coef)
    for j in range(len(nodes)):
        planes = np.flatnonzero((pos_lo < j + 1) & (pos_hi > j - 1))  # where bin j has weight
        if not len(planes):
            continue
        k0, k1 = planes[0], planes[-1] + 1
        # linear interpolation weight of bin j: 1 at its depth, 0 at its neighbours' (spec as scratch)
        below, above = gaps[max(j - 1, 0)], gaps[min(j, len(gaps) - 1)]
        offset = np.subtract(dmap[k0:k1], np.float32(nodes[j]), out=hat[k0:k1])
        rise = np.multiply(offset, np.float32(1 / below), out=spec[k0:k1])
        rise += 1
        offset *= np.float32(-1 / above)
        offset += 1
        np.minimum(rise, offset, out=offset)
        np.maximum(offset, 0, out=offset)

        lateral = lateral_tf(fy, fx, sigmas[j] / vyx[0], sigmas[j] / vyx[1], weights[j])  # (branches, ny, nx)
        if z_mix:
            gz = np.stack([axial_tf(s, vsz, n_z) for s in sigmas[j]]).astype(np.float32)  # (branches, n_z)
            np.multiply(gz[0][:, None, None], lateral[0], out=spec)
            for g, lat in zip(gz[1:], lateral[1:]):
                spec += np.multiply(g[:, None, None], lat, out=part)
            spec *= coef
            if matmul_z:
                res = np.matmul(inverse_z[k0:k1], spec.reshape(n_z, -1), out=part[k0:k1].reshape(k1 - k0, -1))
                res = res.reshape(k1 - k0, ny, nx)
            else:
                res = sfft.idct(spec, axis=0, workers=-1, overwrite_x=True)[k0:k1]
        else:
            res = np.multiply(coef[k0:k1], lateral.sum(axis=0), out=part[k0:k1])
        res = sfft.idctn(res, axes=(1, 2), workers=-1, overwrite_x=True)
        res *= hat[k0:k1]
        out[k0:k1] += res
    return out
