"""Issue 20 part 5: when there is nothing to restore, say so (before training and after prediction),
and judge "below background" in units of the noise, never flagging the raw."""
import dataclasses

import numpy as np
import pytest

from deepcontrast import DeepTissueDegradation
from deepcontrast.calibration import calibrate, nothing_to_restore_notice, training_blur_notice

FLAT = DeepTissueDegradation(photons=50, blur_rate=0.0, scattering_length=None)


def test_notice_when_the_model_has_no_blur_and_no_haze():
    line = nothing_to_restore_notice(FLAT, (1.0, 1.0), (10, 40), 50.0)
    assert line is not None and "\n" not in line
    assert line.startswith("nothing to restore")
    for fix in ("voxel_size", "surface", "blur_rate", "scattering_length"):
        assert fix in line


@pytest.mark.parametrize("kw, expected", [
    (dict(), False),  # defaults: blur 0.03 um/um and haze
    (dict(blur_rate=0.0), False),  # scattering 100 um moves 1 - exp(-25/100) = 22% into the haze
    (dict(blur_rate=0.0, scattering_length=5000.0), True),  # 1 - exp(-25/5000) = 0.5% < 2%
    (dict(blur_rate=0.0, scattering_length=1000.0), False),  # 1 - exp(-25/1000) = 2.5% >= 2%: some haze
    # blur 0.001 * sqrt(2 * 50 * 25 + 25^2) = 0.056 px (< 0.1) at 1 um pixels; 0.002 gives 0.11 px
    (dict(blur_rate=0.001, scattering_length=None), True),
    (dict(blur_rate=0.002, scattering_length=None), False),
    # out-of-focus light w(z) = out_of_focus * (1 + z / scattering_length) is constant without scattering
    (dict(blur_rate=0.0, scattering_length=None, out_of_focus=1.0), True),
])
def test_notice_known_answers(kw, expected):
    deg = DeepTissueDegradation(**kw)
    assert (nothing_to_restore_notice(deg, (1.0, 1.0), (10, 40), 50.0) is not None) is expected


def test_training_data_and_calibration_report_say_nothing_to_restore():
    from deepcontrast.data import DegradedRawData, synthetic_tissue

    raw, _ = synthetic_tissue((8, 64, 64), voxel_size=(2, .5, .5), degradation=FLAT, rng=1)
    data = DegradedRawData.from_arrays([raw], "ZYX", FLAT, (10, 40), voxel_size=(2, .5, .5))
    assert training_blur_notice(data).startswith("nothing to restore")  # before the sub-pixel blur notice
    _, rep = calibrate(raw, "ZYX", voxel_size=(2, .5, .5))
    flat = dataclasses.replace(rep, degradation=rep.degradation.replace(blur_rate=0.0, scattering_length=None))
    assert "note: nothing to restore" in flat.summary()
    assert "nothing to restore" not in dataclasses.replace(rep, degradation=DeepTissueDegradation()).summary()


def test_datagen_calibrate_prints_the_notice_before_training(tmp_path, capsys, monkeypatch):
    import tifffile

    from deepcontrast.cli import main
    from deepcontrast.data import synthetic_tissue

    raw, _ = synthetic_tissue((8, 64, 64), voxel_size=(2, .5, .5), degradation=FLAT, rng=1)
    (tmp_path / "raw").mkdir()
    tifffile.imwrite(tmp_path / "raw" / "a.tif", raw)
    _, rep = calibrate(raw, "ZYX", voxel_size=(2, .5, .5))
    # what the light-sheet stack of issue 20 calibrated to: no blur growth, no haze
    monkeypatch.setattr(DeepTissueDegradation, "calibrate", classmethod(lambda cls, *a, **k: (FLAT, rep)))
    args = ["datagen", str(tmp_path / "raw"), "--axes", "ZYX", "--patch-size", "4,32,32", "--n-patches", "2",
            "--voxel-size", "2,0.5,0.5", "--seed", "0"]
    main(args + ["-o", str(tmp_path / "d.npz"), "--calibrate"])
    out = capsys.readouterr().out
    assert out.count("note: nothing to restore") == 1 and out.index("nothing to restore") < out.index("wrote")
    monkeypatch.undo()
    main(args + ["-o", str(tmp_path / "e.npz"), "--photons", "50"])
    assert "nothing to restore" not in capsys.readouterr().out  # the default blur and haze


# -- below background, in units of the noise --------------------------------------------------
def test_background_noise_known_answers():
    from deepcontrast.metrics import background_noise

    r = np.random.default_rng(0)
    flat = 100.0 + r.normal(0.0, 2.0, (128, 128))
    assert background_noise(flat, 100.0) == pytest.approx(2.0, rel=0.03)
    # bright structure on top does not change the noise at the background
    spots = flat.copy()
    spots[::8, ::8] += 500.0
    assert background_noise(spots, 100.0) == pytest.approx(2.0, rel=0.05)
    # a background set 5 std too high widens the tolerance with it: RMS of the dips ~ sqrt(10^2 + 2^2)
    assert background_noise(flat - 10.0, 100.0) == pytest.approx(np.hypot(10.0, 2.0), rel=0.03)


@pytest.mark.parametrize("k, flagged", [(3.0, False), (5.0, True)])
def test_below_background_is_judged_in_noise_units(k, flagged):
    from deepcontrast.metrics import intensity_stats

    raw = 100.0 + np.random.default_rng(1).normal(0.0, 2.0, (128, 128))
    denoised = np.full_like(raw, 100.0 - 2.0 * k)  # k noise std below the background of 100
    st = intensity_stats(denoised, raw, background=100.0)
    assert st["below_background"] is flagged
    assert st["below_background_noise"] == pytest.approx(k, rel=0.05)


def test_the_raw_is_never_flagged_even_against_a_wrong_background():
    from deepcontrast.evaluate import evaluate_iterates, format_table

    # issue 20: the raw's noise dipped below an over-estimated background (old rule: 0.5% of the range)
    r = np.random.default_rng(2)
    raw = 90.0 + r.normal(0.0, 2.0, (6, 64, 64))
    raw[:, ::8, ::8] += 400.0
    same = raw.copy()
    rep = evaluate_iterates(raw, [same, np.full_like(raw, 90.0), raw - 200.0], "ZYX", background=100.0)
    flags = [row["all"]["below_background"] for row in rep["iterations"]]
    assert flags == [False, False, False, True]
    assert rep["iterations"][0]["all"]["min"] < 100.0 - 0.005 * np.ptp(raw)  # what the old rule flagged
    assert rep["background_noise"] == pytest.approx(np.hypot(10.0, 2.0), rel=0.05)
    assert format_table(rep).count("<bg") == 2  # iteration 3 and the legend


# -- the demo says it: before training (training data notice) and after prediction (summary) -------
def test_demo_says_nothing_to_restore_before_training_and_no_restoration_after(tmp_path, caplog):
    from types import SimpleNamespace

    from deepcontrast.data import synthetic_tissue
    from deepcontrast.demo import demo_settings, steps
    from deepcontrast.evaluate import evaluate_iterates

    s = demo_settings(quick=True)
    s.update(shape=(8, 64, 64), n_patches_per_image=16)
    raw, _ = synthetic_tissue((8, 64, 64), voxel_size=(2, .5, .5), degradation=FLAT, rng=1)
    sample = SimpleNamespace(image=raw, axes="ZYX", degradation=FLAT, voxel_size=(2, .5, .5), surface="first",
                             depth=0.0, microscope="auto")
    data = steps.make_training_data(s, sample, tmp_path / "data", 0)
    assert data.notice.startswith("nothing to restore") and "nothing to restore" in caplog.text
    # a network that learned nothing: every iterate equals the raw
    report = evaluate_iterates(raw, [raw.copy(), raw.copy()], "ZYX", voxel_size=(2, .5, .5), degradation=FLAT)
    text = steps.summary(report, None, {"total": 1.0}, data.notice)
    assert text.startswith("note (before training): nothing to restore")
    assert "no restoration happened" in text and "suggested n_iter" not in text and "<bg" not in text
