"""Depth-varying Gaussian filters of the forward model, in the DCT domain (numpy/scipy only).

Split out of :mod:`deepcontrast.degradation` to keep that module short; the per-voxel depth
maps (:mod:`deepcontrast._depthmap`) and the consistency check use the same filters.
"""
import numpy as np
from scipy import fft as sfft

__all__ = ["axial_tf", "blur_mix", "dct_freqs", "lateral_tf"]


def _axial_kernel(s, n):
    """Offsets and weights of the normalized Gaussian of sigma ``s`` slices on a stack of ``n``.

    Truncated at 4 sigma (at most 4 n); ``None`` when ``s`` is below 1% of a slice (identity).
    """
    if s < 1e-2:
        return None
    r = int(min(np.ceil(4 * s), 4 * n))
    offs = np.arange(-r, r + 1)
    w = np.exp(-0.5 * (offs / s) ** 2)
    return offs, w / w.sum()


def _axial_matrix(sigmas_um, vsz):
    """Rows k: normalized Gaussian of sigma ``sigmas_um[k]`` along Z centred on slice k.

    Edges are handled by reflection (like scipy.ndimage's 'reflect' mode), so a flat stack
    stays flat. Identity rows where the sigma is below 1% of a slice.
    """
    n = len(sigmas_um)
    m = np.zeros((n, n), np.float64)
    for k, s in enumerate(np.asarray(sigmas_um, float) / vsz):
        kernel = _axial_kernel(s, n)
        if kernel is None:
            m[k, k] = 1.0
            continue
        offs, w = kernel
        j = k + offs
        # reflect (…2 1 0 | 0 1 2 … n-1 | n-1 n-2 …) until inside
        while np.any((j < 0) | (j >= n)):
            j = np.where(j < 0, -j - 1, j)
            j = np.where(j >= n, 2 * n - j - 1, j)
        np.add.at(m[k], j, w)
    return m.astype(np.float32)


def axial_tf(sigma_um, vsz, n):
    """DCT-II transfer function (n,) of :func:`_axial_matrix`'s kernel for one sigma on every slice.

    The reflective border makes a stationary convolution diagonal in the DCT-II domain: the
    kernel's cosine series at the DCT frequencies, so it equals the matrix exactly.
    """
    kernel = _axial_kernel(float(sigma_um) / vsz, n)
    if kernel is None:
        return np.ones(n)
    offs, w = kernel
    return np.cos(2 * np.pi * dct_freqs(n).astype(float)[:, None] * offs[None]) @ w


def lateral_tf(fy, fx, sy, sx, weight):
    """Gaussian transfer functions for each of k sigmas, times ``weight[k]``: (k, ny, nx) float32."""
    gy = np.exp(-2 * np.pi**2 * (np.asarray(sy)[:, None] * fy[None]) ** 2)
    gy = (gy * np.asarray(weight, float)[:, None]).astype(np.float32)
    gx = np.exp(-2 * np.pi**2 * (np.asarray(sx)[:, None] * fx[None]) ** 2).astype(np.float32)
    return gy[:, :, None] * gx[:, None, :]


def dct_freqs(n):
    """Frequencies (cycles per pixel) of the DCT-II coefficients of a length-n signal.

    DCT-II coefficient k is the k-th Fourier coefficient of the signal's mirror extension
    (period 2n), so frequency k / 2n.
    """
    return (np.arange(n) / (2.0 * n)).astype(np.float32)


def blur_mix(vol, ra, rb, s_ball, s_haze, vsz, vyx, axial, s_oof=None, w_oof=None, coef=None):
    """out[k] = ra[k] * (rb[k] * G(s_ball[k]) vol + (1 - rb[k]) * G(s_haze[k]) vol
    + w_oof[k] * G(s_oof[k]) vol)[k]   (the last term only when ``w_oof`` has non-zeros).

    ``vol`` is (n_z, ny, nx) float32; sigmas in um, per output slice. Lateral Gaussians are
    a multiplication in the DCT-II domain: exact convolution with the mirror-extended image
    (scipy.ndimage's 'reflect' boundary), no padding. Axial Gaussians are a non-stationary
    Gaussian matrix along Z (:func:`_axial_matrix`). Both are linear and the lateral transform
    acts within slices, so they commute: each input slice is transformed once, the Z mixing of
    every branch runs on the (real) coefficients, and one inverse transform per output slice
    gives the sum of the branches. Branches without axial mixing share one multiplication.
    Extra memory: the coefficients of the volume (one volume of float32) plus the output and
    a chunk of output slices at a time. ``coef``: the lateral DCT-II coefficients of ``vol``
    (``scipy.fft.dctn(vol, axes=(1, 2))``, float32) when the caller has them already, e.g. to
    filter one volume with many depth increments (only read, never modified).
    """
    n_z, ny, nx = vol.shape
    use_haze = np.any(rb < 1)
    use_oof = w_oof is not None and np.any(np.asarray(w_oof) != 0)
    if np.all(s_ball < 1e-6) and not use_haze and not use_oof:
        return vol * ra[:, None, None].astype(np.float32)
    branches = [(np.asarray(s_ball, float), ra * rb)]
    if use_haze:
        branches.append((np.asarray(s_haze, float), ra * (1 - rb)))
    if use_oof:
        branches.append((np.asarray(s_oof, float), ra * np.asarray(w_oof, float)))
    mats = [_axial_matrix(sig, vsz) if axial and n_z > 1 else None for sig, _ in branches]
    mats = [None if m is None or np.allclose(m, np.eye(n_z)) else m for m in mats]
    fy, fx = dct_freqs(ny), dct_freqs(nx)

    chunk = max(1, (1 << 20) // (ny * nx))
    if coef is None:
        coef = np.empty((n_z, ny, nx), np.float32)
        for k0 in range(0, n_z, chunk):
            coef[k0: k0 + chunk] = sfft.dctn(vol[k0: k0 + chunk], axes=(1, 2), workers=-1)
    flat = coef.reshape(n_z, -1)
    out = np.empty((n_z, ny, nx), np.float32)
    for k0 in range(0, n_z, chunk):
        k1 = min(n_z, k0 + chunk)
        acc, tf_local = None, None  # tf_local: summed transfer functions of the branches without Z mixing
        for (sig, weight), m in zip(branches, mats):
            tf = lateral_tf(fy, fx, sig[k0:k1] / vyx[0], sig[k0:k1] / vyx[1], weight[k0:k1])
            if m is None:
                tf_local = tf if tf_local is None else np.add(tf_local, tf, out=tf_local)
                continue
            rows = m[k0:k1]
            cols = np.flatnonzero(rows.any(axis=0))
            j0, j1 = cols[0], cols[-1] + 1
            part = (rows[:, j0:j1] @ flat[j0:j1]).reshape(k1 - k0, ny, nx)
            part *= tf
            acc = part if acc is None else np.add(acc, part, out=acc)
        if tf_local is not None:
            tf_local *= coef[k0:k1]
            acc = tf_local if acc is None else np.add(acc, tf_local, out=acc)
        out[k0:k1] = sfft.idctn(acc, axes=(1, 2), workers=-1, overwrite_x=True)
    return out
