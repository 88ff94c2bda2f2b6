"""Evaluation report: pure part on arrays with known answers, a stand-in model, and the CLI."""
import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from deepcontrast.degradation import DeepTissueDegradation
from deepcontrast.evaluate import REPORT_FILES, evaluate_iterates, evaluate_model, format_table


def sample(nz=9, rng=0):
    """Spots rendered through the forward model (depth grows with Z) and their clean truth."""
    r = np.random.default_rng(rng)
    clean = np.zeros((nz, 48, 48))
    clean[tuple(r.integers(0, s, 200) for s in clean.shape)] = 1
    clean = ndi.gaussian_filter(clean, (0, 1, 1)) * 10
    raw = DeepTissueDegradation(photons=50).render(clean, "ZYX", voxel_size=(10, 0.5, 0.5), rng=rng)
    return raw, clean.astype(np.float32)


class FakeModel:
    """Stands in for DeepContrast: iteration k moves the raw k/3 of the way to the truth."""

    name = "fake"
    degradation_settings = {"degradation": DeepTissueDegradation().to_dict(), "voxel_size": [10, 0.5, 0.5]}

    def __init__(self, truth):
        self.truth = truth
        self.calls = []

    def predict_iterative(self, img, axes, n_iter, n_tiles=None):
        self.calls.append((img.shape, axes, n_iter, n_tiles))
        t = self.truth * img.mean() / self.truth.mean()
        return [(img + (t - img) * min(k, 3) / 3).astype(np.float32) for k in range(1, n_iter + 1)]


def test_evaluate_iterates_known_answers():
    raw, clean = sample()
    iterates = [clean, clean, ndi.gaussian_filter(clean, (0, 4, 4))]
    rep = evaluate_iterates(raw, iterates, "ZYX", ground_truth=clean, voxel_size=(10, 0.5, 0.5),
                            baselines={"clahe": raw.copy()})
    json.dumps(rep, allow_nan=False)  # strict JSON
    assert rep["n_iter"] == 3 and [r["iteration"] for r in rep["iterations"]] == [0, 1, 2, 3]
    assert rep["regions"]["deepest_third"] == {"z_slices": [6, 8], "depth_um": [60.0, 80.0]}
    it = rep["iterations"]
    # the truth itself: PSNR is infinite, stored as None (JSON has no inf); SSIM is 1
    assert it[1]["all"]["psnr"] is None and it[1]["all"]["ssim"] == pytest.approx(1.0)
    assert it[1]["deepest_third"]["ssim"] == pytest.approx(1.0)
    assert it[0]["all"]["contrast_gain"] == pytest.approx(1.0)
    # a baseline identical to the raw scores exactly as the raw
    assert rep["baselines"]["clahe"]["all"] == pytest.approx(it[0]["all"])
    assert rep["baselines"]["clahe"]["label"] == "CLAHE"
    # iteration 2 does not raise contrast over iteration 1 -> the suggestion stops at 1
    assert rep["suggested_n_iter"] == 1
    assert rep["best_iteration_by_psnr"]["deepest_third"] in (1, 2)
    np.testing.assert_allclose(rep["contrast_profile"]["depth_um"], np.arange(9) * 10.0)
    assert len(rep["contrast_profile"]["iteration_3"]) == 9


def test_evaluate_iterates_surface_last_and_2d():
    raw, clean = sample()
    rep = evaluate_iterates(raw, [clean], "ZYX", surface="last")
    assert rep["regions"]["deepest_third"]["z_slices"] == [0, 2]
    assert "psnr" not in rep["iterations"][0]["all"] and "best_iteration_by_psnr" not in rep
    rep2 = evaluate_iterates(raw[0], [clean[0]], "YX", depth=30)
    assert "deepest_third" not in rep2["regions"] and "deepest_third" not in rep2["iterations"][0]
    assert rep2["contrast_profile"]["depth_um"] == [30.0]


def test_evaluate_iterates_shape_mismatch():
    raw, clean = sample()
    with pytest.raises(ValueError, match="iteration 1"):
        evaluate_iterates(raw, [clean[:, :10]], "ZYX")


def test_evaluate_iterates_truth_mismatch():
    raw, clean = sample()
    with pytest.raises(ValueError, match="ground truth"):
        evaluate_iterates(raw, [clean], "ZYX", ground_truth=clean[:3])


def test_format_table_lists_everything():
    raw, clean = sample()
    rep = evaluate_iterates(raw, [clean, clean], "ZYX", ground_truth=clean, baselines={"richardson_lucy": raw})
    table = format_table(rep)
    lines = table.splitlines()
    assert "PSNR" in lines[0] and "deepest third" in lines[0]
    assert [ln.split()[0] for ln in lines[1:5]] == ["raw", "iteration", "iteration", "Richardson-Lucy"]
    assert "suggested n_iter: " in table


def test_evaluate_model_writes_report(tmp_path):
    raw, clean = sample()
    model = FakeModel(clean)
    rep = evaluate_model(model, raw, "ZYX", n_iter=2, ground_truth=clean, out_dir=tmp_path / "rep", depth=0)
    assert model.calls == [(raw.shape, "ZYX", 2, None)]
    assert rep["voxel_size"] == [10.0, 0.5, 0.5]  # taken from the model's training settings
    deep = {r["label"]: r["deepest_third"] for r in rep["iterations"]}
    assert deep["iteration 2"]["psnr"] > deep["raw"]["psnr"] + 2
    assert set(rep["baselines"]) == {"clahe", "richardson_lucy"}
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert names == set(REPORT_FILES) | {"raw.tif", "iteration_1.tif", "iteration_2.tif", "clahe.tif", "richardson_lucy.tif"}
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text()) == rep
    import tifffile

    np.testing.assert_allclose(tifffile.imread(tmp_path / "rep" / "raw.tif"), raw)


def test_evaluate_model_refuses_existing_report(tmp_path):
    raw, clean = sample(nz=3)
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(FileExistsError, match="overwrite"):
        evaluate_model(FakeModel(clean), raw, "ZYX", n_iter=1, out_dir=tmp_path)
    assert (tmp_path / "metrics.json").read_text() == "{}"


def test_evaluate_model_overwrite(tmp_path):
    raw, clean = sample(nz=3)
    (tmp_path / "metrics.json").write_text("{}")
    evaluate_model(FakeModel(clean), raw, "ZYX", n_iter=1, out_dir=tmp_path, overwrite=True, baselines=False)
    assert json.loads((tmp_path / "metrics.json").read_text())["n_iter"] == 1


def test_evaluate_model_bad_n_iter():
    raw, clean = sample(nz=3)
    with pytest.raises(ValueError, match="n_iter"):
        evaluate_model(FakeModel(clean), raw, "ZYX", n_iter=0)


def test_cli_evaluate_tiny_model(tmp_path, capsys):
    import tifffile

    from deepcontrast.cli import main
    from deepcontrast.models import Config, DeepContrast

    # float32: random weights make a net near the divergence bound of iterative prediction
    config = Config("YX", unet_n_depth=1, unet_n_first=4, train_tensorboard=False, precision="float32")
    model = DeepContrast(config, "tiny", basedir=str(tmp_path / "models"))
    rng = np.random.default_rng(0)
    for w in model.keras_model.weights:
        w.assign(rng.normal(0, 0.3, w.shape).astype(np.float32))
    model.keras_model.save_weights(str(model.logdir / "weights_best.h5"))
    raw, clean = sample(nz=3)
    tifffile.imwrite(tmp_path / "img.tif", raw[1])
    tifffile.imwrite(tmp_path / "gt.tif", clean[1])
    argv = ["evaluate", str(tmp_path / "models" / "tiny"), str(tmp_path / "img.tif"), "--axes", "YX",
            "--ground-truth", str(tmp_path / "gt.tif"), "--n-iter", "2", "--voxel-size", "0.5,0.5", "--depth", "10",
            "-o", str(tmp_path / "report")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "suggested n_iter" in out and "Richardson-Lucy" in out
    rep = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert rep["n_iter"] == 2 and rep["model"] == "tiny"
    assert (tmp_path / "report" / "iteration_2.tif").exists()
    assert main(argv) == 1  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_evaluate_model_checks_truth_before_predicting():
    raw, clean = sample(nz=3)
    model = FakeModel(clean)
    with pytest.raises(ValueError, match="ground truth"):
        evaluate_model(model, raw, "ZYX", ground_truth=clean[:, :10])
    assert model.calls == []


def test_report_shows_level_drift_and_flags_negative_light(caplog):
    raw, clean = sample()
    darker, negative = 0.5 * raw, raw - 0.2 * float(np.ptp(raw))
    rep = evaluate_iterates(raw, [darker, negative], "ZYX", background=0.0)
    deep = [r["deepest_third"] for r in rep["iterations"]]
    z = slice(6, 9)  # deepest third of 9 slices, surface first
    assert deep[0]["mean"] == pytest.approx(float(raw[z].mean()), rel=1e-5)
    assert deep[1]["mean"] == pytest.approx(0.5 * deep[0]["mean"], rel=1e-5)
    assert deep[1]["p99_5"] == pytest.approx(float(np.percentile(0.5 * raw[z], 99.5)), rel=1e-5)
    flags = [r["all"]["below_background"] for r in rep["iterations"]]
    assert flags == [False, False, True]
    assert "below the background" in caplog.text
    table = format_table(rep)
    assert "p99.5" in table and table.count("<bg") == 2  # the flagged row and its legend


def test_cli_evaluate_prints_consistency_columns(tmp_path, capsys):
    import tifffile

    from deepcontrast.cli import main
    from deepcontrast.models import Config, DeepContrast

    # a tiny model whose training degradation is recorded: the report checks its iterates against the raw
    settings = {"degradation": DeepTissueDegradation(photons=50).to_dict(), "voxel_size": [10.0, 0.5, 0.5]}
    config = Config("ZYX", unet_n_depth=1, unet_n_first=4, train_tensorboard=False, precision="float32",
                    degradation_settings=settings)
    model = DeepContrast(config, "tiny3d", basedir=str(tmp_path / "models"))
    model.keras_model.save_weights(str(model.logdir / "weights_best.h5"))
    raw, _ = sample(nz=6)
    tifffile.imwrite(tmp_path / "img.tif", raw)
    argv = ["evaluate", str(tmp_path / "models" / "tiny3d"), str(tmp_path / "img.tif"), "--axes", "ZYX",
            "--n-iter", "2", "--no-baselines", "-o"]
    assert main(argv + [str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "data consistency" in out and "shallow" in out and "deep" in out
    rep = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert np.shape(rep["consistency"]["restored_depth"]) == (2, 6)
    assert main(argv + [str(tmp_path / "plain"), "--no-consistency"]) == 0
    assert "data consistency" not in capsys.readouterr().out
    # --surface auto: the check takes the depth map found in the stack
    assert main(argv + [str(tmp_path / "curved"), "--surface", "auto"]) == 0
    rep = json.loads((tmp_path / "curved" / "metrics.json").read_text())
    assert rep["depth"] == "map" and rep["surface"] == "first"
    capsys.readouterr()
    assert main(argv + [str(tmp_path / "both"), "--surface", "auto", "--depth", "5"]) != 0
    assert "leave --depth out" in capsys.readouterr().err
