"""Calibration of the forward model: recovers known parameters from data it rendered itself."""
import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from deepcontrast import DeepTissueDegradation
from deepcontrast.calibration import CalibrationReport, calibrate

VS = (2.0, 0.5, 0.5)


def blobs(shape, rng=0, per_slice=40):
    """Clean structure with exactly the same amount of signal in every slice.

    Its slice means are constant along Z, so after rendering they fall exactly as the
    attenuation ``exp(-z / L)`` (the model's blurs conserve the slice mean).
    """
    rng = np.random.default_rng(rng)
    shape3 = (1,) + tuple(shape) if len(shape) == 2 else tuple(shape)
    vol = np.zeros(shape3, np.float32)
    for k in range(shape3[0]):
        vol[k, rng.integers(0, shape3[1], per_slice), rng.integers(0, shape3[2], per_slice)] = 1.0
    vol = ndi.gaussian_filter(vol, (1.0, 2, 2))
    vol /= np.percentile(vol, 99.5)
    return vol.reshape(shape)


@pytest.fixture(scope="module")
def clean3d():
    return blobs((32, 128, 128), rng=0)


@pytest.mark.parametrize(
    "photons, attenuation_length, background, read_noise",
    [(50, 150, 0.0, 0.0), (20, 60, 0.1, 0.02), (200, 300, 0.0, 0.0), (10, 100, 0.5, 0.05)],
)
def test_recovers_photons_and_attenuation(clean3d, photons, attenuation_length, background, read_noise):
    true = DeepTissueDegradation(photons=photons, attenuation_length=attenuation_length, background=background,
                                 read_noise=read_noise)
    stack = true.render(clean3d, "ZYX", voxel_size=VS, rng=1)
    deg, report = DeepTissueDegradation.calibrate(stack, "ZYX", voxel_size=VS)
    # measured errors of these four cases at this seed (rng=1) / the largest over seeds 1-6:
    # photons 7.9% / 10%, attenuation length 5.1% / 8.9%, offset 0.21 / 0.21 x the dark pixels' noise
    # std, read noise 0.0051 / 0.0056 absolute without read noise, 0.0033 / 0.0033 (16.5%) of 0.02,
    # 0.0013 / 0.0064 (13%) of 0.05
    assert deg.photons == pytest.approx(photons, rel=0.1)
    assert deg.attenuation_length == pytest.approx(attenuation_length, rel=0.08)
    dark_std = np.sqrt(read_noise**2 + 0.01 / photons)
    assert abs(deg.background - background) < 0.4 * dark_std
    assert abs(deg.read_noise - read_noise) < (0.0075 if read_noise == 0 else 0.25 * read_noise)
    assert report.parameters["photons"]["estimated"] and report.parameters["attenuation_length"]["estimated"]
    assert report.mode == "point-scanning"


@pytest.mark.parametrize("dtype, scale, offset", [(np.uint16, 1000.0, 100.0), (np.uint8, 100.0, 10.0)])
def test_integer_camera_data_in_its_own_units(clean3d, dtype, scale, offset):
    stack = DeepTissueDegradation(photons=50, attenuation_length=100).render(clean3d, "ZYX", voxel_size=VS, rng=2)
    raw = np.clip(np.round(stack * scale + offset), 0, np.iinfo(dtype).max).astype(dtype)
    deg, _ = calibrate(raw, "ZYX", voxel_size=VS)
    assert deg.photons == pytest.approx(50 / scale, rel=0.15)  # photons per unit of *raw* intensity
    assert deg.attenuation_length == pytest.approx(100, rel=0.15)
    assert deg.background == pytest.approx(offset, abs=0.05 * scale)


@pytest.mark.parametrize("photons", [10, 50, 300])
def test_2d_noise_on_builtin_sample(photons):
    from deepcontrast.data import synthetic_tissue

    observed, _ = synthetic_tissue((256, 256), degradation=DeepTissueDegradation(photons=photons), depth=30, rng=3)
    deg, report = DeepTissueDegradation.calibrate(observed, "YX")
    assert deg.photons == pytest.approx(photons, rel=0.15)
    # 2D: nothing about depth can be estimated, defaults are kept and flagged
    assert deg.attenuation_length == DeepTissueDegradation().attenuation_length
    assert set(report.defaulted) >= {"attenuation_length", "blur_rate", "scattering_length", "out_of_focus"}
    assert report.mode == "unknown"


def test_calibrated_noise_matches_the_data():
    """Degrading with the calibrated model adds noise at the image's own level."""
    from deepcontrast.data import synthetic_tissue

    observed, _ = synthetic_tissue((256, 256), degradation=DeepTissueDegradation(photons=20), depth=20, rng=4)
    deg, _ = calibrate(observed, "YX")
    quiet = DeepTissueDegradation(photons=2000)
    added_cal = deg(observed, "YX", 0.0, rng=5) - observed
    added_quiet = quiet(observed, "YX", 0.0, rng=5) - observed
    # with extra_depth=0 the model only resamples the noise: variance ~ intensity / photons
    sig = np.clip(observed, 0, None)
    assert np.var(added_cal) == pytest.approx(sig.mean() / 20, rel=0.2)
    assert np.var(added_cal) > 10 * np.var(added_quiet)


def test_blur_rate_tracks_truth(clean3d):
    # measured on noise seeds 1-11 (this forward model and fit): 0.0 [0.0, 0.0] for 0.0 every time; 0.05 for
    # 0.06 every time (one step of the fit's 0.01 grid low), its interval [0.05, 0.06] in 7/11 and [0.05, 0.05]
    # in 4/11: allow the interval to miss the truth by that one grid step
    step = 0.01
    for blur in (0.0, 0.06):
        stack = DeepTissueDegradation(photons=100, blur_rate=blur).render(clean3d, "ZYX", voxel_size=VS, rng=6)
        deg, report = calibrate(stack, "ZYX", voxel_size=VS)
        assert deg.blur_rate == pytest.approx(blur, abs=0.015)
        lo, hi = report.parameters["blur_rate"]["interval"]
        assert lo - 1e-9 <= blur <= hi + step + 1e-9


def test_surface_last_and_rising_intensity(clean3d):
    stack = DeepTissueDegradation(photons=50, attenuation_length=80).render(clean3d, "ZYX", voxel_size=VS, rng=7)
    flipped = stack[::-1]
    deg, _ = calibrate(flipped, "ZYX", voxel_size=VS, surface="last")
    assert deg.attenuation_length == pytest.approx(80, rel=0.15)
    # the wrong surface: intensity rises with depth -> default kept, the report says to check `surface`
    deg, report = calibrate(flipped, "ZYX", voxel_size=VS, surface="first")
    assert deg.attenuation_length == DeepTissueDegradation().attenuation_length
    assert not report.parameters["attenuation_length"]["estimated"]
    assert "surface" in report.parameters["attenuation_length"]["reason"]


def test_flat_stack_falls_back_to_default(clean3d):
    stack = DeepTissueDegradation(photons=50, attenuation_length=None, scattering_length=None,
                                  blur_rate=0.0).render(clean3d, "ZYX", voxel_size=VS, rng=8)
    deg, report = calibrate(stack, "ZYX", voxel_size=VS)
    assert deg.attenuation_length == 150.0
    assert "attenuation_length" in report.defaulted
    assert deg.photons == pytest.approx(50, rel=0.15)


def test_image_thinner_than_a_noise_block_is_a_clear_error():
    # 6 rows hold no 8x8 block: the noise fit names the problem (before: an unpacking error)
    with pytest.raises(ValueError, match="too little usable image area"):
        calibrate(np.random.default_rng(0).random((6, 200)), "YX")


def test_constant_image_is_a_clear_error():
    with pytest.raises(ValueError, match="constant"):
        calibrate(np.full((64, 64), 7, np.uint16), "YX")


def test_empty_list_is_a_clear_error():
    with pytest.raises(ValueError, match="no images"):
        calibrate([], "YX")


def test_zero_size_image_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        calibrate(np.zeros((0, 64), np.float32), "YX")


def test_all_zero_image_is_a_clear_error():
    with pytest.raises(ValueError, match="constant"):
        calibrate(np.zeros((16, 64, 64), np.uint8), "ZYX")


def test_tiny_image_is_a_clear_error():
    with pytest.raises(ValueError, match="too little usable image area"):
        calibrate(np.random.default_rng(0).random((8, 8)), "YX")


def test_wrong_axes_is_a_clear_error():
    with pytest.raises(ValueError, match="axes"):
        calibrate(np.zeros((4, 32, 32)), "YX")


def test_noise_free_and_read_only_images_never_nan():
    rng = np.random.default_rng(9)
    clean = blobs((128, 128), rng=1)
    deg, report = calibrate(clean, "YX")  # no noise at all: smooth structure leaks only negligible "noise"
    assert (deg.photons is None or deg.photons > 1000) and deg.read_noise < 1e-3
    noisy = clean + rng.normal(0, 0.05, clean.shape)  # additive noise only
    deg, _ = calibrate(noisy, "YX")
    assert deg.photons is None and deg.read_noise == pytest.approx(0.05, rel=0.15)
    flat = 3.0 + rng.normal(0, 0.1, (128, 128))  # flat + noise: read noise only
    deg, report = calibrate(flat, "YX")
    assert deg.photons is None and deg.read_noise == pytest.approx(0.1, rel=0.15)
    d = report.to_dict()
    assert "nan" not in json.dumps(d).lower()


def test_multichannel_and_list_input(clean3d):
    true = DeepTissueDegradation(photons=40, attenuation_length=120)
    a = true.render(clean3d, "ZYX", voxel_size=VS, rng=10)
    b = true.render(blobs((32, 96, 96), rng=3), "ZYX", voxel_size=VS, rng=11)
    deg, _ = calibrate([a, b], "ZYX", voxel_size=VS)
    assert deg.photons == pytest.approx(40, rel=0.15)
    assert deg.attenuation_length == pytest.approx(120, rel=0.15)
    deg, _ = calibrate(np.stack([a, a]), "CZYX", voxel_size=VS)
    assert deg.attenuation_length == pytest.approx(120, rel=0.15)


def test_report_json_summary_and_figure(clean3d, tmp_path):
    stack = DeepTissueDegradation(photons=50).render(clean3d, "ZYX", voxel_size=VS, rng=12)
    deg, report = calibrate(stack, "ZYX", voxel_size=VS)
    assert isinstance(report, CalibrationReport)
    d = json.loads(json.dumps(report.to_dict()))
    assert DeepTissueDegradation.from_dict(d["degradation"]) == deg
    assert set(d["estimated"]) | set(d["defaulted"]) >= {"photons", "attenuation_length", "haze_sigma"}
    assert "haze_sigma" in d["defaulted"]
    text = report.summary()
    assert "photons" in text and "default" in text and "estimated" in text
    fig = report.figure()
    assert len(fig.axes) == 3 and all(ax.get_xlabel() for ax in fig.axes)
    # blur and halo with their uncertainties on the contrast panel
    panel = " ".join(t.get_text() for t in fig.axes[2].texts)
    assert "blur_rate = " in panel and "haze_sigma = " in panel and "[" in panel
    fig.savefig(tmp_path / "calibration.png")
    assert (tmp_path / "calibration.png").stat().st_size > 0


def test_auto_degradation_in_data_generation(clean3d, tmp_path):
    from deepcontrast import data

    stack = DeepTissueDegradation(photons=30, attenuation_length=90).render(clean3d, "ZYX", voxel_size=VS, rng=15)
    deg, _ = calibrate(stack, "ZYX", voxel_size=VS)
    raw_data = data.DegradedRawData.from_arrays([stack], "ZYX", "auto", (10, 20), voxel_size=VS, rng=0)
    assert raw_data.settings["degradation"] == deg.to_dict()
    assert raw_data.settings["calibration"]["degradation"] == deg.to_dict()
    save = tmp_path / "train.npz"
    data.create_patches(raw_data, (8, 32, 32), 2, save_file=str(save), verbose=False)
    settings = data.load_settings(save)
    assert settings["degradation"] == json.loads(json.dumps(deg.to_dict()))
    assert settings["calibration"]["parameters"]["photons"]["estimated"]


def test_noise_fit_attribute_access_follows_the_attribute_protocol():
    from deepcontrast.calibration.noise import NoiseFit

    fit = NoiseFit(photons=50.0, read_noise=0.01)
    assert fit.photons == 50.0
    assert not hasattr(fit, "no_such_key")
    assert getattr(fit, "no_such_key", "default") == "default"
    with pytest.raises(AttributeError, match="no_such_key"):
        fit.no_such_key


def test_blur_increment_notice_known_answers():
    from deepcontrast.calibration import blur_increment_notice

    deg = DeepTissueDegradation()  # blur_rate 0.03
    # increment sqrt(2 z d + d^2) * 0.03 at z = 0, d = 25: 0.75 um -> 0.375 px at 2 um, 1.5 px at 0.5 um
    line = blur_increment_notice(deg, (2.0, 2.0), (10, 40), 0.0)
    assert line is not None and "0.38 px" in line and "\n" not in line
    assert blur_increment_notice(deg, (0.5, 0.5), (10, 40), 0.0) is None
    # the fix it names reaches half a pixel: 0.5 * 2 um / 25 um = 0.04
    assert "blur_rate=0.04" in line
    assert blur_increment_notice(deg.replace(blur_rate=0.0401), (2.0, 2.0), (10, 40), 0.0) is None
    # deeper planes get a larger increment: at 60 um, sqrt(3000 + 625) * 0.03 = 1.8 um = 0.9 px
    assert blur_increment_notice(deg, (2.0, 2.0), (10, 40), 60.0) is None


def test_report_and_training_data_say_when_blur_is_sub_pixel():
    from deepcontrast.calibration import training_blur_notice
    from deepcontrast.data import DegradedRawData, synthetic_tissue

    plane, _ = synthetic_tissue((128, 128), voxel_size=(2.0, 2.0), degradation=DeepTissueDegradation(photons=50),
                                depth=0.0, rng=1)
    _, report = calibrate(plane, "YX", voxel_size=(2.0, 2.0), depth=0.0)
    assert report.blur_notice() is not None and "note: blur increment" in report.summary()
    _, fine = calibrate(plane, "YX", voxel_size=(0.5, 0.5), depth=0.0)
    assert fine.blur_notice() is None and "blur increment" not in fine.summary()
    raw = DegradedRawData.from_arrays([plane], "YX", DeepTissueDegradation(photons=50), (10, 40), voxel_size=(2, 2))
    assert "0.38 px" in training_blur_notice(raw)


def test_z_after_y_and_x_is_still_the_depth_axis():
    """'YXZ' stacks: Z is the depth axis and each voxel size goes with its letter."""
    from deepcontrast.data import synthetic_tissue

    obs, _ = synthetic_tissue((24, 96, 96), voxel_size=VS, degradation=DeepTissueDegradation(photons=50), rng=0)
    deg, report = calibrate(obs, "ZYX", voxel_size=VS)
    moved, moved_report = calibrate(np.moveaxis(obs, 0, -1), "YXZ", voxel_size=VS[1:] + VS[:1])
    assert moved == deg
    assert moved_report.inputs["voxel_size"] == [0.5, 0.5, 2.0]


def test_contrast_curve_ignores_empty_reference_planes():
    # planes of empty medium above the tissue (no light: mean 0) must not enter the reference of the
    # depth curve; the curve of the lit planes is then the same as without them (it was NaN)
    from deepcontrast import DeepTissueDegradation
    from deepcontrast.calibration.depth import contrast_vs_model, slice_stats
    from deepcontrast.data import synthetic_tissue

    deg = DeepTissueDegradation()
    lit = synthetic_tissue((12, 64, 64), voxel_size=(2, 0.5, 0.5), degradation=DeepTissueDegradation(photons=50),
                           rng=0)[0].astype(np.float64)
    noise = {"offset": 0.0, "gain": 1 / 50, "read_var": 0.0}
    stack = np.concatenate([np.zeros((3, 64, 64)), lit])
    z_all, z_lit = np.arange(15) * 2.0, np.arange(3, 15) * 2.0
    _, _, model_all = contrast_vs_model(slice_stats(stack, (0.5, 0.5), 0.0, noise, vz=2.0), z_all, deg, n_ref=5)
    _, _, model_lit = contrast_vs_model(slice_stats(lit, (0.5, 0.5), 0.0, noise, vz=2.0), z_lit, deg, n_ref=2)
    assert np.isfinite(model_all[4:]).all()  # from the reference depth (mean of the lit reference planes) on
    np.testing.assert_allclose(model_all[3:], model_lit, rtol=1e-6)
