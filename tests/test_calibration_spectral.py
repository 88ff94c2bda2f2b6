"""Calibration of blur, haze and out-of-focus light from slice spectra vs depth, and the imaging mode
(point-scanning vs widefield): known answers on model spectra and on stacks the forward model rendered."""
import numpy as np
import pytest

from deepcontrast import DeepTissueDegradation
from deepcontrast.calibration import calibrate
from test_calibration import VS, blobs


@pytest.fixture(scope="module")
def clean3d():
    return blobs((32, 128, 128), rng=0)


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


def test_strong_out_of_focus_light_makes_the_fit_choose_widefield(clean3d):
    stack = DeepTissueDegradation(photons=100, out_of_focus=10.0).render(clean3d, "ZYX", voxel_size=VS, rng=14)
    deg, report = calibrate(stack, "ZYX", voxel_size=VS)
    assert report.mode == "widefield"
    assert deg.out_of_focus > 0  # measured: 3.0 (the model's out-of-focus term is fitted, not defaulted)


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


def test_noise_free_render_recovers_its_blur():
    # without noise nothing hides the spectra's far tail (power below 1e-5 of the mean^2): fitted,
    # it read blur_rate 0.01 (scattering 10 um) for a true 0.05
    from deepcontrast.data import synthetic_tissue

    img, _ = synthetic_tissue((32, 128, 128), voxel_size=(2.0, 0.5, 0.5),
                              degradation=DeepTissueDegradation(photons=None, blur_rate=0.05), rng=0)
    deg, _ = DeepTissueDegradation.calibrate(img, "ZYX", voxel_size=(2.0, 0.5, 0.5))
    assert abs(deg.blur_rate - 0.05) <= 0.01 + 1e-9
