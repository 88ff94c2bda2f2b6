"""FFT-based depth-varying Gaussian filters used by the forward model (numpy/scipy only).

Split out of :mod:`deepcontrast.degradation` to keep that module short; the names are
re-exported there for backwards compatibility.
"""
import numpy as np
from scipy import fft as sfft

__all__ = []

def _axial_matrix(sigmas_um, vsz):
    """Rows k: normalized Gaussian of sigma ``sigmas_um[k]`` along Z centred on slice k.

    Edges are handled by reflection (like scipy.ndimage's 'reflect' mode), so a flat stack
    stays flat. Identity rows where the sigma is below 1% of a slice.
    """
    n = len(sigmas_um)
    idx = np.arange(n)
    m = np.zeros((n, n), np.float64)
    for k, s in enumerate(np.asarray(sigmas_um, float) / vsz):
        if s < 1e-2:
            m[k, k] = 1.0
            continue
        r = int(min(np.ceil(4 * s), 4 * n))
        offs = np.arange(-r, r + 1)
        w = np.exp(-0.5 * (offs / s) ** 2)
        w /= w.sum()
        j = k + offs
        # reflect (…2 1 0 | 0 1 2 … n-1 | n-1 n-2 …) until inside
        while np.any((j < 0) | (j >= n)):
            j = np.where(j < 0, -j - 1, j)
            j = np.where(j >= n, 2 * n - j - 1, j)
        np.add.at(m[k], j, w)
    return m.astype(np.float32)


def _pad_symmetric(vol, top, bottom, left, right):
    """Mirror-pad the last two axes (like ``np.pad(mode='symmetric')``, several times faster)."""
    n_z, ny, nx = vol.shape
    if not (top or bottom or left or right):
        return vol
    out = np.empty((n_z, ny + top + bottom, nx + left + right), np.float32)
    out[:, top: top + ny, left: left + nx] = vol
    # rows (within the original column range), reflecting repeatedly if the pad exceeds the size
    for i in range(top):
        out[:, top - 1 - i, left: left + nx] = vol[:, _mirror(i, ny)]
    for i in range(bottom):
        out[:, top + ny + i, left: left + nx] = vol[:, _mirror(ny - 1 - i, ny)]
    # columns (all rows, so corners are filled)
    for j in range(left):
        out[:, :, left - 1 - j] = out[:, :, left + _mirror(j, nx)]
    for j in range(right):
        out[:, :, left + nx + j] = out[:, :, left + _mirror(nx - 1 - j, nx)]
    return out


def _mirror(i, n):
    """Index of the i-th mirrored sample (symmetric reflection, period 2n)."""
    i = i % (2 * n)
    return i if i < n else 2 * n - 1 - i


def _lateral_tf(fy, fx, sy, sx):
    """Gaussian transfer functions for each of k sigmas: (k, ny, nx_r) float32."""
    gy = np.exp(-2 * np.pi**2 * (np.asarray(sy)[:, None] * fy[None]) ** 2).astype(np.float32)
    gx = np.exp(-2 * np.pi**2 * (np.asarray(sx)[:, None] * fx[None]) ** 2).astype(np.float32)
    return gy[:, :, None] * gx[:, None, :]


def _blur_mix(vol, ra, rb, s_ball, s_haze, vsz, vyx, axial, s_oof=None, w_oof=None):
    """out[k] = ra[k] * (rb[k] * G(s_ball[k]) vol + (1 - rb[k]) * G(s_haze[k]) vol
    + w_oof[k] * G(s_oof[k]) vol)[k]   (the last term only when ``w_oof`` has non-zeros).

    ``vol`` is (n_z, ny, nx) float32; sigmas in um, per output slice. Lateral Gaussians are
    applied in Fourier space (exact, periodic boundary with reflective padding), axial ones
    as a non-stationary Gaussian matrix along Z. Output slices are computed in chunks (the
    axial matrix rows of a chunk touch only a band of input slices), so the extra memory is
    a few chunks, not a few copies of the volume.
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
    # Reflective padding against wrap-around; enough for the widest kernel, capped at the size.
    smax = max(float(np.max(sig)) for sig, _ in branches)
    py = int(min(np.ceil(3 * smax / vyx[0]), ny - 1))
    px = int(min(np.ceil(3 * smax / vyx[1]), nx - 1))
    shape = (sfft.next_fast_len(ny + 2 * py, real=True), sfft.next_fast_len(nx + 2 * px, real=True))
    pads = (py, shape[0] - ny - py, px, shape[1] - nx - px)
    fy = sfft.fftfreq(shape[0]).astype(np.float32)
    fx = sfft.rfftfreq(shape[1]).astype(np.float32)
    mats = []
    for sig, _ in branches:
        m = _axial_matrix(sig, vsz) if axial and n_z > 1 else None
        mats.append(None if m is None or np.allclose(m, np.eye(n_z)) else m)

    flat = vol.reshape(n_z, -1)
    out = np.empty((n_z, ny, nx), np.float32)
    chunk = max(1, (1 << 23) // (shape[0] * shape[1]))
    for k0 in range(0, n_z, chunk):
        k1 = min(n_z, k0 + chunk)
        spec = None
        for (sig, weight), m in zip(branches, mats):
            if m is None:
                src = vol[k0:k1]
            else:
                rows = m[k0:k1]
                cols = np.flatnonzero(rows.any(axis=0))
                j0, j1 = cols[0], cols[-1] + 1
                src = (rows[:, j0:j1] @ flat[j0:j1]).reshape(k1 - k0, ny, nx)
            part = sfft.rfft2(_pad_symmetric(src, *pads), workers=-1)
            tf = _lateral_tf(fy, fx, sig[k0:k1] / vyx[0], sig[k0:k1] / vyx[1])
            tf *= weight[k0:k1, None, None].astype(np.float32)
            part *= tf
            if spec is None:
                spec = part
            else:
                spec += part
        res = sfft.irfft2(spec, s=shape, workers=-1)
        out[k0:k1] = res[:, py: py + ny, px: px + nx]
    return out
