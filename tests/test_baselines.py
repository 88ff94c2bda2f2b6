"""CLAHE and Richardson-Lucy baselines: shapes, ranges, and a known deconvolution."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from deepcontrast.baselines import clahe, gaussian_psf, richardson_lucy
from deepcontrast.degradation import DeepTissueDegradation
from deepcontrast.metrics import detail_retention, psnr, rms_contrast


def spots(shape=(64, 64), n=30, rng=0):
    rng = np.random.default_rng(rng)
    img = np.zeros(shape)
    img[tuple(rng.integers(0, s, n) for s in shape)] = 1.0
    return ndi.gaussian_filter(img, 1.0) * 10


def test_clahe_keeps_range_shape_and_raises_contrast():
    rng = np.random.default_rng(0)
    img = 100 + 20 * ndi.gaussian_filter(rng.random((3, 64, 64)), 2)
    out = clahe(img, "ZYX")
    assert out.shape == img.shape and out.dtype == np.float32
    assert out.min() >= img.min() - 1e-3 and out.max() <= img.max() + 1e-3
    assert rms_contrast(out) > rms_contrast(img)
    assert np.array_equal(img, 100 + 20 * ndi.gaussian_filter(np.random.default_rng(0).random((3, 64, 64)), 2))


def test_clahe_per_slice_vs_volume_and_channels():
    img = np.random.default_rng(1).random((4, 2, 32, 32))
    assert clahe(img, "ZCYX").shape == img.shape
    assert clahe(img[:, 0], "ZYX", per_slice=False).shape == (4, 32, 32)


def test_clahe_constant_unchanged():
    np.testing.assert_array_equal(clahe(np.full((16, 16), 5.0), "YX"), 5.0)


def test_clahe_bad_axes():
    with pytest.raises(ValueError, match="axes"):
        clahe(np.ones((4, 16, 16)), "YX")


def test_gaussian_psf_normalized_and_centered():
    p = gaussian_psf((1.0, 2.0))
    assert p.sum() == pytest.approx(1.0)
    assert p.shape == (7, 13)
    assert np.unravel_index(p.argmax(), p.shape) == (3, 6)


def test_richardson_lucy_undoes_known_blur():
    clean = spots()
    psf = gaussian_psf(2.0)
    blurred = ndi.convolve(clean, psf, mode="reflect") + 1.0
    out = richardson_lucy(blurred, "YX", psf=psf, n_iter=30)
    assert out.shape == clean.shape and out.dtype == np.float32
    assert psnr(out, clean) > psnr(blurred, clean) + 2


def test_richardson_lucy_default_psf_from_forward_model():
    deg = DeepTissueDegradation()
    clean = spots((96, 96), 60)
    obs = deg.render(clean, "YX", depth=30, voxel_size=(0.5, 0.5))
    out = richardson_lucy(obs, "YX", depth=30, voxel_size=(0.5, 0.5), n_iter=20)
    assert psnr(out, clean) > psnr(obs, clean) + 2
    # a deeper assumed depth means a wider PSF and stronger sharpening
    shallow = richardson_lucy(obs, "YX", depth=0, voxel_size=(0.5, 0.5), n_iter=20, include_haze=False)
    assert detail_retention(obs, shallow) > detail_retention(obs, out)


def test_richardson_lucy_per_depth_psf_in_3d():
    rng = np.random.default_rng(2)
    stack = np.stack([spots((32, 32), rng=k) for k in range(6)]) + rng.random((6, 32, 32))
    out = richardson_lucy(stack, "ZYX", n_iter=5, voxel_size=(20, 0.5, 0.5))
    assert out.shape == stack.shape
    # the surface slice (narrow PSF) changes less than the deepest slice (wide PSF)
    change = [np.abs(out[k] - stack[k]).mean() for k in range(6)]
    assert change[0] < change[-1]
    flipped = richardson_lucy(stack, "ZYX", n_iter=5, voxel_size=(20, 0.5, 0.5), surface="last")
    assert np.abs(flipped[0] - stack[0]).mean() > np.abs(flipped[-1] - stack[-1]).mean()


def test_richardson_lucy_bad_n_iter():
    with pytest.raises(ValueError, match="n_iter"):
        richardson_lucy(spots(), "YX", n_iter=0)


def test_richardson_lucy_bad_psf():
    with pytest.raises(ValueError, match="psf"):
        richardson_lucy(spots(), "YX", psf=np.ones((3, 3, 3)))


def test_richardson_lucy_constant_unchanged():
    np.testing.assert_array_equal(richardson_lucy(np.full((16, 16), 2.0), "YX"), 2.0)
