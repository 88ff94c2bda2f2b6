"""Properties of the deep-tissue forward model whose right answers are known in closed form."""
import sys

import numpy as np
import pytest

from deepcontrast import DeepTissueDegradation
from deepcontrast.degradation import slice_depths

NO_HAZE = dict(scattering_length=None)


def point_source_2d(n=65):
    img = np.zeros((n, n), np.float32)
    img[n // 2, n // 2] = 1.0
    return img


def second_moment_sigma(img, axis_len, vs):
    """Standard deviation (um) of ``img`` along its last axis, from the second moment."""
    prof = img.sum(axis=tuple(range(img.ndim - 1)))
    x = (np.arange(axis_len) - axis_len // 2) * vs
    m = prof.sum()
    mu = (x * prof).sum() / m
    return np.sqrt(((x - mu) ** 2 * prof).sum() / m)


def structured(shape=(64, 64), seed=0):
    rng = np.random.default_rng(seed)
    from scipy.ndimage import gaussian_filter

    return (gaussian_filter(rng.random(shape), 2) * 4 + 0.5).astype(np.float32)


def test_no_tensorflow_import():
    import subprocess

    code = "import sys, deepcontrast, deepcontrast.degradation; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_identity_at_zero_extra_depth():
    img = structured((3, 32, 40))
    deg = DeepTissueDegradation()
    out = deg(img.astype(np.float64), "ZYX", 0.0, voxel_size=(2, 0.5, 0.5))
    assert out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_array_equal(out, img)


def test_input_not_modified_and_dtype():
    img = (structured((32, 32)) * 100).astype(np.uint16)
    before = img.copy()
    out = DeepTissueDegradation(photons=5)(img, "YX", 20, rng=1)
    np.testing.assert_array_equal(img, before)
    assert out.dtype == np.float32 and out.shape == img.shape


@pytest.mark.parametrize("extra", [5.0, 30.0, 120.0])
def test_flat_image_mean_scales_by_attenuation(extra):
    img = np.full((6, 40, 48), 3.0, np.float32)
    deg = DeepTissueDegradation(attenuation_length=80.0)  # haze on: a flat image stays flat
    out = deg(img, "ZYX", extra, voxel_size=(2, 0.5, 0.5), depth=10)
    np.testing.assert_allclose(out, 3.0 * np.exp(-extra / 80.0), rtol=1e-5)


def test_background_is_neither_attenuated_nor_added_twice():
    img = np.full((32, 32), 1.0 + 0.25, np.float32)  # signal 1.0 on a 0.25 offset
    deg = DeepTissueDegradation(attenuation_length=50.0, background=0.25)
    out = deg(img, "YX", 50.0)
    np.testing.assert_allclose(out, 0.25 + np.exp(-1.0), rtol=1e-5)


def test_contrast_strictly_decreases_with_extra_depth():
    img = structured((96, 96))
    deg = DeepTissueDegradation()
    contrasts = []
    for d in [0, 5, 10, 20, 40, 80]:
        out = deg(img, "YX", d, depth=20, voxel_size=(0.5, 0.5))
        contrasts.append(out.std() / out.mean())
    assert np.all(np.diff(contrasts) < 0), contrasts


@pytest.mark.parametrize("depth,extra", [(0.0, 30.0), (60.0, 10.0), (60.0, 40.0)])
def test_point_source_blur_matches_increment(depth, extra):
    vs = 0.25
    deg = DeepTissueDegradation(**NO_HAZE)
    out = deg(point_source_2d(129), "YX", extra, depth=depth, voxel_size=(vs, vs))
    expected = np.sqrt(deg.psf_width(depth + extra) ** 2 - deg.psf_width(depth) ** 2)
    for axis in (0, 1):
        measured = second_moment_sigma(np.moveaxis(out, axis, -1), 129, vs)
        assert measured == pytest.approx(expected, rel=0.01)
    # total signal is the attenuated point
    assert out.sum() == pytest.approx(np.exp(-extra / deg.attenuation_length), rel=1e-4)


@pytest.mark.parametrize("surface", ["first", "last"])
def test_deeper_slices_blur_more_in_3d(surface):
    vs = (2.0, 0.25, 0.25)
    n_z = 5
    vol = np.zeros((n_z, 65, 65), np.float32)
    vol[:, 32, 32] = 1.0  # a vertical line: lateral blur of each slice is its own increment
    deg = DeepTissueDegradation(**NO_HAZE, blur_rate=0.05)
    out = deg(vol, "ZYX", 20.0, depth=10.0, voxel_size=vs, surface=surface)
    sig = np.array([second_moment_sigma(out[k], 65, vs[2]) for k in range(n_z)])
    z = deg.slice_depths(n_z, depth=10.0, voxel_size_z=vs[0], surface=surface)
    expected = np.sqrt(deg.psf_width(z + 20.0) ** 2 - deg.psf_width(z) ** 2)
    np.testing.assert_allclose(sig, expected, rtol=0.01)
    if surface == "first":
        assert np.all(np.diff(sig) > 0)
    else:
        assert np.all(np.diff(sig) < 0)


def test_axial_blur_of_a_plane():
    vs = (0.5, 1.0, 1.0)
    vol = np.zeros((41, 8, 8), np.float32)
    vol[20] = 1.0  # a thin sheet: only axial blur shows
    deg = DeepTissueDegradation(**NO_HAZE, blur_rate=0.05)
    out = deg(vol, "ZYX", 30.0, depth=50.0, voxel_size=vs)
    prof = out[:, 4, 4]
    z = (np.arange(41) - 20) * vs[0]
    sigma = np.sqrt((z**2 * prof).sum() / prof.sum())
    z20 = 50.0 + 20 * vs[0]
    expected = np.sqrt(deg.psf_width(z20 + 30) ** 2 - deg.psf_width(z20) ** 2)
    assert sigma == pytest.approx(expected, rel=0.05)  # kernel width varies slightly with depth


def test_composition_is_exact_without_haze_2d():
    img = structured((96, 96))
    deg = DeepTissueDegradation(**NO_HAZE)
    kw = dict(voxel_size=(0.5, 0.5))
    step2 = deg(deg(img, "YX", 10.0, depth=20, **kw), "YX", 25.0, depth=30, **kw)
    once = deg(img, "YX", 35.0, depth=20, **kw)
    # Gaussians compose exactly; what is left is float32 FFT round-off and the mirrored border
    assert np.abs(step2 - once).max() < 1e-4 * (once.max() - once.min())


def test_composition_without_haze_3d():
    img = structured((3, 96, 96))
    deg = DeepTissueDegradation(**NO_HAZE)
    kw = dict(voxel_size=(1.0, 0.5, 0.5))
    # the second increment starts from the depth the first one reached (20 + 10)
    wrong_depth = deg(deg(img, "ZYX", 10.0, depth=20, **kw), "ZYX", 25.0, depth=20, **kw)
    step1 = deg(img, "ZYX", 10.0, depth=20, **kw)
    step2 = deg(step1, "ZYX", 25.0, depth=30, **kw)
    once = deg(img, "ZYX", 35.0, depth=20, **kw)
    scale = once.max() - once.min()
    # in Z the kernel width changes from slice to slice and a sub-voxel axial Gaussian is
    # sampled on the slice grid, so composition is exact only up to 0.2% of the range
    assert np.abs(step2 - once).max() < 2e-3 * scale
    assert np.abs(wrong_depth - once).max() > 10 * np.abs(step2 - once).max()  # depth matters


def test_composition_with_haze_within_tolerance():
    img = structured((128, 128))
    deg = DeepTissueDegradation()
    kw = dict(voxel_size=(0.5, 0.5))
    step2 = deg(deg(img, "YX", 15.0, depth=40, **kw), "YX", 15.0, depth=55, **kw)
    once = deg(img, "YX", 30.0, depth=40, **kw)
    np.testing.assert_allclose(step2.mean(), once.mean(), rtol=1e-4)  # total weight is exact
    rel = np.abs(step2 - once).max() / (once.max() - once.min())
    assert rel < 0.02  # the halo of a halo differs in shape: documented tolerance 2% of range


def ndimage_increment(deg, img, extra, depth, vs):
    """The increment by brute force: per slice k and per branch, scipy.ndimage's Gaussian with
    slice k's own sigmas ('reflect' boundary) over the whole stack, slice k taken out."""
    from scipy.ndimage import gaussian_filter

    vol = img.astype(np.float64).reshape((-1,) + img.shape[-2:])
    z = deg.slice_depths(len(vol), depth=depth, voxel_size_z=vs[0] if img.ndim == 3 else 1.0)
    ra, rb = np.exp(-extra / deg.attenuation_length), np.exp(-extra / deg.scattering_length)
    s_b = np.sqrt(deg.psf_width(z + extra) ** 2 - deg.psf_width(z) ** 2)
    s_h = deg.haze_width(z + extra)
    branches = [(s_b, rb), (s_h, 1 - rb), (2 * s_h, deg.out_of_focus_increment(z, extra))]
    out = np.zeros_like(vol)
    for k in range(len(vol)):
        for sig, w in branches:
            sk = sig if np.ndim(sig) == 0 else sig[k]
            sigma = [sk / v for v in vs] if img.ndim == 3 else [0.0, sk / vs[0], sk / vs[1]]
            radius = [int(np.ceil(4 * sigma[0])), *(int(np.ceil(8 * s)) for s in sigma[1:])]
            w_k = w if np.ndim(w) == 0 else w[k]
            out[k] += ra * w_k * gaussian_filter(vol, sigma, mode="reflect", radius=radius)[k]
    return out.reshape(img.shape)


@pytest.mark.parametrize("axes,shape,vs", [("ZYX", (9, 47, 40), (1.0, 0.4, 0.4)), ("YX", (37, 52), (0.4, 0.4))])
def test_matches_ndimage_with_out_of_focus_light_and_axial_blur(axes, shape, vs):
    # lateral sigmas >= 2.5 pixels (where a sampled Gaussian and the Gaussian transfer function
    # agree), halos wider than the image (repeated reflection), Z kernels wider than the stack
    img = structured(shape)
    img[..., :5] += 2.0  # a bright border: wrong boundary handling shows at once
    deg = DeepTissueDegradation(out_of_focus=1.0, blur_rate=0.05)
    out = deg(img, axes, 20.0, depth=10.0, voxel_size=vs)
    ref = ndimage_increment(deg, img, 20.0, 10.0, vs)
    assert np.abs(out - ref).max() < 1e-4 * (ref.max() - ref.min())


@pytest.mark.parametrize("photons", [5.0, 50.0])
def test_shot_noise_variance(photons):
    img = np.full((256, 256), 2.0, np.float32)
    deg = DeepTissueDegradation(photons=photons)
    out = deg(img, "YX", 0.0, rng=0)
    assert out.mean() == pytest.approx(2.0, rel=0.01)
    assert out.var() == pytest.approx(2.0 / photons, rel=0.05)


def test_read_noise_and_seed():
    img = np.full((128, 128), 1.0, np.float32)
    deg = DeepTissueDegradation(read_noise=0.1)
    a, b, c = (deg(img, "YX", 0.0, rng=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() == pytest.approx(0.1, rel=0.05)


def test_channels_and_samples_are_independent():
    img = structured((2, 3, 48, 48))  # S C Y X
    deg = DeepTissueDegradation()
    out = deg(img, "SCYX", 20.0, depth=10)
    for s in range(2):
        for c in range(3):
            np.testing.assert_allclose(out[s, c], deg(img[s, c], "YX", 20.0, depth=10), atol=1e-6)
    out_t = deg(np.moveaxis(img, 1, -1), "SYXC", 20.0, depth=10)
    np.testing.assert_allclose(np.moveaxis(out_t, -1, 1), out, atol=1e-6)


def test_render_contrast_falls_with_depth():
    vol = np.tile(structured((64, 64))[None], (20, 1, 1))
    deg = DeepTissueDegradation()
    obs = deg.render(vol, "ZYX", voxel_size=(5.0, 0.5, 0.5))
    c = obs.std(axis=(1, 2)) / obs.mean(axis=(1, 2))
    assert np.all(np.diff(c) < 0)
    np.testing.assert_allclose(obs.mean(axis=(1, 2)), vol.mean() * deg.attenuation(np.arange(20) * 5.0), rtol=1e-3)


def test_dict_round_trip():
    deg = DeepTissueDegradation(photons=30, scattering_length=None)
    assert DeepTissueDegradation.from_dict(deg.to_dict()) == deg
    with pytest.raises(ValueError, match="unknown degradation parameters"):
        DeepTissueDegradation.from_dict({"photon": 3})


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda d: d(np.zeros((4, 4)), "ZYX", 1.0), "do not match"),
        (lambda d: d(np.zeros((4, 4)), "YQ", 1.0), "invalid axes"),
        (lambda d: d(np.full((4, 4), np.nan), "YX", 1.0), "NaN/Inf"),
        (lambda d: d(np.zeros((4, 4)), "YX", -1.0), "extra_depth must be >= 0"),
        (lambda d: d(np.zeros((4, 4)), "YX", float("nan")), "extra_depth must be a finite"),
        (lambda d: d(np.zeros((2, 4, 4)), "ZYX", 1.0, voxel_size=(1, 1)), "voxel_size"),
        (lambda d: d(np.zeros((2, 4, 4)), "ZYX", 1.0, surface="top"), "surface must be"),
        (lambda d: d(np.zeros((4, 4)), "YX", 1.0, depth=-5), "depth must be >= 0"),
    ],
)
def test_bad_input_errors(call, match):
    deg = DeepTissueDegradation()
    with pytest.raises(ValueError, match=match):
        call(deg)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(attenuation_length=-1), "attenuation_length must be > 0"),
        (dict(scattering_length=0), "scattering_length must be > 0"),
        (dict(blur_rate=-0.1), "blur_rate must be >= 0"),
        (dict(photons=0), "photons must be > 0"),
        (dict(psf_sigma="wide"), "psf_sigma must be a number"),
    ],
)
def test_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        DeepTissueDegradation(**kw)


def test_slice_depths_without_a_model():
    # the surface end of Z is at `depth`, slices voxel_size_z apart; the method needs no parameters of the model
    np.testing.assert_array_equal(slice_depths(4, depth=10, voxel_size_z=2.5), [10, 12.5, 15, 17.5])
    np.testing.assert_array_equal(slice_depths(4, depth=10, voxel_size_z=2.5, surface="last"), [17.5, 15, 12.5, 10])
    np.testing.assert_array_equal(DeepTissueDegradation(blur_rate=0.2).slice_depths(3, surface="last"), [2, 1, 0])
    with pytest.raises(ValueError, match="surface must be 'first' or 'last'"):
        slice_depths(3, surface="top")


def test_z_after_y_and_x_is_still_the_depth_axis():
    # 'YXZ' with its voxel sizes in that order is the same stack as 'ZYX': same result, moved
    stack = structured((6, 32, 40))
    deg = DeepTissueDegradation(haze_sigma=1.0)
    zyx = deg(stack, "ZYX", 30.0, depth=10, voxel_size=(2.0, 0.5, 0.4), surface="last")
    yxz = deg(np.moveaxis(stack, 0, -1), "YXZ", 30.0, depth=10, voxel_size=(0.5, 0.4, 2.0), surface="last")
    np.testing.assert_allclose(yxz, np.moveaxis(zyx, 0, -1), rtol=0, atol=1e-6 * float(zyx.max()))
