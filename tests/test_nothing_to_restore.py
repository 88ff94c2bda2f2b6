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
