"""Metrics on images whose values are known in closed form."""
import numpy as np
import pytest
from scipy import fft as sfft
from scipy import ndimage as ndi

from deepcontrast import metrics as M


def two_level(lo=1.0, hi=3.0, shape=(16, 16)):
    img = np.full(shape, lo)
    img[:, shape[1] // 2:] = hi
    return img


def textured(shape=(64, 64), rng=0):
    return ndi.gaussian_filter(np.random.default_rng(rng).random(shape), 1.0) + 1.0


# ---------------------------------------------------------------- no reference
def test_rms_two_level():
    # half a, half b: std = |b-a|/2, mean = (a+b)/2
    assert M.rms_contrast(two_level(1, 3)) == pytest.approx(0.5)


def test_rms_gain_invariant_and_haze_lowers_it():
    img = two_level(1, 3)
    assert M.rms_contrast(5 * img) == pytest.approx(M.rms_contrast(img))
    assert M.rms_contrast(img + 2) < M.rms_contrast(img)


def test_rms_constant_is_zero():
    assert M.rms_contrast(np.full((8, 8), 7.0)) == 0.0
    assert M.rms_contrast(np.zeros((8, 8))) == 0.0


def test_rms_mask():
    img = two_level(1, 3)
    assert M.rms_contrast(img, mask=img > 2) == 0.0


def test_rms_empty_mask_raises():
    with pytest.raises(ValueError, match="no pixels"):
        M.rms_contrast(two_level(), mask=np.zeros((16, 16), bool))


def test_rms_negative_mean_raises():
    with pytest.raises(ValueError, match="positive mean"):
        M.rms_contrast(two_level(-3, 1))


def test_michelson_two_level():
    assert M.michelson_contrast(two_level(1, 3)) == pytest.approx(0.5)
    assert M.michelson_contrast(two_level(0, 3)) == pytest.approx(1.0)


def test_michelson_constant_is_zero():
    assert M.michelson_contrast(np.zeros((4, 4))) == 0.0


def test_michelson_bad_percentiles():
    with pytest.raises(ValueError, match="lower < upper"):
        M.michelson_contrast(two_level(), lower=99, upper=1)


def test_weber_two_level_otsu_and_mask():
    img = two_level(1, 3)
    assert M.weber_contrast(img) == pytest.approx(2.0)
    assert M.weber_contrast(img, mask=img > 2) == pytest.approx(2.0)


def test_weber_constant_is_zero():
    assert M.weber_contrast(np.full((4, 4), 2.0)) == 0.0


def test_weber_full_mask_raises():
    with pytest.raises(ValueError, match="no background"):
        M.weber_contrast(two_level(), mask=np.ones((16, 16), bool))


def test_weber_zero_background_raises():
    with pytest.raises(ValueError, match="background mean"):
        M.weber_contrast(two_level(0, 3))


def test_dcts_constant_zero_and_closed_form():
    assert M.dcts(np.full((8, 8), 3.0)) == 0.0
    assert M.dcts(np.zeros((8, 8))) == 0.0
    # DC + one DCT basis function with equal energy: normalized |c| = 1/sqrt(2) twice
    c = np.zeros((8, 8))
    c[0, 0] = c[0, 2] = 1.0
    img = sfft.idctn(c, norm="ortho")
    a = 1 / np.sqrt(2)
    n_support = sum(i / 8 + j / 8 < 1 for i in range(8) for j in range(8))
    assert M.dcts(img) == pytest.approx(-2 * a * np.log2(a) / n_support)


def test_dcts_blur_lowers_it():
    x = textured()
    assert M.dcts(ndi.gaussian_filter(x, 2)) < M.dcts(x)


def test_dcts_needs_2d():
    with pytest.raises(ValueError, match="Y and X"):
        M.dcts(np.ones(8))


def test_contrast_profile_per_slice():
    stack = np.stack([two_level(1, 3), two_level(1, 1), two_level(0, 1) + 1])
    prof = M.contrast_profile(stack, "ZYX")
    np.testing.assert_allclose(prof, [0.5, 0.0, 1 / 3])
    # Z not first: same answer
    np.testing.assert_allclose(M.contrast_profile(np.moveaxis(stack, 0, -1), "YXZ"), prof)
    assert M.contrast_profile(two_level(), "YX").shape == (1,)


def test_contrast_profile_unknown_metric():
    with pytest.raises(ValueError, match="unknown contrast metric"):
        M.contrast_profile(two_level(), "YX", metric="nope")


# ---------------------------------------------------------------- detail
def test_detail_retention_affine_copy_is_one():
    x = textured()
    assert M.detail_retention(x, 2.5 * x - 0.3) == pytest.approx(1.0)
    assert M.detail_retention(x, x + 5 * ndi.gaussian_filter(x, 20)) > 0.99  # haze change does not count


def test_detail_retention_loss_and_shift():
    x = textured()
    assert M.detail_retention(x, -x) == 0.0
    assert M.detail_retention(x, np.ones_like(x)) == 0.0
    shifted = np.roll(x, 1, axis=1)
    far = np.roll(x, 20, axis=1)
    blurred = ndi.gaussian_filter(x, 3)
    assert M.detail_retention(x, far) < 0.2 < M.detail_retention(x, shifted) < 1
    assert M.detail_retention(x, blurred) < M.detail_retention(x, ndi.gaussian_filter(x, 0.7))


def test_detail_retention_constant_before_raises():
    with pytest.raises(ValueError, match="no structure"):
        M.detail_retention(np.ones((16, 16)), textured((16, 16)))


def test_detail_retention_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        M.detail_retention(textured((16, 16)), textured((16, 17)))


# ---------------------------------------------------------------- ground truth
def test_psnr_affine_copy_is_inf_and_known_value():
    t = textured()
    assert M.psnr(3 * t + 2, t) == np.inf
    assert M.ssim(3 * t + 2, t) == pytest.approx(1.0)
    assert M.nrmse(3 * t + 2, t) == pytest.approx(0.0, abs=1e-9)
    # raw values: constant offset e with data range R gives PSNR = 20 log10(R / e)
    t = two_level(0, 1)
    assert M.psnr(t + 0.1, t, normalize=None) == pytest.approx(20.0)
    assert M.nrmse(t + 0.1, t, normalize=None) == pytest.approx(0.1)


def test_psnr_noise_closed_form():
    rng = np.random.default_rng(1)
    t = two_level(0, 1, (128, 128))
    noise = rng.normal(0, 0.05, t.shape)
    noise -= noise.mean()
    # percentile-normalized truth of a 0/1 image is itself; MSE = var(noise)
    expected = 10 * np.log10(1 / np.mean(noise**2))
    assert M.psnr(t + noise, t, normalize=None) == pytest.approx(expected)
    assert M.psnr(t + noise, t) >= expected - 1e-9  # the affine fit can only lower the error


def test_ssim_stack_and_small_planes():
    t = textured((3, 32, 32))
    assert M.ssim(t, t) == pytest.approx(1.0)
    assert M.ssim(t + np.random.default_rng(0).normal(0, 0.1, t.shape), t) < 0.9
    with pytest.raises(ValueError, match="7x7"):
        M.ssim(np.ones((4, 4)) + np.eye(4), np.eye(4))


def test_constant_truth_raises():
    with pytest.raises(ValueError, match="constant"):
        M.psnr(textured((16, 16)), np.ones((16, 16)))


def test_bad_normalize_raises():
    with pytest.raises(ValueError, match="normalize"):
        M.psnr(textured((16, 16)), textured((16, 16), rng=1), normalize="minmax")


# ---------------------------------------------------------------- trade-off
def test_iteration_tradeoff_and_suggestion():
    rng = np.random.default_rng(0)
    truth = ndi.gaussian_filter(rng.random((64, 64)), 1.0)
    raw = ndi.gaussian_filter(truth, 1.5) + 0.5  # hazy, blurred
    iterates = [ndi.gaussian_filter(truth, 1.0) + 0.3, ndi.gaussian_filter(truth, 0.5) + 0.1, ndi.gaussian_filter(truth, 6)]
    rows = M.iteration_tradeoff(raw, iterates, ground_truth=truth)
    assert [r["iteration"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["contrast_gain"] == pytest.approx(1.0)
    assert rows[0]["detail_retention"] == pytest.approx(1.0)
    assert rows[1]["contrast_gain"] > 1 and rows[2]["contrast_gain"] > rows[1]["contrast_gain"]
    assert rows[3]["detail_retention"] < 0.5
    assert rows[2]["psnr"] > rows[0]["psnr"]
    assert all(v is None or np.isfinite(v) for r in rows for v in r.values())
    assert M.suggest_n_iter(rows, min_retention=0.5) == 2
    assert M.suggest_n_iter(rows, min_retention=1.0) == 1  # fallback: one iteration


def test_tradeoff_clips_undershoot_and_undefined_is_none_not_nan():
    raw = textured((16, 16))
    rows = M.iteration_tradeoff(raw, [raw - 10, two_level(0, 3)])
    # all negative -> clipped to 0 for the contrast ratios (a constant image: contrast 0); detail
    # retention sees the values as given, an offset copy of the raw: all detail kept
    assert rows[1]["rms_contrast"] == 0.0 and rows[1]["contrast_gain"] == 0.0
    assert rows[1]["detail_retention"] == pytest.approx(1.0)
    # zero background: Weber contrast undefined -> None (logged), RMS contrast of 0/3 halves is 1
    assert rows[2]["weber_contrast"] is None and rows[2]["rms_contrast"] == pytest.approx(1.0)
    assert M.suggest_n_iter(rows) == 1


def test_tradeoff_shape_mismatch():
    with pytest.raises(ValueError, match="iterate 1"):
        M.iteration_tradeoff(textured((16, 16)), [textured((8, 8))])


def test_suggest_needs_iterates():
    with pytest.raises(ValueError, match="at least one iterate"):
        M.suggest_n_iter([{"contrast_gain": 1, "detail_retention": 1}])


def test_contrast_profile_undefined_slices():
    stack = np.stack([two_level(1, 3), two_level(-3, 1)])
    with pytest.raises(ValueError, match="positive mean"):
        M.contrast_profile(stack, "ZYX")
    prof = M.contrast_profile(stack, "ZYX", undefined="nan")
    assert prof[0] == pytest.approx(0.5) and np.isnan(prof[1])


def test_no_restored_depth_but_changed_iterates_falls_back_to_image_statistics():
    # the consistency check resolved no depth (restored depth 0 everywhere) while the iterates
    # raised contrast: it could not resolve the restoration, so image statistics choose
    from deepcontrast.metrics import suggest_n_iter

    cons = dict(restored_depth=[[0.0, 0.0], [0.2, 0.1], [0.3, 0.0]], chi2=[[1, 1]] * 3, plane_depth=[2, 4])
    changed = [dict(contrast_gain=1, detail_retention=1), dict(contrast_gain=1.3, detail_retention=.99),
               dict(contrast_gain=1.6, detail_retention=.985), dict(contrast_gain=1.7, detail_retention=.95)]
    n, info = suggest_n_iter(changed, consistency=cons, explain=True)
    assert (n, info["rule"], info["data_consistency"]) == (2, "image statistics", 0) and "could not" not in info["text"]
    assert "resolved no restored depth" in info["note"]
    same = [dict(contrast_gain=1, detail_retention=1)] + [dict(contrast_gain=1.005, detail_retention=.999)] * 3
    n, info = suggest_n_iter(same, consistency=cons, explain=True)
    assert (n, info["rule"]) == (0, "no restoration")
