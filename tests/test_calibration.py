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


def test_out_of_focus_default_leaves_model_unchanged(clean3d):
    a = DeepTissueDegradation(photons=50).render(clean3d, "ZYX", voxel_size=VS, rng=13)
    b = DeepTissueDegradation(photons=50, out_of_focus=0.0).render(clean3d, "ZYX", voxel_size=VS, rng=13)
    np.testing.assert_array_equal(a, b)
    deg = DeepTissueDegradation(out_of_focus=0.4)
    assert DeepTissueDegradation.from_dict(deg.to_dict()) == deg
    with pytest.raises(ValueError, match="out_of_focus"):
        DeepTissueDegradation(out_of_focus=-1)


def test_out_of_focus_term_adds_axial_light_and_composes_in_mean():
    plane = np.zeros((21, 32, 32), np.float32)
    plane[10] = 1.0  # a single bright plane
    deg = DeepTissueDegradation(out_of_focus=0.5, attenuation_length=None, scattering_length=50)
    out = deg.render(plane, "ZYX", voxel_size=(1, 1, 1))
    base = deg.replace(out_of_focus=0.0).render(plane, "ZYX", voxel_size=(1, 1, 1))
    # light from the bright plane reaches planes 5 um away only through the out-of-focus term
    assert out[15].mean() > base[15].mean() + 0.01
    # training increment = the model's own: a flat image's mean grows by (1 + w(z + d)) / (1 + w(z))
    flat = np.ones((32, 32), np.float32)
    y = deg(flat, "YX", 20.0, depth=10.0)
    w = deg.out_of_focus_weight
    assert y.mean() == pytest.approx((1 + w(30.0)) / (1 + w(10.0)), rel=1e-3)


def test_out_of_focus_increment_is_the_models_own():
    deg = DeepTissueDegradation(out_of_focus=1.0, attenuation_length=None)
    z = np.array([0.0, 50.0, 90.0])
    w = deg.out_of_focus_weight
    np.testing.assert_allclose(deg.out_of_focus_increment(z, 20.0), (w(z + 20.0) - w(z)) / (1 + w(z)))
    # confocal (out_of_focus=0): no out-of-focus light at all
    assert np.all(DeepTissueDegradation().out_of_focus_increment(z, 20.0) == 0)


def test_out_of_focus_increments_compose_in_mean():
    """d1 then d2 multiplies the mean by a(d1 + d2) (1 + w(z + d1 + d2)) / (1 + w(z)), as d1 + d2 does."""
    deg = DeepTissueDegradation(out_of_focus=0.5, attenuation_length=80, scattering_length=60)
    flat = np.ones((8, 24, 24), np.float32)
    vs = (2.0, 1.0, 1.0)
    once = deg(flat, "ZYX", 10.0, depth=5.0, voxel_size=vs)
    twice = deg(once, "ZYX", 15.0, depth=15.0, voxel_size=vs)  # once now looks 10 um deeper
    direct = deg(flat, "ZYX", 25.0, depth=5.0, voxel_size=vs)
    z = deg.slice_depths(8, depth=5.0, voxel_size_z=2.0)
    w, a = deg.out_of_focus_weight, deg.attenuation
    expect = a(25.0) / a(0.0) * (1 + w(z + 25.0)) / (1 + w(z))
    # slice means (the axial out-of-focus kernel mixes neighbouring slices: compare the stack mean tightly)
    assert twice.mean() == pytest.approx(expect.mean(), rel=0.02)
    assert direct.mean() == pytest.approx(expect.mean(), rel=0.02)


def test_mode_comparison_is_reported_and_favours_widefield_with_out_of_focus_light(clean3d):
    ratios = []
    for oof in (0.0, 1.0):
        stack = DeepTissueDegradation(photons=100, out_of_focus=oof).render(clean3d, "ZYX", voxel_size=VS, rng=14)
        _, report = calibrate(stack, "ZYX", voxel_size=VS)
        rss = report.depth["rss"]
        assert set(rss) == {"point-scanning", "widefield"}
        ratios.append(rss["widefield"] / rss["point-scanning"])
    # the widefield model explains relatively more of a stack that has out-of-focus light
    # (weakly: see the limitations in deepcontrast.calibration.depth)
    assert ratios[1] < ratios[0]


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


def test_strong_out_of_focus_light_makes_the_fit_choose_widefield(clean3d):
    stack = DeepTissueDegradation(photons=100, out_of_focus=10.0).render(clean3d, "ZYX", voxel_size=VS, rng=14)
    deg, report = calibrate(stack, "ZYX", voxel_size=VS)
    assert report.mode == "widefield"
    assert deg.out_of_focus > 0  # measured: 3.0 (the model's out-of-focus term is fitted, not defaulted)


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


def _model_stats(oof, blur=0.03, ls=100.0, n_z=48, vz=2.0, haze_sigma=3.0, haze_rate=0.05, rho=None):
    """Per-slice contrast spectra exactly as the calibration's spectral model predicts them:
    a structure of power f^-2 seen through the model's transfer from the surface to each depth,
    divided by the squared slice mean (1 + w(z)); with ``rho`` (per-frequency axial correlation)
    the model's axial blur acts through it."""
    from deepcontrast.calibration.spectral import axial_factor, model_transfer

    deg = DeepTissueDegradation(out_of_focus=oof, blur_rate=blur, scattering_length=ls, haze_sigma=haze_sigma,
                                haze_rate=haze_rate)
    z = np.arange(n_z) * vz
    f = np.geomspace(0.02, 1.0, 20)
    axial = None if rho is None else axial_factor(rho, vz)
    K = f**-2.0 * model_transfer(f[None], z[:, None], deg, axial) / (1 + deg.out_of_focus_weight(z)[:, None]) ** 2
    stats = {"mean": np.ones(n_z), "freq": f, "signal": K, "noise": np.full_like(K, 1e-12)}
    if rho is not None:
        stats["rho"] = rho
    return stats, z


@pytest.mark.parametrize("oof", [0.0, 1.3878354738180652])  # on the fit's grid: its interval must hold it
def test_fit_spectral_chooses_the_mode_of_model_spectra(oof):
    from deepcontrast.calibration.spectral import fit_spectral

    stats, z = _model_stats(oof)
    res = fit_spectral([stats], [z], DeepTissueDegradation())
    assert res["mode"] == ("widefield" if oof else "point-scanning")
    if oof:
        assert res["rss"]["widefield"] < 0.7 * res["rss"]["point-scanning"]
        assert res["out_of_focus"]["value"] == pytest.approx(oof, rel=0.3)
        lo, hi = res["out_of_focus"]["interval"]
        assert lo <= oof <= hi
    assert res["blur_rate"]["value"] == pytest.approx(0.03, abs=0.011)


def test_fit_spectral_recovers_the_halo_width_of_model_spectra():
    from deepcontrast.calibration.spectral import _LS_GRID, fit_spectral

    stats, z = _model_stats(0.0, ls=float(_LS_GRID[6]), haze_sigma=2.0, haze_rate=0.075)
    res = fit_spectral([stats], [z], DeepTissueDegradation())
    assert res["mode"] == "point-scanning"
    for name, true in (("haze_sigma", 2.0), ("haze_rate", 0.075)):
        assert res[name]["estimated"], res[name]
        assert res[name]["value"] == pytest.approx(true)
        lo, hi = res[name]["interval"]
        assert lo <= true <= hi


def test_point_scanning_renders_give_blur_and_scattering_and_no_false_widefield():
    """Measured with benchmarks/bench_widefield.py on these renders (seeds 0-9, out_of_focus 0):
    blur_rate 0.030 in 10/10, scattering_length 75-146 um in 9/10 (true 100), one stack of ten
    called widefield. Here three seeds."""
    from deepcontrast.data import synthetic_tissue

    for seed in (0, 2, 3):
        obs, _ = synthetic_tissue((48, 192, 192), voxel_size=VS, degradation=DeepTissueDegradation(photons=50),
                                  rng=seed)
        deg, report = calibrate(obs, "ZYX", voxel_size=VS)
        assert report.mode == "point-scanning" and deg.out_of_focus == 0
        assert deg.blur_rate == pytest.approx(0.03, abs=0.005)
        assert 70 <= deg.scattering_length <= 150
        assert deg.attenuation_length == pytest.approx(150, rel=0.15)


def test_the_axial_blur_is_part_of_the_spectral_model():
    """Thin structures (short axial correlation) lose contrast to the model's axial blur too;
    the fit recovers blur and scattering only when it accounts for it."""
    from deepcontrast.calibration.spectral import _LS_GRID, fit_spectral

    f = np.geomspace(0.02, 1.0, 20)
    lags = np.arange(13)
    rho = np.exp(-0.5 * (lags[None] * 2.0 * f[:, None] * 4) ** 2)  # decorrelates within ~1 / (4 f) um
    rho[:, 0] = 1.0
    ls = float(_LS_GRID[9])
    stats, z = _model_stats(0.0, ls=ls, rho=rho)
    res = fit_spectral([stats], [z], DeepTissueDegradation())
    assert res["mode"] == "point-scanning"
    assert res["blur_rate"]["value"] == pytest.approx(0.03, abs=0.011)
    assert res["scattering_length"]["value"] == pytest.approx(ls)
    # the same spectra read without the axial correlation (lateral transfer only) give another answer
    del stats["rho"]
    lateral = fit_spectral([stats], [z], DeepTissueDegradation())
    assert (lateral["scattering_length"]["value"], lateral["blur_rate"]["value"]) != (ls, res["blur_rate"]["value"])


def test_microscope_names_the_mode():
    from deepcontrast.data import synthetic_tissue

    obs, _ = synthetic_tissue((24, 96, 96), voxel_size=VS, degradation=DeepTissueDegradation(photons=50, out_of_focus=1),
                              rng=0)
    _, wide = calibrate(obs, "ZYX", voxel_size=VS, microscope="widefield")
    assert wide.mode == "widefield" and "given: microscope='widefield'" in wide.summary()
    _, point = calibrate(obs, "ZYX", voxel_size=VS, microscope="point-scanning")
    assert point.mode == "point-scanning" and point.degradation.out_of_focus == 0
    with pytest.raises(ValueError, match="microscope must be one of"):
        calibrate(obs, "ZYX", voxel_size=VS, microscope="confocal")


def test_attenuation_with_out_of_focus_light_divided_out():
    from deepcontrast.calibration.depth import fit_attenuation

    deg = DeepTissueDegradation(out_of_focus=1.0, scattering_length=100, attenuation_length=150)
    z = np.arange(48) * 2.0
    mean = deg.attenuation(z) * (1 + deg.out_of_focus_weight(z))
    joint = fit_attenuation([(z, mean)], 150.0, deg.out_of_focus_weight)
    assert joint["value"] == pytest.approx(150, rel=0.01)
    # ignoring the growing out-of-focus light reads it as slower attenuation
    naive = fit_attenuation([(z, mean)], 150.0)
    assert naive["value"] > 1.5 * 150


def test_z_after_y_and_x_is_still_the_depth_axis():
    """'YXZ' stacks: Z is the depth axis and each voxel size goes with its letter."""
    from deepcontrast.data import synthetic_tissue

    obs, _ = synthetic_tissue((24, 96, 96), voxel_size=VS, degradation=DeepTissueDegradation(photons=50), rng=0)
    deg, report = calibrate(obs, "ZYX", voxel_size=VS)
    moved, moved_report = calibrate(np.moveaxis(obs, 0, -1), "YXZ", voxel_size=VS[1:] + VS[:1])
    assert moved == deg
    assert moved_report.inputs["voxel_size"] == [0.5, 0.5, 2.0]
